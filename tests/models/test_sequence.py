from __future__ import annotations

import pandas as pd
import pytest
import torch

from maskrec.datasets import ModelFolderDataset
from maskrec.devices import resolve_device
from maskrec.metrics import mean_metrics
from maskrec.model_input import eval_set, right_aligned, training_windows
from maskrec.models import SequenceRecConfig, SequenceRecModel
from maskrec.scoring import rank
from maskrec.training import loop
from maskrec.training.loop import fit
from maskrec.training.objectives import CausalObjective, NextItemObjective
from tests.helpers import params, stopped_after

N_ITEMS = 30


def cyclic_data(n_users: int = 240, length: int = 12, seed: int = 0):
    """Item i is always followed by item i+1 (wrapping): a perfectly learnable pattern."""
    generator = torch.Generator().manual_seed(seed)
    starts = torch.randint(0, N_ITEMS, (n_users,), generator=generator)
    sequences = [[(int(s) + k) % N_ITEMS + 1 for k in range(length)] for s in starts]
    train = [s[:-2] for s in sequences]
    valid = pd.DataFrame(
        {
            "user_id": range(n_users),
            "context": train,
            "target_item": [s[-2] for s in sequences],
        }
    )
    return train, valid


def tiny_config(**overrides) -> SequenceRecConfig:
    settings = {"n_items": N_ITEMS, "hidden_size": 32, "num_layers": 1, "num_heads": 2, "intermediate_size": 64,
                "hidden_dropout": 0.0, "attention_dropout": 0.0, "max_len": 8, "recency_bias": True,
                "use_genres": False, "use_years": False, "item_content": False, "title_buckets": 0} | overrides  # fmt: skip
    return SequenceRecConfig(**settings)


def stage(**schedule):
    """A stage spec (pretraining's, from conf) with a quick schedule, `schedule` over it."""
    settings = {"epochs": 12, "batch_size": 32, "learning_rate": 0.01, "patience": 12,
                "min_epochs": 0, "warmup_ratio": 0.0} | schedule  # fmt: skip
    return params("pretraining", schedule=settings)


def training(**overrides):
    return params("training", **({"device": "cpu", "checkpoint_dir": None} | overrides))


def validation_ndcg(model, valid) -> float:
    return mean_metrics(rank(model, valid, 256).ranks)["ndcg@10"]


@pytest.mark.parametrize("causal", [False, True])
def test_model_learns_a_deterministic_sequence_to_near_perfect_accuracy(causal):
    torch.manual_seed(0)
    model = SequenceRecModel(tiny_config(causal=causal))
    train, valid = cyclic_data()
    length = model.config.max_len + (1 if causal else 0)
    objective = (
        CausalObjective()
        if causal
        else NextItemObjective(model.config.mask_id, N_ITEMS, prefixes_per_sequence=4)
    )
    model, history = fit(
        model,
        objective,
        training_windows(train, length),
        eval_set(valid, model.config.max_len),
        stage(),
        training(),
        "cyclic",
    )
    ranks = rank(model, eval_set(valid, model.config.max_len), 256).ranks
    assert (ranks == 0).mean() > 0.95  # the right next item ranked first
    assert history[-1]["train_loss"] < history[1]["train_loss"]


@pytest.mark.parametrize("recency_bias", [True, False])
def test_causal_model_does_not_see_the_future(recency_bias):
    torch.manual_seed(0)
    model = SequenceRecModel(tiny_config(causal=True, recency_bias=recency_bias)).eval()
    a = torch.tensor([[1, 2, 3, 4, 5, 6, 7, 8]])
    b = torch.tensor([[1, 2, 3, 4, 9, 9, 9, 9]])
    with torch.no_grad():
        assert torch.allclose(model.encode(a)[:, :4], model.encode(b)[:, :4], atol=1e-6)
        assert not torch.allclose(model.encode(a)[:, 5], model.encode(b)[:, 5])


@pytest.mark.parametrize("causal", [False, True])
def test_padding_and_batch_neighbours_do_not_change_scores(causal):
    """A history scores the same alone at its own width, left-padded to max_len, or in a
    batch beside a longer history (padding keys are masked, positions are right-aligned)."""
    torch.manual_seed(0)
    model = SequenceRecModel(tiny_config(causal=causal, recency_bias=True)).eval()
    with torch.no_grad():
        model.recency_log_slopes.fill_(-1.0)  # attention reaches across the history
        model.item_embedding.weight.mul_(50.0)  # so that the scores depend on the items
        history = [3, 4, 5]
        tight = model.score_next(right_aligned([history], 4 if not causal else 3), packing=False)  # fmt: skip
        padded = model.score_next(right_aligned([history], 8), packing=False)
        batched = model.score_next(right_aligned([history, [9, 8, 7, 6, 5, 4, 3]], 8), packing=False)  # fmt: skip
        packed = model.score_next(right_aligned([history, [9, 8, 7, 6, 5, 4, 3]], 8), packing=True)  # fmt: skip
        other = model.score_next(right_aligned([[6, 4, 5]], 8), packing=False)
    torch.testing.assert_close(padded[:, 1:], tight[:, 1:], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(batched[:1, 1:], padded[:, 1:], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(packed[:1, 1:], padded[:, 1:], atol=1e-5, rtol=1e-5)
    assert not torch.allclose(other[:, 1:], padded[:, 1:], atol=1e-3)  # not constant


def test_save_and_load_give_identical_scores(tmp_path):
    torch.manual_seed(0)
    config = tiny_config(n_genres=3, use_genres=True, use_years=True, item_ids=list(range(101, 131)),
                         item_genres=[[i % 3] for i in range(N_ITEMS)], item_years=[1990 + i for i in range(N_ITEMS)])  # fmt: skip
    model = SequenceRecModel(config).eval()
    dataset = ModelFolderDataset(filepath=str(tmp_path / "model"))
    dataset.save(model)
    assert sorted(p.name for p in (tmp_path / "model").iterdir()) == [
        "config.json",
        "model.safetensors",
    ]
    loaded = dataset.load()
    contexts = right_aligned([[1, 2, 3], [7, 8, 9, 10, 11, 12, 13]], 8)
    assert torch.equal(model.score_next(contexts), loaded.score_next(contexts))
    assert loaded.config.item_ids == list(range(101, 131))
    # Saving again replaces the folder whole, leaving no temporary folders behind.
    dataset.save(loaded)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]


def test_loading_a_missing_model_says_what_to_do(tmp_path):
    with pytest.raises(Exception, match="no saved model here"):
        ModelFolderDataset(filepath=str(tmp_path / "nope")).load()


def test_resume_after_interruption_equals_an_uninterrupted_run(tmp_path):
    train, valid = cyclic_data(n_users=120)
    windows, data = training_windows(train, 8), eval_set(valid, 8)
    run_stage = stage(epochs=5, learning_rate=0.003)
    run_training = training(checkpoint_dir=str(tmp_path / "ckpt"))

    def run():
        torch.manual_seed(0)
        model = SequenceRecModel(tiny_config(hidden_dropout=0.2))
        objective = NextItemObjective(
            model.config.mask_id, N_ITEMS, prefixes_per_sequence=2, cloze_weight=0.5
        )
        return fit(model, objective, windows, data, run_stage, run_training, "resume-test")  # fmt: skip

    reference, reference_history = run()
    with pytest.raises(KeyboardInterrupt), stopped_after(2):
        run()
    assert (tmp_path / "ckpt" / "resume-test.pt").is_file()
    resumed, resumed_history = run()
    assert not (
        tmp_path / "ckpt" / "resume-test.pt"
    ).exists()  # a finished run cleans up
    for name, tensor in reference.state_dict().items():
        assert torch.equal(tensor, resumed.state_dict()[name]), name
    drop = {"seconds", "train_seconds", "sequences_per_second"}
    assert [
        {k: v for k, v in r.items() if k not in drop} for r in reference_history
    ] == [{k: v for k, v in r.items() if k not in drop} for r in resumed_history]


def test_a_kept_checkpoint_gives_the_finished_run_back_without_training(tmp_path, monkeypatch):  # fmt: skip
    """`keep_checkpoint`: a run stopped by patience leaves its last checkpoint, and the same
    run again returns its chosen weights and history with no epoch trained (no
    validation either: the scripted scores run out); `discard_checkpoints` removes it."""
    scores = iter([0.1, 0.3, 0.2, 0.25])  # patience 1: stops after epoch 3
    monkeypatch.setattr(loop, "validate", lambda *a, **k: {"ndcg@10": next(scores), "hr@10": 0.0, "mrr@10": 0.0})  # fmt: skip
    train, valid = cyclic_data(n_users=40)
    run_training = training(checkpoint_dir=str(tmp_path / "ckpt"))

    def run():
        torch.manual_seed(0)
        model = SequenceRecModel(tiny_config(causal=True))
        return fit(model, CausalObjective(), training_windows(train, 8), eval_set(valid, 8),
                   stage(epochs=6, patience=1), run_training, "kept", keep_checkpoint=True)  # fmt: skip

    first, first_history = run()
    assert [r["epoch"] for r in first_history] == [1, 2, 3]
    assert (tmp_path / "ckpt" / "kept.pt").is_file()
    again, again_history = run()
    assert again_history == first_history
    for name, tensor in first.state_dict().items():
        assert torch.equal(tensor, again.state_dict()[name]), name
    loop.discard_checkpoints(run_training, "kept", "never-run")
    assert not list((tmp_path / "ckpt").iterdir())


def test_early_stopping_restores_the_best_epoch():
    train, valid = cyclic_data(n_users=60)
    torch.manual_seed(0)
    model = SequenceRecModel(tiny_config())
    objective = NextItemObjective(model.config.mask_id, N_ITEMS)
    # A learning rate this high wrecks the model after a good start.
    model, history = fit(model, objective, training_windows(train, 8), eval_set(valid, 8),
                         stage(epochs=8, patience=2, learning_rate=0.5), training(), "unstable")  # fmt: skip
    best = max(history, key=lambda r: r["ndcg@10"])
    assert all(r["best_epoch"] == best["epoch"] for r in history)
    assert validation_ndcg(model, eval_set(valid, 8)) == pytest.approx(best["ndcg@10"])


def _scripted_fit(
    monkeypatch,
    scores: list[float],
    patience: int,
    start_is_candidate=True,
    rmse=False,
    **schedule,
):
    """`fit` with validation NDCG@10 (or, with `rmse`, validation RMSE) read from `scores`
    (epoch 0 first when the start is a candidate): the early-stopping rule itself,
    independent of what the model learns."""
    remaining = iter(scores)
    metrics = (lambda: {"rmse": next(remaining), "mae": 0.0}) if rmse else (lambda: {"ndcg@10": next(remaining), "hr@10": 0.0, "mrr@10": 0.0})  # fmt: skip
    monkeypatch.setattr(loop, "validate", lambda *a, **k: metrics())
    train, valid = cyclic_data(n_users=40)
    torch.manual_seed(0)
    model = SequenceRecModel(tiny_config())  # bidirectional, as a Cloze model
    start = {k: v.clone() for k, v in model.state_dict().items()}
    model, history = fit(
        model, CausalObjective(), training_windows(train, 9), eval_set(valid, 8),
        stage(epochs=len(scores), patience=patience, **schedule), training(), "scripted",
        start_is_candidate=start_is_candidate,
    )  # fmt: skip
    return model, history, start


def test_patience_counts_trained_epochs_and_epoch_zero_can_still_win(monkeypatch):
    # Epoch 0 (0.5) is never beaten. Patience 3 counts from the best *trained* epoch:
    # epoch 2 (0.2) is best so far, epochs 3, 4, 5 do not beat it -> stop after epoch 5.
    model, history, start = _scripted_fit(monkeypatch, [0.5, 0.1, 0.2, 0.15, 0.18, 0.19, 0.9, 0.9], patience=3)  # fmt: skip
    assert [r["epoch"] for r in history] == [0, 1, 2, 3, 4, 5]
    assert {r["best_epoch"] for r in history} == {0}
    for (
        name,
        tensor,
    ) in model.state_dict().items():  # the starting weights, restored ...
        assert torch.equal(tensor, start[name]), name
    assert not model.config.causal  # ... and read the way they were trained


def test_a_trained_epoch_that_beats_the_start_wins_with_its_reading(monkeypatch):
    model, history, start = _scripted_fit(monkeypatch, [0.3, 0.1, 0.35, 0.2, 0.2, 0.2, 0.9], patience=3)  # fmt: skip
    assert [r["epoch"] for r in history] == [0, 1, 2, 3, 4, 5]
    assert {r["best_epoch"] for r in history} == {2}
    assert model.config.causal  # the causal objective's reading
    assert any(not torch.equal(t, start[n]) for n, t in model.state_dict().items())


def test_rating_validation_keeps_the_lowest_rmse_and_counts_patience_above_one(
    monkeypatch,
):
    # RMSE above 1 is still an improvement when it falls: epochs 1-3 improve, 4-5 do not
    # beat epoch 3 (patience 2) -> stop; the lowest RMSE (epoch 3) is kept.
    _, history, _ = _scripted_fit(monkeypatch, [1.4, 1.3, 1.2, 1.1, 1.15, 1.12, 0.5], patience=2, rmse=True)  # fmt: skip
    assert [r["epoch"] for r in history] == [0, 1, 2, 3, 4, 5]
    assert {r["best_epoch"] for r in history} == {3}


def test_progress_must_beat_the_best_trained_epoch_by_the_relative_margin(monkeypatch):
    # min_improvement 0.1: after 0.10, only a score above 0.11 is progress. 0.105 and 0.109
    # are better but not by enough (patience 2 runs out after epoch 3); the best weights
    # are still epoch 3's.
    _, history, _ = _scripted_fit(monkeypatch, [0.10, 0.105, 0.109, 0.9], patience=2, start_is_candidate=False, min_improvement=0.1)  # fmt: skip
    assert [r["epoch"] for r in history] == [1, 2, 3]
    assert {r["best_epoch"] for r in history} == {3}
    # the same margin on RMSE (minimised): from 1.0, 0.95 is not 10% better, 0.85 is
    _, history, _ = _scripted_fit(monkeypatch, [1.0, 0.95, 0.85, 0.84, 0.83, 0.2], patience=2, start_is_candidate=False, rmse=True, min_improvement=0.1)  # fmt: skip
    assert [r["epoch"] for r in history] == [1, 2, 3, 4, 5]
    assert {r["best_epoch"] for r in history} == {5}


def test_smoothing_keeps_one_spike_from_setting_the_bar_for_patience(monkeypatch):
    # A spike at epoch 2 (0.30), then a slow climb past it (0.31 at epoch 7).
    scores = [0.10, 0.30, 0.10, 0.16, 0.22, 0.26, 0.31, 0.2, 0.2, 0.2, 0.2, 0.9]
    # Each epoch alone: four epochs below the spike exhaust patience 4; epoch 2 is kept.
    _, history, _ = _scripted_fit(monkeypatch, scores, patience=4, start_is_candidate=False, smoothing=1)  # fmt: skip
    assert [r["epoch"] for r in history] == [1, 2, 3, 4, 5, 6]
    assert {r["best_epoch"] for r in history} == {2}
    # Means of 3 epochs: the spike lifts the bar to 0.20 only; epoch 6's mean (0.213)
    # beats it, the climb goes on, and the best single epoch (7, 0.31) is kept.
    _, history, _ = _scripted_fit(monkeypatch, scores, patience=4, start_is_candidate=False, smoothing=3)  # fmt: skip
    assert [r["epoch"] for r in history] == list(range(1, 12))
    assert {r["best_epoch"] for r in history} == {7}


def test_min_epochs_keeps_patience_from_ending_a_plateau_before_the_take_off(
    monkeypatch,
):
    # Cloze pretraining near popularity for five epochs, then taking off.
    scores = [0.03, 0.035, 0.034, 0.033, 0.034, 0.05, 0.08, 0.1, 0.9]
    # Patience 3 alone ends it on the plateau (epoch 2 kept), as it ended ML-100K's seed 2.
    _, history, _ = _scripted_fit(monkeypatch, scores, patience=3, start_is_candidate=False, min_epochs=0)  # fmt: skip
    assert [r["epoch"] for r in history] == [1, 2, 3, 4, 5]
    assert {r["best_epoch"] for r in history} == {2}
    # With 6 epochs it cannot end before epoch 6: the take-off resets patience.
    _, history, _ = _scripted_fit(monkeypatch, scores, patience=3, start_is_candidate=False, min_epochs=6)  # fmt: skip
    assert [r["epoch"] for r in history] == list(range(1, 10))
    assert history[-1]["best_epoch"] == 9
    # The epochs on the plateau count for patience all along: a run that never takes off
    # ends as soon as min_epochs allows (patience 2 alone: after epoch 4).
    flat = [0.03, 0.035, 0.034, 0.033, 0.034, 0.034, 0.9]
    _, history, _ = _scripted_fit(monkeypatch, flat, patience=2, start_is_candidate=False, min_epochs=5)  # fmt: skip
    assert [r["epoch"] for r in history] == [1, 2, 3, 4, 5]


@pytest.mark.parametrize(
    "recorded, rule",
    [
        # a run that went on long after its best epoch, replayed with less patience
        (dict(patience=6, start_is_candidate=False), dict(patience=2)),
        # the margin: 0.105 and 0.109 do not beat 0.10 by 10%
        (
            dict(patience=6, start_is_candidate=False),
            dict(patience=2, min_improvement=0.1),
        ),
        # epoch 0 a candidate; smoothing over 3 epochs; a minimum before patience counts
        (dict(patience=6), dict(patience=3, smoothing=3)),
        (dict(patience=6, start_is_candidate=False), dict(patience=1, min_epochs=6)),
    ],
)
def test_a_stopping_rule_replayed_on_a_recorded_curve_stops_where_fit_stops(monkeypatch, recorded, rule):  # fmt: skip
    """`replay_stopping` on a run's history says where `fit` under another rule stops
    and which epoch it keeps: checked against `fit` itself, run with that rule on the
    same scores; and a rule that would train past the record gets None."""
    scores = [0.2, 0.10, 0.105, 0.109, 0.30, 0.10, 0.16, 0.22, 0.26, 0.31, 0.2, 0.2, 0.2, 0.2, 0.2, 0.2, 0.2]  # fmt: skip
    start = recorded.get("start_is_candidate", True)
    curve = scores if start else scores[1:]
    _, history, _ = _scripted_fit(monkeypatch, curve, **recorded)
    _, stopped, _ = _scripted_fit(monkeypatch, curve, start_is_candidate=start, **rule)
    schedule = stage(epochs=len(curve), **rule).schedule  # `_scripted_fit`'s cap
    assert loop.replay_stopping(history, schedule) == (stopped[-1]["epoch"], stopped[-1]["best_epoch"])  # fmt: skip
    # the record itself, replayed under its own rule, is the run it was
    own = stage(epochs=len(curve), **{k: v for k, v in recorded.items() if k != "start_is_candidate"}).schedule  # fmt: skip
    assert loop.replay_stopping(history, own) == (history[-1]["epoch"], history[-1]["best_epoch"])  # fmt: skip
    # more patience than the record had: the record cannot say where that run stops
    longer = stage(epochs=len(curve), patience=len(curve)).schedule
    assert loop.replay_stopping(history, longer) is None


@pytest.mark.parametrize("decay", ["linear", "cosine"])
def test_the_learning_rate_decays_after_warm_up_as_the_schedule_says(
    monkeypatch, decay
):
    _, history, _ = _scripted_fit(monkeypatch, [0.1, 0.2, 0.3, 0.4], patience=4, start_is_candidate=False, decay=decay)  # fmt: skip
    lr = 0.01  # stage(): no warm-up
    expected = {"linear": [0.75, 0.5, 0.25, 0.0], "cosine": [0.8536, 0.5, 0.1464, 0.0]}[
        decay
    ]
    assert [r["lr"] / lr for r in history] == pytest.approx(expected, abs=1e-3)


def test_a_capped_epoch_trains_its_steps_on_a_fresh_subset_and_the_schedule_spans_them(
    monkeypatch,
):
    """`max_steps_per_epoch`: 40 windows in batches of 16 are 3 steps; capped at 2, an epoch
    trains 32 windows, a different 32 each epoch, and the learning rate reaches 0 at the
    last capped step (the schedule counts the steps that are trained)."""
    seen: list[int] = []
    parts = CausalObjective.parts

    def recording(self, rows, sample, generator):
        seen.extend(rows[:, -1].tolist())  # a window's last item names it here
        return parts(self, rows, sample, generator)

    monkeypatch.setattr(CausalObjective, "parts", recording)
    _, history, _ = _scripted_fit(monkeypatch, [0.1, 0.2, 0.3, 0.4], patience=4, start_is_candidate=False, batch_size=16, max_steps_per_epoch=2)  # fmt: skip
    assert len(seen) == 4 * 32  # uncapped: 4 x 40
    epochs = [sorted(seen[i : i + 32]) for i in range(0, len(seen), 32)]
    assert len({tuple(epoch) for epoch in epochs}) > 1
    assert [r["lr"] / 0.01 for r in history] == pytest.approx([0.75, 0.5, 0.25, 0.0])


@pytest.mark.parametrize("error", [loop.StopTraining, RuntimeError])
def test_an_epoch_callback_sees_validation_and_only_stopping_there_drops_the_checkpoint(tmp_path, error):  # fmt: skip
    """`on_epoch` is how a tuning trial's pruner sees each epoch: a pruned run
    (`StopTraining`) is not resumed, so its checkpoint goes; any other error in the
    callback (the study's storage failing, say) keeps it for the retry."""
    train, valid = cyclic_data(n_users=40)
    seen = []

    def prune(epoch, metrics):
        seen.append((epoch, metrics["ndcg@10"]))
        if epoch == 2:
            raise error("stopped")

    torch.manual_seed(0)
    model = SequenceRecModel(tiny_config(causal=True))
    with pytest.raises(error, match="stopped"):
        fit(model, CausalObjective(), training_windows(train, 8), eval_set(valid, 8), stage(epochs=4),
            training(checkpoint_dir=str(tmp_path / "ckpt")), "pruned", on_epoch=prune)  # fmt: skip
    assert [epoch for epoch, _ in seen] == [1, 2]
    assert all(0.0 <= value <= 1.0 for _, value in seen)
    kept = [p.name for p in (tmp_path / "ckpt").glob("*.pt")]
    assert kept == ([] if error is loop.StopTraining else ["pruned.pt"])


def test_without_a_start_candidate_patience_and_best_are_over_trained_epochs(
    monkeypatch,
):
    model, history, _ = _scripted_fit(monkeypatch, [0.1, 0.3, 0.2, 0.25, 0.9], patience=2, start_is_candidate=False)  # fmt: skip
    assert [r["epoch"] for r in history] == [1, 2, 3, 4]
    assert {r["best_epoch"] for r in history} == {2} and model.config.causal


def test_device_resolution():
    assert resolve_device("cpu").type == "cpu"
    assert resolve_device("auto").type in {"cpu", "cuda", "mps"}
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="no CUDA device"):
            resolve_device("cuda")


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_bf16_training_path():
    train, valid = cyclic_data()
    torch.manual_seed(0)
    model = SequenceRecModel(tiny_config())
    objective = NextItemObjective(
        model.config.mask_id, N_ITEMS, prefixes_per_sequence=4
    )
    model, history = fit(model, objective, training_windows(train, 8), eval_set(valid, 8),
                         stage(), training(device="cuda", bf16=True), "cuda")  # fmt: skip
    assert next(model.parameters()).device.type == "cpu"  # handed back on the CPU
    assert history[-1]["ndcg@10"] > 0.9


def test_bf16_on_the_cpu_is_asked_for_apart_and_trains_the_model():
    """`training.bf16` is CUDA's; the CPU autocasts only with `training.cpu_bf16` too
    (its numbers differ from fp32's, which every figure was measured in)."""
    cpu, cuda, mps = (torch.device(kind) for kind in ("cpu", "cuda", "mps"))
    assert not training().autocast_bf16(cpu) and training().autocast_bf16(cuda)
    assert training(cpu_bf16=True).autocast_bf16(cpu) and not training(cpu_bf16=True).autocast_bf16(mps)  # fmt: skip
    assert not training(bf16=False, cpu_bf16=True).autocast_bf16(cpu)
    train, valid = cyclic_data()
    histories = []
    for cpu_bf16 in (False, True):
        torch.manual_seed(0)
        model = SequenceRecModel(tiny_config())
        objective = NextItemObjective(model.config.mask_id, N_ITEMS, prefixes_per_sequence=4)  # fmt: skip
        _, history = fit(model, objective, training_windows(train, 8), eval_set(valid, 8),
                         stage(epochs=2), training(cpu_bf16=cpu_bf16), "bf16")  # fmt: skip
        histories.append(history)
    assert histories[1][-1]["ndcg@10"] > 0.9  # it learns the cycle in bf16 too
    # and bf16 ran: the first epoch's loss is 2.874 in fp32, 2.850 in bf16
    assert histories[0][0]["train_loss"] != histories[1][0]["train_loss"]


def test_recency_bias_controls_how_far_attention_reaches():
    torch.manual_seed(0)
    model = SequenceRecModel(tiny_config()).eval()
    a = torch.tensor([[1, 2, 3, 4, 5, 6, 7, 31]])
    far = torch.tensor([[9, 9, 9, 9, 5, 6, 7, 31]])
    with torch.no_grad():
        model.recency_log_slopes.fill_(
            6.0
        )  # every head attends (almost) only to itself
        assert torch.allclose(
            model.encode(a)[0, -1], model.encode(far)[0, -1], atol=1e-5
        )
        model.recency_log_slopes.fill_(-10.0)  # no penalty: the far items matter
        assert not torch.allclose(
            model.encode(a)[0, -1], model.encode(far)[0, -1], atol=1e-4
        )


def test_fixed_recency_slopes_are_alibis_and_never_trained(tmp_path):
    """Fixed slopes: the geometric ALiBi slopes, saved with the model, outside the
    optimizer, and no gradient through the attention mask (the cheaper SDPA path)."""
    torch.manual_seed(0)
    learned = SequenceRecModel(tiny_config(num_heads=4))
    fixed = SequenceRecModel(tiny_config(num_heads=4, recency_slopes="fixed"))
    assert torch.allclose(
        fixed.recency_log_slopes.exp(), torch.tensor([1.0, 0.25, 1 / 16, 1 / 64])
    )
    assert torch.equal(fixed.recency_log_slopes, learned.recency_log_slopes.detach())
    names = {name for name, _ in fixed.named_parameters()}
    assert "recency_log_slopes" in {name for name, _ in learned.named_parameters()}
    assert "recency_log_slopes" not in names
    ids = torch.tensor([[0, 0, 1, 2, 3, 4, 5, 31]])
    assert learned.attention_bias(ids, torch.float32).requires_grad
    assert not fixed.attention_bias(ids, torch.float32).requires_grad
    fixed.save_pretrained(tmp_path)
    again = SequenceRecModel.from_pretrained(tmp_path)
    assert again.config.recency_slopes == "fixed"
    assert torch.equal(again.recency_log_slopes, fixed.recency_log_slopes)
    with pytest.raises(ValueError, match="recency_slopes"):
        tiny_config(recency_slopes="trained")


@pytest.mark.parametrize("causal", [False, True])
def test_padding_rows_stay_finite(causal):
    torch.manual_seed(0)
    model = SequenceRecModel(tiny_config(causal=causal)).eval()
    ids = right_aligned([[3], [4, 5, 6]], 8)
    with torch.no_grad():
        assert torch.isfinite(model.encode(ids)).all()


def test_one_set_of_weights_reads_either_way():
    """Causal fine-tuning of a Cloze model relies on this: `causal=` per call gives exactly
    what a model built causal would compute with the same weights."""
    torch.manual_seed(0)
    bidirectional = SequenceRecModel(tiny_config()).eval()
    causal = SequenceRecModel(tiny_config(causal=True)).eval()
    causal.load_state_dict(bidirectional.state_dict())
    ids = torch.tensor([[0, 0, 1, 2, 3, 4, 5, 6], [1, 2, 3, 4, 5, 6, 7, 8]])
    with torch.no_grad():
        assert torch.allclose(
            bidirectional.encode(ids, causal=True), causal.encode(ids)
        )
        assert torch.allclose(
            causal.encode(ids, causal=False), bidirectional.encode(ids)
        )
        assert not torch.allclose(bidirectional.encode(ids), causal.encode(ids))


@pytest.mark.parametrize("content", [False, True])
def test_numeric_item_features_reach_the_item_vectors_and_survive_saving(
    tmp_path, content
):
    from maskrec.training.setup import model_config

    features = pd.DataFrame({
        "item_id": range(1, N_ITEMS + 1), "original_item_id": [f"sku-{i}" for i in range(N_ITEMS)],
        "title": "", "year": pd.array([pd.NA] * N_ITEMS, dtype="Int64"), "genres": "", "genre_Toys": 1,
        "feature_price": [float(i) if i != 3 else float("nan") for i in range(N_ITEMS)],
    })  # fmt: skip
    architecture = params("pretraining").model.model_copy(update={"item_content": content, "use_genres": True, "num_layers": 1})  # fmt: skip
    config = model_config(features, architecture)
    assert config.n_item_features == 1 and config.item_ids[0] == "sku-0"
    price = torch.tensor(config.item_numeric)[:, 0]
    assert (
        price.mean().abs() < 1e-5 and price[3] == 0.0
    )  # standardised; unknown: the mean
    torch.manual_seed(0)
    model = SequenceRecModel(config).eval()
    assert not model.known_items().any()  # a new model records what training gives it
    # items 1 and 2 share every feature but the price: their vectors differ by its part
    vectors = model._embed_items(torch.tensor([[1, 2]]))[0]
    if (
        content
    ):  # (content-only items: the id part is zero until they have interactions)
        assert not torch.allclose(vectors[0], vectors[1])
    difference = model.numeric_embedding.weight[:, 0] * (price[1] - price[0])
    assert torch.allclose(vectors[1] - vectors[0], difference + (0 if content else model.item_embedding.weight[2] - model.item_embedding.weight[1]), atol=1e-6)  # fmt: skip
    dataset = ModelFolderDataset(filepath=str(tmp_path / "model"))
    dataset.save(model)
    contexts = right_aligned([[1, 2, 3], [7, 8, 9]], 8)
    assert torch.equal(model.score_next(contexts), dataset.load().score_next(contexts))


@pytest.mark.parametrize("recency_bias", [True, False])
@pytest.mark.parametrize("causal", [False, True])
def test_states_asked_at_some_positions_are_the_full_encodings_there(
    recency_bias, causal
):
    """`encode(at=)` (the last layer at the asked positions only: every rating question,
    every next-item score) gives `encode()[at]`, row by row, with two layers, padding,
    rating buckets shown, and several sequences packed into a row."""
    torch.manual_seed(0)
    config = tiny_config(num_layers=2, recency_bias=recency_bias, rating_buckets=16)
    model = SequenceRecModel(config).eval()
    ids = torch.tensor([[0, 0, 0, 3, 4, 5, 6, 7], [1, 2, 3, 4, 5, 6, 7, 8], [0, 0, 0, 0, 0, 0, 9, 2]])  # fmt: skip
    ratings = (ids > 0) * torch.randint(1, 11, ids.shape)
    at = torch.zeros_like(ids, dtype=torch.bool)
    at[:, -1] = True
    at[1, 2] = at[1, 5] = at[0, 4] = True
    positions = torch.tensor([[0, 1, 2, 3, 0, 1, 2, 3]] * 3)
    segments = torch.tensor([[1, 1, 1, 1, 2, 2, 2, 2]] * 3) * (ids > 0)
    with torch.no_grad():
        whole = model.encode(ids, causal=causal, ratings=ratings)
        torch.testing.assert_close(model.encode(ids, causal=causal, ratings=ratings, at=at), whole[at])  # fmt: skip
        packed = model.encode(ids, None, causal, positions, segments)
        torch.testing.assert_close(model.encode(ids, None, causal, positions, segments, at=at), packed[at])  # fmt: skip
    assert not torch.allclose(
        whole[at][0], whole[at][1]
    )  # the states differ by position


@pytest.mark.parametrize("term", ["cloze", "next_item", "rating", "causal"])
def test_a_training_loss_and_its_gradients_are_those_of_every_position_encoded(term):
    """`forward` reads the labelled states through `states_at` (the last layer only where a
    target is, unless the reading is causal): without dropout the loss and every weight's
    gradient are those of encoding every position and reading the labelled states after,
    for Cloze masks, a [MASK] at the end, hidden ratings and a causal term alike."""
    from maskrec.models.losses import LossSettings, item_loss
    from maskrec.models.packing import IGNORE

    torch.manual_seed(0)
    model = SequenceRecModel(tiny_config(num_layers=2, rating_buckets=16)).eval()
    ids = torch.tensor([[0, 0, 0, 3, 4, 5, 6, 7], [1, 2, 3, 4, 5, 6, 7, 8], [0, 0, 0, 0, 0, 0, 9, 2]])  # fmt: skip
    labels = torch.full_like(ids, IGNORE)
    causal, ratings, rating_labels = term == "causal", None, None
    if term == "cloze":
        labels[0, 4], labels[1, 1], labels[1, 6], labels[2, 7] = 9, 2, 11, 4
    elif term == "next_item":
        labels[:, -1] = torch.tensor([8, 9, 3])
    elif term == "causal":
        labels = torch.where(ids > 0, torch.roll(ids, -1, 1).clamp(min=1), labels)
    else:
        ratings = (ids > 0) * torch.randint(1, 11, ids.shape)
        rating_labels = torch.full_like(ids, IGNORE)
        rating_labels[0, 5], rating_labels[1, 0], rating_labels[1, 3] = 6, 9, 2
        ratings = ratings.masked_fill(rating_labels != IGNORE, 0)
    wanted = (labels if rating_labels is None else rating_labels) != IGNORE

    def every_position() -> torch.Tensor:
        states = model.encode(ids, causal=causal, ratings=ratings)[wanted]
        if rating_labels is not None:
            predicted = model.stars(model.rating_scores(states, ids[wanted]))
            return torch.nn.functional.mse_loss(
                predicted, rating_labels[wanted].float() / 2
            )
        return item_loss(model, states, labels[wanted], LossSettings().item)[0]

    expected = every_position()
    expected_grads = torch.autograd.grad(expected, list(model.parameters()), allow_unused=True)  # fmt: skip
    loss = model(ids, labels, causal=causal, ratings=ratings, rating_labels=rating_labels).loss  # fmt: skip
    grads = torch.autograd.grad(loss, list(model.parameters()), allow_unused=True)
    torch.testing.assert_close(loss, expected)
    for got, want in zip(grads, expected_grads, strict=True):
        if want is None:
            assert got is None or not got.any()
        else:
            torch.testing.assert_close(got, want, atol=1e-6, rtol=1e-4)
