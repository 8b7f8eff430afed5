"""The variable-tracking task: programs and their printed values (checked by an interpreter of
their own, written here from the grammar), parsing of a reader's programs, the shortcut, the
two model kinds (the feedback model's step-by-step path equals its full path), and training
being reproducible by seed."""

from __future__ import annotations

import io
import re

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file

from bench import train_tracking
from lib import export, tracking
from lib.charts import tracking as charts

STATEMENT = re.compile(
    r"(?:if x == (?P<test>\d) : )?(?:x (?P<op>=|\+\+|--)(?: (?P<arg>\d))?|(?P<print>print) x)"
)


def interpret(text: str) -> list[int]:
    """Run a program from its text alone: a regex per statement, Python's own modulo."""
    value, printed = None, []
    for statement in filter(None, (part.strip() for part in text.split(";"))):
        match = STATEMENT.fullmatch(statement)
        assert match, statement
        if match["test"] is not None and value != int(match["test"]):
            continue
        if match["print"]:
            printed.append(value)
        elif match["op"] == "=":
            value = int(match["arg"])
        else:
            value = (value - 1 + (1 if match["op"] == "++" else -1)) % 5 + 1
    return printed


@pytest.mark.parametrize("seed", range(40))
def test_generated_programs_print_what_an_interpreter_prints(seed):
    rng = np.random.default_rng(seed)
    statements = int(rng.integers(2, 120))
    program = tracking.random_program(rng, statements)
    assert list(program.printed) == interpret(program.text)
    assert all(program.tokens[p - 1 : p + 1] == ("print", "x") for p in program.print_positions)
    assert len([part for part in program.text.split(";") if part.strip()]) == statements


def test_conditionals_fire_often_enough_to_matter():
    programs = tracking.held_out((10, 40))
    fired = sum(
        tracking.skip_conditionals(program) != program.printed for program in programs
    ) / len(programs)
    assert fired > 0.5  # the shortcut is wrong somewhere in most programs


def test_a_readers_program_is_parsed_and_run():
    program = tracking.parse_program("x = 5 ; x ++ ; print x ; if x == 1 : x = 4 ; x -- ;print x")
    assert program.printed == (1, 3)
    assert program.tokens[-1] == ";"
    assert [program.tokens[p] for p in program.print_positions] == ["x", "x"]
    generated = tracking.random_program(np.random.default_rng(3), 30)
    assert tracking.parse_program(generated.text) == generated


@pytest.mark.parametrize(
    ("text", "complaint"),
    [
        ("", "prints nothing"),
        ("x = 3 ;", "prints nothing"),
        ("print x ;", "assigned"),
        ("x ++ ; print x", "assigned"),
        ("if x == 2 : x ++ ; print x", "assigned"),
        ("x = 9 ; print x", "unknown symbols 9"),
        ("<script>alert(1)</script>", "unknown symbols"),
        ("x = 3 ; if x : print x ;", "condition"),
        ("x = 3 ; x x ; print x", "cannot read"),
        ("x = 3 ; = x 3 ; print x", "cannot read"),
        ("x = 3 ; if x == 3 : print x ;", "only updates"),
        ("x = 3 ;; print x", "cannot read"),
        (" ".join(f"w{i}" for i in range(50)), "w0, w1, w10, w11, w12 …"),
    ],
)
def test_bad_programs_are_refused_with_a_reason(text, complaint):
    with pytest.raises(ValueError, match=complaint):
        tracking.parse_program(text)


def test_encoding_marks_targets_only_at_prints():
    programs = [tracking.random_program(np.random.default_rng(seed), 12) for seed in range(3)]
    ids, targets = tracking.encode(programs)
    for row, program in enumerate(programs):
        assert ids[row, : len(program.tokens)].tolist() == [
            tracking.TOKEN_ID[t] for t in program.tokens
        ]
        (marked,) = np.flatnonzero(targets[row].numpy() != tracking.NO_TARGET).reshape(1, -1)
        assert marked.tolist() == list(program.print_positions)
        assert (targets[row, marked] + 1).tolist() == list(program.printed)


@pytest.mark.parametrize("layers", [1, 2])
def test_feedback_steps_equal_its_full_run(layers):
    torch.manual_seed(layers)
    model = tracking.TrackingFeedback(layers, window=8).eval()
    program = tracking.random_program(np.random.default_rng(layers), 15)  # longer than the window
    with torch.inference_mode():
        full = model(tracking.encode([program])[0])[0]
    run = model.run(program)
    torch.testing.assert_close(run.logits, full, atol=1e-5, rtol=1e-5)
    assert run.reads.shape == (len(program.tokens),) * 2
    np.testing.assert_allclose(run.reads[1:].sum(-1), 1.0, atol=1e-5)  # a distribution per token
    assert (np.triu(run.reads) == 0).all()  # only the past is read
    assert (np.tril(run.reads, -9) == 0).all()  # and only the window


def test_the_feedback_model_reads_the_top_of_the_past():
    """The gradient of a token's output reaches an earlier token's top layer through its memory."""
    model = tracking.TrackingFeedback(2, window=8)
    ids = tracking.encode([tracking.random_program(np.random.default_rng(0), 4)])[0]
    top_of_first = []
    model.blocks[-1].register_forward_hook(
        lambda _module, _inputs, output: (
            top_of_first.append(output[0]) if not top_of_first else None
        )
    )
    logits = model(ids)
    (grad,) = torch.autograd.grad(logits[0, 3].sum(), top_of_first[0])
    assert grad.abs().sum() > 0


def test_a_transformer_does_not_read_the_future():
    model = tracking.TrackingTransformer(2).eval()
    ids = tracking.encode([tracking.random_program(np.random.default_rng(1), 10)])[0]
    changed = ids.clone()
    changed[0, 20:] = tracking.TOKEN_ID["++"]
    with torch.inference_mode():
        torch.testing.assert_close(model(ids)[0, :20], model(changed)[0, :20])


def test_training_is_reproducible_by_seed(tmp_path):
    first = train_tracking.train("transformer-1", 7, tmp_path / "a", steps=3)
    second = train_tracking.train("transformer-1", 7, tmp_path / "b", steps=3)
    a = load_file(tmp_path / "a" / "transformer-1.safetensors")
    b = load_file(tmp_path / "b" / "transformer-1.safetensors")
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=0, atol=0)
    assert first["accuracy"] == second["accuracy"]
    train_tracking.train("transformer-1", 8, tmp_path / "c", steps=3)
    other_seed = load_file(tmp_path / "c" / "transformer-1.safetensors")
    assert any(not torch.equal(a[key], other_seed[key]) for key in a)


def test_learning_rate_warms_up_then_decays():
    rates = [train_tracking.learning_rate(step, 1000) for step in range(1000)]
    assert rates[0] < rates[99] == pytest.approx(train_tracking.LEARNING_RATE)
    assert rates[-1] < 1e-4 and all(np.diff(rates[100:]) <= 0)
    assert train_tracking.longest_now(0, 1000) == tracking.TRAIN_STATEMENTS[0]
    assert train_tracking.longest_now(500, 1000) == tracking.TRAIN_STATEMENTS[1]


def test_verdict_reads_the_table():
    sets = list(tracking.TEST_SETS)
    kinds = {"fb": "feedback", "t1": "transformer", "t2": "transformer"}
    table = {
        "fb": dict(zip(sets, [0.99, 0.95, 0.90], strict=True)),
        "t1": dict(zip(sets, [0.50, 0.30, 0.20], strict=True)),
        "t2": dict(zip(sets, [0.80, 0.50, 0.40], strict=True)),
    }
    found = tracking.verdict(table, kinds)
    assert (found.feedback, found.best_transformer, found.wins_everywhere) == ("fb", "t2", True)
    assert found.feedback_drop == pytest.approx(0.09)
    assert found.transformer_drop == pytest.approx(0.40)
    table["t1"][sets[1]] = 0.96  # one transformer ahead on one set
    assert not tracking.verdict(table, kinds).wins_everywhere


def test_a_transformer_scores_as_it_trains():
    """Eval mode must not switch torch's attention to a path that reads the mask differently."""
    model = tracking.TrackingTransformer(2)
    ids = tracking.encode([tracking.random_program(np.random.default_rng(2), 20)])[0]
    with torch.inference_mode():
        trained = model.train()(ids)
        scored = model.eval()(ids)
    torch.testing.assert_close(scored, trained)


def test_the_page_charts_export_and_mark_right_and_wrong():
    program = tracking.parse_program("x = 1 ; print x ; x ++ ; print x ; x ++ ; print x")
    frame = charts.predictions_frame(program, {"a": (1, 2, 3), "b": (1, 5, 3)})
    assert frame.loc[frame["who"] == "b", "verdict"].tolist() == ["right", "wrong", "right"]
    assert frame.loc[frame["who"] == charts.TRUE, "value"].tolist() == [1, 2, 3]
    reads = np.tril(np.ones((len(program.tokens),) * 2), -1)
    reads /= np.maximum(reads.sum(-1, keepdims=True), 1)
    read_frame = charts.reads_frame(program, reads)
    assert read_frame["print"].nunique() == 3
    assert read_frame.groupby("print")["weight"].sum().round(6).eq(1).all()
    curve = pd.DataFrame({"model": ["a", "a"], "statements": [10, 100], "accuracy": [0.9, 0.5]})
    for chart in (
        charts.predictions_chart(frame),
        charts.length_chart(curve),
        charts.reads_chart(read_frame, program.tokens),
    ):
        image = Image.open(
            io.BytesIO(export.chart_png(chart.properties(width=charts.EXPORT_WIDTH)))
        )
        assert image.width >= charts.EXPORT_WIDTH
