"""A series drawn in one line of text, and a figure written short, for ``humanos-bridge status --stack``.

>>> sparkline([0, 1, 2, None, 4])
'▁▃▅ █'
"""

from __future__ import annotations

from collections.abc import Sequence

#: Eight heights, lowest first.
BARS = "▁▂▃▄▅▆▇█"
#: Drawn for a period without data, so that a gap never reads as zero.
NO_DATA = " "


def sparkline(values: Sequence[float | None]) -> str:
    """One character per value: ``NO_DATA`` for None, else a bar scaled from 0 to the series' largest value.

    The scale starts at 0, not at the smallest value, so that a steady series draws flat instead of
    magnifying its noise, and any value above 0 is at least the second bar, so that it never reads as 0.
    """
    top = max((value for value in values if value is not None), default=0.0)
    return "".join(_bar(value, top) for value in values)


def _bar(value: float | None, top: float) -> str:
    if value is None:
        return NO_DATA
    if value <= 0 or top <= 0:
        return BARS[0]
    return BARS[max(1, round(value / top * (len(BARS) - 1)))]


def figure(value: float) -> str:
    """A count or a measure as people read it: ``1,204``, ``37.5``, ``0.25``."""
    if value == int(value) or abs(value) >= 100:
        return f"{value:,.0f}"
    return f"{value:.2f}".rstrip("0").rstrip(".") if abs(value) < 1 else f"{value:.1f}"
