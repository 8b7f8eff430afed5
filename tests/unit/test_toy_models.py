"""The tiny torch models: generation ≡ full pass, and autograd finds exactly the rule's cones."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lib.architectures import ancestor_masks, make_rule
from lib.toy import MODELS, VerificationResult, build_model, mismatches, random_tokens, verify
from lib.toy.common import gradient_masks

NAMES = sorted(MODELS)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("layers", [1, 2, 4])
@pytest.mark.parametrize("tokens", [1, 3, 6])
def test_step_by_step_equals_full_pass(name: str, layers: int, tokens: int) -> None:
    model = build_model(name, layers, seed=tokens)
    ids = random_tokens(model, tokens, seed=layers)
    with torch.no_grad():
        full = model.full(ids)
        stepped, _ = model.run_steps(ids)
    assert full.shape == (tokens, layers + 1, model.width)
    assert full.dtype == torch.float64
    assert torch.allclose(stepped, full, rtol=0, atol=1e-12)


@pytest.mark.parametrize("name", NAMES)
def test_a_prefix_is_not_changed_by_later_tokens(name: str) -> None:
    model = build_model(name, 3, seed=1)
    ids = random_tokens(model, 6, seed=2)
    with torch.no_grad():
        assert torch.allclose(model.full(ids[:4]), model.full(ids)[:4], rtol=0, atol=1e-12)


@pytest.mark.parametrize("name", NAMES)
def test_state_size_is_the_rules_state_values(name: str) -> None:
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
    assert result.grad_mask.shape == (tokens, layers + 1, tokens, layers + 1)
    assert result.mismatched_cells == ()
    assert result.autograd_matches_rule and result.passed
    np.testing.assert_array_equal(result.grad_mask, ancestor_masks(make_rule(name, layers), tokens))


def test_transformer_rule_does_not_describe_the_rnn() -> None:
    model = build_model("rnn", 2)
    grad_mask = gradient_masks(model, random_tokens(model, 3, seed=0))
    wrong = mismatches(grad_mask, ancestor_masks(make_rule("transformer", 2), 3))
    # The RNN's (1,1) reads (0,1) through its hidden state; a transformer's layer 1 never does.
    assert ((1, 1), (0, 1)) in wrong
    # The transformer's (1,1) reads (1,0) and (0,0); so does the RNN's, so that pair agrees.
    assert ((1, 1), (0, 0)) not in wrong


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


def test_gradient_mask_has_an_empty_diagonal_and_empty_embedding_rows() -> None:
    model = build_model("feedback", 2)
    masks = gradient_masks(model, random_tokens(model, 4, seed=0))
    for t in range(4):
        assert not masks[t, 0].any()  # embeddings are computed from no cell
        for layer in range(3):
            assert not masks[t, layer, t, layer]


def test_unknown_architecture_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown architecture"):
        verify("lstm", 2, 2)
