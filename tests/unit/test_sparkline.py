"""How ``humanos-bridge status --stack`` draws a series and writes a figure."""

from __future__ import annotations

import pytest

from humanos_bridge_local.sparkline import figure, sparkline


@pytest.mark.parametrize(
    ("values", "drawn"),
    [
        ([1, 2, 3, 4, 5], "▂▄▅▇█"),  # rising: ends in the full bar
        ([5, 4, 3, 2, 1], "█▇▅▄▂"),
        ([0, 0, 0], "▁▁▁"),  # zero is the lowest bar, not a gap
        ([None, None], "  "),  # no data is a gap, never a zero
        ([0, None, 7], "▁ █"),
        ([1, 1000], "▂█"),  # a small value above 0 still stands above the floor
        ([200, 210, 205], "███"),  # the scale starts at 0: a steady series draws flat, not its noise
        ([], ""),
    ],
)
def test_sparkline_scales_from_zero_to_the_largest_value(values: list[float | None], drawn: str) -> None:
    assert sparkline(values) == drawn


@pytest.mark.parametrize(
    ("value", "written"),
    [(0, "0"), (15, "15"), (1204, "1,204"), (37.54, "37.5"), (231.4, "231"), (0.25, "0.25"), (0.5, "0.5")],
)
def test_figure_is_written_short(value: float, written: str) -> None:
    assert figure(value) == written
