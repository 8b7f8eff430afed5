"""/readable's page model on the tiny random model: every number it shows comes from the lab's
results, corrections become notices, and a change of the selected layer calls no model."""

import re

import numpy as np
import pytest
import torch

from lib.charts.readable import CLEAN_ANSWER, CORRUPT_ANSWER
from lib.config import ViewConfig
from lib.lab import Lab
from lib.pages.readable import readable_page
from lib.readable.pairs import pair_presets
from lib.readable.probe import measured_widths
from tests.unit.test_content import texts_of

CLEAN, CORRUPT = "The cat sat on the mat, said", "The bat sat on the mat, said"  # one char apart


@pytest.fixture(scope="module")
def lab(tiny):
    return Lab.direct(tiny)


def page_of(lab, **changes):
    base = {"model": "tiny-random", "new": 4, "clean": CLEAN, "corrupt": CORRUPT}
    return readable_page(ViewConfig(**(base | changes)), lab)


def test_the_page_shows_the_fit_the_readers_text_and_the_patch(lab, tiny):
    page = page_of(lab, layer=1, from_=1, to=2)
    fit = lab.probe_fit()
    assert page.widths == measured_widths(tiny)  # the diagram's widths are the cache's
    np.testing.assert_array_equal(page.readable_r2, fit.scores("readable"))
    assert np.isnan(page.readable_r2[-1]) and page.probed_layers == tiny.shape.layers - 1
    assert np.isfinite(page.prompt_scores[:-1]).all()
    assert f"{fit.scores('readable')[1]:.2f} of its held-out variance" in page.layer_text
    assert f"{fit.tokens[2]:,} held-out tokens" in page.opening[2]
    patch = page.patch
    assert patch is not None and (patch.first, patch.last) == (1, 2)
    assert patch.curve.shape == (tiny.shape.layers,)
    for bars in patch.bars:
        assert len(bars.labels) == len(bars.probs) == 10
    clean_run = patch.bars[0]
    assert clean_run.kinds[0] == CLEAN_ANSWER  # the clean answer is the clean run's top token
    assert patch.bars[1].kinds[0] == CORRUPT_ANSWER or "Both prompts" in page.patch_notice
    assert list(page.table.columns[:5]) == [
        "layer",
        "R² readable",
        "R² ceiling",
        "R² floor",
        "R² your text",
    ]
    assert len(page.table) == tiny.shape.layers
    shown = texts_of(page)
    assert shown and not [t for t in shown if re.search(r"\{[a-z_]+(:[^}]*)?\}", t)]


def test_the_default_pair_is_the_first_preset():
    first = pair_presets()[0]
    assert (ViewConfig().clean, ViewConfig().corrupt) == (first.clean, first.corrupt)
    assert len(pair_presets()) >= 3


def test_a_pair_of_unequal_lengths_is_refused_with_a_notice(lab):
    page = page_of(lab, clean="ab", corrupt="abc")
    assert page.patch is None
    assert "have 2 and 3 tokens" in page.patch_notice and not page.notices
    assert page.table["restored from this layer up"].isna().all()


def test_selections_out_of_range_are_clamped_and_a_reversed_range_swapped(lab, tiny):
    page = page_of(lab, layer=50, from_=2, to=1)
    top = tiny.shape.layers - 2
    assert page.layer == top
    assert any(f"`layer` must be 0–{top} here" in notice for notice in page.notices)
    assert any("patching layers 1–2" in notice for notice in page.notices)
    assert (page.patch.first, page.patch.last) == (1, 2)
    page = page_of(lab, from_=0, to=0)
    assert (
        "layer 0, the word's own K/V" in page.patch.restored_text or page.patch.restored_text == ""
    )


def test_a_change_of_the_selected_layer_calls_no_model(lab):
    page_of(lab, layer=0)
    calls = []
    handle = torch.nn.modules.module.register_module_forward_pre_hook(
        lambda module, args: calls.append(module)
    )
    try:
        page = page_of(lab, layer=1)
    finally:
        handle.remove()
    assert calls == [] and page.layer == 1
