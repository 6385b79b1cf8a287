"""The fair fight: every compared model tuned with the same budget on validation, then
the tuned models, and the shipped configuration, on the test split, seed by seed.

    python benchmarks/tuned.py --data sample --seeds 0 1 2 \\
        --params "tuning.trials=8,tuning.epochs=20" --json benchmarks/results/tuned_sample.json

Phase 1, validation only: `kedro run --pipelines tuning` in a scratch copy of the project
(its studies, trials and the winners as the scratch project's conf/tuned). This script
reads nothing of the test split in this phase, and the tuning pipeline cannot (its inputs).
Phase 2, once the winners are fixed: for each seed (`training.seed`), the default run
twice, with the tuned environment and with the shipped `conf/base`, each evaluated by
the evaluation pipeline (the test split's one reader). The tuned runs take the study's
--params less every key the environment sets (`common.under_environment`: Kedro puts
runtime parameters over environments, and before 2026-12-06 a key both given and tuned
ran at the given value in phase 2, not at the winner). Reported: each model's test
NDCG@10 and HR@10 (means over seeds at the top level of the JSON, per seed below), the
per-seed differences fine_tuned - sasrec and fine_tuned - scratch with each seed's paired
test, and a t interval over the seeds of each difference. After each configuration's
runs the `seeds` pipeline compares them (its `seed_comparison` in the JSON): every
comparison of `evaluation.comparisons` per seed, on all users and on each user group
(users with <= 30 training events: issue 26's moonshot), with its t interval over seeds.

Rerunning the same command after an interruption resumes (common.tuned_project): the
study goes on after its last finished trial (the trial it stopped in from that trial's
last finished epoch), and each default run already finished is read back; --fresh starts
over. This is how a study too long for one sitting (the ML-1M subset on two cores) runs
in pieces. The scratch project lives in --workdir, which a new machine does not have:
--state DIR (a folder under benchmarks/results, committed as the study goes) holds the
studies and the finished runs instead, so the same command from a checkout of the same
commit resumes there, after the last trial the folder recorded (a trial cut short starts
again at its point; its checkpoints stay in the workdir). --no-shipped leaves out the
shipped configuration's runs (half of phase 2); a later run of the same command without
it adds them to what was kept.

With --pretrain-data (a MovieLens folder or release: the transfer run's source) phase 1
also tunes the transfer run's models with the same budget (`--pipelines transfer_tuning`,
one model a run: the source-pretrained + fine-tuned model, then SASRec on source +
target), and phase 2 is the transfer run (every target-only model, the transfer ones,
evaluation), which adds the pairs transfer - fine_tuned and transfer - joint_sasrec.

--models tunes only the named target-only models, one a run (Kedro's --params takes no
comma inside a list): the others train in phase 2 at what the run's configuration holds
(for instance a winner an earlier study found, given with --params), so a control's
search can be run again under another pruner or cap without tuning the rest again.

--env is not taken: the tuned environment is written over `conf/base` (Kedro stacks one
environment on base), so the study runs on `conf/base` with --params.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (  # noqa: E402
    CONFIGURATION_LABELS,
    ScratchProject,
    across_seeds,
    configurations,
    print_differences,
    print_seeds,
    print_table,
    saved_version,
    source_param,
    study_seconds,
    tuned_project,
    under_environment,
    write_json,
)

from maskrec.params import RANKING_TUNED, TRANSFER_TUNED  # noqa: E402

PAIRS = (("fine_tuned", "sasrec"), ("fine_tuned", "scratch"))
TRANSFER_PAIRS = (("transfer", "fine_tuned"), ("transfer", "joint_sasrec"))
METRICS = ("ndcg@10", "hr@10")


def evaluated(project: ScratchProject, env: str | None, seed: int, source: str | None, pairs) -> dict:  # fmt: skip
    """The default run (the transfer run from `source`) under `env` with
    `training.seed=seed`: each model's test metrics and validation NDCG@10, the paired
    tests of `pairs` on all users, and the version its evaluation was saved as."""
    runner = under_environment(project, env)
    if source is None:
        seconds = runner.run(["__default__"], params=f"training.seed={seed}")
    else:
        seconds = runner.run(["transfer"], params=f"training.seed={seed},pretraining_source={source}")  # fmt: skip
    metrics = runner.load("evaluation_metrics")
    models = {name: {m: float(v["all"][m]["mean"]) for m in METRICS} | {"valid_ndcg@10": v.get("valid_ndcg@10")}
              for name, v in metrics["models"].items()}  # fmt: skip
    tests = {f"{t['model']} - {t['competitor']}": {k: t[k] for k in ("mean_difference", "ci_low", "ci_high", "p_value")}
             for t in metrics["paired_tests"] if t["group"] == "all" and t["metric"] == "ndcg@10"
             and (t["model"], t["competitor"]) in pairs}  # fmt: skip
    return {"models": models, "paired_tests": tests, "seconds": seconds, "version": saved_version(runner)}  # fmt: skip


def compared(project: ScratchProject, runs: list[dict]) -> dict:
    """The `seeds` pipeline over one configuration's runs, one per seed (the newest it
    reads is the configuration's last run, so a resumed benchmark compares the same)."""
    runner = ScratchProject(project.folder, None, project.params, fresh=False)
    runner.run(["seeds"], params=f"seeds.runs={len(runs)},seeds.until={runs[-1]['version']}")  # fmt: skip
    return runner.load("seed_comparison")


def print_groups(comparisons: dict[str, dict], pairs) -> None:
    """`pairs`' differences per user group (not all users), per seed with a t interval."""
    rows = [{"setting": label, "pair": f"{d['model']} - {d['competitor']}", "group": f"{d['group']} ({d['users']})",
             "per seed": " ".join(f"{v:+.4f}" for v in d["per_seed"]), "mean": f"{d['mean']:+.4f}",
             "95% over seeds": "–" if d["t_interval_95"] is None else "[{:+.4f}, {:+.4f}]".format(*d["t_interval_95"])}
            for label, c in comparisons.items() for d in c["differences"]
            if (d["model"], d["competitor"]) in pairs and d["group"] != "all"]  # fmt: skip
    print("\nthe same differences in user groups:")
    print_table(rows, list(rows[0]) if rows else ["setting"])


def main() -> None:
    args, params, project, tuning, kept = tuned_project(__doc__, "tuned", transfer=True, models=RANKING_TUNED)  # fmt: skip
    source = source_param(args.pretrain_data) if args.pretrain_data else None
    pairs = PAIRS + (TRANSFER_PAIRS if source else ())

    # phase 1: validation only
    if args.models:  # one model a run; the last run writes every tuned model's winners
        tuning_seconds = sum(project.run(["tuning"], params=f"tuning.models=[{model}]") for model in args.models)  # fmt: skip
    else:
        tuning_seconds = project.run(["tuning"])
    if source:  # the transfer models, one a run (Kedro's --params takes no list of two)
        for model in TRANSFER_TUNED:
            tuning_seconds += project.run(["transfer_tuning"], params=f"pretraining_source={source},tuning.models=[{model}]")  # fmt: skip
    summary = project.load("tuning_summary")
    environment = (project.folder / "conf/tuned/parameters.yml").read_text()

    # phase 2
    runs = configurations(args, kept, lambda env, seed: evaluated(project, env, seed, source, pairs))  # fmt: skip
    comparisons = {label: compared(project, done) for label, done in runs.items()}
    result = {label: across_seeds(done, pairs, "ndcg@10", METRICS) for label, done in runs.items()}  # fmt: skip

    for label, done in runs.items():
        print_seeds(CONFIGURATION_LABELS[label], done, args.seeds, "ndcg@10")
    print_differences(result, "ndcg@10")
    print_groups(comparisons, pairs)
    print("\ntuning (validation only):")
    print_table([{"model": m, "best valid NDCG@10": round(s.get("valid_ndcg@10", float("nan")), 4), "trials": s["trials"],
                  "epochs": s["epochs"], "CPU s": round(s["seconds"])} for m, s in summary.items()],
                ["model", "best valid NDCG@10", "trials", "epochs", "CPU s"])  # fmt: skip
    write_json(args.json, {
        **{name: values for name, values in result["tuned"]["models"].items()},
        "budget": {"trials": tuning.trials, "epochs": tuning.epochs, "pretraining_epochs": tuning.pretraining_epochs,
                   "pruner": tuning.pruner.model_dump(), "models": args.models or tuning.models, "space": tuning.model_dump()["space"]},
        "tuning": summary, "tuning_seconds": study_seconds(summary, tuning_seconds), "environment": environment,
        "pretrain_data": args.pretrain_data, "seeds": args.seeds, "tuned": result["tuned"], "shipped": result.get("shipped"),
        "runs": runs, "seed_comparison": comparisons, "runtime_params": params,
    })  # fmt: skip


if __name__ == "__main__":
    main()
