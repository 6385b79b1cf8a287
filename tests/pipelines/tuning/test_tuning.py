"""The tuning pipeline: equal budgets on validation only, resumable studies, and winners
that make a valid Kedro environment."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import pandas as pd
import pytest
import yaml
from kedro.io import AbstractDataset, DatasetError
from mlflow.tracking import MlflowClient

from maskrec.config import load_parameters
from maskrec.hooks import check_parameters
from maskrec.params import TuningParams, at_point
from maskrec.pipeline_registry import register_pipelines
from maskrec.pipelines.tuning import nodes
from maskrec.training import loop
from tests.conftest import SMALL_SAMPLE, copy_project, run
from tests.helpers import params, quick, small_split, stopped_after

SPACE = {
    "fine_tuned": {
        "mask_prob": {"keys": ["pretraining.mask_prob"], "low": 0.2, "high": 0.5},
        "cloze_weight": {"keys": ["fine_tuning.cloze_weight"], "choices": [0.0, 1.0]},
    },
    "scratch": {
        "cloze_weight": {"keys": ["scratch.cloze_weight"], "choices": [0.0, 1.0]}
    },  # fmt: skip
    "sasrec": {
        "learning_rate": {
            "keys": ["sasrec.schedule.learning_rate"],
            "low": 1e-3,
            "high": 1e-2,
            "log": True,
        },  # fmt: skip
        "heads": {"keys": ["sasrec.model.num_heads"], "choices": [1, 2]},
    },
}


class WriteOnlyDataset(AbstractDataset):
    """Takes what a node saves; loading it fails the run (the test split here)."""

    def __init__(self, filepath: str = "") -> None:
        self.saved = False

    def load(self) -> Any:
        raise DatasetError("the tuning pipeline loaded the test split")

    def save(self, data: Any) -> None:
        self.saved = True

    def _describe(self) -> dict[str, Any]:
        return {}


def trials_table(model: str, rows: list, score: str, epochs: int) -> pd.DataFrame:
    """A study's trials table as the tuning nodes write it: (state, score, point) a row."""
    return pd.DataFrame(
        [{"model": model, "trial": i, "state": s, score: v, "epochs": epochs, "seconds": 1.0,
          **{f"param.{k}": x for k, x in p.items()}} for i, (s, v, p) in enumerate(rows)]
    )  # fmt: skip


def tuning_run_params(**tuning: Any) -> dict:
    settings = {"trials": 2, "epochs": 2, "pretraining_epochs": 2, "startup_trials": 1, "space": SPACE,
                "pruner": {"startup_trials": 2, "warmup_epochs": 1}} | tuning  # fmt: skip
    return {**SMALL_SAMPLE, "tuning": settings}


@pytest.mark.parametrize("name", ["tuning", "transfer_tuning"])
def test_the_tuning_pipeline_reads_no_test_data(name):
    tuning = register_pipelines()[name]
    read = set().union(*(node.inputs for node in tuning.nodes))
    assert not {name for name in read if "test" in name or "cold" in name}


@pytest.mark.slow
def test_tuning_runs_equal_budgets_without_loading_the_test_split_and_resumes(tmp_path):
    project = copy_project(tmp_path)
    # the test split: written by data_split as always, impossible to load
    (project / "conf/local/catalog.yml").write_text(
        yaml.safe_dump({"test_targets": {"type": f"{__name__}.WriteOnlyDataset"}})
    )
    shorter = {"model": {"max_len": 30}}  # the study's --params (conf/base: 50)
    run(
        project,
        ["tuning"],
        tuning_run_params(models=["sasrec", "fine_tuned"]) | shorter,
    )
    sasrec = pd.read_csv(project / "data/09_tuning/trials_sasrec.csv")
    fine_tuned = pd.read_csv(project / "data/09_tuning/trials_fine_tuned.csv")
    assert len(sasrec) == len(fine_tuned) == 2  # the same budget
    # the pruner's view of each trial, and the figure kedro viz shows
    assert (sasrec["last_epoch"] <= 2).all() and sasrec["last_value"].notna().all()
    assert list(
        (project / "data/09_tuning/tuning_plot.json").glob("*/tuning_plot.json")
    )
    assert set(sasrec["state"]) <= {"COMPLETE", "PRUNED"}
    assert (sasrec["epochs"].dropna() <= 2).all()  # the epoch cap
    assert (
        len(pd.read_csv(project / "data/09_tuning/trials_scratch.csv")) == 0
    )  # not asked for
    summary = json.loads((project / "data/09_tuning/summary.json").read_text())
    # runtime parameters merge into conf/base's space: its dimensions plus the test's
    assert set(summary["sasrec"]["importance"]) == {"learning_rate", "heads", "hidden_dropout"}  # fmt: skip
    assert sum(summary["sasrec"]["trials"].values()) == 2
    # the first trial is the configuration as it stands (conf/base's first points)
    shipped = load_parameters(project / "conf")["sasrec"]
    assert sasrec["param.learning_rate"].iloc[0] == shipped.schedule.learning_rate
    assert sasrec["param.heads"].iloc[0] == shipped.model.num_heads

    environment = yaml.safe_load((project / "conf/tuned/parameters.yml").read_text())
    assert environment["tuning"] == {
        "study": "sample",
        "trials": 2,
        "epochs": 2,
        "pretraining_epochs": 2,
    }
    assert environment["sasrec"]["model"]["num_heads"] in (1, 2)
    tuned = load_parameters(project / "conf", "tuned")  # a valid environment
    assert tuned["sasrec"].schedule.epochs == 2
    # trained as the trials were, without the study's --params: `kedro run --env tuned`
    assert {tuned[s].model.max_len for s in ("pretraining", "fine_tuning", "sasrec")} == {30}  # fmt: skip
    assert load_parameters(project / "conf")["sasrec"].model.max_len == 50
    # every trial is a child run of the kedro run in MLflow, with its point and score
    client = MlflowClient(tracking_uri=f"sqlite:///{project / 'mlflow.db'}")
    children = client.search_runs([e.experiment_id for e in client.search_experiments()],
                                  "tags.`tuning.model` = 'sasrec'")  # fmt: skip
    assert len(children) == 2
    assert {float(r.data.params["learning_rate"]) for r in children} == set(sasrec["param.learning_rate"])  # fmt: skip
    assert {r.data.metrics["valid_ndcg_at_10"] for r in children} == set(sasrec["valid_ndcg@10"].dropna())  # fmt: skip

    # Resume: a larger budget keeps the finished trials and runs only the new one.
    run(project, ["tuning"], tuning_run_params(models=["sasrec"], trials=3) | shorter)
    again = pd.read_csv(project / "data/09_tuning/trials_sasrec.csv")
    assert len(again) == 3
    pd.testing.assert_frame_equal(again.iloc[:2][["trial", "valid_ndcg@10"]], sasrec[["trial", "valid_ndcg@10"]])  # fmt: skip


def test_a_resumed_study_draws_the_points_an_uninterrupted_one_draws():
    """A rerun after a killed process: the cut-short trial is failed and its point drawn
    again, then the points the uninterrupted study tried, none twice (a sampler seeded
    afresh on each rerun would repeat the first points: it did, on the ML-1M subset)."""

    def study(storage: optuna.storages.BaseStorage) -> optuna.Study:
        sampler = optuna.samplers.TPESampler(seed=7, n_startup_trials=2)
        return optuna.create_study(study_name="s", storage=storage, load_if_exists=True, sampler=sampler)  # fmt: skip

    def objective(trial: optuna.Trial) -> float:
        x, k = trial.suggest_float("x", 0.0, 1.0), trial.suggest_categorical("k", [1, 2, 3])  # fmt: skip
        return (x - 0.3) ** 2 + k

    def finished(s: optuna.Study) -> list[dict]:
        return [t.params for t in s.trials if t.state in nodes.FINISHED]

    whole = study(optuna.storages.InMemoryStorage())
    whole.optimize(objective, n_trials=6, callbacks=[nodes._save_sampler])

    storage = optuna.storages.InMemoryStorage()
    first = study(storage)
    first.optimize(objective, n_trials=3, callbacks=[nodes._save_sampler])
    cut = first.ask()  # the process dies in the fourth trial, its point drawn
    cut.suggest_float("x", 0.0, 1.0), cut.suggest_categorical("k", [1, 2, 3])
    again = study(storage)  # the rerun: a new process, its sampler seeded afresh
    nodes._fail_cut_short(again)
    nodes._restore_sampler(again)
    again.optimize(objective, n_trials=3, callbacks=[nodes._save_sampler])

    states = [t.state.name for t in again.trials]
    assert states == ["COMPLETE"] * 3 + ["FAIL"] + ["COMPLETE"] * 3
    assert again.trials[4].params == again.trials[3].params  # retried at its point
    assert finished(again) == finished(whole)
    assert len({tuple(sorted(p.items())) for p in finished(again)}) == 6  # none twice


FINE_TUNED_SPACE = {
    "mask_prob": {"keys": ["pretraining.mask_prob"], "low": 0.1, "high": 0.6},
    "cloze_weight": {"keys": ["fine_tuning.cloze_weight"], "choices": [0.0, 0.25, 0.5]},
    "learning_rate": {"keys": ["fine_tuning.schedule.learning_rate"], "low": 1e-4, "high": 1e-2, "log": True},
}  # fmt: skip
SASRECS_RECIPE = {"cloze_weight": 0.0, "learning_rate": "sasrec.schedule.learning_rate"}


def fake_training(scores: list[float]):
    """A trial's `trained` for `nodes._study` that trains nothing: one epoch, scored
    from `scores` in turn, recording each trial's stages."""
    seen: list[dict] = []

    def trained(stages, report):
        seen.append(stages)
        return pd.DataFrame({"epoch": [1], "best_epoch": [1], "ndcg@10": [scores[len(seen) - 1]]})  # fmt: skip

    return trained, seen


def test_a_new_study_tries_the_configuration_and_its_named_points_first():
    """`tuning.first_points`: the run's configuration as it stands (`{}`) and SASRec's
    recipe from the pretrained start (a value, and a setting copied from SASRec's stage)
    are a new study's first trials, before any sampled point."""
    specs = {name: params(name) for name in ("pretraining", "fine_tuning", "sasrec")}
    tuning = TuningParams.model_validate(params("tuning").model_dump() | {
        "models": ["fine_tuned"], "space": {"fine_tuned": FINE_TUNED_SPACE}, "trials": 4,
        "startup_trials": 2, "first_points": {"fine_tuned": [{}, SASRECS_RECIPE]}})  # fmt: skip
    trained, seen = fake_training([0.1, 0.2, 0.3, 0.4])
    table = nodes._study(optuna.storages.InMemoryStorage(), tuning, "fine_tuned", specs, trained)  # fmt: skip

    shipped = {"mask_prob": specs["pretraining"].mask_prob, "cloze_weight": specs["fine_tuning"].cloze_weight,
               "learning_rate": specs["fine_tuning"].schedule.learning_rate}  # fmt: skip
    recipe = shipped | {"cloze_weight": 0.0, "learning_rate": specs["sasrec"].schedule.learning_rate}  # fmt: skip
    points = [{name: row[f"param.{name}"] for name in FINE_TUNED_SPACE} for _, row in table.iterrows()]  # fmt: skip
    assert points[:2] == [shipped, recipe] and len(points) == 4
    assert shipped not in points[2:] and recipe not in points[2:]
    # the trial trains what its point says, on the stages' keys
    assert seen[1]["fine_tuning"].cloze_weight == 0.0
    assert seen[1]["fine_tuning"].schedule.learning_rate == specs["sasrec"].schedule.learning_rate  # fmt: skip
    assert seen[1]["pretraining"].mask_prob == specs["pretraining"].mask_prob


def test_a_cut_short_first_point_is_tried_again_and_a_resumed_study_queues_nothing():
    specs = {name: params(name) for name in ("pretraining", "fine_tuning", "sasrec")}
    settings = params("tuning").model_dump() | {"models": ["fine_tuned"], "space": {"fine_tuned": FINE_TUNED_SPACE},
                                                "startup_trials": 1, "first_points": {"fine_tuned": [{}, SASRECS_RECIPE]}}  # fmt: skip
    tuning = lambda trials: TuningParams.model_validate(settings | {"trials": trials})  # noqa: E731

    def stopped(stages, report):  # Ctrl-C in the first trial
        raise KeyboardInterrupt

    storage = optuna.storages.InMemoryStorage()
    with pytest.raises(KeyboardInterrupt):
        nodes._study(storage, tuning(3), "fine_tuned", specs, stopped)
    trained, _ = fake_training([0.1, 0.2, 0.3])
    table = nodes._study(storage, tuning(3), "fine_tuned", specs, trained)
    finished = table[table["state"] == "COMPLETE"]
    assert list(table["state"]) == ["FAIL", "COMPLETE", "COMPLETE", "COMPLETE"]
    # both first points ran (the cut-short one after the one still queued), then a sampled one
    assert sorted(finished["param.cloze_weight"].iloc[:2]) == [0.0, specs["fine_tuning"].cloze_weight]  # fmt: skip
    # more trials later: sampled ones only, its first points being done
    more, _ = fake_training([0.5])
    table = nodes._study(storage, tuning(4), "fine_tuned", specs, more)
    assert len(table) == 5
    assert table["param.learning_rate"].iloc[-1] not in set(finished["param.learning_rate"])  # fmt: skip
    # a study created before first points existed (no record of them) is not given any
    older = optuna.storages.InMemoryStorage()
    nodes._study(older, tuning(1).model_copy(update={"first_points": {}}), "fine_tuned", specs, fake_training([0.1])[0])  # fmt: skip
    table = nodes._study(older, tuning(2), "fine_tuned", specs, fake_training([0.2])[0])
    assert table["param.learning_rate"].iloc[1] != specs["fine_tuning"].schedule.learning_rate  # fmt: skip


def test_a_bad_first_point_is_refused_at_run_start_naming_it(caplog):
    specs = {name: params(name) for name in ("pretraining", "fine_tuning", "sasrec")}
    settings = params("tuning").model_dump() | {"models": ["fine_tuned"], "space": {"fine_tuned": FINE_TUNED_SPACE}}  # fmt: skip
    with pytest.raises(ValueError, match=r"first_points.fine_tuned\[0\]: heads not a dimension of space.fine_tuned"):  # fmt: skip
        TuningParams.model_validate(settings | {"first_points": {"fine_tuned": [{"heads": 2}]}})  # fmt: skip
    groups = {**specs, "training": params("training")}
    for point, message in [({"learning_rate": 0.5}, r"first_points.fine_tuned\[0\].learning_rate: 0.5 is outside space.fine_tuned.learning_rate"),
                           ({"cloze_weight": 1.0}, r"first_points.fine_tuned\[0\].cloze_weight: 1.0 is not one of"),
                           ({"learning_rate": "sasrec.schedule.lr"}, "no setting 'sasrec.schedule.lr'")]:  # fmt: skip
        tuning = TuningParams.model_validate(settings | {"first_points": {"fine_tuned": [point]}})  # fmt: skip
        with pytest.raises(ValueError, match=message):  # at run start, before any node
            check_parameters({**groups, "tuning": tuning})
        with pytest.raises(
            ValueError, match=message
        ):  # and by the study, before training
            nodes._study(optuna.storages.InMemoryStorage(), tuning, "fine_tuned", specs, fake_training([])[0])  # fmt: skip
    # a value the point takes from the configuration, outside a narrowed space: skipped, said so
    narrowed = FINE_TUNED_SPACE | {"mask_prob": {"keys": ["pretraining.mask_prob"], "low": 0.1, "high": 0.11}}  # fmt: skip
    tuning = TuningParams.model_validate(settings | {"space": {"fine_tuned": narrowed}, "trials": 1,
                                                     "first_points": {"fine_tuned": [{}]}})  # fmt: skip
    check_parameters({**groups, "tuning": tuning})
    table = nodes._study(optuna.storages.InMemoryStorage(), tuning, "fine_tuned", specs, fake_training([0.1])[0])  # fmt: skip
    assert 0.1 <= table["param.mask_prob"].iloc[0] <= 0.11  # a sampled point
    assert "skipping a first point: tuning.first_points.fine_tuned[0].mask_prob (pretraining.mask_prob)" in caplog.text  # fmt: skip


def test_a_cut_short_trial_is_retried_without_training_its_pretraining_again(tmp_path, monkeypatch):  # fmt: skip
    """A fine-tuned trial stopped in fine-tuning keeps its finished pretraining: the rerun
    retries it from fine-tuning's checkpoint, trains no pretraining epoch, scores what
    an uninterrupted study scores, and leaves no checkpoint behind."""
    data = small_split()
    tuning = TuningParams.model_validate(params("tuning").model_dump() | {
        "models": ["fine_tuned"], "space": {"fine_tuned": SPACE["fine_tuned"]}, "first_points": {},
        "trials": 1, "epochs": 2, "pretraining_epochs": 2})  # fmt: skip

    def study(folder: Path, storage: optuna.storages.BaseStorage) -> pd.DataFrame:
        return nodes.tune(storage, data["item_features"], data["train"], data["valid"], tuning,
                          quick("pretraining"), quick("fine_tuning"), quick("scratch"), quick("sasrec"),
                          quick("training", checkpoint_dir=str(folder)), model="fine_tuned")  # fmt: skip

    whole = study(tmp_path / "whole", optuna.storages.InMemoryStorage())
    storage = optuna.storages.InMemoryStorage()
    with pytest.raises(KeyboardInterrupt), stopped_after(1, name="fine_tuned"):
        study(tmp_path / "cut", storage)
    assert {p.name for p in (tmp_path / "cut").glob("*.pt")} == {"pretrained.pt", "fine_tuned.pt"}  # fmt: skip

    trained: list[tuple[str, int]] = []
    save = loop._Checkpoint.save
    monkeypatch.setattr(loop._Checkpoint, "save", lambda self, state, *a: (trained.append((self.name, state.epoch)), save(self, state, *a)))  # fmt: skip
    again = study(tmp_path / "cut", storage)
    assert trained == [("fine_tuned", 2)]
    assert list(again["state"]) == ["FAIL", "COMPLETE"]
    assert again["valid_ndcg@10"].iloc[1] == whole["valid_ndcg@10"].iloc[0]
    assert not list((tmp_path / "cut").glob("*.pt"))


def test_a_trial_with_the_last_trial_s_pretraining_does_not_train_it_again(tmp_path, monkeypatch):  # fmt: skip
    """No training twice: a study's first points (the configuration, SASRec's recipe from
    the pretrained start) pretrain alike, so the second trial takes the first's
    pretrained weights, and scores what the same point scores in a study of its own; a
    point with other Cloze settings pretrains again."""
    data = small_split()
    settings = params("tuning").model_dump() | {"models": ["fine_tuned"], "space": {"fine_tuned": FINE_TUNED_SPACE},
                                                "epochs": 2, "pretraining_epochs": 2, "startup_trials": 3}  # fmt: skip
    pretrained: list[float] = []
    real = nodes.pretrain
    monkeypatch.setattr(nodes, "pretrain", lambda model, sequences, valid, stage, *a, **k: (pretrained.append(stage.mask_prob), real(model, sequences, valid, stage, *a, **k))[1])  # fmt: skip

    def study(points: list[dict], trials: int) -> pd.DataFrame:
        tuning = TuningParams.model_validate(settings | {"trials": trials, "first_points": {"fine_tuned": points}})  # fmt: skip
        return nodes.tune(optuna.storages.InMemoryStorage(), data["item_features"], data["train"], data["valid"], tuning,
                          quick("pretraining"), quick("fine_tuning"), quick("scratch"), quick("sasrec"),
                          quick("training", checkpoint_dir=str(tmp_path)), model="fine_tuned")  # fmt: skip

    both = study([{}, SASRECS_RECIPE], 3)
    assert len(pretrained) == 2  # the first point's, then the sampled third's
    assert pretrained[0] == quick("pretraining").mask_prob != pretrained[1] == both["param.mask_prob"].iloc[2]  # fmt: skip
    alone = study([SASRECS_RECIPE], 1)
    assert len(pretrained) == 3
    assert both["param.learning_rate"].iloc[1] == alone["param.learning_rate"].iloc[0]
    assert both["valid_ndcg@10"].iloc[1] == alone["valid_ndcg@10"].iloc[0]
    assert (
        both["valid_ndcg@10"].iloc[1] != both["valid_ndcg@10"].iloc[0]
    )  # another fine-tuning


def test_a_pruned_trial_is_recorded_pruned_and_leaves_no_checkpoint(tmp_path, monkeypatch):  # fmt: skip
    data = small_split()
    tuning = TuningParams.model_validate(params("tuning").model_dump() | {
        "models": ["sasrec"], "space": {"sasrec": SPACE["sasrec"]}, "first_points": {}, "trials": 1, "epochs": 3})  # fmt: skip
    monkeypatch.setattr(optuna.Trial, "should_prune", lambda self: True)
    trials = nodes.tune(optuna.storages.InMemoryStorage(), data["item_features"], data["train"], data["valid"],
                        tuning, quick("pretraining"), quick("fine_tuning"), quick("scratch"), quick("sasrec"),
                        quick("training", checkpoint_dir=str(tmp_path)), model="sasrec")  # fmt: skip
    assert list(trials["state"]) == ["PRUNED"] and list(trials["epochs"].isna()) == [
        True
    ]
    assert not list(tmp_path.glob("*.pt"))


@pytest.mark.parametrize(("percentile", "pruned"), [(50.0, [False, True, True]), (75.0, [False, False, True]), (None, [False, False, False])])  # fmt: skip
def test_the_pruner_keeps_the_trials_in_the_best_percentile_of_the_earlier_ones(percentile, pruned):  # fmt: skip
    """Earlier trials at 0.1, 0.2, 0.3 and 0.4 after one epoch: 0.27 is in their best half
    (above the median, 0.25), 0.22 not, but in their best 75% (above 0.175), 0.15 in
    neither; with no percentile nothing is pruned (a control on its popularity plateau
    runs on)."""
    settings = params("tuning").pruner.model_copy(update={"percentile": percentile, "startup_trials": 0, "warmup_epochs": 0})  # fmt: skip
    study = optuna.create_study(direction="maximize", pruner=nodes.pruner(settings))
    for value in (0.1, 0.2, 0.3, 0.4):
        trial = study.ask()
        trial.report(value, 1)
        study.tell(trial, value)
    verdicts = []
    for value in (0.27, 0.22, 0.15):
        trial = study.ask()
        trial.report(value, 1)
        verdicts.append(trial.should_prune())
        study.tell(trial, state=optuna.trial.TrialState.PRUNED)
    assert verdicts == pruned


def test_the_study_figure_shows_each_trial_the_best_so_far_and_where_pruned_ones_stopped():  # fmt: skip
    table = lambda model, rows, score: trials_table(model, rows, score, epochs=3)  # noqa: E731
    sasrec = table("sasrec", [("COMPLETE", 0.30, {}), ("PRUNED", None, {}), ("COMPLETE", 0.25, {}), ("COMPLETE", 0.35, {})], "valid_ndcg@10")  # fmt: skip
    sasrec = sasrec.assign(last_epoch=[3, 2, 3, 3], last_value=[0.30, 0.21, 0.25, 0.35])
    svd = table("svd", [("COMPLETE", 0.95, {}), ("COMPLETE", 0.97, {}), ("COMPLETE", 0.93, {})], "valid_rmse")  # fmt: skip
    empty = pd.DataFrame(columns=[*nodes.COLUMNS, "valid_ndcg@10"])  # a model not tuned
    figure = nodes.plot_studies(sasrec, empty, svd)
    traces = {trace.name: trace for trace in figure.data}
    assert set(traces) == {"sasrec: complete", "sasrec: best so far", "sasrec: pruned", "svd: complete", "svd: best so far"}  # fmt: skip
    assert list(traces["sasrec: best so far"].y) == [0.30, 0.30, 0.35]  # NDCG: up
    assert list(traces["svd: best so far"].y) == [0.95, 0.95, 0.93]  # RMSE: down
    assert (list(traces["sasrec: pruned"].x), list(traces["sasrec: pruned"].y)) == ([1], [0.21])  # fmt: skip
    assert traces["sasrec: pruned"].text == ("pruned after epoch 2",)
    assert [a.text for a in figure.layout.annotations] == ["sasrec", "svd"]


def test_winners_become_an_environment_that_loads(tmp_path):
    tuning = TuningParams.model_validate(params("tuning").model_dump() | {"space": SPACE, "first_points": {}, "epochs": 7})  # fmt: skip
    table = lambda model, rows: trials_table(model, rows, "valid_ndcg@10", epochs=3)  # noqa: E731
    fine_tuned = table("fine_tuned", [("COMPLETE", 0.30, {"mask_prob": 0.3, "cloze_weight": 1.0}),
                                      ("COMPLETE", 0.35, {"mask_prob": 0.4, "cloze_weight": 0.0}),
                                      ("PRUNED", None, {"mask_prob": 0.2, "cloze_weight": 0.0}),
                                      ("FAIL", None, {"mask_prob": 0.3, "cloze_weight": 0.0})])  # fmt: skip
    fine_tuned.loc[3, ["epochs", "seconds"]] = [
        None,
        3600.0,
    ]  # cut short: its wait counts
    scratch = table("scratch", [("COMPLETE", 0.25, {"cloze_weight": 1.0})])
    sasrec = table("sasrec", [("COMPLETE", 0.33, {"learning_rate": 0.004, "heads": 1})])
    storage = optuna.storages.InMemoryStorage()  # no study: no importance to measure
    environment, summary = nodes.tuned_parameters(
        storage, tuning, fine_tuned, scratch, sasrec
    )
    assert summary["sasrec"]["importance"].startswith("not measurable")

    # pretraining keeps its own cap (tuning.pretraining_epochs: null), the others take 7
    assert environment["pretraining"] == {"mask_prob": 0.4}
    assert environment["fine_tuning"] == {
        "cloze_weight": 0.0,
        "schedule": {"epochs": 7},
    }
    assert environment["sasrec"] == {"model": {"num_heads": 1}, "schedule": {"epochs": 7, "learning_rate": 0.004}}  # fmt: skip
    assert summary["fine_tuned"]["trials"] == {"COMPLETE": 2, "PRUNED": 1, "FAIL": 1}
    # cost: the finished trials' epochs and seconds; a cut-short trial's apart
    assert (summary["fine_tuned"]["epochs"], summary["fine_tuned"]["seconds"]) == (
        9,
        3.0,
    )
    assert summary["fine_tuned"]["seconds_cut_short"] == 3600.0
    # scratch's winner sets its own stage: the tuned control, not the ablation
    assert summary["scratch"]["point"] == {"cloze_weight": 1.0}
    assert environment["scratch"] == {"cloze_weight": 1.0, "schedule": {"epochs": 7}}
    assert summary["sasrec"]["valid_ndcg@10"] == 0.33

    conf = copy_project(tmp_path) / "conf"
    (conf / "tuned").mkdir(exist_ok=True)
    (conf / "tuned/parameters.yml").write_text(yaml.safe_dump(environment))
    tuned = load_parameters(conf, "tuned")
    assert (
        tuned["fine_tuning"].cloze_weight == 0.0
        and tuned["pretraining"].mask_prob == 0.4
    )
    assert tuned["sasrec"].model.num_heads == 1 and tuned["sasrec"].schedule.learning_rate == 0.004  # fmt: skip
    assert tuned["fine_tuning"].schedule.epochs == 7
    assert tuned["scratch"].cloze_weight == 1.0 != tuned["fine_tuning"].cloze_weight
    assert tuned["pretraining"].schedule.epochs == params("pretraining").schedule.epochs

    capped = tuning.model_copy(update={"pretraining_epochs": 30})
    environment, _ = nodes.tuned_parameters(
        storage, capped, fine_tuned, scratch, sasrec
    )
    assert environment["pretraining"] == {"mask_prob": 0.4, "schedule": {"epochs": 30}}
    assert environment["tuning"]["pretraining_epochs"] == 30


def _study_with_winner(storage, name: str, value: float, point: dict, stages: dict | None) -> None:  # fmt: skip
    """A study whose one trial is complete at `point`, having trained with `stages`."""
    study = optuna.create_study(study_name=name, storage=storage, direction="maximize")
    distributions = {k: optuna.distributions.FloatDistribution(0.0, 1.0) for k in point}
    attrs = {} if stages is None else {nodes._STAGES: stages}
    study.add_trial(optuna.trial.create_trial(params=point, distributions=distributions, value=value, user_attrs=attrs))  # fmt: skip


def test_the_environment_trains_every_model_as_its_winning_trial_did(tmp_path, caplog):  # fmt: skip
    """The environment pins every setting of a tuned model's stages as its winning trial
    trained with it: the `--params` its study ran with (which `kedro run --env tuned` does
    not repeat), and what a stage built on another would otherwise take from another
    model's winner (the fine-tuned model's mask rate would reach the rating model's and
    the transfer model's Cloze stages). Seeds stay the run's."""
    space = {"fine_tuned": {"mask_prob": {"keys": ["pretraining.mask_prob"], "low": 0.1, "high": 0.6},
                            "dropout": {"keys": ["fine_tuning.model.hidden_dropout"], "low": 0.0, "high": 0.4}},
             "rating_head": {"rate": {"keys": ["ratings.head.schedule.learning_rate"], "low": 1e-4, "high": 1e-2}},
             "transfer": {"rate": {"keys": ["transfer_fine_tuning.schedule.learning_rate"], "low": 1e-4, "high": 1e-2}},
             "scratch": {"rate": {"keys": ["scratch.schedule.learning_rate"], "low": 1e-4, "high": 1e-2}}}  # fmt: skip
    models = ["fine_tuned", "rating_head", "transfer", "scratch"]
    tuning = TuningParams.model_validate(params("tuning").model_dump() | {"space": space, "first_points": {}, "study": "s", "models": models})  # fmt: skip
    conf = copy_project(tmp_path) / "conf"
    base = load_parameters(conf)
    dumped = lambda stage: base[stage].model_dump(mode="json")  # noqa: E731
    storage = optuna.storages.InMemoryStorage()
    _study_with_winner(storage, "s.fine_tuned", 0.3, {"mask_prob": 0.45, "dropout": 0.33}, None)  # fmt: skip
    rating_stages = {"ratings.pretraining": dumped("ratings").pop("pretraining"), "ratings.head": dumped("ratings").pop("head")}  # fmt: skip
    for (
        spec
    ) in rating_stages.values():  # the study ran with --params ratings.model.max_len=32
        spec["model"]["max_len"] = 32
    rating_stages["ratings.head"]["seed"] = 5  # its run's ratings.seed
    _study_with_winner(storage, "s.rating_head", 0.9, {"rate": 0.002}, rating_stages)  # fmt: skip
    transfer_stages = {s: dumped(s) for s in ("transfer_pretraining", "transfer_continuation", "transfer_fine_tuning")}  # fmt: skip
    transfer_stages["transfer_fine_tuning"]["schedule"]["batch_size"] = (
        16  # its --params
    )
    _study_with_winner(storage, "s.transfer", 0.31, {"rate": 0.004}, transfer_stages)  # fmt: skip
    scratch_stages = {
        "scratch": dumped("scratch") | {"cloze_weight": 0.75}
    }  # its --params
    _study_with_winner(storage, "s.scratch", 0.28, {"rate": 0.003}, scratch_stages)
    tables = [nodes.trials_table(optuna.load_study(study_name=f"s.{m}", storage=storage), m) for m in models]  # fmt: skip

    environment, _ = nodes.tuned_parameters(storage, tuning, *tables)
    (conf / "tuned").mkdir(exist_ok=True)
    (conf / "tuned/parameters.yml").write_text(yaml.safe_dump(environment))
    tuned = load_parameters(conf, "tuned")
    # the fine-tuned model's winner, and only there
    assert tuned["pretraining"].mask_prob == 0.45 != base["pretraining"].mask_prob
    assert tuned["fine_tuning"].model.hidden_dropout == 0.33
    # the others keep what their trials trained with, beside their own winners
    assert tuned["ratings"].pretraining.mask_prob == base["ratings"].pretraining.mask_prob  # fmt: skip
    assert tuned["ratings"].head.schedule.learning_rate == 0.002
    for stage in ("transfer_pretraining", "transfer_continuation"):
        assert tuned[stage].mask_prob == base[stage].mask_prob
    assert tuned["transfer_fine_tuning"].model.hidden_dropout == base["transfer_fine_tuning"].model.hidden_dropout  # fmt: skip
    assert tuned["transfer_fine_tuning"].schedule.learning_rate == 0.004
    # the study's --params, which the tuned run is not given again
    assert tuned["ratings"].pretraining.model.max_len == tuned["ratings"].head.model.max_len == 32  # fmt: skip
    assert base["ratings"].head.model.max_len != 32
    assert tuned["transfer_fine_tuning"].schedule.batch_size == 16 != base["transfer_fine_tuning"].schedule.batch_size  # fmt: skip
    # not the trial's seed, nor what a stage takes from another or holds by construction
    assert tuned["ratings"].head.seed == base["ratings"].head.seed != 5
    assert "seed" not in environment["ratings"]["head"]
    assert "distillation" not in environment["transfer_fine_tuning"]
    # scratch: its own settings; its start and teacher stay what they are by construction
    assert tuned["scratch"].cloze_weight == 0.75 and tuned["scratch"].schedule.learning_rate == 0.003  # fmt: skip
    assert not {"warm_start", "distillation"} & set(environment["scratch"])
    assert (tuned["scratch"].warm_start.shrink, tuned["scratch"].warm_start.perturb) == (0.0, 1.0)  # fmt: skip

    # a study from before trials kept their stages: nothing to pin from, said so
    older = optuna.storages.InMemoryStorage()
    _study_with_winner(older, "s.fine_tuned", 0.3, {"mask_prob": 0.45, "dropout": 0.33}, None)  # fmt: skip
    _study_with_winner(older, "s.rating_head", 0.9, {"rate": 0.002}, None)
    environment, _ = nodes.tuned_parameters(older, tuning, *tables[:2])
    assert "pretraining" not in environment["ratings"]
    assert "ratings.pretraining is not pinned (trial 0 kept no stages)" in caplog.text

    # a trial that ran before its stage had a key another winner sets: not pinned, said so
    shrink = {
        "shrink": {"keys": ["fine_tuning.warm_start.shrink"], "low": 0.1, "high": 1.0}
    }
    later = TuningParams.model_validate(tuning.model_dump() | {"space": space | {"fine_tuned": space["fine_tuned"] | shrink},
                                                               "models": ["fine_tuned", "transfer"]})  # fmt: skip
    storage = optuna.storages.InMemoryStorage()
    _study_with_winner(storage, "s.fine_tuned", 0.3, {"mask_prob": 0.45, "dropout": 0.33, "shrink": 0.5}, None)  # fmt: skip
    before = {s: dumped(s) for s in ("transfer_pretraining", "transfer_continuation", "transfer_fine_tuning")}  # fmt: skip
    del before["transfer_fine_tuning"]["warm_start"]
    _study_with_winner(storage, "s.transfer", 0.31, {"rate": 0.004}, before)
    tables = [nodes.trials_table(optuna.load_study(study_name=f"s.{m}", storage=storage), m) for m in ("fine_tuned", "transfer")]  # fmt: skip
    environment, _ = nodes.tuned_parameters(storage, later, *tables)
    assert environment["fine_tuning"]["warm_start"]["shrink"] == 0.5
    assert "warm_start" not in environment["transfer_fine_tuning"]
    assert "transfer_fine_tuning.warm_start.shrink is not pinned (trial 0 trained without it)" in caplog.text  # fmt: skip


def test_a_trial_s_pretraining_runs_to_its_own_cap_unless_the_study_sets_one():
    specs = {name: params(name) for name in ("pretraining", "fine_tuning")}
    tuning = TuningParams.model_validate(params("tuning").model_dump() | {"epochs": 7})
    stages = nodes.trial_stages("fine_tuned", specs, {}, {}, tuning)
    assert stages["pretraining"].schedule.epochs == specs["pretraining"].schedule.epochs
    assert stages["fine_tuning"].schedule.epochs == 7
    capped = tuning.model_copy(update={"pretraining_epochs": 3})
    stages = nodes.trial_stages("fine_tuned", specs, {}, {}, capped)
    assert (stages["pretraining"].schedule.epochs, stages["fine_tuning"].schedule.epochs) == (3, 7)  # fmt: skip
    with pytest.raises(ValueError, match="pretraining_epochs"):
        TuningParams.model_validate(tuning.model_dump() | {"pretraining_epochs": 0})


def test_a_trial_point_sets_the_stage_keys_and_names_a_wrong_one():
    stage = params("fine_tuning")
    tuned = at_point(stage, {"schedule.learning_rate": 0.002, "cloze_weight": 0.0})
    assert tuned.schedule.learning_rate == 0.002 and tuned.cloze_weight == 0.0
    assert tuned.model == stage.model  # the rest as it was
    with pytest.raises(ValueError, match="schedule.learnig_rate"):
        at_point(stage, {"schedule.learnig_rate": 0.002})
    with pytest.raises(ValueError, match="hidden_dropout"):
        at_point(stage, {"model.hidden_dropout": 1.5})  # validated as the stage's type


@pytest.mark.parametrize(
    ("space", "message"),
    [
        (
            {
                "sasrec": {
                    "lr": {
                        "keys": ["fine_tuning.schedule.learning_rate"],
                        "low": 0.1,
                        "high": 0.2,
                    }
                }
            },
            "not a setting of sasrec",
        ),  # fmt: skip
        (
            {
                "sasrec": {
                    "lr": {
                        "keys": ["sasrec.schedule.learning_rate"],
                        "low": 0.2,
                        "high": 0.1,
                    }
                }
            },
            "must be below",
        ),  # fmt: skip
        (
            {"sasrec": {"lr": {"keys": ["sasrec.schedule.learning_rate"], "low": 0.1}}},
            "either low and high, or choices",
        ),  # fmt: skip
        (
            {
                "sasrec": {
                    "lr": {
                        "keys": ["sasrec.schedule.learning_rate"],
                        "low": 0.0,
                        "high": 0.1,
                        "log": True,
                    }
                }
            },
            "log-scale",
        ),  # fmt: skip
    ],
)
def test_a_bad_search_space_is_refused_with_its_key(space, message):
    settings = params("tuning").model_dump() | {"models": ["sasrec"], "space": space}
    with pytest.raises(ValueError, match=message):
        TuningParams.model_validate(settings)


def test_a_key_the_stage_lacks_stops_the_study_before_training(tmp_path: Path):
    space = {
        "sasrec": {"x": {"keys": ["sasrec.schedule.warmup"], "low": 0.0, "high": 0.1}}
    }
    tuning = TuningParams.model_validate(params("tuning").model_dump() | {"models": ["sasrec"], "space": space})  # fmt: skip
    storage = optuna.storages.RDBStorage(f"sqlite:///{tmp_path / 'studies.db'}")
    with pytest.raises(ValueError, match="schedule.warmup"):
        nodes.tune(storage, None, None, None, tuning, params("pretraining"), params("fine_tuning"),
                   params("scratch"), params("sasrec"), params("training"), model="sasrec")  # fmt: skip


def test_tuning_refuses_to_run_under_torchrun(monkeypatch):
    monkeypatch.setattr(
        nodes.distributed, "current", object
    )  # a group, as under torchrun
    with pytest.raises(RuntimeError, match="one process"):
        nodes.tune(None, None, None, None, params("tuning"), params("pretraining"), params("fine_tuning"),
                   params("scratch"), params("sasrec"), params("training"), model="sasrec")  # fmt: skip


# --- rating models ---------------------------------------------------------------------

RATING_SPACE = {
    "svd": {
        "n_factors": {
            "keys": ["ratings.svd.n_factors"],
            "low": 2,
            "high": 8,
            "integer": True,
        },  # fmt: skip
        "reg_all": {
            "keys": ["ratings.svd.reg_all"],
            "low": 0.01,
            "high": 0.1,
            "log": True,
        },  # fmt: skip
    },
    "rating_head": {
        "learning_rate": {
            "keys": ["ratings.head.schedule.learning_rate"],
            "low": 1e-3,
            "high": 1e-2,
        },  # fmt: skip
        "pretraining_mask": {
            "keys": ["ratings.pretraining.mask_prob"],
            "choices": [0.2, 0.4],
        },  # fmt: skip
    },
}


def rated_events(users: int = 30, per_user: int = 12, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = [(u, int(i), float(rng.integers(1, 6)), t) for u in range(1, users + 1)
            for t, i in enumerate(rng.choice(np.arange(1, 41), per_user, replace=False))]  # fmt: skip
    return pd.DataFrame(rows, columns=["user_id", "item_id", "rating", "timestamp"])


def test_rating_tuning_reads_no_user_s_last_rating():
    events = pd.DataFrame(
        {"user_id": [1, 1, 1, 1, 2, 2, 2], "item_id": [10, 11, 12, 13, 10, 14, 15],
         "rating": [4.0, 3.0, 5.0, 1.0, 2.0, 4.0, 3.0], "timestamp": [1, 2, 3, 4, 5, 6, 7]}
    )  # fmt: skip
    fitted, held = nodes.rating_tuning_input(
        events, params("tuning"), params("ratings")
    )
    # the next-rating protocol: last rating = test (left out), the one before = validation
    assert held[["user_id", "item_id"]].to_numpy().tolist() == [[1, 12], [2, 14]]
    assert fitted[["user_id", "item_id"]].to_numpy().tolist() == [[1, 10], [1, 11], [2, 10]]  # fmt: skip
    assert list(fitted.columns) == ["user_id", "item_id", "rating", "timestamp"]


@pytest.mark.parametrize("fold", [0, 3])
def test_a_fold_s_rating_study_reads_that_fold_s_training_ratings_as_the_rating_pipeline_splits_them(fold):  # fmt: skip
    from maskrec.pipelines.rating_prediction import nodes as rating

    events = rated_events(users=40, per_user=15, seed=2)
    ratings = params("ratings", seed=7, valid_fraction=0.2)
    fitted, held = nodes.rating_tuning_input(events, params("tuning", rating_fold=fold), ratings)  # fmt: skip
    # what the rating pipeline's fold `fold` fits its heads on and stops them on
    train, test = rating.select_fold(rating.split_ratings(events, ratings), "random_folds", fold)  # fmt: skip
    pipeline_fitted, pipeline_held = rating.hold_out_validation(train, ratings, "random_folds")  # fmt: skip

    def key(frame: pd.DataFrame) -> list[tuple]:
        return sorted(map(tuple, frame[["user_id", "item_id", "rating", "timestamp"]].to_numpy().tolist()))  # fmt: skip

    assert key(held) == key(pipeline_held) and key(fitted) == key(pipeline_fitted)
    assert len(held) > 0 and len(test) > 0
    # none of the fold's test ratings is read; every other rating is, once
    tested = set(key(test))
    assert not tested & set(key(fitted) + key(held))
    assert len(fitted) + len(held) + len(test) == len(events)


def test_a_rating_fold_outside_the_protocol_is_refused_at_run_start():
    with pytest.raises(ValueError, match="rating_fold"):
        load_parameters(Path(__file__).parents[3] / "conf", "local", {"tuning": {"rating_fold": 5}})  # fmt: skip


def test_a_classic_rating_trial_scores_surprise_s_rmse_on_validation_ratings():
    from surprise import SVD, Dataset, Reader

    events = rated_events()
    fitted, held = nodes.rating_tuning_input(
        events, params("tuning"), params("ratings")
    )
    tuning = TuningParams.model_validate(params("tuning").model_dump() | {"models": ["svd"], "space": RATING_SPACE, "trials": 2, "startup_trials": 2})  # fmt: skip
    ratings = params("ratings")
    table = nodes.tune_ratings(optuna.storages.InMemoryStorage(), None, fitted, held, tuning, ratings,
                               params("training"), model="svd")  # fmt: skip
    assert len(table) == 2 and set(table["state"]) == {"COMPLETE"}
    for _, trial in table.iterrows():  # Surprise itself, with the trial's point
        settings = {**ratings.svd, "n_factors": int(trial["param.n_factors"]), "reg_all": trial["param.reg_all"]}  # fmt: skip
        algorithm = SVD(random_state=ratings.seed, **settings)
        algorithm.fit(Dataset.load_from_df(fitted[["user_id", "item_id", "rating"]], Reader(rating_scale=(1, 5))).build_full_trainset())  # fmt: skip
        predicted = np.array([algorithm.predict(u, i).est for u, i in zip(held["user_id"], held["item_id"], strict=True)])  # fmt: skip
        assert trial["valid_rmse"] == pytest.approx(np.sqrt(np.mean((predicted - held["rating"].to_numpy()) ** 2)))  # fmt: skip


def test_an_argument_surprise_lacks_stops_the_study_before_fitting():
    space = {"svdpp": {"f": {"keys": ["ratings.svdpp.factors"], "low": 2, "high": 8}}}
    tuning = TuningParams.model_validate(params("tuning").model_dump() | {"models": ["svdpp"], "space": space})  # fmt: skip
    with pytest.raises(ValueError, match="ratings.svdpp.factors: not an argument of Surprise's SVDpp"):  # fmt: skip
        nodes.tune_ratings(optuna.storages.InMemoryStorage(), None, None, None, tuning, params("ratings"),
                           params("training"), model="svdpp")  # fmt: skip
    with pytest.raises(ValueError, match="ratings.svd.factors"):  # and at run start
        check_parameters({"ratings": params("ratings", svd={"factors": 10})})


def test_rating_winners_are_the_lowest_rmse_and_load_as_an_environment(tmp_path):
    tuning = TuningParams.model_validate(params("tuning").model_dump() | {"models": ["svd", "rating_head"], "space": RATING_SPACE, "epochs": 5})  # fmt: skip
    table = lambda model, rows: trials_table(model, rows, "valid_rmse", epochs=1)  # noqa: E731
    svd = table("svd", [("COMPLETE", 0.95, {"n_factors": 3.0, "reg_all": 0.05}),
                        ("COMPLETE", 0.91, {"n_factors": 6.0, "reg_all": 0.02}),
                        ("FAIL", None, {"n_factors": 2.0, "reg_all": 0.01})])  # fmt: skip
    head = table("rating_head", [("COMPLETE", 0.90, {"learning_rate": 0.002, "pretraining_mask": 0.4}),
                                 ("PRUNED", 0.99, {"learning_rate": 0.009, "pretraining_mask": 0.2})])  # fmt: skip
    environment, summary = nodes.tuned_parameters(optuna.storages.InMemoryStorage(), tuning, svd, head)  # fmt: skip
    assert summary["svd"]["valid_rmse"] == 0.91 and summary["svd"]["point"] == {"n_factors": 6, "reg_all": 0.02}  # fmt: skip
    assert environment["ratings"]["svd"] == {
        "n_factors": 6,
        "reg_all": 0.02,
    }  # no epoch cap: not a stage
    assert isinstance(environment["ratings"]["svd"]["n_factors"], int)
    assert environment["ratings"]["head"] == {"schedule": {"epochs": 5, "learning_rate": 0.002}}  # fmt: skip
    assert environment["ratings"]["pretraining"] == {"mask_prob": 0.4}  # its own cap

    conf = copy_project(tmp_path) / "conf"
    (conf / "tuned").mkdir(exist_ok=True)
    (conf / "tuned/parameters.yml").write_text(yaml.safe_dump(environment))
    tuned = load_parameters(conf, "tuned")["ratings"]
    assert (
        tuned.svd["n_factors"] == 6 and tuned.svd["n_epochs"] == 20
    )  # merged over conf/base
    assert (
        tuned.head.schedule.learning_rate == 0.002 and tuned.head.schedule.epochs == 5
    )
    assert tuned.pretraining.mask_prob == 0.4


@pytest.mark.slow
def test_rating_models_are_tuned_one_model_at_a_time_into_one_environment(tmp_path):
    project = copy_project(tmp_path)
    for model in ("svd", "rating_head"):
        run(project, ["tuning"], {**SMALL_SAMPLE, "tuning": {"trials": 2, "epochs": 1, "pretraining_epochs": 1, "startup_trials": 1,
                                                              "models": [model], "space": RATING_SPACE}})  # fmt: skip
    head = pd.read_csv(project / "data/09_tuning/trials_rating_head.csv")
    assert len(head) == 2 and (head["epochs"] <= 1).all()
    assert head["valid_rmse"].between(0.0, 4.0).all()
    # the second run tuned the head only; svd's trials from the first still count
    assert len(pd.read_csv(project / "data/09_tuning/trials_svd.csv")) == 2
    environment = yaml.safe_load((project / "conf/tuned/parameters.yml").read_text())
    assert set(environment["ratings"]) == {"svd", "head", "pretraining"}
    tuned = load_parameters(project / "conf", "tuned")["ratings"]
    assert tuned.head.schedule.epochs == 1 and tuned.pretraining.schedule.epochs == 1


# Target and source samples that share their films (same item seed), with other users.
TRANSFER_SAMPLES = {
    "sample": {"n_users": 150, "n_items": 300, "n_ratings": 4500, "seed": 3, "user_seed": 0},
    "pretraining_source": "sample",
    "pretraining_sample": {"n_users": 200, "n_items": 300, "n_ratings": 6000, "seed": 3},
}  # fmt: skip


@pytest.mark.slow
def test_transfer_tuning_gives_the_transfer_models_the_same_budget_and_their_own_winners(tmp_path):  # fmt: skip
    """`transfer_tuning`: the source-pretrained model and SASRec on source + target get
    the target-only models' budget, on the target's validation targets (the test split is
    never loaded); their winners land in their own stages of the environment, which leaves
    the target-only models' stages alone."""
    project = copy_project(tmp_path)
    (project / "conf/local/catalog.yml").write_text(
        yaml.safe_dump({"test_targets": {"type": f"{__name__}.WriteOnlyDataset"}})
    )
    run(project, ["transfer_tuning"], {**tuning_run_params(models=["transfer", "joint_sasrec"]), **TRANSFER_SAMPLES})  # fmt: skip
    trials = {m: pd.read_csv(project / f"data/09_tuning/trials_{m}.csv") for m in ("transfer", "joint_sasrec")}  # fmt: skip
    assert [len(t) for t in trials.values()] == [2, 2]  # the same budget
    assert all(set(t["state"]) <= {"COMPLETE", "PRUNED"} for t in trials.values())
    assert (trials["transfer"]["epochs"] <= 2).all()  # fine-tuning's cap
    summary = json.loads((project / "data/09_tuning/summary.json").read_text())
    # each trial trained what it says: the source's Cloze stage is capped like pretraining
    storage = optuna.storages.RDBStorage(f"sqlite:///{project / 'data/09_tuning/studies.db'}")  # fmt: skip
    trial = optuna.load_study(study_name="sample.transfer", storage=storage).trials[0]
    stages = trial.user_attrs[nodes._STAGES]
    assert set(stages) == {"transfer_pretraining", "transfer_continuation", "transfer_fine_tuning"}  # fmt: skip
    assert stages["transfer_pretraining"]["schedule"]["epochs"] == 2
    assert stages["transfer_fine_tuning"]["cloze_weight"] == trial.params["cloze_weight"]  # fmt: skip
    assert stages["transfer_continuation"]["mask_prob"] == trial.params["mask_prob"]

    tuned = load_parameters(project / "conf", "tuned")
    base = load_parameters(project / "conf")
    point = summary["transfer"]["point"]
    assert tuned["transfer_fine_tuning"].cloze_weight == point["cloze_weight"]
    assert tuned["transfer_pretraining"].mask_prob == tuned["transfer_continuation"].mask_prob == point["mask_prob"]  # fmt: skip
    assert tuned["joint_sasrec"].model.hidden_dropout == summary["joint_sasrec"]["point"]["hidden_dropout"]  # fmt: skip
    for stage in ("pretraining", "fine_tuning", "sasrec"):  # the target-only models'
        assert tuned[stage] == base[stage]
