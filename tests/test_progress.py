"""Progress on long steps reaches the log (not only a terminal bar): training steps
within an epoch, ALS iterations, scoring and downloads, with counts a person can read."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import scipy.sparse as sp

from maskrec import progress as progress_module
from maskrec.model_input import eval_set, training_windows
from maskrec.models.baselines import MatrixFactorization
from maskrec.models.sequence import SequenceRecModel
from maskrec.progress import Progress
from maskrec.training.loop import fit
from maskrec.training.objectives import CausalObjective
from tests.models.test_sequence import cyclic_data, stage, tiny_config, training


@pytest.fixture
def every_update(monkeypatch):
    """A log line at every update instead of every 30 s."""
    monkeypatch.setattr(progress_module, "LOG_EVERY_SECONDS", 0.0)


def test_progress_line_counts_done_of_total_and_calls_detail_only_when_due(monkeypatch, caplog):  # fmt: skip
    calls = []
    logger = logging.getLogger("test.progress")
    with caplog.at_level(logging.INFO, "test.progress"):
        with Progress(logger, "copying", 4, "files") as quiet:  # 30 s never pass here
            quiet.update(1, lambda: calls.append(1) or "x")
        assert not caplog.records and not calls
        monkeypatch.setattr(progress_module, "LOG_EVERY_SECONDS", 0.0)
        with Progress(logger, "copying", 4, "files") as loud:
            loud.update(1, lambda: "last: a.csv")
            loud.update(2)
    lines = [r.getMessage() for r in caplog.records]
    assert lines[0].startswith("copying: 1 of 4 files (25%)")
    assert lines[0].endswith("last: a.csv") and "left" in lines[0]
    assert lines[1].startswith("copying: 3 of 4 files (75%)")


def test_progress_in_bytes_reads_in_mebibytes(every_update, caplog):
    with caplog.at_level(logging.INFO, "test.bytes"):
        with Progress(logging.getLogger("test.bytes"), "downloading x", 3 << 20, bytes_=True) as p:  # fmt: skip
            p.update(1 << 20)
    assert caplog.records[0].getMessage().startswith("downloading x: 1.0 of 3.0 MiB (33%)")  # fmt: skip


def test_training_logs_steps_within_each_epoch_and_validation_scoring(
    every_update, caplog
):
    train, valid = cyclic_data(n_users=40)
    model = SequenceRecModel(tiny_config())
    with caplog.at_level(logging.INFO, "maskrec"):
        fit(model, CausalObjective(), training_windows(train, 9), eval_set(valid, 8),
            stage(epochs=2, batch_size=16), training(), "steps")  # fmt: skip
    lines = [r.getMessage() for r in caplog.records if " of 3 steps " in r.getMessage()]
    # 40 windows in batches of 16: 3 steps an epoch, each reported with the running loss
    assert [line.split(",")[0] for line in lines] == [
        f"steps epoch {e}: {s} of 3 steps ({round(100 * s / 3)}%)" for e in (1, 2) for s in (1, 2, 3)
    ]  # fmt: skip
    assert all("loss " in line for line in lines)
    scoring = [r.getMessage() for r in caplog.records if r.getMessage().startswith("scoring")]  # fmt: skip
    assert scoring and all("40 of 40 users (100%)" in line for line in scoring)


def test_als_and_scoring_report_progress(every_update, caplog):
    matrix = sp.csr_matrix((np.random.default_rng(0).random((30, 9)) < 0.3).astype(np.float32))  # fmt: skip
    with caplog.at_level(logging.INFO, "maskrec"):
        model = MatrixFactorization.fit(
            matrix, factors=2, l2=1.0, alpha=2.0, iterations=3
        )
    lines = [r.getMessage() for r in caplog.records]
    assert any(" 3 of 3 iterations (100%)" in line for line in lines), lines
    assert model.arrays["items"].shape == (9, 2)
