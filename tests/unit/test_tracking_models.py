"""The three kinds of tracking model, untrained: each one's step path equals its full pass
(through `lib.stepping`), none reads the future, each one's `parents` is its architecture's rule,
the feedback model reads the top of the past within its window, and the scratchpad model reads
back exactly what it wrote."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lib import tracking
from lib.architectures import FeedbackRule, TransformerRule
from lib.stepping import Cell, run_steps, step_full_difference
from lib.toy.common import single_thread
from lib.tracking import task
from lib.tracking.models import FIRST_VALUE


@pytest.fixture(autouse=True)
def one_thread():
    """The models are tiny: more threads only add synchronisation (see `single_thread`)."""
    with single_thread():
        yield


def model_of(kind: str, layers: int, seed: int) -> tracking.TrackingModel:
    torch.manual_seed(seed)
    sizes = {"window": 8} if kind == "feedback" else {}  # a window shorter than the programs
    return tracking.build(kind, layers, **sizes).eval()


def ids_of(model: tracking.TrackingModel, seed: int, statements: int = 15) -> torch.Tensor:
    program = tracking.random_program(np.random.default_rng(seed), statements)
    return model.encode([program])[0][0]  # (T,)


@pytest.mark.parametrize("kind", ["transformer", "feedback", "scratchpad"])
@pytest.mark.parametrize("layers", [1, 2])
def test_steps_equal_the_full_pass(kind, layers):
    model = model_of(kind, layers, seed=layers)
    tokens = ids_of(model, seed=layers)
    assert step_full_difference(model, tokens) < 1e-5
    stepped, _ = run_steps(model, tokens)
    assert stepped.shape == (len(tokens), tracking.VALUES)


@pytest.mark.parametrize("kind", ["transformer", "feedback", "scratchpad"])
def test_no_model_reads_the_future(kind):
    model = model_of(kind, 2, seed=0)
    ids = ids_of(model, seed=1, statements=10)
    changed = ids.clone()
    changed[20:] = tracking.TOKEN_ID["++"]
    with torch.inference_mode():
        torch.testing.assert_close(model.full(ids)[:20], model.full(changed)[:20])
        assert not torch.allclose(model.full(ids)[20:], model.full(changed)[20:])


def test_a_transformer_scores_as_it_trains():
    """Train and eval mode compute the same function (no dropout, no fused eval-only path)."""
    model = tracking.TrackingTransformer(2)
    ids = ids_of(model, seed=2, statements=20)[None]
    with torch.inference_mode():
        torch.testing.assert_close(model.eval()(ids), model.train()(ids))


@pytest.mark.parametrize("cell", [(0, 0), (3, 1), (9, 2)])
def test_parents_are_the_architecture_rules(cell):
    transformer, scratchpad = tracking.TrackingTransformer(2), tracking.ScratchpadTransformer(2)
    expected = TransformerRule(2).parents(cell)
    assert transformer.parents(Cell(*cell)) == scratchpad.parents(Cell(*cell)) == expected
    feedback = tracking.TrackingFeedback(2, window=4)
    found = feedback.parents(Cell(*cell))
    assert set(found) <= set(FeedbackRule(2).parents(cell))
    assert all(isinstance(parent, Cell) for parent in found)
    if cell[1] > 0:  # every layer of the last `window` tokens, and the layer below
        window = range(max(0, cell[0] - 4), cell[0])
        assert set(found) == {(i, k) for i in window for k in range(3)} | {(cell[0], cell[1] - 1)}


def test_the_feedback_model_reads_within_its_window():
    model = model_of("feedback", 2, seed=3)
    program = tracking.random_program(np.random.default_rng(3), 15)
    run = model.run(program)
    with torch.inference_mode():
        torch.testing.assert_close(run.logits, model.full(ids_of(model, 3)), atol=1e-5, rtol=1e-5)
    assert run.reads.shape == (len(program.tokens),) * 2
    np.testing.assert_allclose(run.reads[1:].sum(-1), 1.0, atol=1e-5)  # a distribution per token
    assert (np.triu(run.reads) == 0).all()  # only the past is read
    assert (np.tril(run.reads, -9) == 0).all()  # and only the window


def test_the_feedback_model_reads_the_top_of_the_past():
    """The gradient of a token's output reaches an earlier token's top layer through its memory."""
    model = tracking.TrackingFeedback(2, window=8)
    ids = ids_of(model, seed=0, statements=4)[None]
    top_of_first = []
    model.blocks[-1].register_forward_hook(
        lambda _module, _inputs, output: (
            top_of_first.append(output[0]) if not top_of_first else None
        )
    )
    logits = model(ids)
    (grad,) = torch.autograd.grad(logits[0, 3].sum(), top_of_first[0])
    assert grad.abs().sum() > 0


def test_the_scratchpad_reads_back_what_it_wrote():
    """At every `;`, a full pass over the text it wrote picks the value that follows: at test
    time the model reads its own values, and the batched, chunked writer agrees with one
    program at a time."""
    model = model_of("scratchpad", 2, seed=4)
    programs = [tracking.random_program(np.random.default_rng(s), 10 + 5 * s) for s in range(4)]
    writings = model.write(programs)
    for program, writing in zip(programs, writings, strict=True):
        ids = torch.tensor([tracking.TOKEN_ID[token] for token in writing.tokens])
        with torch.inference_mode():
            chosen = model.full(ids).argmax(-1) + 1  # (T',)
        positions = task.written_positions(program)
        assert [int(chosen[p - 1]) for p in positions] == list(writing.written)
        assert model.write([program]) == [writing]
        assert writing.said == tuple(writing.written[line] for line in program.print_lines)


def test_a_planted_value_is_what_the_scratchpad_reads():
    model = model_of("scratchpad", 2, seed=5)
    program = tracking.random_program(np.random.default_rng(5), 20)
    (own,) = model.write([program])
    planted = own.written[3] % tracking.VALUES + 1  # any other value
    (forced,) = model.write([program], forced={3: planted})
    assert forced.written[:3] == own.written[:3]
    assert forced.written[3] == planted
    ids = torch.tensor([tracking.TOKEN_ID[token] for token in forced.tokens])
    assert int(ids[task.written_positions(program)[3]]) == FIRST_VALUE + planted - 1
    with torch.inference_mode():
        later = model.full(ids).argmax(-1) + 1
    positions = task.written_positions(program)
    assert [int(later[p - 1]) for p in positions[4:]] == list(forced.written[4:])


def test_a_writing_knows_its_first_error():
    program = tracking.parse_program("x = 1 ; x ++ ; print x ; x ++ ; print x")
    assert program.values == (1, 2, 2, 3, 3)
    right = tracking.Writing(program, (1, 2, 2, 3, 3))
    wrong = tracking.Writing(program, (1, 2, 4, 5, 5))
    assert (right.first_error, right.said) == (None, (2, 3))
    assert (wrong.first_error, wrong.said) == (2, (4, 5))
    assert wrong.tokens[-1] == "5"


def test_build_knows_every_kind():
    for kind in ("feedback", "transformer", "scratchpad"):
        assert tracking.build(kind, 1).kind == kind
    with pytest.raises(ValueError, match="unknown model kind"):
        tracking.build("rnn", 1)
