"""maskrec against RecBole's published numbers on MovieLens 100K, leave-one-out by time.

    python benchmarks/race_ml100k.py --data ../shared/data/ml-100k --device cpu --seeds 3 \\
        --targets ../shared/data/ml-100k/recbole_loo_targets.csv --json benchmarks/results/race_cpu.json

Each seed is the project's own `kedro run` (data_processing through evaluation) in a
scratch folder (common.ScratchProject), with the Kedro environment --env (default ml100k:
the settings chosen on validation) and these runtime parameters: training.seed and
baselines.seed = the seed, training.device = --device, no checkpoints, scoring batches of
--eval-batch users, no cold-start users (RecBole's split has none) and, with --targets,
data_split.strategy=given (the validation and test items are exactly the file's; the test
context is the training history plus the validation item). --params adds overrides in
`kedro run --params` syntax. Each stage is a slice of the pipelines (by node name) so it
can be timed; the test split is scored once per seed, by the evaluation pipeline, after
all model selection on validation.

Without --targets the split is maskrec's own leave-one-out, so the same race runs on any
release or folder, e.g. every model on ML-1M's first 2,999 users with conf/base:

    python benchmarks/race_ml100k.py --data ../shared/data/ml-1m-users-1-2999 --env '' --seeds 3 \
        --workdir benchmarks/results/race_ml1m_run --json benchmarks/results/race_ml1m_subset.json

Across seeds: mean ± std per model; every comparison the evaluation tests, seed by seed
(each seed's difference and paired test over users) with a t interval over the seeds
(`differences_over_seeds` in the JSON: training randomness, seeds as replicates); and the
evaluation pipeline's own summary (`summarise_evaluation`: intervals, sign-flip permutation
tests, FDR adjustment) of the per-user metrics averaged over the seeds (which users).

With --pretrain-data (a MovieLens folder or release) every stage is a slice of the
`transfer` run instead: the source goes through data_processing, its items are aligned to
the target's, and more models train per seed: Cloze pretraining on the source, continued
on the target's training sequences ("transfer_pretrained"), then the same fine-tuning as
the target-only model ("transfer"); and SASRec on source + target; the paired
tests then set the transfer model against the target-only pretrained + fine-tuned model,
SASRec and joint SASRec. --summary-json writes each model's mean test NDCG@10 and HR@10
(a model per key), for committing next to the docs.

--variant tests a setting chosen on validation beside the run's own, on the same seeds and
users: after each seed, only the models whose training reads a parameter group it changes
are trained again with it (named `<model>@variant`), the evaluation pipeline scores them,
and they are compared with the seed's own models (themselves, and the competitors
`evaluation.comparisons` names). E.g. the shrunk warm start on the ML-1M subset, on top of
the tuned environment's values:

    python benchmarks/race_ml100k.py --data ../shared/data/ml-1m-users-1-2999 --env '' --seeds 3 \
        --params "pretraining.mask_prob=0.41,..." \
        --variant "fine_tuning.warm_start.shrink=0.4,fine_tuning.warm_start.perturb=0.1"

Each finished seed is kept (common.FinishedSeeds): rerunning the same command after an
interruption, on the same code, resumes at the first unfinished seed; --fresh retrains.
--first-seed K trains seeds K .. K + --seeds - 1, for a seed run on another day or
machine; each model's per-seed test metrics are in the JSON (`ndcg@10_per_seed`).

    python benchmarks/race_ml100k.py --data ../shared/data/ml-100k --seeds 3 \
        --targets ../shared/data/ml-100k/recbole_loo_targets.csv \
        --pretrain-data ../shared/data/ml-1m-users-1-2999 \
        --json /tmp/transfer_ml1m_to_ml100k_details.json \
        --summary-json benchmarks/results/transfer_ml1m_to_ml100k.json

The summary is the committed figure (docs/benchmarks.md cites it); the per-user details
go to a scratch path and are not kept.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402  (common.across_seeds: the race has its own across_seeds)
from common import (  # noqa: E402
    SPLIT_DATASETS,
    FinishedSeeds,
    ScratchProject,
    arguments,
    dotlist,
    join_params,
    machine,
    peak_rss_mib,
    print_differences,
    print_table,
    run_params,
    source_param,
    stage_nodes,
    trained_seconds,
    write_json,
)

from maskrec.metrics import t_interval  # noqa: E402
from maskrec.pipeline_registry import register_pipelines  # noqa: E402
from maskrec.pipelines.evaluation.nodes import summarise_evaluation  # noqa: E402
from maskrec.registry import base_name, models, ordered  # noqa: E402

# the datasets a transfer run's source stages start from (besides SPLIT_DATASETS)
SOURCE_SEQUENCES = ("pretraining_source_sequences", "pretraining_source_valid_targets")


def stage_plan(pipeline: str, transfer: bool) -> dict[str, list[str]]:
    """Each timed stage of a seed, in the order they run: the nodes of the run's pipeline
    (`__default__`, `transfer` or `data_efficiency`) that make its models from what the
    data steps (`_data_nodes`) and the earlier stages made; a stage that starts from
    another's model (fine-tuning from pretraining) leaves that one's nodes out."""
    split, source = SPLIT_DATASETS, (*SPLIT_DATASETS, *SOURCE_SEQUENCES)
    pipelines = register_pipelines()
    plan = {
        "pretraining": stage_nodes(pipeline, ["pretrained_model"]),
        "fine_tuning": stage_nodes(
            pipeline, ["fine_tuned_model"], (*split, "pretrained_model")
        ),
        "scratch": stage_nodes(pipeline, ["scratch_model"]),
        "sasrec": stage_nodes(pipeline, ["sasrec_model"]),
    }
    # the baselines pipeline's other nodes: the classic models, random and the new films
    plan["baselines"] = [n.name for n in pipelines["baselines"].nodes if n.name not in plan["sasrec"]]  # fmt: skip
    if transfer:
        plan["source_pretraining"] = stage_nodes(pipeline, ["source_pretrained_model"], source)  # fmt: skip
        plan["target_pretraining_from_source"] = stage_nodes(pipeline, ["transfer_pretrained_model"], (*source, "source_pretrained_model"))  # fmt: skip
        plan["transfer_fine_tuning"] = stage_nodes(pipeline, ["transfer_model"], (*split, "transfer_pretrained_model"))  # fmt: skip
        plan["joint_sasrec"] = stage_nodes(pipeline, ["joint_sasrec_model"], source)
    plan["evaluation"] = [n.name for n in pipelines["evaluation"].nodes]
    return plan


RECBOLE = {  # RecBole 1.2.1 on this task (issue 5): test HR@10, NDCG@10, MRR@10
    "EASE": (0.1347, 0.0706, 0.0513), "BPR": (0.1241, 0.0673, 0.0502), "ItemKNN": (0.1145, 0.0628, 0.0472),
    "SASRec (len 200)": (0.1315, 0.0613, 0.0405), "SASRec (len 50)": (0.1220, 0.0589, 0.0402),
    "BERT4Rec (len 50)": (0.1251, 0.0596, 0.0402), "Pop": (0.0689, 0.0347, 0.0242),
}  # fmt: skip


def one_seed(
    project: ScratchProject,
    seed: int,
    transfer: bool,
    curve: bool = False,
    variant: Variant | None = None,
) -> dict:
    """Train and evaluate every model with one seed; stage wall times and peak RSS too.
    With `curve`, also the data-efficiency fractions (the `data_efficiency` run); with
    `variant`, then its models too (`Variant.run`)."""
    params = dotlist(training={"seed": seed}, baselines={"seed": seed})
    pipeline = [
        "data_efficiency" if curve else "transfer" if transfer else "__default__"
    ]
    plan = stage_plan(pipeline[0], transfer)
    if curve:
        runs = register_pipelines()
        plan["data_efficiency"] = [n.name for n in (runs["data_efficiency"] - runs["transfer"]).nodes]  # fmt: skip
    stages, memory = {}, {}
    for stage, nodes in plan.items():
        stages[stage] = project.run(pipeline, nodes, params)
        memory[stage] = peak_rss_mib()
        print(f"seed {seed}: {stage} {stages[stage]:.0f} s", file=sys.stderr, flush=True)  # fmt: skip
    per_user, stats, metrics = project.load("per_user_metrics", "model_stats", "evaluation_metrics")  # fmt: skip
    timing = training_seconds(project, transfer)
    if curve:
        metrics["data_efficiency"] = project.load("data_efficiency")
    run = {"per_user": per_user, "stats": stats, "metrics": metrics, "timing": timing,
           "stages": stages, "peak_rss_after_stage_mib": memory}  # fmt: skip
    return variant.run(project, run, pipeline, params, plan["evaluation"], transfer) if variant else run  # fmt: skip


def training_seconds(project: ScratchProject, transfer: bool) -> dict[str, dict]:
    """Each sequence model's training seconds (`trained_seconds`), a model that continues
    another's training (fine-tuning after pretraining, the transfer models after the
    source's) counting both."""
    sequence = [m.name for m in models(transfer) if m.family == "sequence"]
    histories = project.load(*(f"{name}_history" for name in sequence))
    timing = {name: trained_seconds(h) for name, h in zip(sequence, histories, strict=True)}  # fmt: skip
    for tuned, pre in (("fine_tuned", "pretrained"), ("transfer", "transfer_pretrained")):  # fmt: skip
        if tuned in timing:  # fine-tuning continues a pretraining: count both
            timing[tuned]["seconds_to_best_epoch"] += timing[pre]["seconds_to_best_epoch"]  # fmt: skip
            timing[tuned]["pretrain_seconds_per_epoch"] = timing[pre]["seconds_per_epoch"]  # fmt: skip
    if transfer:  # the source stage comes before both
        source = trained_seconds(project.load("source_pretrained_history"))
        timing["source_pretrained"] = source
        for name in ("transfer_pretrained", "transfer"):
            timing[name]["seconds_to_best_epoch"] += source["seconds_to_best_epoch"]
    return timing


class Variant:
    """A setting chosen on validation (a `--params` string), tested beside the run's own on
    the same seeds: after each seed's run, only the stages with a node that reads a
    parameter group it changes (or is downstream of one) train again with it, and the
    evaluation pipeline scores the run again. The other models are the seed's own by
    construction (same data, seed and settings, and training is deterministic on the CPU),
    so each model it retrains is compared with the seed's models on the same users:
    `<model>@variant` against the model itself and against each competitor
    `evaluation.comparisons` names for it, in the seed's paired tests and over seeds."""

    SUFFIX = "@variant"

    def __init__(self, project: ScratchProject, pipeline: str, plan: dict[str, list[str]], params: str) -> None:  # fmt: skip
        """Refused here, before any training, where the variant changes nothing, changes
        what the data steps or the evaluation read, or has a bad value."""
        self.params = params
        base, varied = project.parameters(), project.parameters(params)
        self.changed = changed = sorted(g for g in varied if base.get(g) != varied[g])
        if not changed:
            raise SystemExit(f"--variant {params!r}: changes no parameter of the run")
        run = register_pipelines()[pipeline]
        training = [n for stage, names in plan.items() if stage != "evaluation" for n in names]  # fmt: skip
        read = {f"params:{g}" for g in changed} & run.inputs()
        affected = {n.name for n in run.from_inputs(*read).nodes} if read else set()
        # groups no node of this run reads (the transfer stages in a target-only run) are moot
        outside = sorted(g for g in changed if any(f"params:{g}" in n.inputs for n in run.nodes if n.name not in training))  # fmt: skip
        if outside:
            raise SystemExit(f"--variant {params!r}: changes {', '.join(outside)}, which the data steps or the "
                             "evaluation read: run the race twice instead")  # fmt: skip
        if not affected:
            raise SystemExit(f"--variant {params!r}: changes {', '.join(changed)}, which no node of the run reads")  # fmt: skip
        # whole stages: a stage's slice runs on its own (its in-memory datasets made inside it)
        self.stages = {stage: names for stage, names in plan.items() if stage != "evaluation" and affected & set(names)}  # fmt: skip
        self.nodes = list(dict.fromkeys(n for names in self.stages.values() for n in names))  # fmt: skip
        made = {
            output for n in run.nodes if n.name in self.nodes for output in n.outputs
        }
        self.retrained = [m.name for m in models(pipeline != "__default__") if m.dataset in made]  # fmt: skip
        print(f"--variant {params!r} changes {', '.join(changed)}: retrains {', '.join(self.retrained)}", file=sys.stderr)  # fmt: skip

    def name(self, model: str) -> str:
        return model + self.SUFFIX

    def comparing(self, evaluation):
        """`evaluation` (the parameters) with the variant's pairs added to its comparisons:
        each retrained model against itself and against the competitors named for it."""
        pairs = [(self.name(m), m) for m in self.retrained]
        pairs += [
            (self.name(a), b) for a, b in evaluation.comparisons if a in self.retrained
        ]
        return evaluation.model_copy(update={"comparisons": [*evaluation.comparisons, *pairs]})  # fmt: skip

    def describe(self) -> dict:
        return {"params": self.params, "changes": self.changed, "retrains": self.retrained, "stages": self.stages}  # fmt: skip

    def run(self, project: ScratchProject, run: dict, pipeline: list[str], params: str, evaluation_nodes: list[str], transfer: bool) -> dict:  # fmt: skip
        """The seed's `run` (already evaluated) with the variant's models added: trained,
        scored by the evaluation pipeline, and summarised with the seed's models."""
        varied = join_params(params, self.params)
        seconds = sum(project.run(pipeline, names, varied) for names in self.stages.values())  # fmt: skip
        seconds += project.run(pipeline, evaluation_nodes, varied)
        per_user, stats = project.load("per_user_metrics", "model_stats")
        timing = training_seconds(project, transfer)
        ours = per_user["model"].map(base_name).isin(self.retrained)
        rows = per_user[ours].assign(model=per_user.loc[ours, "model"].map(self.name))
        merged = pd.concat([run["per_user"], rows], ignore_index=True)
        stats = {**run["stats"], **{self.name(n): s for n, s in stats.items() if base_name(n) in self.retrained}}  # fmt: skip
        evaluation = self.comparing(project.parameters(varied)["evaluation"])
        metrics = run["metrics"] | summarise_evaluation(merged, stats, evaluation)
        timing = run["timing"] | {self.name(m): timing[m] for m in self.retrained if m in timing}  # fmt: skip
        return run | {"per_user": merged, "stats": stats, "metrics": metrics, "timing": timing,
                      "stages": run["stages"] | {"variant": seconds}}  # fmt: skip


NEW_ITEM_COLUMNS = (
    "cold_only_hr@10",
    "warm_ndcg@10",
    "new_items_per_top10_warm",
    "new_films_ordered_by_model",
)


def new_item_metrics(frames: list[pd.DataFrame]) -> dict:
    """Targets without training interactions (issue 27), means over seeds: HR@10 and
    NDCG@10 over the whole catalogue (`cold_*`) and among such items only
    (`cold_only_*`), NDCG@10 of the other targets (`warm_ndcg@10`) and how many such items
    their top 10 holds; empty where no target lacks interactions."""
    if "among_untrained_ndcg10" not in frames[0] or frames[0]["among_untrained_ndcg10"].isna().all():  # fmt: skip
        return {}
    cold = [f[f["among_untrained_ndcg10"].notna()] for f in frames]
    warm = [f[f["among_untrained_ndcg10"].isna()] for f in frames]
    mean = lambda parts, column: float(np.mean([p[column].mean() for p in parts]))  # noqa: E731
    return {"cold_users": len(cold[0]), "cold_hr@10": mean(cold, "hr@10"), "cold_ndcg@10": mean(cold, "ndcg@10"),
            "cold_only_hr@10": mean(cold, "among_untrained_hr10"), "cold_only_ndcg@10": mean(cold, "among_untrained_ndcg10"),
            "warm_ndcg@10": mean(warm, "ndcg@10"), "new_items_per_top10_warm": mean(warm, "untrained_in_top10")}  # fmt: skip


def across_seeds(runs: list[dict], evaluation) -> tuple[dict, dict]:
    """Per model: mean ± std over seeds of the test metrics, seen-included metrics and
    timings; and the evaluation summary of per-user metrics averaged over the seeds."""
    models = {}
    for name in ordered(runs[0]["stats"]):
        entry = {}
        for metric in ("hr@10", "ndcg@10", "mrr@10"):
            values = np.array([r["per_user"].loc[r["per_user"]["model"] == name, metric].mean() for r in runs])  # fmt: skip
            entry[metric] = float(values.mean())
            entry[f"{metric}_std"] = (
                float(values.std(ddof=1)) if len(values) > 1 else 0.0
            )
            entry[f"{metric}_per_seed"] = values.tolist()  # runs on other days merge
        first = runs[0]["metrics"]["models"][name]["all"]
        entry["ndcg@10_ci_seed0"] = [
            first["ndcg@10"]["ci_low"],
            first["ndcg@10"]["ci_high"],
        ]
        entry["hr@10_ci_seed0"] = [first["hr@10"]["ci_low"], first["hr@10"]["ci_high"]]
        cold = [r["per_user"].loc[(r["per_user"]["model"] == name) & r["per_user"]["is_cold_item"]] for r in runs]  # fmt: skip
        if len(cold[0]):  # test targets among the held-out newest items
            per_seed = {m: [float(c[m].mean()) for c in cold] for m in ("hr@10", "ndcg@10")}  # fmt: skip
            entry["cold_items"] = {"users": len(cold[0]), **{m: float(np.mean(v)) for m, v in per_seed.items()}, "per_seed": per_seed}  # fmt: skip
        entry.update(new_item_metrics([r["per_user"][r["per_user"]["model"] == name] for r in runs]))  # fmt: skip
        stats = [r["stats"][name] for r in runs]
        entry["valid_ndcg@10"] = float(np.mean([s["valid_ndcg@10"] for s in stats]))
        if "new_films_ordered_by_model" in stats[0]:  # films it met in its source, say
            entry["new_films_ordered_by_model"] = max(s["new_films_ordered_by_model"] for s in stats)  # fmt: skip
        if "test_ndcg@10_seen_included" in stats[0]:
            entry["seen_included"] = {
                m: float(np.mean([s[f"test_{m}_seen_included"] for s in stats])) for m in ("hr@10", "ndcg@10")
            }  # fmt: skip
        if name in runs[0]["timing"]:
            for key in runs[0]["timing"][name]:
                entry[key] = float(np.mean([r["timing"][name][key] for r in runs]))
        models[name] = entry
    columns = [c for c in runs[0]["per_user"].columns if "@" in c or c == "rank" or "untrained" in c]  # fmt: skip
    per_user = pd.concat([r["per_user"] for r in runs]).groupby(["model", "user_id"], sort=False)  # fmt: skip
    averaged = per_user[columns].mean().join(per_user[["is_cold", "is_cold_item", "history_length"]].first()).reset_index()  # fmt: skip
    stats = {name: {**runs[0]["stats"][name], "valid_ndcg@10": models[name]["valid_ndcg@10"]} for name in models}  # fmt: skip
    return models, summarise_evaluation(averaged, stats, evaluation)


def per_seed_differences(runs: list[dict]) -> dict:
    """Every comparison the evaluation tests, seed by seed: each seed's difference of mean
    test NDCG@10 with that seed's paired test over users, and a t interval over the seeds
    (the seeds, not users averaged over seeds, are the replicates of training randomness);
    on all users, and per user group, so seeds run apart merge (merge_seeds.py)."""

    indexed = [ndcg_tests(r) for r in runs]
    seeds = [{"models": {name: {"ndcg@10": float(r["per_user"].loc[r["per_user"]["model"] == name, "ndcg@10"].mean())} for name in r["stats"]},
              "paired_tests": {f"{m} - {c}": t for (m, c, g), t in tests.items() if g == "all"}}
             for r, tests in zip(runs, indexed, strict=True)]  # fmt: skip
    pairs = [(m, c) for m, c, g in indexed[0] if g == "all"]
    differences = common.across_seeds(seeds, pairs, "ndcg@10", ("ndcg@10",))["differences"]  # fmt: skip
    # every other user group (`a - b [history<=30]`, `[cold]`: the sparse and new users):
    # a seed's difference is its paired test's mean difference over the group's users
    for m, c, g in (key for key in indexed[0] if key[2] != "all"):
        tests = [seed_tests[(m, c, g)] for seed_tests in indexed]
        per_seed = [float(t["mean_difference"]) for t in tests]
        differences[f"{m} - {c} [{g}]"] = {"per_seed": per_seed, "mean": float(np.mean(per_seed)), "t_interval_95": t_interval(per_seed), "paired_test_per_seed": tests}  # fmt: skip
    return differences


def ndcg_tests(run: dict) -> dict[tuple[str, str, str], dict]:
    """A seed's paired tests of test NDCG@10, by (model, competitor, user group)."""
    fields = ("mean_difference", "ci_low", "ci_high", "p_value")
    return {(t["model"], t["competitor"], t["group"]): {k: t[k] for k in fields} for t in run["metrics"]["paired_tests"] if t["metric"] == "ndcg@10"}  # fmt: skip


def curve_across_seeds(runs: list[dict]) -> dict | None:
    """The data-efficiency curve: per model and fraction, test NDCG@10 and HR@10 averaged
    over the seeds that trained the fractions (seed 0's 95% interval kept), and NDCG@10 at
    10% of the users as a share of 100%."""
    curves = [r["metrics"]["data_efficiency"]["curve"] for r in runs if "data_efficiency" in r["metrics"]]  # fmt: skip
    if not curves:
        return None
    averaged = {}
    for model, points in curves[0].items():
        averaged[model] = [
            {"fraction": p["fraction"],
             **{m: float(np.mean([c[model][i][m]["mean"] for c in curves])) for m in ("ndcg@10", "hr@10")},
             "ndcg@10_ci_seed0": [p["ndcg@10"]["ci_low"], p["ndcg@10"]["ci_high"]]}
            for i, p in enumerate(points)
        ]  # fmt: skip
    kept = {m: next(p["ndcg@10"] for p in pts if p["fraction"] == 0.1) / next(p["ndcg@10"] for p in pts if p["fraction"] == 1.0)
            for m, pts in averaged.items()}  # fmt: skip
    return {"curve": averaged, "ndcg@10_at_10pct_over_100pct": kept}


def main() -> None:
    parser = arguments(__doc__, "race_run", env="ml100k")
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda", "auto"])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--first-seed", type=int, default=0, help="the first seed: the run trains seeds first-seed .. first-seed + seeds - 1 (one seed of a study on another day or machine)")  # fmt: skip
    parser.add_argument("--targets", default=None, help="a CSV like recbole_loo_targets.csv (user_id,valid_item,test_item)")  # fmt: skip
    parser.add_argument("--pretrain-data", default=None, help="a MovieLens folder or release to pretrain on (the transfer run)")  # fmt: skip
    parser.add_argument("--eval-batch", type=int, default=64, help="users per scoring batch (memory vs speed)")  # fmt: skip
    parser.add_argument("--summary-json", default=None, help="each model's mean test NDCG@10 / HR@10, a model per key")  # fmt: skip
    parser.add_argument("--data-efficiency", action="store_true", help="seed 0 also retrains on 5-50%% of the training users (with --pretrain-data)")  # fmt: skip
    parser.add_argument("--fresh", action="store_true", help="retrain seeds that an earlier run of the same command finished")  # fmt: skip
    parser.add_argument("--variant", default=None, help="a `--params` string chosen on validation: each seed also retrains the models it changes, tested beside the seed's own (`<model>@variant`)")  # fmt: skip
    args = parser.parse_args()
    if args.first_seed < 0 or args.seeds < 1:
        raise SystemExit(f"--first-seed {args.first_seed} --seeds {args.seeds}: the first seed is 0 or more, and at least one seed runs")  # fmt: skip
    if args.data_efficiency and not args.pretrain_data:
        raise SystemExit("--data-efficiency compares source pretraining with none: it needs --pretrain-data")  # fmt: skip
    if args.data_efficiency and args.variant:
        raise SystemExit("--variant is not taken with --data-efficiency (the fractions would need retraining too)")  # fmt: skip

    transfer = args.pretrain_data is not None
    settings = {
        "data_split": {"cold_user_fraction": 0.0, **({"strategy": "given"} if args.targets else {})},
        "training": {"device": args.device, "checkpoint_dir": None, "scoring_batch_size": args.eval_batch},
        **({"split_targets": str(Path(args.targets).resolve())} if args.targets else {}),
        **({"pretraining_source": source_param(args.pretrain_data)} if transfer else {}),
    }  # fmt: skip
    params = run_params(args, **settings)  # the race's settings, then --params
    project = ScratchProject(Path(args.workdir), args.env or None, params)
    evaluation = project.parameters()["evaluation"]  # a bad value stops here
    pipeline = ["transfer" if transfer else "__default__"]
    variant = Variant(project, pipeline[0], stage_plan(pipeline[0], transfer), args.variant) if args.variant else None  # fmt: skip
    if variant:
        evaluation = variant.comparing(evaluation)
    data_nodes = [n.name for n in _data_nodes(transfer)]
    data_seconds = project.run(pipeline, data_nodes)
    alignment = project.load("item_alignment_report") if transfer else None
    kept = FinishedSeeds(Path(args.workdir), {**vars(args), "seeds": None, "first_seed": None, "json": None, "summary_json": None}, args.fresh)  # fmt: skip
    seeds = list(range(args.first_seed, args.first_seed + args.seeds))
    # the data-efficiency fractions cost about as much again as the run: seed 0 trains them
    runs = [kept.get(seed, lambda s: one_seed(project, s, transfer, args.data_efficiency and s == 0, variant)) for seed in seeds]  # fmt: skip
    results, summary = across_seeds(runs, evaluation)

    rows = [
        {"model": name, "HR@10": f"{m['hr@10']:.4f} ± {m['hr@10_std']:.4f}", "NDCG@10": f"{m['ndcg@10']:.4f} ± {m['ndcg@10_std']:.4f}",
         "MRR@10": f"{m['mrr@10']:.4f}", "NDCG@10 95% CI (seed 0)": "[{:.4f}, {:.4f}]".format(*m["ndcg@10_ci_seed0"]),
         "s to best": f"{m['seconds_to_best_epoch']:.0f}" if "seconds_to_best_epoch" in m else "–",
         "valid NDCG@10": f"{m['valid_ndcg@10']:.4f}"}
        for name, m in results.items()
    ]  # fmt: skip
    tests = [t for t in summary["paired_tests"] if t["users"]]
    curve = curve_across_seeds(runs)
    stages = {k: float(np.mean([r["stages"][k] for r in runs if k in r["stages"]])) for k in runs[0]["stages"]}  # fmt: skip
    print(
        f"\nmaskrec, test split, seen items excluded, mean ± std over seed(s) {seeds}"
    )
    print_table(rows, list(rows[0]))
    if args.targets:  # RecBole's numbers are for its own ML-100K targets only
        print("\nRecBole 1.2.1 on the same task (issue 5):")
        print_table([{"model": k, "HR@10": v[0], "NDCG@10": v[1], "MRR@10": v[2]} for k, v in RECBOLE.items()],
                    ["model", "HR@10", "NDCG@10", "MRR@10"])  # fmt: skip
    print("\nsequence models with seen items included (RecBole's way):")
    print_table([{"model": k, **v["seen_included"]} for k, v in results.items() if "seen_included" in v],
                ["model", "hr@10", "ndcg@10"])  # fmt: skip
    print("\npaired tests (per-user NDCG@10 averaged over the seeds; p: sign-flip permutation, p_adjusted: BH over the table):")  # fmt: skip
    print_table(tests, ["model", "competitor", "group", "users", "mean_difference", "ci_low", "ci_high", "p_value", "p_adjusted"])  # fmt: skip
    differences = per_seed_differences(runs)
    print_differences(
        {"users: all unless [group]": {"differences": differences}}, "ndcg@10"
    )
    cold = {k: v["cold_items"] for k, v in results.items() if "cold_items" in v}
    if cold:
        print(
            "\ntest targets among the newest items, held out of training (cold items):"
        )
        print_table([{"model": k, **v, **{m: round(results[k].get(m, float("nan")), 4) for m in NEW_ITEM_COLUMNS}} for k, v in cold.items()],
                    ["model", "users", "hr@10", "ndcg@10", *NEW_ITEM_COLUMNS])  # fmt: skip
    if curve:
        print("\ndata efficiency, test NDCG@10 by share of training users (seed 0):")
        columns = [
            f"{100 * p['fraction']:g}%" for p in next(iter(curve["curve"].values()))
        ]
        print_table([{"model": m, **{f"{100 * p['fraction']:g}%": round(p["ndcg@10"], 4) for p in pts},
                      "10% / 100%": round(curve["ndcg@10_at_10pct_over_100pct"][m], 3)}
                     for m, pts in curve["curve"].items()], ["model", *columns, "10% / 100%"])  # fmt: skip
    if alignment:
        print("\nitem alignment:", {k: v for k, v in alignment.items() if not isinstance(v, dict)})  # fmt: skip
    print(f"\ndata steps {data_seconds:.1f} s; stage wall seconds (mean over seeds):", {k: round(v, 1) for k, v in stages.items()})  # fmt: skip
    print("peak RSS after each stage, seed 0 (MiB):", {k: round(v) for k, v in runs[0]["peak_rss_after_stage_mib"].items()})  # fmt: skip
    print(f"peak RSS {peak_rss_mib():.0f} MiB, device {args.device}")
    write_json(args.json, {
        "machine": machine(), "device": args.device, "seeds": args.seeds, "seed_list": seeds, "targets": args.targets, "env": args.env,
        "pretrain_data": args.pretrain_data, "runtime_params": params, "models": results, "paired_tests": tests,
        "differences_over_seeds": differences, "variant": variant.describe() if variant else None,
        "item_alignment": alignment, "data_efficiency": curve, "data_seconds": data_seconds, "stage_seconds": stages, "stage_seconds_per_seed": [r["stages"] for r in runs],
        "peak_rss_mib": peak_rss_mib(), "peak_rss_after_stage_mib": [r["peak_rss_after_stage_mib"] for r in runs],
    })  # fmt: skip
    write_json(args.summary_json, {
        name: {"ndcg@10": m["ndcg@10"], "hr@10": m["hr@10"], "ndcg@10_std": m["ndcg@10_std"],
               "hr@10_std": m["hr@10_std"], "seeds": args.seeds}
        for name, m in results.items()
    })  # fmt: skip


def _data_nodes(transfer: bool):
    """The data steps of the run's pipeline: the target's, and in a transfer run the
    source's namespace (its cleaning, the item alignment and its sequences)."""
    pipelines = register_pipelines()
    steps = pipelines["data_processing"] + pipelines["data_split"]
    if transfer:
        run = pipelines["transfer"]
        steps = steps + run.only_nodes_with_namespaces(["pretraining_source"])
    return steps.nodes


if __name__ == "__main__":
    main()
