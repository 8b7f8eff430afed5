"""/tracking through AppTest: the page leads with accuracy against depth read from the shipped
records, its claims follow that table, the reader's program (spaces optional) runs through every
model with each print's depth and the scratchpad's written values, bad input gets a notice, no
language model loads, and a rerun that changes nothing runs no model."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from streamlit.dataframe_util import convert_arrow_bytes_to_pandas_df
from streamlit.testing.v1 import AppTest

from lib import models, tracking
from lib.pages.tracking import DEPTH, HOLDS, TRUE
from lib.ui import resources

APP = str(Path(__file__).resolve().parents[2] / "app.py")
SCORE = re.compile(r"\*\*([\w-]+(?: [\w ]+)?)\*\* (\d+)/(\d+)")
SHORTCUTS = tuple(tracking.BASELINES)


@pytest.fixture
def page(monkeypatch):
    """Open /tracking with a query; count live runs; make any language-model load fail. The
    server's caches stay between tests, so counts are read as differences."""
    runs: list[str] = []
    real = tracking.live_run

    def counted(shipped, program):
        runs.append(program.text)
        return real(shipped, program)

    def no_model(*args, **kwargs):
        raise AssertionError("/tracking must not load a language model")

    monkeypatch.setattr(tracking, "live_run", counted)
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


def chart_data(at: AppTest, column: str):
    """The data of the first chart whose largest dataset has `column`."""
    for chart in at.get("vega_lite_chart"):
        frames = [convert_arrow_bytes_to_pandas_df(d.data.data) for d in chart.proto.datasets]
        if column in (found := max(frames, key=len)):
            return found
    raise AssertionError(f"no chart draws {column}")


def scores(at: AppTest) -> dict[str, tuple[int, int]]:
    line = next(m.value for m in at.markdown if m.value.startswith("Prints answered right"))
    return {name: (int(right), int(total)) for name, right, total in SCORE.findall(line)}


def test_the_page_leads_with_accuracy_against_depth_from_the_records(page):
    at = page(pseed="5")
    assert not at.exception
    records = tracking.read_records()
    first_chart = at.get("vega_lite_chart")[0]
    assert "dependency depth" in first_chart.proto.spec
    drawn = chart_data(at, "depth")
    assert set(drawn["model"]) == {*records, *SHORTCUTS}
    for name, record in records.items():
        for bucket, found in record["held_out"]["by_depth"].items():
            (value,) = drawn.loc[(drawn["model"] == name) & (drawn["depth"] == bucket), "accuracy"]
            assert value == pytest.approx(found["right"] / found["prints"])
    measured = next(m.value for m in at.markdown if m.value.startswith("**Measured.**"))
    buckets = [b for b in tracking.DEPTH_BUCKETS if b != "0"]
    for name, record in records.items():
        scored = record["held_out"]["by_depth"]
        accuracy = {b: scored[b]["right"] / scored[b]["prints"] for b in buckets}
        below = next((b for b in buckets if accuracy[b] < HOLDS), None)
        where = "at every depth" if below is None else f"first below 90% at depth {below}"
        line = next(line for line in measured.splitlines() if f"**{name}**" in line)
        assert f"{accuracy[buckets[0]]:.1%} → {accuracy[buckets[-1]]:.1%}" in line
        assert where in line


def test_the_readers_program_shows_depth_and_the_written_values(page):
    at = page(program="x=5;x++;print x;if x==1:x=4;x--;print x")
    assert not at.exception and not at.warning
    assert at.code[0].value.splitlines()[:2] == ["x = 5 ;", "x ++ ;"]
    found = scores(at)
    assert set(found) == {*tracking.shipped_names(), *SHORTCUTS}
    assert found["skip the conditionals"] == (1, 2)  # 5 ++ → 1 fires the `if`; it skips it
    grid = chart_data(at, "print")
    assert grid.loc[grid["who"] == DEPTH, "value"].tolist() == [1, 3]
    assert grid.loc[grid["who"] == TRUE, "value"].tolist() == [1, 3]
    for name, (right, _) in found.items():
        assert (grid.loc[grid["who"] == name, "verdict"] == "right").sum() == right
    written = chart_data(at, "statement")
    assert written.loc[written["who"] == TRUE, "value"].tolist() == [5, 1, 1, 4, 3, 3]
    (pad,) = [n for n, r in tracking.read_records().items() if r["kind"] == "scratchpad"]
    assert len(written.loc[written["who"] == f"{pad} wrote"]) == 6


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


def test_another_program_moves_the_seed_and_a_rerun_runs_no_model(page):
    at = page(pseed="40", statements="10")
    before = at.code[0].value
    counted = len(page.runs)
    page(at)  # nothing changed: no model runs again
    assert len(page.runs) == counted
    at.button[0].click()
    page(at)
    assert at.number_input(key="pseed").value == 41
    assert at.code[0].value != before
    assert len(page.runs) == counted + 1  # the new program, once
