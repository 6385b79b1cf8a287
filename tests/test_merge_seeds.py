"""benchmarks/merge_seeds.py: seeds of one study run apart merge into what one run of all
the seeds would report, checked against numpy and scipy on the concatenated values; runs
that are not one study are refused, naming the file and the field."""

from __future__ import annotations

import sys

import numpy as np
import pytest
from scipy import stats

from tests.conftest import PROJECT_ROOT

sys.path.insert(0, str(PROJECT_ROOT / "benchmarks"))

import merge_seeds  # noqa: E402


def _part(seeds: list[int], ndcg: dict[str, list[float]], params: str = "a=1", seconds: list[float] | None = None) -> dict:  # fmt: skip
    """A race JSON of `seeds` with each model's per-seed test NDCG@10 (HR@10 = 2 ×, MRR
    = NDCG / 2), summarised as race_ml100k.py writes it."""

    def spread(values: list[float]) -> tuple[float, float]:
        return float(np.mean(values)), float(np.std(values, ddof=1)) if len(values) > 1 else 0.0  # fmt: skip

    models = {}
    for name, values in ndcg.items():
        entry = {"valid_ndcg@10": float(np.mean(values)) + 0.01}
        for metric, scale in (("ndcg@10", 1.0), ("hr@10", 2.0), ("mrr@10", 0.5)):
            entry[metric], entry[f"{metric}_std"] = spread([scale * v for v in values])
        models[name] = entry
    differences = {
        "a - b": {
            "per_seed": [a - b for a, b in zip(ndcg["a"], ndcg["b"], strict=True)],
            "paired_test_per_seed": [{"p_value": 0.1 * s} for s in seeds],
        }
    }
    return {
        "seeds": len(seeds), "seed_list": seeds, "targets": None, "env": "", "pretrain_data": None,
        "runtime_params": params, "device": "cpu", "variant": None, "models": models,
        "differences_over_seeds": differences,
        "provenance": {"commit": "0" * 40, "uncommitted_changes": False},
        **({"stage_seconds": {"training": float(np.mean(seconds))},
            "stage_seconds_per_seed": [{"training": v} for v in seconds]} if seconds else {}),
    }  # fmt: skip


def test_two_parts_merge_to_the_statistics_of_all_their_seeds():
    a = [0.180, 0.185, 0.190]
    b = [0.178, 0.182, 0.195]
    merged = merge_seeds.merge(
        [_part([2], {"a": a[2:], "b": b[2:]}), _part([0, 1], {"a": a[:2], "b": b[:2]})]
    )
    assert merged["seed_list"] == [0, 1, 2] and merged["seeds"] == 3
    for metric, scale in (("ndcg@10", 1.0), ("hr@10", 2.0), ("mrr@10", 0.5)):
        values = scale * np.array(a)
        assert merged["models"]["a"][metric] == pytest.approx(values.mean())
        assert merged["models"]["a"][f"{metric}_std"] == pytest.approx(values.std(ddof=1))  # fmt: skip
    difference = merged["differences_over_seeds"]["a - b"]
    per_seed = np.array(a) - np.array(b)
    np.testing.assert_allclose(difference["per_seed"], per_seed)
    reference = stats.t.interval(0.95, 2, loc=per_seed.mean(), scale=stats.sem(per_seed))  # fmt: skip
    np.testing.assert_allclose(difference["t_interval_95"], reference)
    assert [t["p_value"] for t in difference["paired_test_per_seed"]] == pytest.approx([0.0, 0.1, 0.2])  # fmt: skip


def test_stage_seconds_are_the_mean_over_every_seed_and_each_part_keeps_its_own():
    """A part's stage seconds are its seeds' mean; the merge's is the mean over all seeds,
    not over the parts (the one-seed part must not weigh as much as the two-seed one)."""
    ndcg = {"a": [0.18, 0.19, 0.2], "b": [0.17, 0.18, 0.19]}
    parts = [_part([0], {k: v[:1] for k, v in ndcg.items()}, seconds=[600.0]),
             _part([1, 2], {k: v[1:] for k, v in ndcg.items()}, seconds=[700.0, 710.0])]  # fmt: skip
    merged = merge_seeds.merge(parts)
    assert merged["stage_seconds"] == {"training": pytest.approx((600 + 700 + 710) / 3)}
    assert [p["stage_seconds_per_seed"] for p in merged["parts"]] == [[{"training": 600.0}], [{"training": 700.0}, {"training": 710.0}]]  # fmt: skip


def test_parts_sharing_a_seed_are_refused_naming_the_file():
    parts = [_part([0, 1], {"a": [0.1, 0.2], "b": [0.1, 0.2]}), _part([1], {"a": [0.1], "b": [0.1]})]  # fmt: skip
    with pytest.raises(SystemExit, match="two.json: seed 1 is also in one.json"):
        merge_seeds.check_one_study(parts, ["one.json", "two.json"])


def test_parts_of_different_settings_are_refused_naming_the_field():
    parts = [_part([0], {"a": [0.1], "b": [0.1]}), _part([1], {"a": [0.1], "b": [0.1]}, params="a=2")]  # fmt: skip
    with pytest.raises(SystemExit, match="two.json: `runtime_params` differs"):
        merge_seeds.check_one_study(parts, ["one.json", "two.json"])


def test_a_part_from_uncommitted_code_is_refused():
    parts = [_part([0], {"a": [0.1], "b": [0.1]}), _part([1], {"a": [0.1], "b": [0.1]})]
    parts[1]["provenance"]["uncommitted_changes"] = True
    with pytest.raises(SystemExit, match="two.json: provenance.uncommitted_changes"):
        merge_seeds.check_one_study(parts, ["one.json", "two.json"])


def test_a_file_that_is_not_a_race_result_is_refused_naming_the_missing_field(tmp_path):
    path = tmp_path / "tuned.json"
    path.write_text('{"seeds": 3, "models": {}, "provenance": {"commit": "abc"}}')
    with pytest.raises(SystemExit, match="tuned.json: no differences_over_seeds; not a race_ml100k.py result"):  # fmt: skip
        merge_seeds.read_part(str(path))
