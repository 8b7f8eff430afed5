"""The one palette of every chart: Okabe & Ito's colours, safe for the common colour blindnesses.

Colour alone never carries a key distinction: charts pair it with a second cue (an outline, a
dash, a shape or a label). Text drawn on a coloured cell takes black or white, whichever meets
WCAG AA contrast (4.5:1) on that colour (`text_on`).
"""

from __future__ import annotations

BLACK = "#000000"
ORANGE = "#E69F00"
SKY = "#56B4E9"
GREEN = "#009E73"
YELLOW = "#F0E442"
BLUE = "#0072B2"
VERMILION = "#D55E00"
PURPLE = "#CC79A7"
GREY = "#999999"
LIGHT = "#EEEEEE"  # cells that take no part: a background, not a category
WHITE = "#FFFFFF"

# In the order categorical charts use them; also the theme's chartCategoricalColors.
CATEGORICAL = (BLUE, ORANGE, GREEN, VERMILION, PURPLE, SKY, YELLOW, BLACK)
SEQUENTIAL = "blues"  # a one-hue Vega scheme for magnitudes: lightness carries the value
DIVERGING = "blueorange"


def _luminance(color: str) -> float:
    """Relative luminance of a #RRGGBB colour (WCAG 2.1)."""
    channels = [int(color[i : i + 2], 16) / 255 for i in (1, 3, 5)]
    linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def contrast(first: str, second: str) -> float:
    """The WCAG contrast ratio of two colours, 1 to 21."""
    high, low = sorted((_luminance(first), _luminance(second)), reverse=True)
    return (high + 0.05) / (low + 0.05)


def text_on(background: str) -> str:
    """Black or white, whichever reads better on `background`."""
    return BLACK if contrast(BLACK, background) >= contrast(WHITE, background) else WHITE
