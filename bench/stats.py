"""The one percentile definition of the benchmark and the load test."""

from __future__ import annotations

import math
from collections.abc import Sequence


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile: the smallest value with at least ``q`` percent of the values at or
    below it (always a value that was observed); NaN for no values.

    ``percentile(v, 50)`` of an even count is the lower of the two middle values; ``percentile(v, 100)``
    is the maximum, ``percentile(v, 0)`` the minimum.
    """
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = math.ceil(q / 100 * len(ordered))
    return ordered[min(len(ordered), max(1, rank)) - 1]
