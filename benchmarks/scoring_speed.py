"""Scoring with the last layer only where a state is read (`SequenceRecModel.encode(at=)`)
against encoding every position and reading the states afterwards (the code before it),
in the same run, on one protocol-fold's trained rating model.

    python benchmarks/scoring_speed.py --data ../shared/data/ml-100k --env ml100k --repeats 3 \\
        --json benchmarks/results/scoring_speed_ml100k.json

The slice of `kedro run --pipelines rating_prediction` that trains the fold's models
(`--fold`, default the first random fold: its Cloze pretraining and the fine-tuned rating
head) runs in a scratch project; then, alternating --repeats times so that a drift in
the machine's speed falls on both, the same model scores
- the fold's validation and test rating questions (`scoring.rate`, batches of
  `training.scoring_batch_size`), and
- the next item after every user's last `max_len - 1` fitted ratings, as ranking
  validation does (`score_next`, packed on the CPU as it is by default), with the
  pretrained Cloze model,
each both ways. Printed: the seconds of each, and the largest difference between the
two ways' predictions (stars) and scores (logits); the RMSE of both ways' predictions.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (  # noqa: E402
    ScratchProject,
    arguments,
    print_table,
    run_params,
    stage_nodes,
    write_json,
)

PIPELINE = "rating_prediction"


def every_position_rate(model, questions, batch_size: int) -> np.ndarray:
    """`scoring.rate` as it was: every position encoded, the question's state read after."""
    from maskrec.models.rating_tokens import split_tokens

    model.eval()
    low, high = model.config.rating_range
    predicted = []
    with torch.no_grad():
        for start in range(0, len(questions), batch_size):
            batch = questions.rows(start, start + batch_size)
            items, buckets = split_tokens(batch.contexts)
            hidden = model.encode(items, causal=False, ratings=buckets)
            rows = torch.arange(len(items))
            states, asked = hidden[rows, batch.positions], items[rows, batch.positions]
            predicted.append(
                model.predict_ratings(states, asked).float().clamp(low, high)
            )
    return torch.cat(predicted).numpy()


def every_position_next(model, contexts: torch.Tensor, batch_size: int) -> torch.Tensor:
    """`score_next` as it was on the CPU: packed contexts, every position encoded."""
    from maskrec.models.packing import IGNORE, SequenceBatch, pack

    scores = []
    with torch.no_grad():
        for start in range(0, len(contexts), batch_size):
            context = contexts[start : start + batch_size]
            context = torch.cat([context[:, 1:], torch.full_like(context[:, :1], model.config.mask_id)], dim=1)  # fmt: skip
            marks = torch.full_like(context, IGNORE)
            marks[:, -1] = 0
            packed = pack(SequenceBatch(context, marks), model.config.max_len)
            where = packed.labels != IGNORE
            hidden = model.encode(packed.inputs, None, None, packed.positions, packed.segments)  # fmt: skip
            order = torch.argsort(packed.segments[where])
            scores.append(model.item_scores(hidden[where][order]).float())
    return torch.cat(scores)


def asked_only_next(model, contexts: torch.Tensor, batch_size: int) -> torch.Tensor:
    with torch.no_grad():
        return torch.cat([model.score_next(contexts[s : s + batch_size]) for s in range(0, len(contexts), batch_size)])  # fmt: skip


def timed(function, *arguments):
    started = time.perf_counter()
    value = function(*arguments)
    return value, time.perf_counter() - started


def main() -> None:
    parser = arguments(__doc__, "scoring_speed_run", env="")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--fold", default="rating_fold_0", help="the protocol-fold's namespace")  # fmt: skip
    args = parser.parse_args()
    params = run_params(args)
    project = ScratchProject(Path(args.workdir), args.env or None, params)
    groups = project.parameters()  # a bad value stops here
    from maskrec.model_input import right_aligned
    from maskrec.pipelines.rating_prediction import nodes
    from maskrec.pipelines.rating_prediction.pipeline import FOLDS
    from maskrec.scoring import rate

    fold = args.fold
    if fold not in FOLDS:  # before any training
        raise SystemExit(f"--fold {fold!r}: not a protocol-fold of the rating pipeline; one of {', '.join(FOLDS)}")  # fmt: skip
    made = [f"{fold}.fine_tuned_rater", f"{fold}.pretrained_rater"]
    project.run([PIPELINE], stage_nodes(PIPELINE, made, given=()))
    rater, cloze, splits = project.load(*made, "rating_splits")
    # the fold's questions as its nodes make them (in memory in a run, so made again here)
    protocol, number = FOLDS[fold]
    settings = groups["ratings"]
    train, test_ratings = nodes.select_fold(splits, protocol, number)
    fitted, held = nodes.hold_out_validation(train, settings, protocol)
    rated, _, valid, test, _ = nodes.rating_model_input(train, fitted, held, test_ratings, settings)  # fmt: skip
    batch = groups["training"].scoring_batch_size
    length = cloze.config.max_len
    contexts = right_aligned([s[-(length - 1) :] for s in rated["item_ids"]], length)
    cases = {
        "validation questions": (
            valid,
            lambda: every_position_rate(rater, valid, batch),
            lambda: rate(rater, valid, batch),
        ),  # fmt: skip
        "test questions": (
            test,
            lambda: every_position_rate(rater, test, batch),
            lambda: rate(rater, test, batch),
        ),  # fmt: skip
        "next item (ranking)": (
            contexts,
            lambda: every_position_next(cloze, contexts, batch),
            lambda: asked_only_next(cloze, contexts, batch),
        ),  # fmt: skip
    }
    rows = []
    for name, (data, before, after) in cases.items():
        seconds = {"every position": [], "asked only": []}
        for _ in range(args.repeats):
            reference, took = timed(before)
            seconds["every position"].append(took)
            fast, took = timed(after)
            seconds["asked only"].append(took)
        difference = float(np.abs(np.asarray(fast) - np.asarray(reference)).max())
        row = {"case": name, "rows": len(data), "every position: s": round(float(np.median(seconds["every position"])), 3),
               "asked only: s": round(float(np.median(seconds["asked only"])), 3), "max |difference|": difference,
               "seconds": {k: [round(s, 4) for s in v] for k, v in seconds.items()}}  # fmt: skip
        row["speed-up"] = round(row["every position: s"] / row["asked only: s"], 2)
        if name == "test questions":
            truth = test_ratings["rating"].to_numpy()
            row["rmse"] = {"every position": float(np.sqrt(np.mean((reference - truth) ** 2))),
                           "asked only": float(np.sqrt(np.mean((fast - truth) ** 2)))}  # fmt: skip
        rows.append(row)
        print(row, flush=True)
    print(f"\n{fold}: {len(valid)} validation and {len(test)} test questions of {rater.config.max_len} events, "
          f"{len(contexts)} users' next item; batches of {batch}; {torch.get_num_threads()} threads")  # fmt: skip
    print_table(rows, ["case", "rows", "every position: s", "asked only: s", "speed-up", "max |difference|"])  # fmt: skip
    write_json(args.json, {"data": args.data, "env": args.env, "runtime_params": params, "fold": fold,
                           "scoring_batch_size": batch, "threads": torch.get_num_threads(), "cases": rows})  # fmt: skip


if __name__ == "__main__":
    main()
