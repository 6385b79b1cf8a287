"""Does the time of a user's last event tell the new-film gate more than it knows?

    python benchmarks/new_film_gate.py --data ../shared/data/ml-1m-users-1-2999 \\
        --json benchmarks/results/new_film_gate_ml1m_subset.json
    python benchmarks/new_film_gate.py --data ../shared/data/ml-100k \\
        --targets ../shared/data/ml-100k/recbole_loo_targets.csv \\
        --json benchmarks/results/new_film_gate_ml100k.json

The new-film mixture (`maskrec.models.new_items`) puts a film without training events in
a top 10 only where its gate, P(the next film is one without training events), is high.
Its features read the recent films (how recently they first appeared, how many have no
training events, how new they are); the moment of the request is not among them. This
benchmark asks whether that moment, the time of the context's last event on the training
data's clock, would separate the users whose next film is new better: the gate as the
project fits it and the same logistic regression with that time added, both fitted on the
simulated hold-out of the training data as `NewItems.fit` does.

Each is scored twice by the area under the ROC curve of "the next film is new":
- on a hold-out inside the training data, where the choice between them is made: each
  user's last training event is the target, the newest `fraction` of films by first
  rating leave the rest of training (as data_split holds new films out), and both gates
  are refitted on what is left;
- on the test targets of the run's own split (`data_split.cold_item_fraction`), reported
  as the evaluation pipeline reports, after the choice.
Beside the AUC: the mean gate of new and of other targets, and the share of new targets
among the tenth of users with the highest gate (what the mixture can act on).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (  # noqa: E402
    ScratchProject,
    arguments,
    print_table,
    run_params,
    write_json,
)

from maskrec.model_input import right_aligned  # noqa: E402
from maskrec.models import new_items  # noqa: E402

VARIANTS = ("gate", "gate + last-event time", "last-event time alone")


def examples(sequences, timestamps, per_user: int) -> tuple[list, list, list]:
    """`new_items.simulated_targets`, with the time of each context's last event."""
    contexts, targets, times = [], [], []
    for items, stamps in zip(sequences, timestamps, strict=True):
        for back in range(1, per_user + 1):
            if len(items) - back < 3:
                break
            contexts.append([int(i) for i in items[:-back]])
            targets.append(int(items[-back]))
            times.append(float(stamps[-back - 1]))
    return contexts, targets, times


class Gates:
    """The three gate variants, fitted on training `sequences` and `timestamps` as the
    project fits its gate (the simulated hold-out of the newest `fraction` of films)."""

    def __init__(self, sequences, timestamps, content: dict, config: dict, per_user: int) -> None:  # fmt: skip
        self.content, self.config = content, config
        n_items = len(content["years"]) - 1
        first = new_items._first_seen(sequences, timestamps, n_items)
        # the training data's clock: its first and last event
        self.clock = (float(min(min(t) for t in timestamps)), float(max(max(t) for t in timestamps)))  # fmt: skip
        self.real = {**content, **new_items._state(first)}
        is_held, simulated = new_items.simulated_hold_out(first, config["fraction"])
        contexts, targets, times = examples(sequences, timestamps, per_user)
        self.labels = is_held[np.asarray(targets)]
        features = self.features(contexts, times, {**content, **simulated})
        self.models = {v: self._fit(features[v]) for v in VARIANTS}

    def features(self, contexts, times, arrays) -> dict[str, np.ndarray]:
        windows = right_aligned(contexts, max(self.config["recent"], self.config["profile"]))  # fmt: skip
        gate = new_items._gate_features(windows, arrays, self.config).numpy()
        start, end = self.clock
        moment = ((np.asarray(times, dtype=np.float64) - start) / max(end - start, 1.0))[:, None]  # fmt: skip
        return {VARIANTS[0]: gate, VARIANTS[1]: np.c_[gate, moment], VARIANTS[2]: moment}  # fmt: skip

    def _fit(self, x: np.ndarray):
        mean, scale = x.mean(0), x.std(0)
        scale = np.where(scale > 0, scale, 1.0)
        model = LogisticRegression(C=1.0, max_iter=2000).fit((x - mean) / scale, self.labels)  # fmt: skip
        return lambda z: model.predict_proba((z - mean) / scale)[:, 1]

    def score(self, contexts, times, is_new: np.ndarray) -> list[dict]:
        features = self.features(contexts, times, self.real)
        rows = []
        for variant in VARIANTS:
            gate = self.models[variant](features[variant])
            top = np.argsort(-gate, kind="stable")[: max(len(gate) // 10, 1)]
            rows.append({"gate": variant, "auc": float(roc_auc_score(is_new, gate)),
                         "mean_gate_new": float(gate[is_new].mean()), "mean_gate_other": float(gate[~is_new].mean()),
                         "new_share_top_tenth": float(is_new[top].mean())})  # fmt: skip
        return rows


def inside_training(train: pd.DataFrame, content: dict, config: dict, per_user: int) -> tuple[list[dict], dict]:  # fmt: skip
    """Each user's last training event as the target; the newest films by first rating
    (over all training events) taken out of the rest; the gates refitted there."""
    items, stamps = train["item_ids"].tolist(), train["timestamps"].tolist()
    n_items = len(content["years"]) - 1
    is_new, _ = new_items.simulated_hold_out(new_items._first_seen(items, stamps, n_items), config["fraction"])  # fmt: skip
    keep = [[(i, t) for i, t in zip(s[:-1], ts[:-1], strict=True) if not is_new[i]] for s, ts in zip(items, stamps, strict=True)]  # fmt: skip
    rows = [k for k in keep if k]
    gates = Gates([[i for i, _ in k] for k in rows], [[t for _, t in k] for k in rows], content, config, per_user)  # fmt: skip
    users = [u for u, s in enumerate(items) if len(s) >= 2]  # a context to score
    contexts = [[int(i) for i in items[u][:-1]] for u in users]
    targets = np.asarray([int(items[u][-1]) for u in users])
    times = [float(stamps[u][-2]) for u in users]
    labels = is_new[targets]
    return gates.score(contexts, times, labels), {"targets": len(labels), "new_targets": int(labels.sum())}  # fmt: skip


def on_test(train, test, cold, interactions, content, config, per_user) -> tuple[list[dict], dict]:  # fmt: skip
    """The run's test targets, their contexts (new films kept, as the split keeps them)
    and the time of each context's last event."""
    gates = Gates(train["item_ids"].tolist(), train["timestamps"].tolist(), content, config, per_user)  # fmt: skip
    test = test[test["context"].map(len) > 0]
    last = [int(c[-1]) for c in test["context"]]
    when = interactions.set_index(["user_id", "item_id"])["timestamp"]
    times = when.loc[list(zip(test["user_id"], last, strict=True))].to_numpy(dtype=np.float64)  # fmt: skip
    labels = test["target_item"].isin(set(cold["item_id"])).to_numpy()
    contexts = [[int(i) for i in c] for c in test["context"]]
    return gates.score(contexts, times, labels), {"targets": len(labels), "new_targets": int(labels.sum())}  # fmt: skip


def main() -> None:
    parser = arguments(__doc__, "new_film_gate_run")
    parser.add_argument("--targets", default=None, help="a CSV like recbole_loo_targets.csv (user_id,valid_item,test_item)")  # fmt: skip
    parser.add_argument("--fraction", type=float, default=0.1, help="data_split.cold_item_fraction")  # fmt: skip
    args = parser.parse_args()
    split = {"cold_user_fraction": 0.0, "cold_item_fraction": args.fraction, **({"strategy": "given"} if args.targets else {})}  # fmt: skip
    given = {"split_targets": str(Path(args.targets).resolve())} if args.targets else {}
    project = ScratchProject(Path(args.workdir), args.env or None, run_params(args, data_split=split, **given))  # fmt: skip
    settings = project.parameters()["baselines"].new_items
    project.run(["data_processing", "data_split"])
    train, test, cold, interactions, items = project.load("train_sequences", "test_targets", "cold_items", "interactions", "item_features")  # fmt: skip
    project.run(["baselines"], ["fit_new_items_node"])
    fitted = project.load(
        "new_films_model"
    )  # the project's mixture: its content arrays
    content = {k: fitted.arrays[k] for k in ("years", "newness", "genres", "position")}
    config = {k: fitted.config[k] for k in ("recent", "profile", "fraction", "newest_year")}  # fmt: skip

    results = {}
    for name, (rows, counts) in {
        "inside_training": inside_training(train, content, config, settings.targets_per_user),
        "test": on_test(train, test, cold, interactions, content, config, settings.targets_per_user),
    }.items():  # fmt: skip
        print(f"\n{name}: {counts['targets']} targets, {counts['new_targets']} of them new films")  # fmt: skip
        print_table(rows, ["gate", "auc", "mean_gate_new", "mean_gate_other", "new_share_top_tenth"])  # fmt: skip
        results[name] = {**counts, "gates": rows}
    write_json(args.json, {"data": args.data, "fraction": args.fraction, "runtime_params": project.params,
                           "new_items": settings.model_dump(), **results})  # fmt: skip


if __name__ == "__main__":
    main()
