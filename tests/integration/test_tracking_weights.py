"""The shipped variable-tracking models: they load, reach on the fixed test sets the accuracy
their training recorded (±1 point), and step through a program as they run it whole."""

from __future__ import annotations

import pytest

from lib import tracking


@pytest.mark.parametrize("name", tracking.shipped_names())
def test_shipped_weights_reach_their_recorded_accuracy(name):
    shipped = tracking.load_shipped(name)
    assert shipped.record["kind"] == shipped.model.kind
    for label, programs in tracking.held_out_sets().items():
        measured = tracking.accuracy(tracking.predictions(shipped.model, programs), programs)
        assert measured == pytest.approx(shipped.record["accuracy"][label], abs=0.01), label


def test_the_feedback_model_ships_and_steps_like_it_runs():
    (name,) = [n for n in tracking.shipped_names() if n.startswith("feedback")]
    model = tracking.load_shipped(name).model
    program = tracking.held_out((60, 80), 1)[0]
    run = model.run(program)
    full = tracking.predictions(model, [program])[0]
    assert tuple(int(i) + 1 for i in run.logits.argmax(-1)[list(program.print_positions)]) == full
