"""Run-start checks: bad combinations of parameter groups, and runners that cannot work,
stop a run before any node executes."""

from __future__ import annotations

import pytest
import torch

from maskrec.hooks import (
    check_parameters,
    check_pretraining_source,
    check_runner,
    check_tuned_models,
)
from tests.helpers import configured, params


def groups(**overrides):
    names = ("training", "pretraining", "fine_tuning", "sasrec", "data_split")
    return {name: params(name, **overrides.get(name, {})) for name in names}


def test_freeze_layers_beyond_the_model_is_rejected():
    with pytest.raises(ValueError, match=r"(?s)fine_tuning: .*regularizers.freeze_layers \(3\) exceeds model.num_layers \(2\)"):  # fmt: skip
        configured(fine_tuning={"regularizers": {"freeze_layers": 3}})


def test_teacher_width_must_suit_the_heads():
    teacher = {"model": {"hidden_size": 30}}
    bad = {
        "objective": "next_item",
        "distillation": {"weight": 0.5, "teacher": teacher},
    }
    with pytest.raises(ValueError, match=r"(?s)fine_tuning: .*distillation.teacher.model.*num_heads \(4\) must divide hidden_size \(30\)"):  # fmt: skip
        configured(model={"num_heads": 4}, fine_tuning=bad)


def test_sasrec_heads_must_divide_the_hidden_size():
    with pytest.raises(ValueError, match=r"(?s)sasrec: .*num_heads \(3\) must divide hidden_size \(64\)"):  # fmt: skip
        configured(sasrec={"model": {"num_heads": 3}})


def test_a_stage_that_continues_weights_keeps_their_architecture():
    with pytest.raises(ValueError, match="fine_tuning.model must be pretraining.model apart from dropout"):  # fmt: skip
        configured(fine_tuning={"model": {"hidden_size": 32}})
    with pytest.raises(ValueError, match="ratings.head.model must be ratings.pretraining.model"):  # fmt: skip
        configured(ratings={"head": {"model": {"num_layers": 1}}})
    dropout = configured(
        fine_tuning={"model": {"hidden_dropout": 0.3}}
    )  # no weights: free
    assert dropout["fine_tuning"].model.hidden_dropout == 0.3


def test_a_schedule_key_outside_its_block_says_where_it_belongs():
    with pytest.raises(ValueError, match=r"fine_tuning.epochs: a stage sets epochs in its schedule block \(fine_tuning.schedule.epochs\)"):  # fmt: skip
        configured(fine_tuning={"epochs": 3})


@pytest.mark.skipif(
    torch.cuda.is_available(), reason="checks the message for a missing GPU"
)
def test_unavailable_device_is_named():
    with pytest.raises(ValueError, match=r"training.device: device='cuda'"):
        check_parameters(groups(training={"device": "cuda"}))


def test_given_split_needs_targets_and_targets_need_the_given_split():
    given = {"data_split": {"strategy": "given", "cold_user_fraction": 0.0}}
    with pytest.raises(ValueError, match="needs --params split_targets"):
        check_parameters(groups(**given), split_targets_given=False)
    check_parameters(groups(**given), split_targets_given=True)
    with pytest.raises(ValueError, match="split_targets is only read with data_split.strategy=given"):  # fmt: skip
        check_parameters(groups(), split_targets_given=True)


def test_consistent_parameters_pass():
    check_parameters(groups(fine_tuning={"regularizers": {"freeze_layers": 2}}))
    check_parameters({})  # a run that uses none of the groups


@pytest.mark.parametrize("runner", ["ParallelRunner", "ThreadRunner"])
def test_concurrent_runners_are_refused_with_the_runner_to_use(runner):
    with pytest.raises(ValueError, match=f"--runner {runner} is not supported.*SequentialRunner"):  # fmt: skip
        check_runner(f"<kedro.runner.x.{runner} object at 0x1>")
    check_runner("<kedro.runner.sequential_runner.SequentialRunner object at 0x1>")


def test_the_transfer_run_needs_a_source_and_only_it_reads_one():
    with pytest.raises(ValueError, match="add --params pretraining_source="):
        check_pretraining_source(True, False, ["transfer"])
    with pytest.raises(ValueError, match="read only by the transfer run"):
        check_pretraining_source(False, True, None)
    with pytest.raises(ValueError, match="read only by the transfer run"):
        check_pretraining_source(False, True, ["evaluation"])
    check_pretraining_source(True, True, ["transfer"])
    check_pretraining_source(False, True, ["transfer"])  # a slice of the transfer run
    check_pretraining_source(False, False, None)
    check_pretraining_source(True, True, ["data_efficiency"])


def test_ease_skip_is_announced_at_run_start_from_the_raw_catalogue(tmp_path, caplog):
    """The sample's size is known from its spec, a folder's from its items file (no
    ratings read); a catalogue within the limit announces nothing."""
    from maskrec.datasets.movielens import MovieLensDataset
    from maskrec.hooks import announce_skipped_baselines

    baselines = params("baselines", max_dense_items=100)
    sample = MovieLensDataset(source="sample", sample_args={"n_items": 150})
    with caplog.at_level("WARNING", logger="maskrec.hooks"):
        reason = announce_skipped_baselines(sample, baselines)
    assert "150 items, above baselines.max_dense_items=100" in reason
    assert "EASE will be skipped in this run" in caplog.text

    folder = tmp_path / "release"
    folder.mkdir()
    (folder / "ratings.csv").write_text("userId,movieId,rating,timestamp\n1,1,4.0,1\n")
    (folder / "movies.csv").write_text(
        "movieId,title,genres\n"
        + "".join(f"{i},T{i} (2000),Drama\n" for i in range(1, 101))  # fmt: skip
    )
    assert MovieLensDataset(source=str(folder)).catalogue_size() == 100
    assert announce_skipped_baselines(MovieLensDataset(source=str(folder)), baselines) is None  # fmt: skip
    assert MovieLensDataset(source="ml-1m", cache_dir=str(tmp_path)).catalogue_size() is None  # fmt: skip


def test_the_transfer_models_are_tuned_only_where_the_source_is_read():
    tuning = {"tune_fine_tuned_node", "tune_sasrec_node", "tuned_parameters_node"}
    with pytest.raises(ValueError, match="kedro run --pipelines transfer_tuning"):
        check_tuned_models(["sasrec", "transfer"], tuning)
    check_tuned_models(["sasrec"], tuning)
    check_tuned_models(["transfer"], {"train_sasrec_node"})  # a run without studies
    transfer_tuning = tuning | {"tune_transfer_node", "tune_joint_sasrec_node"}
    with pytest.raises(
        ValueError, match="names none of them: add transfer, joint_sasrec, one a run"
    ):
        check_tuned_models(["sasrec"], transfer_tuning)
    check_tuned_models(["sasrec", "joint_sasrec"], transfer_tuning)
