"""Data-parallel training (training/distributed.py): two CPU processes with gloo train
exactly what one process trains with the same global batch, resume as one does, and under
torchrun only rank 0 runs the pipeline and writes anything."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp

from maskrec.model_input import eval_set, training_windows
from maskrec.models import SequenceRecModel
from maskrec.models.packing import IGNORE
from maskrec.training import distributed
from maskrec.training.loop import fit, serve_training_jobs
from maskrec.training.objectives import CausalObjective, Part
from tests.conftest import copy_project
from tests.helpers import params, saved, stopped_after
from tests.models.test_sequence import cyclic_data, tiny_config, training

EPOCHS = 3
# Float tolerance between N processes and one: the same sums in another order (a global
# batch's gradient as the mean of two halves' gradients), over 3 epochs of AdamW steps.
ATOL, RTOL = 1e-5, 1e-4


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_fit(checkpoint_dir: str | None, interrupt_after: int | None = None):
    """One `fit` of a causal model with the Cloze loss mixed in (random masks every batch),
    FGM on (a second forward and backward per step); dropout off so that processes that
    split a batch draw no randomness of their own."""
    train, valid = cyclic_data(n_users=100)
    torch.manual_seed(0)
    model = SequenceRecModel(tiny_config(causal=True))
    objective = CausalObjective(cloze_weight=0.5, mask_prob=0.3, mask_id=model.config.mask_id)  # fmt: skip

    stage = params(
        "fine_tuning", schedule={"epochs": EPOCHS, "batch_size": 16, "learning_rate": 0.003, "warmup_ratio": 0.0},
        loss={"label_smoothing": 0.1}, regularizers={"fgm_epsilon": 0.1},
    )  # fmt: skip
    run = lambda: fit(  # noqa: E731
        model, objective, training_windows(train, 9), eval_set(valid, 8), stage,
        training(checkpoint_dir=checkpoint_dir), "ddp-test",
    )  # fmt: skip
    if interrupt_after is None:
        return run()
    with stopped_after(interrupt_after):  # as a person stopping the run
        return run()


def process(rank: int, size: int, port: int, out: str, checkpoint_dir: str | None, interrupt_after: int | None) -> None:  # fmt: skip
    """One process of a torchrun-like job: rank 0 calls `fit`, the others serve it."""
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank),
                      WORLD_SIZE=str(size), LOCAL_RANK=str(rank))  # fmt: skip
    torch.set_num_threads(1)
    group = distributed.join_from_environment()
    assert group is not None and (group.rank, group.size) == (rank, size)
    if rank == 0:
        model, history = run_fit(checkpoint_dir, interrupt_after)
        torch.save({"state": model.state_dict(), "history": history}, out)
        distributed.stop_workers()
    else:
        assert serve_training_jobs() == 1
        distributed.leave()


def two_processes(tmp_path: Path, name: str, checkpoint_dir: str | None = None, interrupt_after: int | None = None) -> dict:  # fmt: skip
    out = str(tmp_path / f"{name}.pt")
    mp.spawn(process, args=(2, free_port(), out, checkpoint_dir, interrupt_after), nprocs=2)  # fmt: skip
    return torch.load(out, weights_only=False)


def assert_same_weights(a: dict, b: dict, exact: bool = False) -> None:
    assert a.keys() == b.keys()
    for name, value in a.items():
        if exact:
            assert torch.equal(value, b[name]), name
        else:
            torch.testing.assert_close(value, b[name], atol=ATOL, rtol=RTOL, msg=name)


def test_rows_of_a_global_batch_are_shared_out_and_the_losses_rescaled():
    labels = torch.full((5, 4), IGNORE)
    labels[0, :3] = 1  # 3 labelled positions in row 0, 1 in each later row
    labels[1:, 0] = 2
    part = Part(torch.ones(5, 4, dtype=torch.long), labels, 0.5)
    assert [distributed.bounds(5, r, 2) for r in (0, 1)] == [(0, 2), (2, 5)]
    first, second = (distributed.share([part], r, 2)[0] for r in (0, 1))
    assert len(first.inputs) == 2 and len(second.inputs) == 3
    # 4 of 7 labelled positions, then 3 of 7; times 2 processes, times the part's weight
    assert float(first.weight) == pytest.approx(0.5 * 2 * 4 / 7)
    assert float(second.weight) == pytest.approx(0.5 * 2 * 3 / 7)
    assert (
        distributed.share([part], 0, 8) == []
    )  # 5 rows, 8 processes: rank 0 gets none


@pytest.mark.slow
@pytest.mark.parametrize(
    ("gpus", "local_processes", "local_rank", "backend", "device"),
    [
        (0, 2, 1, "gloo", None),  # CPU only
        (2, 2, 1, "cpu:gloo,cuda:nccl", 1),  # a GPU per process: NCCL
        (1, 2, 1, "gloo", 0),  # two processes share one GPU: NCCL would refuse
        (2, 4, 3, "gloo", 1),
    ],
)
def test_the_gradient_backend_is_nccl_only_with_a_gpu_per_process(
    monkeypatch, gpus, local_processes, local_rank, backend, device
):
    chosen = []
    monkeypatch.setattr(torch.cuda, "is_available", lambda: gpus > 0)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: gpus)
    monkeypatch.setattr(torch.cuda, "set_device", chosen.append)
    monkeypatch.setenv("LOCAL_WORLD_SIZE", str(local_processes))
    monkeypatch.setenv("LOCAL_RANK", str(local_rank))
    assert distributed._backend() == backend
    assert chosen == ([] if device is None else [device])


def test_two_processes_train_what_one_process_trains_with_the_same_global_batch(
    tmp_path,
):
    one_model, one_history = run_fit(None)
    two = two_processes(tmp_path, "two")
    assert_same_weights(one_model.state_dict(), two["state"])
    for a, b in zip(one_history, two["history"], strict=True):
        assert a["epoch"] == b["epoch"]
        assert a["train_loss"] == pytest.approx(b["train_loss"], rel=1e-5)
        assert a["ndcg@10"] == pytest.approx(
            b["ndcg@10"], abs=1e-9
        )  # ranks are gathered


@pytest.mark.slow
def test_an_interrupted_two_process_run_resumes_to_the_uninterrupted_weights(tmp_path):
    uninterrupted = two_processes(tmp_path, "whole")
    checkpoints = str(tmp_path / "checkpoints")
    # rank 0 stops after epoch 1; the other process loses its peer (either may report first)
    with pytest.raises((mp.ProcessRaisedException, mp.ProcessExitedException)):
        two_processes(tmp_path, "cut", checkpoints, interrupt_after=1)
    assert (
        Path(checkpoints) / "ddp-test.pt"
    ).is_file()  # written by rank 0 after epoch 1
    resumed = two_processes(tmp_path, "resumed", checkpoints)
    assert not (Path(checkpoints) / "ddp-test.pt").exists()  # finished: cleaned up
    assert_same_weights(uninterrupted["state"], resumed["state"], exact=True)
    drop = {"seconds", "train_seconds", "sequences_per_second"}
    assert [{k: v for k, v in r.items() if k not in drop} for r in uninterrupted["history"]] == [
        {k: v for k, v in r.items() if k not in drop} for r in resumed["history"]
    ]  # fmt: skip


@pytest.mark.slow
def test_under_torchrun_kedro_runs_the_pipeline_once_and_only_rank_0_writes(tmp_path):
    copy_project(tmp_path)
    params = ("sample.n_users=120,sample.n_items=200,sample.n_ratings=3000,"
              "pretraining.schedule.epochs=2,training.device=cpu")  # fmt: skip
    env = {**os.environ, "KEDRO_DISABLE_TELEMETRY": "1", "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2",
               "-m", "kedro", "run", "--pipelines", "data_processing,data_split,pretraining", "--params", params]  # fmt: skip
    done = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300, check=False)  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert (
        saved(tmp_path / "data/06_models/pretrained_model") / "model.safetensors"
    ).is_file()
    log = (tmp_path / "info.log").read_text()
    # the pipeline ran once (rank 0), and both processes trained the model
    assert log.count("Pipeline execution completed successfully") == 1
    assert log.count("pretrained epoch 2:") == 1
    assert log.count("training data-parallel in 2 processes") == 1
    output = done.stdout + done.stderr
    assert "process 1: trained in 1 fit call(s)" in output
    assert not (tmp_path / "data/06_models/checkpoints").exists() or not any(
        (tmp_path / "data/06_models/checkpoints").iterdir()
    )
