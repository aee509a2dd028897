"""Progress of the long CLI jobs (calibrate, evaluate, audit) on stderr: done/total, percent, rate, ETA.

One thin layer over ``tqdm``: a bar that redraws in place on a terminal; in a log (stderr not a
terminal) a plain line now and then instead of carriage returns. stdout stays for the results.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import TypeVar

from tqdm import tqdm

T = TypeVar("T")
LOG_INTERVAL_S = 15.0  # between lines when stderr is a log, not a terminal


def bar(total: int | None, what: str, unit: str) -> tqdm:
    """A bar for ``total`` items (None: unknown) named ``what``, counting in ``unit``."""
    terminal = sys.stderr.isatty()
    return tqdm(
        total=total,
        desc=what,
        unit=f" {unit}",
        file=sys.stderr,
        dynamic_ncols=terminal,
        ncols=None if terminal else 100,
        mininterval=0.5 if terminal else LOG_INTERVAL_S,
        ascii=not terminal,
        leave=True,
        bar_format="{desc}: {percentage:3.0f}% {bar} {n_fmt}/{total_fmt}{unit} [{elapsed}<{remaining}, {rate_fmt}]"
        if total
        else None,
    )


def progress(items: Iterable[T], what: str, unit: str, total: int | None = None) -> Iterator[T]:
    """Each of ``items``, advancing the bar as it goes."""
    if total is None and hasattr(items, "__len__"):
        total = len(items)  # type: ignore[arg-type]
    with bar(total, what, unit) as shown:
        for item in items:
            yield item
            shown.update(1)


@contextmanager
def stage(what: str, unit: str, total: int | None = None) -> Iterator[tqdm]:
    """A bar to advance by hand (``.update(n)``), for work that is not one loop."""
    with bar(total, what, unit) as shown:
        yield shown


def note(line: str) -> None:
    """A line among the bars (what was written where, the summary), without breaking one mid-draw."""
    tqdm.write(line, file=sys.stderr)
