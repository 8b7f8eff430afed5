"""/tracking through AppTest: the shipped models run the generated or the reader's program, the
page's claims follow its own numbers, bad programs get a notice, the page loads no language
model, and a rerun that changes nothing recomputes nothing."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from streamlit.dataframe_util import convert_arrow_bytes_to_pandas_df
from streamlit.testing.v1 import AppTest

from lib import models, tracking
from lib.ui import resources
from lib.ui import tracking as ui

APP = str(Path(__file__).resolve().parents[2] / "app.py")
SCORE = re.compile(r"\*\*([\w-]+(?: [\w ]+)?)\*\* (\d+)/(\d+)")


@pytest.fixture
def page(monkeypatch):
    """Open /tracking with a query; count model runs; make any language-model load fail. The
    caches stay warm between tests (scoring the held-out sets takes a while); counts are read
    as differences."""
    runs: list[str] = []
    real_predictions = tracking.predictions

    def counted(model, programs):
        runs.append(type(model).__name__)
        return real_predictions(model, programs)

    def no_model(*args, **kwargs):
        raise AssertionError("/tracking must not load a language model")

    monkeypatch.setattr(tracking, "predictions", counted)
    monkeypatch.setattr(models, "load", no_model)
    monkeypatch.setattr(resources, "loaded_model", no_model)

    def run(at: AppTest | None = None, **query: str) -> AppTest:
        if at is None:
            at = AppTest.from_file(APP, default_timeout=600)
            at.switch_page("views/tracking.py")
            at.query_params.update(query)
        return at.run()

    run.runs = runs
    return run


def scores(at: AppTest) -> dict[str, tuple[int, int]]:
    line = next(m.value for m in at.markdown if m.value.startswith("Prints answered right"))
    return {name: (int(right), int(total)) for name, right, total in SCORE.findall(line)}


def test_the_readers_program_runs_through_every_model(page):
    at = page(program="x = 5 ; x ++ ; print x ; if x == 1 : x = 4 ; x -- ; print x")
    assert not at.exception
    assert at.code[0].value.splitlines()[:2] == ["x = 5 ;", "x ++ ;"]
    found = scores(at)
    assert set(found) == {*tracking.shipped_names(), ui.SKIP}
    assert all(total == 2 for _, total in found.values())
    assert found[ui.SKIP] == (1, 2)  # it skips the `if` that fires: 5 ++ → 1, then 1 -- → 5
    grid = next(c for c in at.get("vega_lite_chart") if "in program order" in c.proto.spec)
    rows = convert_arrow_bytes_to_pandas_df(grid.proto.datasets[0].data.data)
    assert rows.loc[rows["who"] == "true value", "value"].tolist() == [1, 3]
    for name, (right, _) in found.items():
        assert (rows.loc[rows["who"] == name, "verdict"] == "right").sum() == right


def test_held_out_table_is_computed_and_the_text_follows_it(page):
    at = page()
    table = at.dataframe[0].value
    assert list(table.columns) == list(tracking.TEST_SETS)
    assert set(table.index) == {*tracking.shipped_names(), ui.SKIP}
    assert ((table >= 0) & (table <= 1)).all().all()
    longest = list(tracking.TEST_SETS)[-1]
    best = table.drop(index=ui.SKIP)[longest].idxmax()
    claim = next(m.value for m in at.markdown if m.value.startswith("Per-print accuracy"))
    assert f"**{best}** at {table.loc[best, longest]:.1%}" in claim
    assert f"the shortcut gets {table.loc[ui.SKIP, longest]:.1%}" in claim
    lineup = next(m.value for m in at.markdown if m.value.startswith("Trained here"))
    for name in tracking.shipped_names():
        assert f"**{name}** ({tracking.load_shipped(name).description})" in lineup
    measured = next(m.value for m in at.markdown if "**Measured on this run:**" in m.value)
    feedback = next(name for name in table.index if name.startswith("feedback"))
    assert f"{feedback} gets {table.loc[feedback].iloc[0]:.1%} of prints right" in measured


@pytest.mark.parametrize(
    "program", ["x = 9 ; print x", "<img src=x onerror=alert(1)>", "[link](http://example.com)"]
)
def test_a_bad_program_gets_a_notice_and_the_generated_one(page, program):
    at = page(program=program, pseed="3", statements="12")
    assert not at.exception
    (warning,) = at.warning
    assert warning.value.startswith("Your program could not be read")
    assert "](http" not in warning.value  # escaped: no live link from the reader's text
    generated = tracking.random_program(np.random.default_rng([3, 12]), 12)
    assert at.code[0].value.replace("\n", " ") == generated.text


def test_hostile_numbers_are_clamped_with_a_notice(page):
    at = page(statements="100000", pseed="-4")
    assert not at.exception
    notices = " ".join(warning.value for warning in at.warning)
    assert "statements" in notices and "pseed" in notices
    assert tracking.parse_program(at.code[0].value).statements == 120


def test_another_program_moves_the_seed_and_a_rerun_reuses_every_result(page):
    at = page(pseed="0", statements="10")
    before = at.code[0].value
    counted = len(page.runs)
    page(at)  # nothing changed: no model runs again
    assert len(page.runs) == counted
    at.button[0].click()
    page(at)
    assert at.number_input(key="pseed").value == 1
    assert at.code[0].value != before
    assert len(page.runs) == counted + len(tracking.shipped_names())  # only the new program
