"""maskrec against RecBole's published numbers on MovieLens 100K, leave-one-out by time.

    python benchmarks/race_ml100k.py --data ../shared/data/ml-100k --device cpu --seeds 3 \
        --targets ../shared/data/ml-100k/recbole_loo_targets.csv --json benchmarks/results/race_cpu.json

Every model is trained and scored by the project's own node functions (the same code as
`kedro run`), with the parameters of conf/base overridden key by key by the environment
--env (default conf/ml100k, the settings chosen on validation) and then by --params. No cold-start
hold-out here: every user trains, as in RecBole's split. With --targets, the validation and
test items are exactly the ones in the file (the test context is the training history plus
the validation item); without it, maskrec's own leave-one-out split. The test split is
scored once per seed, after all model selection on validation.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import machine, peak_rss_mib, prepare, print_table, write_json  # noqa: E402

from maskrec.evaluation import rank_and_recommend  # noqa: E402
from maskrec.metrics import bootstrap_interval, paired_test, ranking_metrics  # noqa: E402
from maskrec.params import (  # noqa: E402
    BaselineParams,
    FineTuningParams,
    ModelParams,
    PretrainingParams,
    SASRecParams,
)
from maskrec.pipelines.baselines import nodes as baselines  # noqa: E402
from maskrec.pipelines.data_split.nodes import split_with_given_targets  # noqa: E402
from maskrec.pipelines.fine_tuning.nodes import (  # noqa: E402
    Teacher,
    fine_tune_pretrained,
    fine_tune_scratch,
)
from maskrec.pipelines.pretraining.nodes import init_model, pretrain  # noqa: E402
from maskrec.training.data import eval_set  # noqa: E402

CONF = Path(__file__).resolve().parents[1] / "conf" / "base"
RECBOLE = {  # issue 5: RecBole 1.2.1 on this task (test @10, H100 seconds)
    "EASE": (0.1347, 0.0706, 0.0513), "BPR": (0.1241, 0.0673, 0.0502), "ItemKNN": (0.1145, 0.0628, 0.0472),
    "SASRec (len 200)": (0.1315, 0.0613, 0.0405), "SASRec (len 50)": (0.1220, 0.0589, 0.0402),
    "BERT4Rec (len 50)": (0.1251, 0.0596, 0.0402), "Pop": (0.0689, 0.0347, 0.0242),
}  # fmt: skip


def conf(name: str, key: str) -> dict:
    return yaml.safe_load((CONF / f"parameters_{name}.yml").read_text())[key]


def env_overrides(env: str) -> dict:
    """Parameter groups set by a Kedro environment (conf/<env>/parameters*.yml)."""
    overrides: dict = {}
    if env:
        folder = CONF.parent / env
        if not folder.is_dir():
            raise SystemExit(f"--env {env}: no folder {folder}")
        for file in sorted(folder.glob("parameters*.yml")):
            for group, values in (yaml.safe_load(file.read_text()) or {}).items():
                overrides[group] = {**overrides.get(group, {}), **values}
    return overrides


def merged(base: dict, override: dict) -> dict:
    return {**base, **override}


def trained_seconds(history: pd.DataFrame) -> dict[str, float]:
    """Wall seconds of the epochs up to and including the best one, and per epoch."""
    epochs = history[history["epoch"] >= 1]
    best = int(history["best_epoch"].iloc[0])
    chosen = history[history["epoch"] == best].iloc[0]
    return {
        "valid_ndcg@10": float(chosen["ndcg@10"]),
        "valid_hr@10": float(chosen["hr@10"]),
        "seconds_to_best_epoch": float(
            epochs.loc[epochs["epoch"] <= best, "seconds"].sum()
        ),
        "seconds_per_epoch": float(epochs["seconds"].mean()) if len(epochs) else 0.0,
        "sequences_per_second": float(epochs["sequences_per_second"].mean())
        if len(epochs)
        else 0.0,
        "best_epoch": best,
        "epochs_run": int(epochs["epoch"].max()) if len(epochs) else 0,
    }


def one_seed(
    data: dict, seed: int, device: str, overrides: dict, eval_batch: int
) -> tuple[dict, dict]:
    # Attention temporaries grow with batch x max_len^2: small evaluation batches keep the
    # peak memory low at max_len 200 (batch 512 alone costs ~0.5 GiB there).
    common = {
        "device": device,
        "seed": seed,
        "checkpoint_dir": None,
        "eval_batch_size": eval_batch,
    }
    model_params = ModelParams(
        **merged(
            conf("pretraining", "model"), overrides.get("model", {}) | {"seed": seed}
        )
    )
    pre_params = PretrainingParams(
        **merged(conf("pretraining", "pretraining"), overrides.get("pretraining", {}))
        | common
    )
    fine_params = FineTuningParams(
        **merged(conf("fine_tuning", "fine_tuning"), overrides.get("fine_tuning", {}))
        | common
    )
    sasrec_params = SASRecParams(
        **merged(conf("baselines", "sasrec"), overrides.get("sasrec", {})) | common
    )
    base_params = BaselineParams(
        **merged(conf("baselines", "baselines"), overrides.get("baselines", {}))
        | {"seed": seed}
    )
    train, valid, features = data["train"], data["valid"], data["item_features"]

    models, stages, timing, memory = (
        {},
        {},
        {},
        {},
    )  # memory: peak RSS (MiB) after each stage
    started = time.perf_counter()
    pretrained, pre_history = pretrain(
        init_model(features, model_params), train, valid, pre_params
    )
    stages["pretraining"] = time.perf_counter() - started
    memory["pretraining"] = peak_rss_mib()
    models["pretrained"] = pretrained
    timing["pretrained"] = trained_seconds(pre_history)
    # fine-tuning mutates its input: keep an untouched pretrained copy for evaluation
    import copy

    started = time.perf_counter()
    models["fine_tuned"], fine_history = fine_tune_pretrained(
        copy.deepcopy(pretrained), Teacher(), train, valid, fine_params
    )
    stages["fine_tuning"] = time.perf_counter() - started
    memory["fine_tuning"] = peak_rss_mib()
    fine = trained_seconds(fine_history)
    timing["fine_tuned"] = {**fine, "seconds_to_best_epoch": timing["pretrained"]["seconds_to_best_epoch"] + fine["seconds_to_best_epoch"],
                            "pretrain_seconds_per_epoch": timing["pretrained"]["seconds_per_epoch"]}  # fmt: skip
    started = time.perf_counter()
    models["scratch"], scratch_history = fine_tune_scratch(
        init_model(features, model_params), Teacher(), train, valid, fine_params
    )
    stages["scratch"] = time.perf_counter() - started
    memory["scratch"] = peak_rss_mib()
    timing["scratch"] = trained_seconds(scratch_history)
    started = time.perf_counter()
    models["sasrec"], sasrec_history = baselines.train_sasrec(
        features, train, valid, model_params, sasrec_params
    )
    stages["sasrec"] = time.perf_counter() - started
    memory["sasrec"] = peak_rss_mib()
    timing["sasrec"] = trained_seconds(sasrec_history)
    started = time.perf_counter()
    models["most_popular"] = baselines.fit_most_popular(train, features)
    models["item_knn"], _ = baselines.fit_item_knn(train, valid, features, base_params)
    models["ease"], _ = baselines.fit_ease(train, valid, features, base_params)
    models["mf_als"], _ = baselines.fit_matrix_factorization(
        train, valid, features, base_params
    )
    stages["baselines"] = time.perf_counter() - started
    memory["baselines"] = peak_rss_mib()

    started = time.perf_counter()
    length = max(
        m.config.max_len
        for m in models.values()
        if hasattr(m, "config") and hasattr(m.config, "max_len")
    )
    test = eval_set(data["test"], length)
    results = {}
    for name, model in models.items():
        ranks, _ = rank_and_recommend(model, test, batch_size=eval_batch)
        results[name] = {
            "ranks": ranks,
            **{m: float(v.mean()) for m, v in ranking_metrics(ranks, 10).items()},
        }
        if name in ("pretrained", "fine_tuned", "scratch", "sasrec"):
            unfiltered, _ = rank_and_recommend(
                model, test, batch_size=eval_batch, exclude_seen=False
            )
            results[name]["seen_included"] = {
                m: float(v.mean()) for m, v in ranking_metrics(unfiltered, 10).items()
            }
    stages["evaluation"] = time.perf_counter() - started
    memory["evaluation"] = peak_rss_mib()
    return results, {
        "stages": stages,
        "timing": timing,
        "peak_rss_after_stage_mib": memory,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", default="../shared/data/ml-100k")
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda", "auto"])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument(
        "--targets",
        default=None,
        help="a CSV like recbole_loo_targets.csv (user_id,valid_item,test_item)",
    )
    parser.add_argument(
        "--env",
        default="ml100k",
        help="Kedro environment whose parameter files override conf/base ('' for none)",
    )
    parser.add_argument(
        "--params",
        default="",
        help='JSON overrides per group, e.g. \'{"pretraining": {"epochs": 60}}\'',
    )
    parser.add_argument(
        "--eval-batch",
        type=int,
        default=64,
        help="users per scoring batch (memory vs speed)",
    )
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    overrides = env_overrides(args.env)
    for group, values in (json.loads(args.params) if args.params else {}).items():
        overrides[group] = {**overrides.get(group, {}), **values}

    from maskrec.params import SplitParams

    data = prepare(args.data, split_params=SplitParams(cold_user_fraction=0.0))
    if args.targets:
        data["train"], data["valid"], data["test"] = split_with_given_targets(
            data["interactions"],
            pd.read_csv(args.targets),
            data["user_map"],
            data["item_map"],
        )
    runs = []
    for seed in range(args.seeds):
        print(f"seed {seed} ...", file=sys.stderr, flush=True)
        runs.append(one_seed(data, seed, args.device, overrides, args.eval_batch))

    history_len = data["test"]["user_id"].map(
        dict(
            zip(
                data["train"]["user_id"],
                data["train"]["item_ids"].map(len),
                strict=True,
            )
        )
    )
    sparse = (history_len <= 30).to_numpy()
    rows, summary = [], {}
    for name in runs[0][0]:
        per_seed = [r[0][name] for r in runs]
        entry = {}
        for metric in ("hr@10", "ndcg@10", "mrr@10"):
            values = np.array([s[metric] for s in per_seed])
            entry[metric] = float(values.mean())
            entry[f"{metric}_std"] = (
                float(values.std(ddof=1)) if len(values) > 1 else 0.0
            )
        first = ranking_metrics(per_seed[0]["ranks"], 10)
        entry["ndcg@10_ci_seed0"] = bootstrap_interval(first["ndcg@10"], 1000, 0.95, 0)
        entry["hr@10_ci_seed0"] = bootstrap_interval(first["hr@10"], 1000, 0.95, 0)
        if "seen_included" in per_seed[0]:
            entry["seen_included"] = {
                m: float(np.mean([s["seen_included"][m] for s in per_seed]))
                for m in ("hr@10", "ndcg@10", "mrr@10")
            }
        if name in runs[0][1]["timing"]:
            entry.update(
                {
                    k: float(np.mean([r[1]["timing"][name][k] for r in runs]))
                    for k in runs[0][1]["timing"][name]
                }
            )
        summary[name] = entry
        rows.append({"model": name, "HR@10": f"{entry['hr@10']:.4f} ± {entry['hr@10_std']:.4f}", "NDCG@10": f"{entry['ndcg@10']:.4f} ± {entry['ndcg@10_std']:.4f}",
                     "MRR@10": f"{entry['mrr@10']:.4f}", "NDCG@10 95% CI (seed 0)": "[{:.4f}, {:.4f}]".format(*entry["ndcg@10_ci_seed0"]),
                     "s to best": f"{entry.get('seconds_to_best_epoch', 0):.0f}" if "seconds_to_best_epoch" in entry else "–",
                     "valid NDCG@10": f"{entry['valid_ndcg@10']:.4f}" if "valid_ndcg@10" in entry else "–"})  # fmt: skip
    tests = []
    for a, b in (
        ("pretrained", "scratch"),
        ("fine_tuned", "scratch"),
        ("fine_tuned", "sasrec"),
        ("fine_tuned", "ease"),
    ):
        for group, mask in (("all", np.ones_like(sparse)), ("history<=30", sparse)):
            # per-user NDCG@10 averaged over the seeds, then paired across users
            da = np.mean(
                [ranking_metrics(r[0][a]["ranks"], 10)["ndcg@10"] for r in runs], axis=0
            )[mask]
            db = np.mean([ranking_metrics(r[0][b]["ranks"], 10)["ndcg@10"] for r in runs], axis=0)[mask]  # fmt: skip
            tests.append(
                {
                    "model": a,
                    "competitor": b,
                    "group": group,
                    **paired_test(da, db, 1000, 0.95, 0),
                }
            )
    stages = {
        k: float(np.mean([r[1]["stages"][k] for r in runs]))
        for k in runs[0][1]["stages"]
    }

    print(
        "\nmaskrec, test split, seen items excluded, mean ± std over",
        args.seeds,
        "seed(s)",
    )
    print_table(rows, list(rows[0]))
    print("\nRecBole 1.2.1 on the same task (issue 5):")
    print_table(
        [
            {"model": k, "HR@10": v[0], "NDCG@10": v[1], "MRR@10": v[2]}
            for k, v in RECBOLE.items()
        ],
        ["model", "HR@10", "NDCG@10", "MRR@10"],
    )
    print("\nsequence models with seen items included (RecBole's way):")
    print_table(
        [
            {"model": k, **v["seen_included"]}
            for k, v in summary.items()
            if "seen_included" in v
        ],
        ["model", "hr@10", "ndcg@10", "mrr@10"],
    )
    print("\npaired tests (per-user NDCG@10, mean over the seeds):")
    print_table(
        tests,
        [
            "model",
            "competitor",
            "group",
            "users",
            "mean_difference",
            "ci_low",
            "ci_high",
            "p_wilcoxon",
        ],
    )
    print(
        "\nstage wall seconds (mean over seeds):",
        {k: round(v, 1) for k, v in stages.items()},
    )
    print(
        "peak RSS after each stage, seed 0 (MiB):",
        {k: round(v) for k, v in runs[0][1]["peak_rss_after_stage_mib"].items()},
    )
    print(f"peak RSS {peak_rss_mib():.0f} MiB, device {args.device}")
    write_json(args.json, {
        "machine": machine(), "device": args.device, "seeds": args.seeds, "targets": args.targets, "overrides": overrides,
        "models": summary, "paired_tests": tests, "stage_seconds": stages, "peak_rss_mib": peak_rss_mib(),
        "peak_rss_after_stage_mib": [r[1]["peak_rss_after_stage_mib"] for r in runs],
        "pretrain_seconds_per_epoch": summary["fine_tuned"].get("pretrain_seconds_per_epoch"),
    })  # fmt: skip


if __name__ == "__main__":
    main()
