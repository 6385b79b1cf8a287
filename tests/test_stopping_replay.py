"""benchmarks/stopping_replay.py: a recorded run replayed under its own rule is the run it
was, under a shorter patience it stops where `fit` would; an entry that changes more than
the stopping rule, and a record its settings do not reproduce, are refused by name."""

from __future__ import annotations

import json
import sys

import pandas as pd
import pytest

from tests.conftest import PROJECT_ROOT

sys.path.insert(0, str(PROJECT_ROOT / "benchmarks"))

import stopping_replay  # noqa: E402

# conf/base's SASRec: 20 epochs, patience 8, any gain is progress
RISING_THEN_FLAT = [0.05, 0.08, 0.10, 0.105, 0.108] + [
    0.104
] * 8  # best epoch 5, then 8 epochs without a gain


def _record(folder, scores, model="sasrec"):
    """A history as the training nodes version it: <model>_history.csv/<version>/<model>_history.csv."""
    best = 1 + max(range(len(scores)), key=scores.__getitem__)
    path = (
        folder
        / f"{model}_history.csv"
        / "2026-12-07T10.00.00.000Z"
        / f"{model}_history.csv"
    )
    path.parent.mkdir(parents=True)
    pd.DataFrame({"epoch": range(1, len(scores) + 1), "ndcg@10": scores, "best_epoch": best, "model": model}).to_csv(path, index=False)  # fmt: skip
    return path


def _run(monkeypatch, *argv):
    monkeypatch.setattr(sys, "argv", ["stopping_replay.py", *argv])
    stopping_replay.main()


def test_the_own_rule_gives_the_record_back_and_less_patience_stops_sooner(tmp_path, monkeypatch):  # fmt: skip
    _record(tmp_path / "runs", RISING_THEN_FLAT)
    out = tmp_path / "replay.json"
    _run(monkeypatch, "--histories", str(tmp_path / "runs"), "--grid", "", "sasrec.schedule.patience=3",
         "sasrec.schedule.patience=3,sasrec.schedule.min_improvement=0.1", "--json", str(out))  # fmt: skip
    own, shorter, margin = json.loads(out.read_text())["rules"]
    assert (own["runs"][0]["epochs"], own["runs"][0]["kept"]) == (13, 5) and own["same_kept_epochs"]  # fmt: skip
    assert (shorter["runs"][0]["epochs"], shorter["runs"][0]["kept"]) == (8, 5) and shorter["same_kept_epochs"]  # fmt: skip
    # with a 10% margin epochs 4 and 5 (0.105, 0.108) are no progress over epoch 3 (0.10):
    # patience runs out after epoch 6, and epoch 5 is still the best single epoch kept
    assert (margin["runs"][0]["epochs"], margin["runs"][0]["kept"]) == (6, 5)


def test_an_entry_that_changes_more_than_the_stopping_rule_is_refused_by_name(tmp_path, monkeypatch):  # fmt: skip
    _record(tmp_path / "runs", RISING_THEN_FLAT)
    with pytest.raises(SystemExit, match=r"sasrec\.schedule\.epochs \(20 -> 10\)"):
        _run(monkeypatch, "--histories", str(tmp_path / "runs"), "--grid", "sasrec.schedule.epochs=10")  # fmt: skip
    # ... or anything outside a schedule: an architecture trains another model too
    with pytest.raises(SystemExit, match=r"\.model\.num_heads \(1 -> 2\)"):
        _run(monkeypatch, "--histories", str(tmp_path / "runs"), "--grid", "model.num_heads=2")  # fmt: skip


def test_a_record_its_settings_do_not_reproduce_is_refused_by_file(
    tmp_path, monkeypatch
):
    # run to epoch 13 as above, but recorded under patience 10: conf/base's 8 stops it sooner
    path = _record(tmp_path / "runs", RISING_THEN_FLAT + [0.104, 0.104])
    with pytest.raises(SystemExit, match=f"{path}: --env/--params do not reproduce"):
        _run(monkeypatch, "--histories", str(tmp_path / "runs"))
    _run(monkeypatch, "--histories", str(tmp_path / "runs"), "--params", "sasrec.schedule.patience=10")  # fmt: skip


def test_a_file_that_is_not_a_training_history_is_refused_naming_it_and_the_column(tmp_path, monkeypatch):  # fmt: skip
    path = _record(tmp_path / "runs", RISING_THEN_FLAT)
    pd.read_csv(path).drop(columns="best_epoch").to_csv(path, index=False)
    with pytest.raises(
        SystemExit, match=f"{path}: not a training history: no column best_epoch"
    ):
        _run(monkeypatch, "--histories", str(tmp_path / "runs"))


def test_the_seconds_are_those_of_the_epochs_the_rule_trains(tmp_path, monkeypatch):
    path = _record(tmp_path / "runs", RISING_THEN_FLAT)
    history = pd.read_csv(path)
    history["seconds"] = [
        1.0 + e / 10 for e in history["epoch"]
    ]  # epoch e took 1 + e/10 s
    history.to_csv(path, index=False)
    out = tmp_path / "replay.json"
    _run(monkeypatch, "--histories", str(tmp_path / "runs"), "--grid", "", "sasrec.schedule.patience=3", "--json", str(out))  # fmt: skip
    own, shorter = json.loads(out.read_text())["rules"]
    assert (
        own["seconds"] == own["recorded_seconds"] == pytest.approx(13 + 9.1)
    )  # epochs 1..13
    assert (
        shorter["runs"][0]["seconds"] == shorter["seconds"] == pytest.approx(8 + 3.6)
    )  # 1..8
    assert shorter["recorded_seconds"] == pytest.approx(13 + 9.1)
    # a record without the column has no seconds, and neither has the rule's total
    history.drop(columns="seconds").to_csv(path, index=False)
    _run(monkeypatch, "--histories", str(tmp_path / "runs"), "--json", str(out))
    assert json.loads(out.read_text())["rules"][0]["seconds"] is None


def test_a_run_that_starts_from_a_model_the_rule_changes_is_marked(
    tmp_path, monkeypatch
):
    # conf/base: pretraining to its cap of 60, fine-tuning to its 20, both still gaining
    _record(tmp_path / "runs", [0.1 + e / 1000 for e in range(60)], model="pretrained")
    _record(tmp_path / "runs", [0.2 + e / 1000 for e in range(20)], model="fine_tuned")
    out = tmp_path / "replay.json"
    _run(monkeypatch, "--histories", str(tmp_path / "runs"), "--grid", "", "pretraining.schedule.min_improvement=0.5", "--json", str(out))  # fmt: skip
    own, margin = json.loads(out.read_text())["rules"]
    assert not any(r["after_changed_model"] for r in own["runs"])
    rows = {r["model"]: r for r in margin["runs"]}
    # with a 50% margin no epoch after the first is progress: pretraining ends at its
    # min_epochs (20), keeping epoch 20, not 60 ...
    assert (rows["pretrained"]["epochs"], rows["pretrained"]["kept"]) == (20, 20)
    assert not rows["pretrained"]["after_changed_model"]
    # ... so fine-tuning, whose own rule is unchanged, would start from other weights
    assert (
        rows["fine_tuned"]["kept"] == 20 and rows["fine_tuned"]["after_changed_model"]
    )
