"""Plotly pieces every figure shares: a value with its (asymmetric) confidence interval
as an error bar, for bars (model comparisons, rating errors) and lines (the
data-efficiency curve) alike."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import plotly.graph_objects as go


def error_y(stats: Sequence[dict[str, float]]) -> dict[str, Any]:
    """Plotly's `error_y` for means with intervals (`mean`, `ci_low`, `ci_high`)."""
    return {
        "type": "data",
        "symmetric": False,
        "array": [s["ci_high"] - s["mean"] for s in stats],
        "arrayminus": [s["mean"] - s["ci_low"] for s in stats],
    }


def bars(name: str, x: list[str], stats: Sequence[dict[str, float]]) -> go.Bar:
    """A bar per entry at its mean, with its interval as error bar."""
    return go.Bar(name=name, x=x, y=[s["mean"] for s in stats], error_y=error_y(stats))


def line(name: str, x: list[float], stats: Sequence[dict[str, float]]) -> go.Scatter:
    """A line through the means, with each point's interval as error bar."""
    return go.Scatter(name=name, x=x, y=[s["mean"] for s in stats], mode="lines+markers", error_y=error_y(stats))  # fmt: skip
