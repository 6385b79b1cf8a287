"""One study's seeds, run on different days or machines, merged into one result.

    python benchmarks/merge_seeds.py benchmarks/results/race_ml1m_subset_warm_start_seeds2.json \\
        benchmarks/results/race_ml1m_subset_warm_start_seed2.json \\
        --json benchmarks/results/race_ml1m_subset_warm_start.json

Each input is a `race_ml100k.py` JSON (seeds 0 .. --seeds - 1, or `seed_list` where it ran
with --first-seed). They merge only if they are one study: the same data, environment,
runtime parameters, targets, source and variant; disjoint seeds; the same models; and
code whose src/, conf/base and conf/<env> are identical at the commits their provenance
names, with nothing uncommitted (the benchmark scripts may differ: they time and
aggregate, they do not train). The merge is exact, not a re-run: each model's mean and
standard deviation over all the seeds (pooled from each part's count, mean and standard
deviation), and each comparison's per-seed differences and per-seed paired tests
concatenated, with the t interval over all the seeds recomputed (a pair some part lacks,
e.g. the per-group pairs older JSONs do not hold, is listed in `pairs_not_in_every_part`).
The paired tests over users averaged across seeds (`paired_tests` of a part) need every
seed's per-user metrics and are not merged; each part keeps its own. Every part's
provenance and machine is kept, and its stage seconds (`stage_seconds` of the merge: each
stage's seconds a seed, the parts' means weighted by their seeds).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import ROOT, print_differences, print_table, write_json  # noqa: E402

from maskrec.metrics import t_interval  # noqa: E402

#: What makes two JSONs one study: equal in every part.
SAME_STUDY = ("targets", "env", "pretrain_data", "runtime_params", "device")
#: Model metrics with a mean and a standard deviation over seeds in a race JSON.
SPREAD_METRICS = ("hr@10", "ndcg@10", "mrr@10")
#: The code that trains and scores: equal at every part's commit (with conf/<env>).
MODEL_CODE = ("src", "conf/base")


#: What a race JSON holds that the merge reads; a file without one is not a race result.
REQUIRED = ("seeds", "models", "differences_over_seeds", "provenance")


def read_part(name: str) -> dict:
    """A race JSON, refused with the file and the missing field if it is not one."""
    try:
        part = json.loads(Path(name).read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise SystemExit(f"{name}: {error}") from None
    missing = [key for key in REQUIRED if key not in part] if isinstance(part, dict) else list(REQUIRED)  # fmt: skip
    if not missing and "commit" not in part["provenance"]:
        missing = ["provenance.commit"]
    if missing:
        raise SystemExit(f"{name}: no {', '.join(missing)}; not a race_ml100k.py result")  # fmt: skip
    return part


def seed_list(part: dict) -> list[int]:
    """The seeds a race JSON ran (`seed_list`, or 0 .. seeds - 1 before --first-seed)."""
    return list(part.get("seed_list") or range(part["seeds"]))


def pooled(counts: list[int], means: list[float], stds: list[float]) -> tuple[float, float]:  # fmt: skip
    """Mean and sample standard deviation (ddof 1) of the union of groups given each
    group's size, mean and sample standard deviation: exactly what the concatenated values
    would give."""
    total = sum(counts)
    mean = sum(n * m for n, m in zip(counts, means, strict=True)) / total
    squares = sum((n - 1) * s**2 + n * (m - mean) ** 2 for n, m, s in zip(counts, means, stds, strict=True))  # fmt: skip
    return float(mean), float(np.sqrt(squares / (total - 1))) if total > 1 else 0.0


def check_one_study(parts: list[dict], names: list[str]) -> None:
    """Refuse JSONs that are not seeds of one study, naming the file and the field."""
    first, name0 = parts[0], names[0]
    for part, name in zip(parts[1:], names[1:], strict=True):
        for key in SAME_STUDY:
            if part.get(key) != first.get(key):
                raise SystemExit(f"{name}: `{key}` differs from {name0}'s; not one study")  # fmt: skip
        if (part.get("variant") or {}).get("params") != (first.get("variant") or {}).get("params"):  # fmt: skip
            raise SystemExit(f"{name}: `variant` differs from {name0}'s; not one study")
        if set(part["models"]) != set(first["models"]):
            raise SystemExit(f"{name}: its models differ from {name0}'s")
    seen: dict[int, str] = {}
    for part, name in zip(parts, names, strict=True):
        for seed in seed_list(part):
            if seed in seen:
                raise SystemExit(f"{name}: seed {seed} is also in {seen[seed]}")
            seen[seed] = name
    commits = []
    for part, name in zip(parts, names, strict=True):
        origin = part.get("provenance", {})
        if origin.get("uncommitted_changes") is not False:
            raise SystemExit(f"{name}: provenance.uncommitted_changes is {origin.get('uncommitted_changes')!r}; only committed code merges")  # fmt: skip
        commits.append(origin["commit"])
    code = [*MODEL_CODE, *([f"conf/{first['env']}"] if first.get("env") else [])]
    for commit, name in zip(commits[1:], names[1:], strict=True):
        same = subprocess.run(["git", "diff", "--quiet", commits[0], commit, "--", *code], cwd=ROOT, check=False)  # fmt: skip
        if same.returncode != 0:
            raise SystemExit(f"{name}: {', '.join(code)} at {commit[:10]} differ from {names[0]}'s {commits[0][:10]} (or a commit is not in this clone)")  # fmt: skip


def merge(parts: list[dict]) -> dict:
    """The merged study (parts already checked by `check_one_study`), seeds in order."""
    order = sorted(range(len(parts)), key=lambda i: seed_list(parts[i])[0])
    parts = [parts[i] for i in order]
    counts = [len(seed_list(p)) for p in parts]
    models = {}
    for name in parts[0]["models"]:
        entry = {}
        for metric in SPREAD_METRICS:
            ms = [p["models"][name][metric] for p in parts]
            ss = [p["models"][name][f"{metric}_std"] for p in parts]
            entry[metric], entry[f"{metric}_std"] = pooled(counts, ms, ss)
            if all(f"{metric}_per_seed" in p["models"][name] for p in parts):
                entry[f"{metric}_per_seed"] = [v for p in parts for v in p["models"][name][f"{metric}_per_seed"]]  # fmt: skip
        entry["valid_ndcg@10"] = float(np.average([p["models"][name]["valid_ndcg@10"] for p in parts], weights=counts))  # fmt: skip
        models[name] = entry
    differences = {}
    # a pair one part lacks (per-group pairs arrived after some runs) cannot be merged
    common = [k for k in parts[-1]["differences_over_seeds"] if all(k in p["differences_over_seeds"] for p in parts)]  # fmt: skip
    left_out = sorted({k for p in parts for k in p["differences_over_seeds"]} - set(common))  # fmt: skip
    for pair in common:
        per_seed = [d for p in parts for d in p["differences_over_seeds"][pair]["per_seed"]]  # fmt: skip
        tests = [t for p in parts for t in p["differences_over_seeds"][pair]["paired_test_per_seed"]]  # fmt: skip
        differences[pair] = {"per_seed": per_seed, "mean": float(np.mean(per_seed)), "t_interval_95": t_interval(per_seed), "paired_test_per_seed": tests}  # fmt: skip
    # each stage's seconds a seed: the parts' means weighted by their seeds (machines may differ)
    timed = [p for p in parts if p.get("stage_seconds")]
    stages = {stage: float(np.average([p["stage_seconds"][stage] for p in timed], weights=[len(seed_list(p)) for p in timed]))
              for stage in (timed[0]["stage_seconds"] if timed else {})}  # fmt: skip
    return {
        "seed_list": [s for p in parts for s in seed_list(p)], "seeds": sum(counts), "stage_seconds": stages,
        **{key: parts[0].get(key) for key in SAME_STUDY}, "variant": parts[0].get("variant"),
        "models": models, "differences_over_seeds": differences, "pairs_not_in_every_part": left_out,
        "parts": [{"seed_list": seed_list(p), "provenance": p.get("provenance"), "paired_tests": p.get("paired_tests"),
                   "stage_seconds": p.get("stage_seconds"), "stage_seconds_per_seed": p.get("stage_seconds_per_seed")} for p in parts],
    }  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    parser.add_argument("parts", nargs="+", help="race_ml100k.py JSONs, disjoint seeds of one study")  # fmt: skip
    parser.add_argument("--json", default=None, help="where to write the merged study")
    args = parser.parse_args()
    if len(args.parts) < 2:
        raise SystemExit("give two or more JSONs to merge")
    parts = [read_part(name) for name in args.parts]
    check_one_study(parts, args.parts)
    merged = merge(parts)
    for part in merged[
        "parts"
    ]:  # floating point differs between CPU models: say which ran what
        origin = part["provenance"]
        print(f"seeds {part['seed_list']}: code {origin['commit'][:10]}, {origin['machine']['cpu_model']} ({origin['machine']['cpu_capability']}), {origin['date']}")  # fmt: skip
    print(
        f"seeds {merged['seed_list']}, test NDCG@10 / HR@10 mean ± std over the seeds:"
    )
    print_table([{"model": n, "NDCG@10": f"{m['ndcg@10']:.4f} ± {m['ndcg@10_std']:.4f}", "HR@10": f"{m['hr@10']:.4f} ± {m['hr@10_std']:.4f}",
                  "valid NDCG@10": f"{m['valid_ndcg@10']:.4f}"} for n, m in merged["models"].items()],
                ["model", "NDCG@10", "HR@10", "valid NDCG@10"])  # fmt: skip
    print_differences({"users: all unless [group]": {"differences": merged["differences_over_seeds"]}}, "ndcg@10")  # fmt: skip
    write_json(args.json, merged)


if __name__ == "__main__":
    main()
