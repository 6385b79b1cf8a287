"""Progress a person can follow on every long step: a bar in a terminal and a line in the
log (so a log file shows it too), for downloads (bytes), training (steps within an epoch),
ALS iterations and scoring (users).

The bar is tqdm's, shown only when stderr is a terminal. The log line comes at most every
`LOG_EVERY_SECONDS` (and never for a step that ends sooner), so short runs and tests stay
quiet while a 32M-rating epoch reports where it is and how long is left.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from tqdm.auto import tqdm

LOG_EVERY_SECONDS = 30.0
_BARS = {"shown": True}


def hide_bars() -> None:
    """No bars in this process (a distributed worker: rank 0 shows progress for all)."""
    _BARS["shown"] = False


def bar_disabled() -> bool | None:
    """tqdm's `disable`: None shows a bar on a terminal only; True never."""
    return None if _BARS["shown"] else True


class Progress:
    """Counts `done` of `total` `unit`s of the step `label`; `update` moves it on.

    `detail`, given to `update`, is called only when a log line is due, so reading a
    value that costs something (a GPU sync for the running loss) happens rarely.
    """

    def __init__(
        self,
        logger: logging.Logger,
        label: str,
        total: int,
        unit: str = "",
        bytes_: bool = False,
    ) -> None:
        self.logger, self.label, self.total, self.unit = logger, label, total, unit
        self.bytes = bytes_
        self.done = 0
        self.started = self.logged = time.monotonic()
        self.bar = tqdm(
            total=total or None,
            desc=label,
            unit="B" if bytes_ else unit,
            unit_scale=bytes_,
            disable=bar_disabled(),  # only on a terminal
            leave=False,
        )

    def update(self, n: int = 1, detail: Callable[[], str] | None = None) -> None:
        self.done += n
        self.bar.update(n)
        now = time.monotonic()
        if now - self.logged >= LOG_EVERY_SECONDS:
            self.logged = now
            self.logger.info("%s", self.line(detail() if detail else ""))

    def line(self, detail: str = "") -> str:
        """e.g. 'sasrec epoch 3: 1,200 of 4,000 steps (30%), 61 s, about 142 s left'."""
        elapsed = time.monotonic() - self.started
        text = f"{self.label}: {self._amount(self.done, unit=not self.total)}"
        if self.total:
            text += (
                f" of {self._amount(self.total)} ({100 * self.done / self.total:.0f}%)"
            )
        text += f", {elapsed:.0f} s"
        if self.total and self.done:
            left = elapsed * (self.total - self.done) / self.done
            text += f", about {left:.0f} s left"
        return text + (f", {detail}" if detail else "")

    def _amount(self, value: int, unit: bool = True) -> str:
        """'1,200 steps' ('1,200' with `unit` off: the unit then follows the total)."""
        if self.bytes:
            return f"{value / 2**20:,.1f}" + (" MiB" if unit else "")
        return f"{value:,} {self.unit}".rstrip() if unit else f"{value:,}"

    def close(self) -> None:
        self.bar.close()

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
