"""lib.surgery on the tiny random model: what an edit can and cannot reach, and its report."""

from dataclasses import replace

import numpy as np
import pytest

from lib.generate import generate
from lib.surgery import CacheEdit, edited_pass, run_surgery

IDS = [5, 17, 99, 3, 42, 7, 61, 250, 8, 33, 120, 64]


def later_rows_moved(before, after, src):
    """Largest |Δ| per grid row, over the positions after the source: (L+1,)."""
    return np.abs(after[:, src + 1 :] - before[:, src + 1 :]).max(axis=(1, 2))


@pytest.mark.parametrize("kind", ["zero", "mean", "token"])
@pytest.mark.parametrize("first, last", [(0, 0), (1, 2), (2, 2)])
def test_an_edit_reaches_only_what_reads_the_edited_cache(tiny, kind, first, last):
    src = 4
    states = edited_pass(tiny, IDS, CacheEdit(src, first, last, kind, other=9))
    assert states.before.shape == states.after.shape == (4, len(IDS), tiny.shape.hidden)
    np.testing.assert_allclose(states.after[:, : src + 1], states.before[:, : src + 1], atol=1e-5)
    moved = later_rows_moved(states.before, states.after, src)
    assert np.all(moved[: first + 1] < 1e-5)  # rows 0..first of later tokens: out of reach
    assert moved[first + 1] > 1e-3  # the first row that reads the edited cache


def test_replacing_a_token_by_itself_changes_nothing(tiny):
    result = run_surgery(tiny, IDS, 6, CacheEdit(3, 0, 2, "token", other=3))
    assert np.all(result.kl < 1e-6)
    assert not result.top_changed.any()
    assert result.row_change.max() < 1e-5
    assert result.continuation_after == result.continuation_before


def test_surgery_reports_every_later_position(tiny):
    src, n_prompt = 2, 6
    result = run_surgery(tiny, IDS, n_prompt, CacheEdit(src, 0, 2, "zero"))
    assert list(result.positions) == list(range(src + 1, len(IDS)))
    assert result.kl.shape == result.top_before.shape == result.top_after.shape == (9,)
    assert np.all(result.kl >= 0) and result.kl.max() > 0
    assert result.row_change.shape == (4,)
    assert result.below_edit_change < 1e-5 < result.above_edit_change
    assert result.prefix_change < 1e-5
    assert result.start == n_prompt  # the continuation starts after the prompt
    assert len(result.continuation_before) == len(result.continuation_after) == 6
    table = result.table([str(i) for i in IDS], ["a"] * 9, ["b"] * 9)
    assert list(table["position"]) == list(result.positions)
    assert list(table["top-1 changed"]) == list(result.top_changed)


def test_a_source_inside_the_continuation_regenerates_after_it(tiny):
    result = run_surgery(tiny, IDS, 4, CacheEdit(8, 1, 1, "mean"))
    assert result.start == 9 and len(result.continuation_after) == len(IDS) - 9


def test_the_greedy_continuation_is_what_the_unedited_cache_decodes(tiny):
    """The shortcut `continuation_is_greedy` relies on: the app's own greedy generation equals
    a greedy decode from the unedited cache of a full forward pass."""
    prompt = IDS[:5]
    run = generate(tiny, prompt, 8, use_cache=True)
    ids = list(prompt) + list(run.new_ids)
    edit = CacheEdit(1, 0, 2, "zero")
    decoded = run_surgery(tiny, ids, len(prompt), edit)
    reused = run_surgery(tiny, ids, len(prompt), edit, continuation_is_greedy=True)
    assert decoded.continuation_before == tuple(run.new_ids) == reused.continuation_before
    assert decoded.continuation_after == reused.continuation_after


def test_first_divergence(tiny):
    result = run_surgery(tiny, IDS, 6, CacheEdit(3, 0, 2, "token", other=3))
    assert result.first_divergence is None
    cases = [((1, 2, 3), (1, 5, 3), 1), ((4, 2), (4, 2, 3), 2), ((7,), (8,), 0), ((), (), None)]
    for before, after, expected in cases:
        changed = replace(result, continuation_before=before, continuation_after=after)
        assert changed.first_divergence == expected


@pytest.mark.parametrize(
    "edit",
    [
        CacheEdit(11, 0, 0, "zero"),  # no later token
        CacheEdit(-1, 0, 0, "zero"),
        CacheEdit(2, 2, 1, "zero"),  # first above last
        CacheEdit(2, 0, 3, "zero"),  # beyond the last layer
        CacheEdit(2, 0, 0, "token", other=12),
    ],
)
def test_impossible_edits_are_refused(tiny, edit):
    with pytest.raises(ValueError):
        run_surgery(tiny, IDS, 6, edit)
