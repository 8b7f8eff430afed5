"""The shipped variable-tracking models: every recipe ships, all trained on the same CPU budget,
their records and the reference record agree on the held-out sets, the weights still reach the
accuracy their records hold (±1 point), the scratchpad model carries a planted error forward,
and one program runs through every model."""

from __future__ import annotations

import numpy as np
import pytest

from lib import tracking
from lib.tracking import records, scoring, train

NAMES = tracking.shipped_names()


@pytest.fixture(scope="module")
def models() -> dict[str, tracking.Shipped]:
    return {name: tracking.load_shipped(name) for name in NAMES}


def test_every_recipe_ships_with_the_same_budget():
    assert set(NAMES) == set(train.RECIPES)
    shipped = tracking.read_records()
    for name, record in shipped.items():
        assert record["kind"] == train.RECIPES[name].kind
        assert record["sizes"] == {"layers": train.RECIPES[name].layers, **train.SIZES}
        assert record["budget_cpu_seconds"] == train.BUDGET and record["threads"] == 1
        assert record["budget_cpu_seconds"] <= record["cpu_seconds"] <= 1.05 * train.BUDGET
        assert record["steps"] == len(record["progress"]) > 0
        assert record["wall_seconds"] >= record["cpu_seconds"] * 0.9


def test_the_tables_read_the_shipped_records():
    shipped, reference = tracking.read_records(), tracking.read_reference()
    for family in ("by_length", "by_depth"):
        table = tracking.held_out_table(shipped, reference, family)  # raises on other sets
        assert table.rows == (*NAMES, *scoring.BASELINES)
        assert not any(table.thin) and not np.isnan(table.accuracy).any()


@pytest.mark.real
def test_the_reference_record_is_what_the_sets_and_shortcuts_give():
    assert tracking.read_reference() == records.reference()


@pytest.mark.real
@pytest.mark.parametrize("name", NAMES)
def test_shipped_weights_reach_their_recorded_accuracy(models, name):
    shipped = models[name]
    assert shipped.record["kind"] == shipped.model.kind
    measured = scoring.evaluate(lambda programs: tracking.predictions(shipped.model, programs))
    for family, columns in measured.items():
        for column, found in columns.items():
            recorded = shipped.record["held_out"][family][column]
            assert found["prints"] == recorded["prints"]
            assert found["accuracy"] == pytest.approx(recorded["accuracy"], abs=0.01), column


def test_the_scratchpad_carries_a_planted_error_forward(models):
    """Plant a wrong value after the first `x ++`: the model reads it back and every later
    value follows from the planted one, not from the truth (until an assignment would fix it;
    this program has none)."""
    (name,) = [name for name in NAMES if models[name].model.kind == "scratchpad"]
    model = models[name].model
    program = tracking.parse_program(
        "x = 1 ; x ++ ; x ++ ; print x ; x ++ ; print x ; if x == 3 : x = 1 ; print x ; "
        "x -- ; print x ; x ++ ; x ++ ; print x"
    )
    (own,) = model.write([program])
    assert own.said == program.printed and own.first_error is None
    planted = 4  # the truth is 2
    (misled,) = model.write([program], forced={1: planted})
    follows, value = [], planted
    for line in program.lines[2:]:
        value = line.apply(value)
        follows.append(value)
    assert misled.first_error == 1
    assert list(misled.written[2:]) == follows
    assert all(s != p for s, p in zip(misled.said, program.printed, strict=True))


def test_the_feedback_model_steps_like_it_runs(models):
    (name,) = [name for name in NAMES if models[name].model.kind == "feedback"]
    model = models[name].model
    program = tracking.held_out((60, 80), 1)[0]
    run = tracking.live_run({name: models[name]}, program)
    assert run.said[name] == tracking.predictions(model, [program])[0]


def test_one_program_runs_through_every_model(models):
    program = tracking.random_program(np.random.default_rng(0), 120)
    run = tracking.live_run(models, program)
    assert set(run.said) == {*NAMES, *scoring.BASELINES}
    assert all(len(said) == len(program.printed) for said in run.said.values())
    assert set(run.writings) == {n for n in NAMES if models[n].model.kind == "scratchpad"}
