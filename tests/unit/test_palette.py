"""One colour-blind-safe palette for every chart, and text that stays readable on it."""

import tomllib
from pathlib import Path

from lib.charts import palette

ROOT = Path(__file__).resolve().parents[2]


def test_the_theme_uses_the_palette_of_the_charts():
    theme = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())["theme"]
    assert tuple(theme["chartCategoricalColors"]) == palette.CATEGORICAL
    assert theme["primaryColor"] == palette.BLUE


def test_contrast_follows_the_wcag_formula():
    assert round(palette.contrast("#000000", "#FFFFFF"), 1) == 21.0
    assert palette.contrast("#777777", "#777777") == 1.0
    assert abs(palette.contrast("#767676", "#FFFFFF") - 4.54) < 0.01  # WCAG's AA edge case


def test_text_on_every_palette_colour_meets_wcag_aa():
    for colour in (*palette.CATEGORICAL, palette.GREY, palette.LIGHT):
        assert palette.contrast(palette.text_on(colour), colour) >= 4.5, colour
