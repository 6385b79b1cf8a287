"""Equal-budget tuning: for each compared model an Optuna study (TPE sampler, a
percentile pruner, by default the median one, on the per-epoch validation metric that
`fit` computes) of `tuning.trials`
trials, every stage of a trial capped at `tuning.epochs` epochs (the Cloze pretraining a
pretrained model starts from at `tuning.pretraining_epochs`, by default its own cap, so that
it reaches its plateau as in `kedro run`). A trial trains with the
project's own stages (`training.stages`) at the trial's point of the search space
(`params.at_point`) and scores validation only:
- next-item models (fine_tuned, scratch, SASRec) by validation NDCG@10 on the split's
  validation targets; the test split is not an input of this pipeline;
- rating models (the rating head with its Cloze pretraining; Surprise's SVD and SVD++)
  by RMSE on the next-rating protocol's validation ratings (each user's rating before the
  last), fitted on the ratings before those; each user's last rating, that protocol's
  test, is dropped by the first node that reads the ratings (`rating_tuning_input`).
  With `tuning.rating_fold` = k, on random fold k's training ratings instead (its
  held-out validation fraction scores); fold k's test ratings are dropped there.

Resuming: the studies live in the project's SQLite storage (`OptunaStorageDataset`), a
trial written as it ends, with the sampler's random state after it (`_SAMPLER_STATE`). A
rerun counts the finished (complete or pruned) trials towards the budget and goes on
from that state, so it draws the points an uninterrupted study would have: first the
point of a trial an interruption or an error cut short (retried where it stopped, from
its checkpoints if the scratch folder still holds them: its last stage's per-epoch one,
and the finished earlier stages', kept until the trial ends), never again one it has
tried.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import json
import logging
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import numpy as np
import optuna
import pandas as pd
import plotly.graph_objects as go
from optuna.trial import FrozenTrial, TrialState
from plotly.subplots import make_subplots

from maskrec.metrics import error_metrics
from maskrec.model_input import (
    next_rating_parts,
    random_rating_folds,
    random_validation_mask,
    rater_input,
)
from maskrec.models.rating_baselines import check_settings, fit_predict
from maskrec.models.sequence import SequenceRecModel
from maskrec.params import (
    CLASSIC_TUNED,
    FIXED,
    RATING_TUNED,
    STAGES,
    TAKEN,
    TUNED_STAGES,
    ClozeStage,
    Dimension,
    FineTuningStage,
    Pruner,
    RatingParams,
    SASRecStage,
    Stage,
    TrainingParams,
    TuningParams,
    at_point,
    first_points,
    has_path,
    leaves,
    setting_at,
    tuned_stage,
    value_at,
)
from maskrec.training import distributed
from maskrec.training.loop import StopTraining, discard_checkpoints
from maskrec.training.setup import init_model
from maskrec.training.stages import (
    fine_tune,
    fine_tune_ratings,
    pretrain,
    train_sasrec,
    train_teacher,
    warm_start,
    with_rating_head,
)

logger = logging.getLogger(__name__)
FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)
COLUMNS = [
    "model",
    "trial",
    "state",
    "epochs",
    "seconds",
    "last_epoch",
    "last_value",
]  # and metric(model), then param.<name>
_SAMPLER_STATE = "sampler_state"  # study attribute: the sampler's random state after the last finished trial
_FIRST_POINTS = "first_points"  # study attribute: the points it queued first (`tuning.first_points`)
_STAGES = "stages"  # trial attribute: the resolved stages (a classic model's arguments) it trained with


def metric(model: str) -> str:
    """What `model`'s study optimises: validation NDCG@10 (up), or validation RMSE for a
    rating model (down)."""
    return "valid_rmse" if model in RATING_TUNED else "valid_ndcg@10"


def trial_stages(
    model: str,
    specs: Mapping[str, Stage | Mapping[str, Any]],
    dimensions: Mapping[str, Dimension],
    values: Mapping[str, Any],
    tuning: TuningParams,
) -> dict[str, Any]:
    """What `model` trains with at the point `values` (one per dimension): each training
    stage capped at its `tuning.cap`, a classic rating model's arguments as given (its
    epochs are a setting of its own)."""
    settings: dict[str, dict[str, Any]] = {
        stage: {"schedule.epochs": tuning.cap(stage)}
        if isinstance(specs[stage], Stage) and tuning.cap(stage)
        else {}  # fmt: skip
        for stage in TUNED_STAGES[model]
    }
    for name, dimension in dimensions.items():
        for key in dimension.keys:
            stage, inner = tuned_stage(model, key)
            settings[stage][inner] = values[name]
    stages: dict[str, Any] = {}
    for stage, values_ in settings.items():
        spec = specs[stage]
        if isinstance(spec, Stage):
            stages[stage] = at_point(spec, values_)
        else:  # a classic rating model's arguments, checked before it is fitted
            stages[stage] = {**spec, **values_}
            check_settings(stage.rsplit(".", 1)[-1], stages[stage], stage)
    return stages


def suggest(trial: optuna.Trial, name: str, dimension: Dimension) -> Any:
    """The trial's value on one dimension."""
    if dimension.choices is not None:
        return trial.suggest_categorical(name, dimension.choices)
    if dimension.integer:
        return trial.suggest_int(name, int(dimension.low), int(dimension.high), log=dimension.log)  # type: ignore[arg-type]  # fmt: skip
    return trial.suggest_float(name, dimension.low, dimension.high, log=dimension.log)  # type: ignore[arg-type]  # fmt: skip


def _first_point(dimensions: Mapping[str, Dimension]) -> dict[str, Any]:
    return {
        name: d.choices[0] if d.choices is not None else d.low
        for name, d in dimensions.items()
    }


class LastPretraining:
    """The last trial's Cloze-pretrained weights, for a study's next trial that pretrains
    with the same settings (no training twice: a study's first points, the run's
    configuration and SASRec's recipe from the pretrained start, share their pretraining;
    on ML-100K one 4-minute pretraining a study). On the CPU training is deterministic,
    so these are the weights the trial would train; a study's data is fixed, so the
    resolved stages are the key. One entry: sampled points rarely repeat."""

    def __init__(self) -> None:
        self._key: str | None = None
        self._model: SequenceRecModel | None = None

    @staticmethod
    def key(start: ClozeStage, cloze: list[tuple[ClozeStage, pd.DataFrame, pd.DataFrame, str]]) -> str:  # fmt: skip
        return json.dumps([start.model_dump(mode="json"), *[[s.model_dump(mode="json"), n] for s, *_, n in cloze]], sort_keys=True)  # fmt: skip

    def get(self, key: str) -> SequenceRecModel | None:
        if key != self._key or self._model is None:
            return None
        logger.info(
            "reusing the previous trial's pretraining (the same Cloze settings)"
        )
        return copy.deepcopy(self._model)

    def keep(self, key: str, model: SequenceRecModel) -> None:
        self._key, self._model = key, copy.deepcopy(model)


def _train(
    model: str,
    stages: Mapping[str, Stage],
    item_features: pd.DataFrame,
    train_sequences: pd.DataFrame,
    valid_targets: pd.DataFrame,
    training: TrainingParams,
    pretraining: ClozeStage,
    on_epoch,
    last: LastPretraining | None = None,
) -> pd.DataFrame:
    """Train `model` as the pipelines do (the pretrained model: pretraining, then
    fine-tuning; scratch: its fine-tuning stage from the initial weights pretraining
    starts from; SASRec) and return the history of its last stage."""
    data = (train_sequences, valid_targets)
    if model == "sasrec":
        return train_sasrec(item_features, *data, stages["sasrec"], training, "sasrec", on_epoch)[1]  # fmt: skip
    if model == "scratch":
        return _fine_tuned(item_features, pretraining, [], stages["scratch"], data, training, model, on_epoch)  # fmt: skip
    cloze = [(stages["pretraining"], *data, "pretrained")]
    return _fine_tuned(item_features, stages["pretraining"], cloze, stages["fine_tuning"], data, training, model, on_epoch, last)  # fmt: skip


def _fine_tuned(
    item_features: pd.DataFrame,
    start: ClozeStage,
    cloze: list[tuple[ClozeStage, pd.DataFrame, pd.DataFrame, str]],
    fine_tuning: FineTuningStage,
    data: tuple[pd.DataFrame, pd.DataFrame],
    training: TrainingParams,
    name: str,
    on_epoch,
    last: LastPretraining | None = None,
) -> pd.DataFrame:
    """A fine-tuned model's trial, as its pipelines train it: initial weights from the
    `start` stage's architecture, each Cloze stage of `cloze` (stage, sequences,
    validation targets, name) in turn, the teacher (none without distillation), then
    fine-tuning on the target's `data`; the history of the fine-tuning. With `last`, a
    trial whose Cloze stages are the trial before's takes that trial's pretrained weights
    instead of training them again."""
    with _earlier_stages_kept(training, *(step[-1] for step in cloze), "teacher"):
        key, reused = LastPretraining.key(start, cloze), last if cloze else None
        model = reused.get(key) if reused is not None else None
        if model is None:
            model = init_model(item_features, start)
            for stage, sequences, valid, cloze_name in cloze:
                model, _ = pretrain(model, sequences, valid, stage, training, cloze_name, keep_checkpoint=True)  # fmt: skip
            if reused is not None:
                reused.keep(key, model)
        if cloze:  # a pretrained start, moved as fine-tuning's warm_start says
            model = warm_start(model, item_features, start, fine_tuning)
        teacher = train_teacher(item_features, *data, fine_tuning, training, keep_checkpoint=True)  # fmt: skip
        return fine_tune(model, teacher, *data, fine_tuning, training, name, on_epoch)[
            1
        ]


@contextlib.contextmanager
def _earlier_stages_kept(training: TrainingParams, *names: str) -> Iterator[None]:
    """A trial's stages before its last keep their finished checkpoints (`fit`'s
    `keep_checkpoint`) until the trial ends: a trial an interruption cut short is retried
    from its last stage's checkpoint without training the earlier ones again (on the ML-1M
    subset its pretraining was 6-9 minutes). A complete or pruned trial removes them; an
    interrupted or failed one, retried at the same point, keeps them."""
    try:
        yield
    except optuna.TrialPruned:
        discard_checkpoints(training, *names)
        raise
    discard_checkpoints(training, *names)


def tune(
    storage: optuna.storages.BaseStorage,
    item_features: pd.DataFrame,
    train_sequences: pd.DataFrame,
    valid_targets: pd.DataFrame,
    tuning: TuningParams,
    pretraining: ClozeStage,
    fine_tuning: FineTuningStage,
    scratch: FineTuningStage,
    sasrec: SASRecStage,
    training: TrainingParams,
    *,
    model: str,
) -> pd.DataFrame:
    """Run next-item `model`'s study to `tuning.trials` finished trials; returns every
    trial (its point, state, best validation NDCG@10, epochs trained and seconds)."""
    specs = {"pretraining": pretraining, "fine_tuning": fine_tuning, "scratch": scratch, "sasrec": sasrec}  # fmt: skip
    last = LastPretraining()

    def trained(stages: Mapping[str, Any], report: Callable[[int, dict], None]) -> pd.DataFrame:  # fmt: skip
        return _train(model, stages, item_features, train_sequences, valid_targets, training, pretraining, report, last)  # fmt: skip

    return _study(storage, tuning, model, specs, trained)


def tune_transfer(
    storage: optuna.storages.BaseStorage,
    item_features: pd.DataFrame,
    train_sequences: pd.DataFrame,
    valid_targets: pd.DataFrame,
    source_sequences: pd.DataFrame,
    source_valid_targets: pd.DataFrame,
    joint_sequences: pd.DataFrame,
    tuning: TuningParams,
    transfer_pretraining: ClozeStage,
    transfer_continuation: ClozeStage,
    transfer_fine_tuning: FineTuningStage,
    joint_sasrec: SASRecStage,
    training: TrainingParams,
    *,
    model: str,
) -> pd.DataFrame:
    """Run a transfer run's `model` (`TRANSFER_TUNED`) to `tuning.trials` finished trials,
    scored like the target-only models, on the target's validation targets: the
    source-pretrained model (Cloze on the source's sequences, early-stopped on the source's
    own held-out events; Cloze on the target's; fine-tuning) or SASRec on the source's and
    the target's sequences together."""
    specs = {"transfer_pretraining": transfer_pretraining, "transfer_continuation": transfer_continuation,
             "transfer_fine_tuning": transfer_fine_tuning, "joint_sasrec": joint_sasrec}  # fmt: skip
    data = (train_sequences, valid_targets)
    last = LastPretraining()

    def trained(stages: Mapping[str, Any], report: Callable[[int, dict], None]) -> pd.DataFrame:  # fmt: skip
        if model == "joint_sasrec":
            return train_sasrec(item_features, joint_sequences, valid_targets, stages["joint_sasrec"], training, model, report)[1]  # fmt: skip
        cloze = [(stages["transfer_pretraining"], source_sequences, source_valid_targets, "source_pretrained"),
                 (stages["transfer_continuation"], *data, "transfer_pretrained")]  # fmt: skip
        return _fine_tuned(item_features, stages["transfer_pretraining"], cloze, stages["transfer_fine_tuning"], data, training, model, report, last)  # fmt: skip

    return _study(storage, tuning, model, specs, trained)


def rating_tuning_input(
    interactions: pd.DataFrame, tuning: TuningParams, ratings: RatingParams
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The ratings rating models are tuned on, fitted and held out to score, as the rating
    pipeline's fine-tuned head fits and stops on them: with `tuning.rating_fold` None, the
    next-rating protocol's (each user's rating before the last scores; the last, that
    protocol's test, is left out here); with k, random fold k's training ratings, of which
    the seeded `ratings.valid_fraction` scores (fold k's test ratings are left out). Tuned
    per fold, settings never chose on a rating they are tested on: every rating is some
    fold's test, so settings tuned on one fold's ratings are clean for that fold alone."""
    rated = interactions[["user_id", "item_id", "rating", "timestamp"]].reset_index(drop=True)  # fmt: skip
    if tuning.rating_fold is None:
        part = next_rating_parts(rated["user_id"].to_numpy())
        return rated[part == "train"].reset_index(drop=True), rated[part == "valid"].reset_index(drop=True)  # fmt: skip
    train = rated[random_rating_folds(len(rated), ratings.seed) != tuning.rating_fold]
    held = random_validation_mask(len(train), ratings.seed, ratings.valid_fraction)
    return train[~held].reset_index(drop=True), train[held].reset_index(drop=True)


def tune_ratings(
    storage: optuna.storages.BaseStorage,
    item_features: pd.DataFrame,
    fitted: pd.DataFrame,
    held: pd.DataFrame,
    tuning: TuningParams,
    ratings: RatingParams,
    training: TrainingParams,
    *,
    model: str,
) -> pd.DataFrame:
    """Run rating `model`'s study to `tuning.trials` finished trials, each scored by its
    RMSE on the `held` ratings (the rating head: its best epoch's, pruned on the
    per-epoch RMSE; SVD and SVD++: fitted on `fitted` with the trial's arguments)."""
    specs: dict[str, Any] = {"ratings.pretraining": ratings.pretraining, "ratings.head": ratings.head,
                             "ratings.svd": ratings.svd, "ratings.svdpp": ratings.svdpp}  # fmt: skip

    # the rating head's input depends on the trial only through its window length
    inputs = functools.cache(lambda length: rater_input(fitted, held, length))

    def trained(stages: Mapping[str, Any], report: Callable[[int, dict], None]) -> pd.DataFrame:  # fmt: skip
        if model in CLASSIC_TUNED:  # one fit, no epochs to prune on
            predicted = fit_predict(model, fitted, held, stages[f"ratings.{model}"], ratings.seed)  # fmt: skip
            rmse = error_metrics(predicted - held["rating"].to_numpy())["rmse"]
            return pd.DataFrame({"epoch": [1], "best_epoch": [1], "rmse": [rmse]})
        rated, pretraining_valid, questions, scale = inputs(stages["ratings.head"].model.max_len)  # fmt: skip
        with _earlier_stages_kept(training, "rating_pretrained"):
            start = init_model(item_features, stages["ratings.pretraining"])
            start, _ = pretrain(start, rated, pretraining_valid, stages["ratings.pretraining"], training, "rating_pretrained", keep_checkpoint=True)  # fmt: skip
            start = with_rating_head(start, scale, ratings.seed, stages["ratings.head"])
            return fine_tune_ratings(start, rated, questions, stages["ratings.head"], training, "rating_head", report)[1]  # fmt: skip

    return _study(storage, tuning, model, specs, trained)


def _study(
    storage: optuna.storages.BaseStorage,
    tuning: TuningParams,
    model: str,
    specs: Mapping[str, Any],
    trained: Callable[[Mapping[str, Any], Callable[[int, dict], None]], pd.DataFrame],
) -> pd.DataFrame:
    """`model`'s study, created or resumed, run to `tuning.trials` finished trials: each
    trial's point set on `specs` (`trial_stages`) and `trained(stages, report)` returning
    its history, scored by its best epoch's validation NDCG@10 (a rating model's RMSE);
    `report` feeds the pruner each epoch's value of the same metric.
    A model not in `tuning.models` runs no trial, but the trials its study already holds
    (an earlier run's, under the same study name) are returned, so a study's winners
    can be gathered one model at a time (`--params tuning.models=[svdpp]`)."""
    if model not in tuning.models:  # no trial runs; an earlier run's trials still count
        try:
            return trials_table(optuna.load_study(study_name=f"{tuning.study}.{model}", storage=storage), model)  # fmt: skip
        except KeyError:  # no such study
            return pd.DataFrame(columns=[*COLUMNS, metric(model)])
    if distributed.current() is not None:  # a pruned trial would stop rank 0 alone
        raise RuntimeError("the tuning pipeline runs in one process: start it with kedro run, not torchrun")  # fmt: skip
    dimensions = tuning.space[model]
    # every key of the space, and every first point, is checked before any training
    trial_stages(model, specs, dimensions, _first_point(dimensions), tuning)
    firsts = queued_points(tuning, model, specs)
    score = "rmse" if model in RATING_TUNED else "ndcg@10"  # a history's column
    study = optuna.create_study(
        study_name=f"{tuning.study}.{model}",
        storage=storage,
        direction="minimize" if score == "rmse" else "maximize",
        load_if_exists=True,
        sampler=optuna.samplers.TPESampler(
            seed=tuning.seed, n_startup_trials=tuning.startup_trials
        ),  # fmt: skip
        pruner=pruner(tuning.pruner),
    )
    _fail_cut_short(study)
    _queue_first_points(study, firsts)
    _restore_sampler(study)
    finished = sum(t.state in FINISHED for t in study.trials)

    def objective(trial: optuna.Trial) -> float:
        values = {name: suggest(trial, name, d) for name, d in dimensions.items()}
        stages = trial_stages(model, specs, dimensions, values, tuning)
        # what the trial trains with, in full: its winner's environment pins from it
        # every setting of its stages (`_pin_trained`)
        trial.set_user_attr(_STAGES, {name: spec.model_dump(mode="json") if isinstance(spec, Stage) else dict(spec) for name, spec in stages.items()})  # fmt: skip

        def report(epoch: int, metrics: dict[str, float]) -> None:
            trial.report(metrics[score], epoch)
            if trial.should_prune():
                raise _Pruned()

        history = trained(stages, report)
        trial.set_user_attr("epochs", int((history["epoch"] >= 1).sum()))
        trial.set_user_attr("best_epoch", int(history["best_epoch"].iloc[0]))
        return float(
            history.loc[history["epoch"] == history["best_epoch"], score].iloc[0]
        )

    remaining = max(tuning.trials - finished, 0)
    logger.info("tuning %s: %d of %d trials done, %d to run", model, finished, tuning.trials, remaining)  # fmt: skip
    if remaining:
        study.optimize(objective, n_trials=remaining, callbacks=[_save_sampler])
    return trials_table(study, model)


def pruner(settings: Pruner) -> optuna.pruners.BasePruner:
    """The study's pruner (Optuna does not store it: a resumed study takes the run's)."""
    if settings.percentile is None:
        return optuna.pruners.NopPruner()
    return optuna.pruners.PercentilePruner(settings.percentile, n_startup_trials=settings.startup_trials,
                                           n_warmup_steps=settings.warmup_epochs)  # fmt: skip


def queued_points(tuning: TuningParams, model: str, specs: Mapping[str, Any]) -> list[dict[str, Any]]:  # fmt: skip
    """The points `model`'s new study queues before its sampled ones
    (`tuning.first_points`, resolved on the study's stages); one whose value from the
    run's configuration lies outside the space is skipped, and the log says why."""
    points, skipped = first_points(tuning, model, functools.partial(setting_at, specs))
    for reason in skipped:
        logger.warning("skipping a first point: %s", reason)
    return points


class _Pruned(optuna.TrialPruned, StopTraining):
    """A pruned trial: Optuna records it as pruned, `fit` drops its checkpoint (an error
    in the pruner's own call, a storage one say, keeps it for the retry)."""


def _fail_cut_short(study: optuna.Study) -> None:
    """A trial left running by a killed process is marked failed (the sampler, restored to
    its state before that trial, draws its point again; a first point is queued again)."""
    for trial in study.trials:
        if trial.state == TrialState.RUNNING:
            study._storage.set_trial_state_values(trial._trial_id, TrialState.FAIL)


def _queue_first_points(study: optuna.Study, points: list[dict[str, Any]]) -> None:
    """A new study records its first points and queues them (Optuna's `enqueue_trial`);
    a resumed one queues again those an interruption failed (after any still waiting:
    the sampler's draws do not depend on the order in which they finish). A study
    created without first points gets none."""
    if not study.trials:
        study.set_user_attr(_FIRST_POINTS, points)
    tried = [t.system_attrs.get("fixed_params") for t in study.trials if t.state in (*FINISHED, TrialState.WAITING)]  # fmt: skip
    for point in study.user_attrs.get(_FIRST_POINTS, []):
        if point in tried:
            tried.remove(point)
        else:
            study.enqueue_trial(point)


def _sampler_rngs(sampler: optuna.samplers.TPESampler) -> list[np.random.RandomState]:
    """The random generators a TPE sampler draws from: its own and its startup random
    sampler's. Optuna has no public API for their state (its FAQ pickles the sampler);
    the resume test checks these are all there is."""
    return [sampler._rng.rng, sampler._random_sampler._rng.rng]


def _save_sampler(study: optuna.Study, trial: FrozenTrial) -> None:
    """After each finished trial: the sampler's random state, in the study's storage."""
    states = [rng.get_state() for rng in _sampler_rngs(study.sampler)]
    study.set_user_attr(_SAMPLER_STATE, [[name, keys.tolist(), pos, has_gauss, cached] for name, keys, pos, has_gauss, cached in states])  # fmt: skip


def _restore_sampler(study: optuna.Study) -> None:
    """The sampler where the study's last finished trial left it (a study that finished
    none starts from the seed, as a new one)."""
    saved = study.user_attrs.get(_SAMPLER_STATE)
    if saved is None:
        return
    for rng, (name, keys, pos, has_gauss, cached) in zip(_sampler_rngs(study.sampler), saved, strict=True):  # fmt: skip
        rng.set_state((name, np.asarray(keys, dtype=np.uint32), pos, has_gauss, cached))


def trials_table(study: optuna.Study, model: str) -> pd.DataFrame:
    """One row per trial: model, number, state, value (best validation NDCG@10, or RMSE
    for a rating model: `metric(model)`), epochs trained and seconds, the last epoch and
    value the pruner saw (where a pruned trial stopped; none for a classic model), and
    its point (`param.<name>`)."""
    rows = []
    for trial in study.trials:
        seconds = trial.duration.total_seconds() if trial.duration is not None else None
        last = max(trial.intermediate_values, default=None)
        rows.append(
            {"model": model, "trial": trial.number, "state": trial.state.name,
             metric(model): trial.value, "epochs": trial.user_attrs.get("epochs"), "seconds": seconds,
             "last_epoch": last, "last_value": None if last is None else trial.intermediate_values[last],
             **{f"param.{k}": v for k, v in trial.params.items()}}
        )  # fmt: skip
    return pd.DataFrame(rows)


def plot_studies(*tables: pd.DataFrame) -> go.Figure:
    """Each model's study, trial by trial (a panel a model with trials): the validation
    score of each complete trial, the best so far, and where each pruned trial stopped
    (its last epoch's score): whether the budget was spent searching or pruning."""
    studies = [t for t in tables if len(t)]
    figure = make_subplots(rows=max(len(studies), 1), cols=1, shared_xaxes=False,
                           subplot_titles=[str(t["model"].iloc[0]) for t in studies] or ["no trials"])  # fmt: skip
    for row, table in enumerate(studies, start=1):
        model = str(table["model"].iloc[0])
        score, lower = metric(model), model in RATING_TUNED
        complete = table[table["state"] == TrialState.COMPLETE.name].sort_values(
            "trial"
        )
        pruned = table[table["state"] == TrialState.PRUNED.name]
        best = complete[score].cummin() if lower else complete[score].cummax()
        figure.add_trace(go.Scatter(x=complete["trial"], y=complete[score], mode="markers", name=f"{model}: complete",
                                    marker={"size": 9}, legendgroup=model), row=row, col=1)  # fmt: skip
        figure.add_trace(go.Scatter(x=complete["trial"], y=best, mode="lines", name=f"{model}: best so far",
                                    line={"shape": "hv"}, legendgroup=model), row=row, col=1)  # fmt: skip
        if len(pruned):
            figure.add_trace(go.Scatter(x=pruned["trial"], y=pruned["last_value"], mode="markers", name=f"{model}: pruned",
                                        marker={"symbol": "x", "color": "grey", "size": 9}, legendgroup=model,
                                        text=[f"pruned after epoch {int(e)}" for e in pruned["last_epoch"]]), row=row, col=1)  # fmt: skip
        figure.update_yaxes(title_text=score, row=row, col=1)
        figure.update_xaxes(title_text="trial", row=row, col=1)
    figure.update_layout(title="Tuning: each model's trials on validation (pruned: where they stopped)", height=280 * max(len(studies), 1))  # fmt: skip
    return figure


def tuned_parameters(
    storage: optuna.storages.BaseStorage, tuning: TuningParams, *tables: pd.DataFrame
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The winners as a Kedro environment's parameters (each tuned stage's keys, its epoch
    cap, every other setting of the stage as the winning trial trained with it:
    `_pin_trained`; and the `tuning` block that names the study and its budget), and a summary per
    model: best validation NDCG@10 (a rating model's: lowest RMSE), its point, trials by
    state, the epochs and seconds of its finished trials (`seconds_cut_short`: the wall time
    of trials an interruption failed, an upper bound) and the importance of each dimension
    (fANOVA over the complete trials).

    Each model's winner sets its own stages: scratch's is the `scratch` group (built on
    `fine_tuning`), so the environment holds the tuned control, not the ablation at the
    fine-tuned model's settings (which an untuned `scratch` group is)."""
    trials = pd.concat(tables, ignore_index=True)
    environment: dict[str, Any] = {
        "tuning": {
            "study": tuning.study,
            "trials": tuning.trials,
            "epochs": tuning.epochs,
            **(
                {"pretraining_epochs": tuning.pretraining_epochs}
                if tuning.pretraining_epochs
                else {}
            ),
        }
    }
    summary: dict[str, Any] = {}
    for model, rows in trials.groupby("model", sort=False):
        complete = rows[rows["state"] == "COMPLETE"]
        counts = rows["state"].value_counts().to_dict()
        finished = rows[rows["state"].isin([s.name for s in FINISHED])]
        cut_short = rows[rows["state"] == TrialState.FAIL.name]
        # A cut-short trial's seconds run from its start to the rerun that failed it, so
        # they hold whatever time passed between the two: reported apart, an upper bound
        entry = {"trials": {str(k): int(v) for k, v in counts.items()},
                 "epochs": int(finished["epochs"].fillna(0).sum()),
                 "seconds": float(finished["seconds"].fillna(0).sum()),
                 "seconds_cut_short": float(cut_short["seconds"].fillna(0).sum())}  # fmt: skip
        if len(complete):
            score = metric(str(model))
            values = complete[score].astype(float)
            best = complete.loc[values.idxmin() if str(model) in RATING_TUNED else values.idxmax()]  # fmt: skip
            point = {name: _plain(best[f"param.{name}"], d) for name, d in tuning.space[str(model)].items()}  # fmt: skip
            entry |= {score: float(best[score]), "trial": int(best["trial"]), "point": point}  # fmt: skip
            _set_point(environment, tuning, str(model), point)
        entry["importance"] = importance(
            storage, f"{tuning.study}.{model}", tuning.seed
        )
        summary[str(model)] = entry
    for model, entry in summary.items():
        if "trial" in entry:
            _pin_trained(environment, storage, f"{tuning.study}.{model}", entry["trial"], model)  # fmt: skip
    return environment, summary


def _pin_trained(
    environment: dict, storage: optuna.storages.BaseStorage, study: str, number: int, model: str
) -> None:  # fmt: skip
    """Every setting of the model's stages, as its winning trial trained with it: the
    environment is the study's configuration, not winners over whatever `kedro run` reads
    later. Without it `kedro run --env tuned` would train each winner over conf/base as it
    then stands, without the `--params` the study ran with (a study of `model.max_len=200`
    would be trained at base's length), and a stage built on another (`params.STAGES`:
    `ratings.pretraining` on `pretraining`, `scratch` on `fine_tuning`) would take another
    model's winner for a key its own space leaves alone.

    Left out: each stage's seed (`training.seed` / `ratings.seed` stay the run's), what a
    stage takes from another or holds by construction (`params.TAKEN`, `params.FIXED`), and
    the winners and epoch caps `_set_point` wrote. A trial from before trials kept their
    stages, or a key a stage's trial trained without (newer code), cannot be pinned: logged.
    """
    try:
        trained = optuna.load_study(study_name=study, storage=storage).trials[number].user_attrs.get(_STAGES)  # fmt: skip
    except KeyError:  # the trials tables came without their study (read from elsewhere)
        trained = None
    for stage in TUNED_STAGES[model] if model not in CLASSIC_TUNED else ():
        spec = (trained or {}).get(stage)
        if spec is None:  # a study from before trials kept their stages, or none at all
            logger.warning("%s: %s is not pinned (trial %d kept no stages): the environment holds its winners over the run's configuration", study, stage, number)  # fmt: skip
            continue
        taken = (TAKEN[stage][1],) if stage in TAKEN else ()
        left = {"seed", *taken, *FIXED.get(stage, {})}  # not the stage's own to set
        for path in leaves(spec):
            if path.split(".")[0] in left or path.endswith(".seed"):
                continue
            if not has_path(environment, f"{stage}.{path}"):  # a winner or cap stays
                _set(environment, f"{stage}.{path}", value_at(spec, path))
        # what the stage would inherit from another model's winner, its trial lacking it
        for parent in STAGES.get(stage, ())[:-1]:
            for path in leaves(value_at(environment, parent) or {}):
                if not has_path(environment, f"{stage}.{path}") and path.split(".")[0] not in left:  # fmt: skip
                    logger.warning("%s: %s.%s is not pinned (trial %d trained without it): the environment's %s.%s applies", study, stage, path, number, parent, path)  # fmt: skip


def _set(tree: dict, path: str, value: Any) -> None:
    *parents, last = path.split(".")
    for part in parents:
        tree = tree.setdefault(part, {})
    tree[last] = value


def importance(storage: optuna.storages.BaseStorage, study: str, seed: int) -> dict[str, float] | str:  # fmt: skip
    """Each dimension's share of the variance of the validation score over the study's
    complete trials (Optuna's fANOVA), or why there is none."""
    try:
        loaded = optuna.load_study(study_name=study, storage=storage)
        evaluator = optuna.importance.FanovaImportanceEvaluator(seed=seed)
        return {k: round(v, 4) for k, v in optuna.importance.get_param_importances(loaded, evaluator=evaluator).items()}  # fmt: skip
    except (ValueError, RuntimeError, KeyError) as error:  # too few or identical trials
        return f"not measurable: {error}"


def _set_point(
    environment: dict, tuning: TuningParams, model: str, point: dict
) -> None:
    for stage in TUNED_STAGES[model] if model not in CLASSIC_TUNED else ():
        if not tuning.cap(stage):  # None: the stage keeps its configured cap
            continue
        _set(environment, f"{stage}.schedule.epochs", tuning.cap(stage))  # ratings.head -> {ratings: {head: ...}}  # fmt: skip
    for name, dimension in tuning.space[model].items():
        for key in dimension.keys:
            _set(environment, key, point[name])


def _plain(value: Any, dimension: Dimension) -> Any:
    """numpy scalars as Python values (YAML and JSON take only these); an integer
    dimension's value as an int (a trials table holds it as a float beside NaNs)."""
    value = value.item() if hasattr(value, "item") else value
    return (
        int(round(value)) if dimension.integer and dimension.choices is None else value
    )
