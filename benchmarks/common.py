"""Shared benchmark plumbing: the project itself, run through Kedro, in a scratch folder.

Every benchmark trains and scores models by running the project's own pipelines (or
slices of them, by node name) in a `ScratchProject`: a copy of conf/ and pyproject.toml
under benchmarks/results/, run with `KedroSession` exactly as `kedro run --env <env>
--params ...` would be, so parameters come from Kedro's config loader and the project's
settings, and data, models and checkpoints stay out of the working tree. A benchmark
changes parameters only as `kedro run --params` does: a `--params` string, parsed by
Kedro's own parser (`kedro_params`), its settings first and the user's after (later
keys win). A benchmark adds only what a run does not do itself: repeating over seeds,
timing stages, aggregating. Every JSON it writes records the code commit, the command
and the machine (`write_json`).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import pickle
import platform
import resource
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
import yaml

from maskrec.metrics import t_interval

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
NO_GIT = "unknown (no git here)"


def arguments(doc: str, workdir: str, env: str = "") -> argparse.ArgumentParser:
    """The options every benchmark shares: which data, which Kedro environment, which
    `kedro run --params` overrides, where the scratch project lives, where JSON goes."""
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    parser.add_argument("--data", default="../shared/data/ml-100k", help="a MovieLens folder, a release name or 'sample'")  # fmt: skip
    parser.add_argument("--env", default=env, help=f"Kedro environment ('' for conf/base alone; default {env!r})")  # fmt: skip
    parser.add_argument("--params", default="", help="overrides in `kedro run --params` syntax, e.g. 'pretraining.epochs=60'")  # fmt: skip
    parser.add_argument("--workdir", default=str(RESULTS / workdir), help="the scratch copy of the project")  # fmt: skip
    parser.add_argument("--json", default=None, help="write the results here")
    return parser


def source_param(data: str) -> str:
    """The `source` runtime parameter for --data: an existing folder as an absolute path
    (the scratch project runs elsewhere), anything else (a release name) as it is."""
    return str(Path(data).resolve()) if Path(data).exists() else data


def kedro_params(*texts: str) -> dict[str, Any]:
    """`--params` strings ("a.b=1,c=x") as `kedro run --params` reads them (Kedro's own
    parser), joined in order, so a later key overrides an earlier one. (Kedro splits at
    every comma: a list value cannot be given this way, as on the command line.)"""
    import click
    from kedro.framework.cli.utils import _split_params

    text = join_params(*texts)
    context = click.Context(click.Command("benchmark"))
    return _split_params(context, click.Option(["--params"]), text) if text else {}


def join_params(*texts: str) -> str:
    """`--params` strings as one, in order (so later keys win when Kedro parses it)."""
    return ",".join(t for t in texts if t)


def run_params(args: argparse.Namespace, **settings: Any) -> str:
    """The `--params` a benchmark runs with: --data as `source`, the benchmark's own
    `settings` (as `dotlist`), then the user's --params, which win."""
    return join_params(dotlist(source=source_param(args.data), **settings), args.params)


def dotlist(**groups: Any) -> str:
    """Settings as a `--params` string: `dotlist(training={"seed": 1}, source="x")` is
    "training.seed=1,source=x"."""

    def leaves(value: Any, prefix: str) -> list[str]:
        if isinstance(value, dict):
            return [item for key, inner in value.items() for item in leaves(inner, f"{prefix}.{key}")]  # fmt: skip
        return [f"{prefix}={'null' if value is None else value}"]

    return ",".join(
        item for key, value in groups.items() for item in leaves(value, key)
    )


# what every training stage starts from: the datasets data_processing and data_split make
SPLIT_DATASETS = ("train_sequences", "valid_targets", "item_features")


def stage_nodes(pipeline: str, made: list[str], given: tuple[str, ...] = SPLIT_DATASETS) -> list[str]:  # fmt: skip
    """The names of the nodes of the registered pipeline `pipeline` that make the datasets
    `made` from the datasets `given` (made by earlier steps): how a benchmark slices a run
    into timed stages. Derived from the pipeline's datasets, not listed by hand, so a node
    added to a stage (as `warm_start_node` was to fine-tuning) joins its slice."""
    from maskrec.pipeline_registry import register_pipelines

    run = register_pipelines()[pipeline]
    return [
        node.name for node in (run.to_outputs(*made) - run.to_outputs(*given)).nodes
    ]


class ScratchProject:
    """The project's configuration copied into `folder`, run through Kedro sessions.

    `params`, a `--params` string, holds for every run; `run` can add more after it.
    Outputs persist between runs, so a benchmark can run the data pipelines once and the
    training slices many times; `fresh=False` reopens a scratch project another process
    made (a stage timed in its own process).
    """

    def __init__(
        self,
        folder: Path,
        env: str | None = None,
        params: str = "",
        fresh: bool = True,
    ) -> None:
        self.folder, self.env, self.params = Path(folder).resolve(), env, params
        reopened = not fresh and (self.folder / "conf").is_dir()
        conf = (
            self.folder / "conf" if reopened else ROOT / "conf"
        )  # where --env must be
        if env and not (conf / env).is_dir():
            raise SystemExit(f"--env {env}: no folder {conf / env}")
        os.environ.setdefault("KEDRO_DISABLE_TELEMETRY", "1")
        if reopened:
            return
        if self.folder.exists():
            shutil.rmtree(self.folder)
        shutil.copytree(
            ROOT / "conf", self.folder / "conf", ignore=shutil.ignore_patterns("local")
        )
        shutil.copy(ROOT / "pyproject.toml", self.folder / "pyproject.toml")
        (self.folder / "conf" / "local").mkdir()
        (
            self.folder / "src"
        ).mkdir()  # bootstrap wants it; the installed package is used

    def _session(self, params: str):
        from kedro.framework.session import KedroSession
        from kedro.framework.startup import bootstrap_project

        bootstrap_project(self.folder)
        return KedroSession.create(
            project_path=self.folder,
            env=self.env,
            runtime_params=kedro_params(self.params, params),
        )

    def run(
        self,
        pipelines: list[str],
        nodes: list[str] | None = None,
        params: str = "",
    ) -> float:
        """Run pipelines (or the named nodes of them); return the wall seconds. The run's
        free outputs (those no node consumes and the catalog does not persist) are left
        in `outputs`, by name."""
        started, cwd = time.perf_counter(), Path.cwd()
        os.chdir(
            self.folder
        )  # checkpoints and relative paths land in the scratch folder
        try:
            with self._session(params) as session:
                result = session.run(pipeline_names=pipelines, node_names=nodes)
            # Kedro 1.x returns each free output's dataset
            self.outputs = {name: getattr(d, "load", lambda d=d: d)() for name, d in (result or {}).items()}  # fmt: skip
        finally:
            os.chdir(cwd)
        return time.perf_counter() - started

    def load(self, *datasets: str, params: str = "") -> Any:
        """Datasets as the catalog loads them (one value, or a tuple for several names)."""
        with self._session(params) as session:
            catalog = session.load_context().catalog
            values = tuple(catalog.load(name) for name in datasets)
        return values[0] if len(values) == 1 else values

    def parameters(self, params: str = "") -> dict:
        """The validated parameter groups a run with `params` uses."""
        from maskrec.config import load_parameters

        return load_parameters(self.folder / "conf", self.env or "local", kedro_params(self.params, params))  # fmt: skip


class FinishedSeeds:
    """Each finished seed's results, kept beside the scratch project (which every run
    wipes) so that an interrupted multi-seed benchmark, rerun with the same command,
    resumes at the first unfinished seed.

    A seed is reused only under the same key: the benchmark's arguments plus the code
    (src/, conf/ and the benchmark scripts, committed or not: `_code_version`), so an edit
    between two runs starts the seeds again rather than mixing code versions in one mean.
    """

    def __init__(self, workdir: Path, arguments: dict[str, Any], fresh: bool = False, beside: Path | None = None) -> None:  # fmt: skip
        """Kept in a folder beside `workdir` (`<workdir>_seeds/<key hash>`), or under
        `beside` (`<beside>/<key hash>`) where the benchmark keeps its state elsewhere."""
        self.key = key = run_key(arguments)
        parent = beside if beside is not None else Path(workdir).with_name(Path(workdir).name + "_seeds")  # fmt: skip
        self.folder = parent / hashlib.sha256(key.encode()).hexdigest()[:16]
        if fresh and self.folder.exists():
            shutil.rmtree(self.folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        (self.folder / "key.json").write_text(key)

    def get(self, seed: int | str, compute) -> Any:
        """The seed's kept results, or `compute(seed)`'s, kept once it returns (`seed` may
        name a run, e.g. "tuned-0", where one seed has several)."""
        path = self.folder / f"seed{seed}.pkl"
        if path.is_file():
            print(f"seed {seed}: finished earlier, read from {path}", file=sys.stderr)
            return pickle.loads(path.read_bytes())
        result = compute(seed)
        partial = path.with_suffix(".partial")
        partial.write_bytes(pickle.dumps(result))
        partial.replace(path)  # never a half-written seed
        return result


def run_key(arguments: dict[str, Any]) -> str:
    """What a benchmark's kept results belong to: its arguments and the code
    (`_code_version`)."""
    return json.dumps({"arguments": arguments, "code": _code_version()}, sort_keys=True, default=str)  # fmt: skip


def _is_code(path: str) -> bool:
    """src/, conf/ and the benchmark scripts, not their results."""
    return path.startswith(("src/", "conf/")) or (path.startswith("benchmarks/") and path.endswith(".py") and not path.startswith("benchmarks/results/"))  # fmt: skip


def _code_version() -> str:
    """The committed code (src/, conf/ and the benchmark scripts: a commit of documents or
    results leaves it unchanged, so a study run in pieces across such commits resumes) and
    a hash of uncommitted changes to it; where the tree travelled without its history (a
    lent GPU machine), a hash of the code itself."""

    def git(*args: str) -> str:
        return subprocess.run(["git", *args], check=True, cwd=ROOT, capture_output=True, text=True).stdout  # fmt: skip

    try:
        committed = "".join(line for line in git("ls-tree", "-r", "HEAD", "--", "src", "conf", "benchmarks").splitlines(True)
                            if _is_code(line.split("\t")[1].strip()))  # fmt: skip
        changed = git("diff", "HEAD", "--", "src", "conf", ":(glob)benchmarks/**/*.py")
        return hashlib.sha256((committed + changed).encode()).hexdigest()[:32]
    except (OSError, subprocess.CalledProcessError):
        code = hashlib.sha256()
        for path in sorted(p for folder in ("src", "conf", "benchmarks") for p in (ROOT / folder).rglob("*.py")) + sorted((ROOT / "conf").rglob("*.yml")):  # fmt: skip
            code.update(path.read_bytes())
        return "tree-" + code.hexdigest()[:16]


def trained_seconds(history: pd.DataFrame) -> dict[str, float]:
    """From a training history: the chosen epoch's validation metrics, wall seconds of the
    epochs up to and including it, and per epoch."""
    epochs = history[history["epoch"] >= 1]
    best = int(history["best_epoch"].iloc[0])
    chosen = history[history["epoch"] == best].iloc[0]
    return {
        "valid_ndcg@10": float(chosen["ndcg@10"]),
        "valid_hr@10": float(chosen["hr@10"]),
        "seconds_to_best_epoch": float(
            epochs.loc[epochs["epoch"] <= best, "seconds"].sum()
        ),  # fmt: skip
        "seconds_per_epoch": float(epochs["seconds"].mean()) if len(epochs) else 0.0,
        "train_seconds_per_epoch": float(epochs["train_seconds"].mean())
        if len(epochs)
        else 0.0,  # fmt: skip
        "sequences_per_second": float(epochs["sequences_per_second"].mean())
        if len(epochs)
        else 0.0,  # fmt: skip
        "best_epoch": best,
        "epochs_run": int(epochs["epoch"].max()) if len(epochs) else 0,
    }


def study_seconds(
    summary: dict[str, dict], invocation_seconds: float
) -> dict[str, float]:
    """A study's cost for the JSON: the seconds its trials took, summed over models from the
    tuning summary (the study's own record, whichever invocations ran them; trials an
    interruption cut short are counted apart, an upper bound), and this invocation's wall
    seconds of the tuning runs (small where a resumed study read its trials back)."""
    return {
        "trials": sum(float(entry["seconds"]) for entry in summary.values()),
        "cut_short": sum(
            float(entry.get("seconds_cut_short", 0.0)) for entry in summary.values()
        ),  # fmt: skip
        "this_invocation": float(invocation_seconds),
    }


def synthetic_sequences(
    n_items: int, lengths: np.ndarray, rng: np.random.Generator, n_genres: int = 18
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """An item table and one event sequence per user of the given lengths, items drawn by a
    Zipf law like a MovieLens release's popularity, genres and years random: for timing
    and memory, where shapes matter and content does not. Returns (items, training
    sequences = each user's events but the last, validation targets = the last event
    after the training events)."""
    popularity = 1.0 / np.arange(1, n_items + 1) ** 0.9
    cumulative = np.cumsum(popularity / popularity.sum())
    events = np.searchsorted(cumulative, rng.random(int(lengths.sum())), side="right")
    events = np.minimum(events, n_items - 1).astype(np.int64) + 1
    per_user = np.split(events, np.cumsum(lengths)[:-1])
    genres = rng.random((n_items, n_genres)) < 0.1
    items = pd.DataFrame({
        "item_id": np.arange(1, n_items + 1), "original_item_id": np.arange(1, n_items + 1),
        "title": [f"Film {i}" for i in range(1, n_items + 1)], "year": rng.integers(1920, 2024, n_items),
        **{f"genre_{g}": genres[:, g].astype(np.int8) for g in range(n_genres)},
    })  # fmt: skip
    users = np.arange(len(per_user))
    history = [seq[:-1] for seq in per_user]
    train = pd.DataFrame({"user_id": users, "item_ids": history})
    valid = pd.DataFrame({"user_id": users, "context": history, "target_item": [int(seq[-1]) for seq in per_user]})  # fmt: skip
    return items, train, valid


def tuned_project(doc: str, workdir: str, transfer: bool = False, models: tuple[str, ...] = (), folds: bool = False):  # fmt: skip
    """The two-phase tuning benchmarks' start: arguments (with --seeds, --fresh and
    --no-shipped; --env refused, as the tuned environment is written over conf/base), the
    runtime parameters, the scratch project, its validated `tuning` group (a bad value
    stops here) and the finished runs kept for a rerun (FinishedSeeds).

    The scratch project is kept between runs of the same command on the same code (its
    arguments but --seeds, --json and --no-shipped, and the code's version): rerun after an
    interruption, the study resumes from its SQLite file in the scratch project (the trial
    it stopped in from that trial's last finished epoch: training checkpoints stay on), and
    the default runs already finished are read back; --fresh (or another command or code)
    starts over. `transfer`: the script takes --pretrain-data (the transfer run's source).
    `models`: the script takes --models, some of them to tune (one a run). `folds`: the
    script takes --folds, the rating pipeline's random folds to tune and test one by one.
    """
    parser = arguments(doc, workdir)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--fresh", action="store_true", help="start over: drop the study and the runs an earlier run of the same command finished")  # fmt: skip
    parser.add_argument("--no-shipped", action="store_true", help="phase 2 runs the tuned environment only, not also the shipped conf/base (half its cost)")  # fmt: skip
    parser.add_argument("--state", default=None, help="a folder to commit (e.g. under benchmarks/results): the studies and the finished runs live there, so the same command resumes on another machine from a checkout")  # fmt: skip
    if transfer:
        parser.add_argument("--pretrain-data", default=None, help="a MovieLens folder or release to pretrain on: the transfer run's models are tuned too, and phase 2 is the transfer run")  # fmt: skip
    if models:
        parser.add_argument("--models", nargs="+", choices=models, default=None, help="tune only these models, one a run (the others train at the run's configuration)")  # fmt: skip
    if folds:
        from maskrec.params import RATING_FOLDS

        parser.add_argument("--folds", type=int, nargs="+", default=None, choices=range(RATING_FOLDS), help="random folds of the rating pipeline (0-4): each tuned on its own training ratings and tested on its test ratings, one by one")  # fmt: skip
    args = parser.parse_args()
    if args.env:
        raise SystemExit("--env: the tuned environment is written over conf/base; give settings with --params")  # fmt: skip
    params = run_params(args)
    state = Path(args.state).resolve() if args.state else None
    # where the scratch project and the state live is not part of what is measured
    measured = {**vars(args), "seeds": None, "json": None, "fresh": None, "no_shipped": None, "state": None} | ({"workdir": None} if state else {})  # fmt: skip
    if state is not None:
        _claim_state(state, measured, args.fresh)
    kept = FinishedSeeds(Path(args.workdir), measured, args.fresh, beside=state / "runs" if state else None)  # fmt: skip
    key, marker = kept.key, Path(args.workdir) / "benchmark_key.json"
    resumed = not args.fresh and marker.is_file() and marker.read_text() == key
    project = ScratchProject(Path(args.workdir), None, params, fresh=not resumed)
    if state is not None and not resumed:
        _link_state(project.folder, state)
    marker.write_text(key)
    if resumed:
        print(f"resuming the study and runs kept in {args.workdir} (--fresh starts over)", file=sys.stderr)  # fmt: skip
    elif state is not None and (state / "09_tuning" / "studies.db").is_file():
        print(f"resuming the study and runs kept in {state} (--fresh starts over)", file=sys.stderr)  # fmt: skip
    return args, params, project, project.parameters()["tuning"], kept


def under_environment(project: ScratchProject, env: str | None) -> ScratchProject:
    """The study's scratch project, reopened to run under `env` (None: the shipped
    `conf/base`) with the study's --params less every key `env` sets. Kedro applies
    runtime parameters over every environment, so a key the study was given and tuned
    (its first point, say) would otherwise run at the study's starting value, not at the
    winner the environment holds: the ML-100K study at 1298b76 tested its first points so."""
    params = project.params
    if env is not None:
        from maskrec.params import has_path

        written = yaml.safe_load((project.folder / "conf" / env / "parameters.yml").read_text()) or {}  # fmt: skip
        params = ",".join(item for item in params.split(",") if item and not has_path(written, item.split("=", 1)[0].strip()))  # fmt: skip
    return ScratchProject(project.folder, env, params, fresh=False)


# What a tuning benchmark's --state folder holds, by its path in the scratch project: the
# studies (each trial written as it ends), and the evaluations of the finished default
# runs, which the `seeds` pipeline compares. Checkpoints of a trial cut short stay in the
# scratch project: on another machine that trial starts again at its point.
STATE_PATHS = ("data/09_tuning", "data/08_reporting/per_user_metrics.parquet", "data/08_reporting/model_stats.json")  # fmt: skip


def _claim_state(state: Path, arguments: dict[str, Any], fresh: bool) -> None:
    """The --state folder for this command and code: made if new, emptied with --fresh,
    refused if it holds another command's or another code version's study (a study's
    trials must come from one code and one command)."""
    key = run_key(arguments)
    recorded = state / "key.json"
    if fresh and state.exists():
        shutil.rmtree(state)
    if recorded.is_file() and recorded.read_text() != key:
        raise SystemExit(f"--state {state}: it holds the study of another command or code version ({recorded}); "
                         "run that command from that commit to resume it, or add --fresh to start this one over")  # fmt: skip
    state.mkdir(parents=True, exist_ok=True)
    recorded.write_text(key)


def _link_state(folder: Path, state: Path) -> None:
    """The scratch project's STATE_PATHS as links into `state`, so the runs write there."""
    for relative in STATE_PATHS:
        target, link = state / Path(relative).name, folder / relative
        target.mkdir(parents=True, exist_ok=True)
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(target, target_is_directory=True)


# how a table names each phase-2 configuration
CONFIGURATION_LABELS = {"tuned": "tuned", "shipped": "shipped conf/base"}


def configurations(
    args: argparse.Namespace, kept: FinishedSeeds, run
) -> dict[str, list[dict]]:
    """Phase 2 of a tuning benchmark: `run(env, seed)` for each seed, under the tuned
    environment and (unless --no-shipped) the shipped conf/base, by configuration; a run an
    earlier, interrupted run of the same command finished is read back."""
    chosen = {"tuned": "tuned"} | ({} if args.no_shipped else {"shipped": None})
    return {label: [kept.get(f"{label}-{seed}", lambda _, e=env, s=seed: run(e, s)) for seed in args.seeds]
            for label, env in chosen.items()}  # fmt: skip


def saved_version(project: ScratchProject, dataset: str = "model_stats.json") -> str:
    """The newest version of a versioned dataset of data/08_reporting/ (the evaluation a
    run just saved)."""
    return max(path.name for path in (project.folder / "data/08_reporting" / dataset).iterdir())  # fmt: skip


def across_seeds(
    runs: list[dict], pairs, metric: str, metrics: tuple[str, ...]
) -> dict:
    """Runs of several seeds (each `{"models": {name: {metric: value}}, "paired_tests":
    {"a - b": ...}}`): each model's means over seeds, and for each pair the per-seed
    difference of `metric`, its mean, a t interval over the seeds and each seed's paired
    test (one value per seed: seeds, not users, are the replicates)."""
    names = runs[0]["models"]
    means = {n: {m: float(np.mean([r["models"][n][m] for r in runs])) for m in metrics} for n in names}  # fmt: skip
    differences = {}
    for model, competitor in pairs:
        per_seed = [r["models"][model][metric] - r["models"][competitor][metric] for r in runs]  # fmt: skip
        differences[f"{model} - {competitor}"] = {"per_seed": per_seed, "mean": float(np.mean(per_seed)), "t_interval_95": t_interval(per_seed),
                                                  "paired_test_per_seed": [r["paired_tests"].get(f"{model} - {competitor}") for r in runs]}  # fmt: skip
    return {"models": means, "differences": differences}


def print_seeds(label: str, runs: list[dict], seeds: list[int], metric: str) -> None:
    """Each model's `metric` per seed and its mean."""
    print(f"\n{label}: test {metric} by seed")
    print_table([{"model": n, **{f"seed {s}": round(r["models"][n][metric], 4) for s, r in zip(seeds, runs, strict=True)},
                  "mean": round(float(np.mean([r["models"][n][metric] for r in runs])), 4)}
                 for n in runs[0]["models"]], ["model", *(f"seed {s}" for s in seeds), "mean"])  # fmt: skip


def print_differences(result: dict[str, dict], metric: str) -> None:
    """`across_seeds`' differences of each setting, per seed with a t interval."""
    print(f"\ndifferences of test {metric}, per seed, and a t interval over the seeds:")
    print_table([{"setting": label, "pair": pair, "per seed": " ".join(f"{d:+.4f}" for d in v["per_seed"]),
                  "mean": f"{v['mean']:+.4f}", "95% over seeds": "–" if v["t_interval_95"] is None else "[{:+.4f}, {:+.4f}]".format(*v["t_interval_95"])}
                 for label, r in result.items() for pair, v in r["differences"].items()],
                ["setting", "pair", "per seed", "mean", "95% over seeds"])  # fmt: skip


def machine() -> dict[str, Any]:
    """What a figure ran on. The CPU's model and torch's kernel level matter: machines of one
    kind have differed (an AVX-512 one measured 437 GFLOP/s on a matrix product, an AVX2 AMD
    EPYC 115 GFLOP/s), so seconds from two JSONs compare only where these agree."""
    info = {"python": platform.python_version(), "torch": torch.__version__, "cpu": platform.processor() or platform.machine(),
            "cpu_model": _cpu_model(), "cpu_capability": torch.backends.cpu.get_cpu_capability(),
            "threads": torch.get_num_threads()}  # fmt: skip
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


def _cpu_model() -> str:
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        return platform.processor() or "unknown"
    return next(
        (
            line.split(":", 1)[1].strip()
            for line in lines
            if line.startswith("model name")
        ),
        "unknown",
    )


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def print_table(rows: list[dict], columns: list[str]) -> None:
    frame = pd.DataFrame(rows)[columns]
    print(
        frame.to_markdown(index=False, floatfmt=".4g")
        if _has_tabulate()
        else frame.to_string(index=False)
    )


def _has_tabulate() -> bool:
    try:
        import tabulate  # noqa: F401
    except ImportError:
        return False
    return True


def provenance() -> dict[str, Any]:
    """What a result needs to be checked: the code commit (and whether src/, conf/ or
    benchmarks/ had uncommitted changes), the command, the machine and the date."""

    def git(*args: str) -> str:
        try:
            done = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=False)  # fmt: skip
        except OSError:  # no git installed
            return NO_GIT
        return done.stdout.strip() if done.returncode == 0 else NO_GIT

    changed = git("status", "--porcelain", "--", "src", "conf", "benchmarks/*.py")
    commit = git("rev-parse", "HEAD")
    if commit == NO_GIT and os.environ.get("MASKREC_COMMIT"):
        # a copy of a committed tree sent without its history (a lent GPU machine): the
        # sender names the commit; whether the copy had changes cannot be read here
        commit, changed = f"{os.environ['MASKREC_COMMIT']} (named by the sender; no git here)", NO_GIT  # fmt: skip
    return {
        "commit": commit, "uncommitted_changes": NO_GIT if changed == NO_GIT else changed != "",
        "command": shlex.join([Path(sys.executable).name, *sys.argv]),
        "machine": machine(), "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
    }  # fmt: skip


def write_json(path: str | None, payload: dict) -> None:
    """The results, with their `provenance` first."""
    if path:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        record = {"provenance": provenance(), **payload}
        Path(path).write_text(json.dumps(record, indent=2, default=str))
        print(f"wrote {path}", file=sys.stderr)
