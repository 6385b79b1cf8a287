"""Stopping rules replayed on recorded validation curves: for each rule, where each recorded
run would stop and which epoch it would keep, without training again.

    python benchmarks/stopping_replay.py --histories RACE_WORKDIR [...] --env ml100k \\
        --grid "" "schedule.min_improvement=0.01,pretraining.schedule.patience=20,fine_tuning.schedule.patience=8" \\
        --json benchmarks/results/stopping_replay_ml100k.json

A record is a `<model>_history.csv` the training nodes write (`data/08_reporting`, one
version folder per run), found anywhere under each --histories folder (a project, or a
`race_ml100k.py --workdir`). --env and --params say how the runs were configured; each grid
entry is a `kedro run --params` string over them (`""`: as they ran). Each model's stage is
resolved as `kedro run` resolves it (`maskrec.config.load_parameters`) and its schedule
replayed by `maskrec.training.loop.replay_stopping`, which takes `fit`'s own decisions.

A grid entry may change a stage's stopping rule only (`schedule.patience`,
`min_improvement`, `smoothing`, `min_epochs`): anything else in any parameter group, the
epoch cap included (the learning rate decays over it), trains other models, which a replay
cannot show; it is refused, naming the parameter. The `""` entry must
reproduce every record (where it stopped, the epoch it kept); a record it does not
reproduce was made under other settings, and is refused by file.

For each rule and record: the epochs it would train and the epoch it would keep beside the
record's, or "past the record" where the rule would train longer than the run did (a run
that starts from a model the rule changes, fine-tuning from a pretraining that would keep
another epoch, is marked `after_changed_model`: its record cannot say); and the
seconds those epochs took in the recorded run (its `seconds` column: each epoch with its
validation; a stage's setup is not in a history). A rule that keeps every record's epoch
trains the same models (CPU training is deterministic) in the epochs it reports, and, on
the machine and day of the records, in about the seconds it reports. Validation only:
nothing here reads a test metric.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ROOT, join_params, kedro_params, print_table, write_json  # noqa: E402

# the parameter group (resolved stage) each history's model trains under
MODEL_STAGES = {
    "pretrained": "pretraining", "fine_tuned": "fine_tuning", "scratch": "scratch", "sasrec": "sasrec",
    "source_pretrained": "transfer_pretraining", "transfer_pretrained": "transfer_continuation",
    "transfer": "transfer_fine_tuning", "joint_sasrec": "joint_sasrec",
}  # fmt: skip
# what a replay can judge: the rule that ends a run, not anything that changes its epochs
STOPPING = ("patience", "min_improvement", "smoothing", "min_epochs")
# the model each one starts from: where a rule changes that one, its own record says nothing
STARTS_FROM = {"fine_tuned": "pretrained", "transfer_pretrained": "source_pretrained", "transfer": "transfer_pretrained"}  # fmt: skip


def records(folders: list[str]) -> list[tuple[str, str, pd.DataFrame, str]]:
    """(file, model, history, folder) for every `<model>_history.csv` under `folders`, in
    order of folder, model and version (a race's seeds run in that order)."""
    found = []
    for folder in folders:
        # a versioned dataset is a folder of that name; its versions are the files inside
        for path in sorted(
            p for p in Path(folder).rglob("*_history.csv") if p.is_file()
        ):
            history = pd.read_csv(path)
            missing = [c for c in ("epoch", "best_epoch") if c not in history]
            if not {"ndcg@10", "rmse"} & set(history):  # the validation score replayed
                missing.append("ndcg@10 (or rmse)")
            if missing:
                raise SystemExit(f"{path}: not a training history: no column {', '.join(missing)}")  # fmt: skip
            if history.empty:
                raise SystemExit(f"{path}: not a training history: no rows")
            model = str(history["model"].iloc[0]) if "model" in history else path.stem.removesuffix("_history")  # fmt: skip
            found.append((str(path), model, history, folder))
    return found


def resolved(env: str | None, params: str, entry: str) -> dict:
    """Every parameter group, each stage resolved, under --params and one grid entry."""
    from maskrec.config import load_parameters

    return load_parameters(ROOT / "conf", env or None, kedro_params(join_params(params, entry)))  # fmt: skip


def schedules(groups: dict) -> dict:
    """The schedule of each stage a history can come from."""
    return {stage: groups[stage].schedule for stage in set(MODEL_STAGES.values()) if stage in groups}  # fmt: skip


def check_only_stopping(entry: str, recorded: dict, ruled: dict) -> None:
    """Refuse a grid entry that changes anything but a stage's stopping rule (any group,
    any stage's architecture, loss or epoch cap), naming the first such parameter."""
    from maskrec.tracking import flatten

    before, after = flatten(recorded), flatten(ruled)  # {"group.key...": value}
    for path in sorted(set(before) | set(after)):
        old, new = before.get(path), after.get(path)
        *_, parent, field = ["", *path.split(".")]
        if old != new and not (parent == "schedule" and field in STOPPING):
            raise SystemExit(
                f'--grid "{entry}": changes {path} ({old} -> {new}); '
                f"a replay judges the stopping rule only (schedule.{', schedule.'.join(STOPPING)})"
            )  # fmt: skip


def replay(found: list, ruled: dict) -> list[dict]:
    """Every record replayed under one grid entry's schedules."""
    from maskrec.training.loop import replay_stopping

    rows = []
    for path, model, history, folder in found:
        stage = MODEL_STAGES[model]
        kept = history["best_epoch"].iloc[-1]
        outcome = replay_stopping(history.to_dict("records"), ruled[stage])
        rows.append({
            "file": path, "model": model, "stage": stage,
            "recorded_epochs": int(history["epoch"].max()), "recorded_kept": int(kept),
            "epochs": None if outcome is None else outcome[0], "kept": None if outcome is None else outcome[1],
            "recorded_seconds": epoch_seconds(history), "seconds": None if outcome is None else epoch_seconds(history, outcome[0]),
            "folder": folder,
        })  # fmt: skip
    mark_changed_starts(rows)
    return rows


def mark_changed_starts(rows: list[dict]) -> None:
    """`after_changed_model` on each row whose model starts from one the rule changes (it
    keeps another epoch, or trains past its record) in the same --histories folder, and so
    on down the chain: that run would start from other weights, so its replayed epochs are
    not a prediction. Per folder, not per seed: a folder holding several seeds' runs marks
    every seed's, which errs on the side of saying less."""
    changed = {(r["folder"], r["model"]) for r in rows if r["epochs"] is None or r["kept"] != r["recorded_kept"]}  # fmt: skip
    for _ in STARTS_FROM:  # the longest chain is as long as the mapping
        for r in rows:
            if (r["folder"], STARTS_FROM.get(r["model"])) in changed:
                changed.add((r["folder"], r["model"]))
    for r in rows:
        r["after_changed_model"] = (r["folder"], STARTS_FROM.get(r["model"])) in changed


def epoch_seconds(history: pd.DataFrame, last: int | None = None) -> float | None:
    """The wall seconds the run's epochs took up to epoch `last` (all: None), each with its
    validation, as the run recorded them (`seconds`; the start's scoring, epoch 0, when it
    was a candidate); None for a record without them. The stage's own setup (data, the
    model, saving it) is not in a history: a replay's seconds are the epochs' alone."""
    if "seconds" not in history:
        return None
    ran = history if last is None else history[history["epoch"] <= last]
    return round(float(ran["seconds"].sum()), 1)


def total(rows: list[dict], key: str) -> float | None:
    """The rows' `key` summed; None if any row lacks it."""
    values = [r[key] for r in rows]
    return None if any(v is None for v in values) else round(sum(values), 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    parser.add_argument("--histories", nargs="+", required=True, help="folders holding <model>_history.csv records")  # fmt: skip
    parser.add_argument("--env", default="", help="the Kedro environment the runs used ('' = base)")  # fmt: skip
    parser.add_argument("--params", default="", help="the runs' runtime parameters, as `kedro run --params`")  # fmt: skip
    parser.add_argument("--grid", nargs="+", default=[""], help="stopping rules, each a --params string")  # fmt: skip
    parser.add_argument("--json", default=None)
    args = parser.parse_args()

    found = [
        r for r in records(args.histories) if r[1] in MODEL_STAGES
    ]  # (file, model, history, folder)
    if not found:
        raise SystemExit(f"no <model>_history.csv of {', '.join(MODEL_STAGES)} under {', '.join(args.histories)}")  # fmt: skip
    recorded = resolved(args.env, args.params, "")
    # the runs' own rule must give back every record, or the records ran under other settings
    for row in replay(found, schedules(recorded)):
        replayed, ran = (row["epochs"], row["kept"]), (row["recorded_epochs"], row["recorded_kept"])  # fmt: skip
        if replayed != ran:
            raise SystemExit(
                f"{row['file']}: --env/--params do not reproduce this record: its own rule gives "
                f"{row['epochs']} epochs keeping {row['kept']}, the record ran {row['recorded_epochs']} "
                f"keeping {row['recorded_kept']}"
            )  # fmt: skip
    results = []
    for entry in args.grid:
        ruled = resolved(args.env, args.params, entry)
        check_only_stopping(entry, recorded, ruled)
        rows = replay(found, schedules(ruled))
        complete = all(r["epochs"] is not None for r in rows)
        same = complete and all(r["kept"] == r["recorded_kept"] for r in rows)
        trained = sum(r["epochs"] for r in rows) if complete else None
        recorded_epochs = sum(r["recorded_epochs"] for r in rows)
        seconds, recorded_seconds = (
            total(rows, "seconds"),
            total(rows, "recorded_seconds"),
        )
        results.append({"rule": entry, "same_kept_epochs": same, "epochs": trained, "recorded_epochs": recorded_epochs,
                        "seconds": seconds, "recorded_seconds": recorded_seconds, "runs": rows})  # fmt: skip
        print(f'\n--grid "{entry}": {"every run keeps its epoch" if same else "NOT the same models"}; '
              f"epochs {trained if complete else 'past the record'} of {recorded_epochs} recorded"
              + ("" if seconds is None else f"; their seconds {seconds:.0f} of {recorded_seconds:.0f}")
              + ("; rows after_changed_model start from a model the rule changes: not predictions"
                 if any(r["after_changed_model"] for r in rows) else ""))  # fmt: skip
        print_table([{**r, "file": Path(r["file"]).parent.name, "epochs": r["epochs"] if r["epochs"] is not None else "past the record",
                      "kept": r["kept"] if r["kept"] is not None else "–"} for r in rows],
                    ["model", "file", "recorded_epochs", "recorded_kept", "epochs", "kept", "recorded_seconds", "seconds", "after_changed_model"])  # fmt: skip
    write_json(args.json, {"histories": args.histories, "env": args.env, "params": args.params, "rules": results})  # fmt: skip


if __name__ == "__main__":
    main()
