"""The tiny torch models: each is a `lib.stepping.SteppingModel`; generation ≡ full pass; autograd
finds exactly the rule's cones, over a text and while generating with soft tokens."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lib.architectures import ancestor_masks, make_rule
from lib.stepping import Cell, SteppingModel, run_steps, step_full_difference
from lib.toy import MODELS, VerificationResult, build_model, mismatches, random_tokens, verify
from lib.toy.common import generation_masks, gradient_masks

NAMES = sorted(MODELS)


def stepped_and_full(model: SteppingModel, tokens: torch.Tensor):
    """Through the protocol only: what any stepping model can be asked."""
    with torch.no_grad():
        return run_steps(model, tokens)[0], model.full(tokens)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("layers", [1, 2, 4])
@pytest.mark.parametrize("tokens", [1, 3, 6])
def test_step_by_step_equals_full_pass(name: str, layers: int, tokens: int) -> None:
    model = build_model(name, layers, seed=tokens)
    ids = random_tokens(model, tokens, seed=layers)
    stepped, full = stepped_and_full(model, ids)
    assert full.shape == stepped.shape == (tokens, layers + 1, model.width)
    assert full.dtype == torch.float64
    assert step_full_difference(model, ids) < 1e-12


@pytest.mark.parametrize("name", NAMES)
def test_parents_are_the_architecture_rule(name: str) -> None:
    model, rule = build_model(name, 3), make_rule(name, 3)
    assert model.layers == 3
    for t in range(4):
        for layer in range(4):
            found = model.parents(Cell(t, layer))
            assert found == rule.parents((t, layer))
            assert all(isinstance(parent, Cell) for parent in found)


@pytest.mark.parametrize("name", NAMES)
def test_a_prefix_is_not_changed_by_later_tokens(name: str) -> None:
    model = build_model(name, 3, seed=1)
    ids = random_tokens(model, 6, seed=2)
    with torch.no_grad():
        assert torch.allclose(model.full(ids[:4]), model.full(ids)[:4], rtol=0, atol=1e-12)


@pytest.mark.parametrize("name", NAMES)
def test_state_size_is_the_rules_state_values(name: str) -> None:
    """The numbers the page's state curve plots, against the tensors the model really carries."""
    model, rule = build_model(name, 3), make_rule(name, 3)
    state = model.initial_state()
    with torch.no_grad():
        for t, token in enumerate([3, 1, 4, 1, 5]):
            assert state.size() == rule.state_values(t, model.width)
            cells, state = model.step(token, state)
            assert cells.shape == (4, model.width)


@pytest.mark.parametrize("name", NAMES)
def test_seed_fixes_the_model(name: str) -> None:
    ids = torch.tensor([1, 2, 3])
    torch.manual_seed(123)  # the global seed must not matter
    with torch.no_grad():
        first = build_model(name, 2, seed=7).full(ids)
        torch.manual_seed(456)
        assert torch.equal(build_model(name, 2, seed=7).full(ids), first)
        assert not torch.allclose(build_model(name, 2, seed=8).full(ids), first)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize(("tokens", "layers"), [(1, 1), (3, 2), (4, 3), (6, 4)])
def test_autograd_finds_exactly_the_rules_ancestors(name: str, tokens: int, layers: int) -> None:
    result = verify(name, tokens, layers, seed=tokens + layers)
    assert isinstance(result, VerificationResult)
    assert result.step_equals_full and result.max_abs_diff < 1e-12
    assert result.passed
    for check, generation in ((result.reading, False), (result.generating, True)):
        assert check.grad_mask.shape == (tokens, layers + 1, tokens, layers + 1)
        assert check.mismatched_cells == () and check.matches
        expected = ancestor_masks(make_rule(name, layers, generation), tokens)
        np.testing.assert_array_equal(check.grad_mask, expected)


@pytest.mark.parametrize("name", NAMES)
def test_the_sampled_token_edge_is_seen_only_while_generating(name: str) -> None:
    """Over a text an embedding depends on nothing; generating with soft tokens, the input of
    token t depends on the top of token t−1 and, through it, on every earlier cell."""
    model = build_model(name, 2)
    ids = random_tokens(model, 3, seed=0)
    reading, generating = gradient_masks(model, ids), generation_masks(model, int(ids[0]), 3)
    assert not reading[:, 0].any()
    assert generating[1, 0, 0, 2] and generating[2, 0, 1, 2]
    assert generating[2, 0, :2].all()  # every cell of tokens 0 and 1 is behind (2, 0)
    wrong = mismatches(generating, ancestor_masks(make_rule(name, 2), 3))
    assert (Cell(1, 0), Cell(0, 2)) in wrong  # the rule without the edge misses it


def test_each_rule_describes_only_its_own_model() -> None:
    # T = 3, L = 2 is the smallest grid where all three rules differ (with L = 1 the RNN and
    # feedback rules coincide: the only layer above the embedding is the top one).
    grad_masks = {}
    for name in NAMES:
        model = build_model(name, 2)
        grad_masks[name] = gradient_masks(model, random_tokens(model, 3, seed=0))
    for model_name in NAMES:
        for rule_name in NAMES:
            rule_mask = ancestor_masks(make_rule(rule_name, 2), 3)
            matches = np.array_equal(grad_masks[model_name], rule_mask)
            assert matches == (model_name == rule_name), (model_name, rule_name)


@pytest.mark.parametrize("name", NAMES)
def test_a_generated_text_alone_rebuilds_every_carried_cell(name: str) -> None:
    """Greedy generation with the model's own state, then one full pass over the text it wrote:
    the same cells. The tokens are a sufficient state; carrying one is a policy."""
    model = build_model(name, 3, seed=5)
    state, token, rows, text = model.initial_state(), 7, [], []
    with torch.no_grad():
        for _ in range(6):
            text.append(token)
            cells, state = model.step(token, state)
            rows.append(cells)
            token = int((model.readout @ cells[-1]).argmax())
        full = model.full(torch.tensor(text))
    assert torch.allclose(torch.stack(rows), full, rtol=0, atol=1e-12)


def test_gradient_mask_has_an_empty_diagonal() -> None:
    model = build_model("feedback", 2)
    masks = gradient_masks(model, random_tokens(model, 4, seed=0))
    for t in range(4):
        for layer in range(3):
            assert not masks[t, layer, t, layer]


def test_unknown_architecture_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown architecture"):
        verify("lstm", 2, 2)
