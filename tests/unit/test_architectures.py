"""The three dependency rules and the graph numbers derived from them, against hand counts."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lib.architectures import (
    ARCHITECTURES,
    Architecture,
    FeedbackRule,
    Memory,
    RNNRule,
    TransformerRule,
    ancestor_masks,
    ancestors,
    cone_mask,
    descendants,
    edges,
    grid,
    longest_path,
    make_rule,
)

NAMES = sorted(ARCHITECTURES)
rules = st.builds(make_rule, st.sampled_from(NAMES), st.integers(min_value=1, max_value=4))


def test_registry_names() -> None:
    assert NAMES == ["feedback", "rnn", "transformer"]
    for name in NAMES:
        assert make_rule(name, 3).name == name
        assert make_rule(name, 3).layers == 3


def test_bad_input_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown architecture"):
        make_rule("lstm", 2)
    with pytest.raises(ValueError, match="at least 1"):
        TransformerRule(0)
    with pytest.raises(ValueError, match="off the grid"):
        RNNRule(2).parents((0, 3))
    with pytest.raises(ValueError, match="off the grid"):
        FeedbackRule(2).parents((-1, 1))


@pytest.mark.parametrize("name", NAMES)
def test_embeddings_have_no_parents(name: str) -> None:
    rule = make_rule(name, 3)
    assert all(rule.parents((t, 0)) == () for t in range(5))


def test_parents_by_hand() -> None:
    # Transformer: layer 2 of token 2 reads layer 1 of tokens 0, 1, 2.
    assert TransformerRule(2).parents((2, 2)) == ((0, 1), (1, 1), (2, 1))
    # RNN: its own layer one step back, and the layer below now; token 0 has no step back.
    assert RNNRule(2).parents((2, 1)) == ((1, 1), (2, 0))
    assert RNNRule(2).parents((0, 1)) == ((0, 0),)
    # Feedback, L = 2: all three cells of token 0 (through m_0), and the layer below now.
    assert FeedbackRule(2).parents((1, 2)) == ((0, 0), (0, 1), (0, 2), (1, 1))
    assert FeedbackRule(2).parents((0, 1)) == ((0, 0),)


def test_ancestors_transformer_3_tokens_2_layers_by_hand() -> None:
    # (2,2) ← (0,1), (1,1), (2,1); each (i,1) ← (0..i, 0): all of layers 0 and 1, none of layer 2.
    expected = {(0, 0), (1, 0), (2, 0), (0, 1), (1, 1), (2, 1)}
    assert ancestors(TransformerRule(2), (2, 2)) == expected
    # Layer 1 never sees a past layer-1 value: only embeddings.
    assert ancestors(TransformerRule(2), (2, 1)) == {(0, 0), (1, 0), (2, 0)}


def test_ancestors_rnn_and_feedback_by_hand() -> None:
    # RNN (1,1) ← (0,1), (1,0); (0,1) ← (0,0). The top layer of token 0 is out of reach.
    assert ancestors(RNNRule(2), (1, 1)) == {(0, 0), (0, 1), (1, 0)}
    # Feedback (1,1) reads m_0, which mixes all of token 0 including its top layer (0,2).
    assert ancestors(FeedbackRule(2), (1, 1)) == {(0, 0), (0, 1), (0, 2), (1, 0)}
    # RNN (2,2): every cell of tokens 0 and 1, and the layers below it of token 2.
    past = {(i, k) for i in range(2) for k in range(3)}
    assert ancestors(RNNRule(2), (2, 2)) == past | {(2, 0), (2, 1)}
    assert ancestors(FeedbackRule(2), (2, 2)) == past | {(2, 0), (2, 1)}


def test_descendants_by_hand() -> None:
    everything_above_0 = {(t, k) for t in range(3) for k in (1, 2)}
    assert descendants(TransformerRule(2), (0, 0), 3) == everything_above_0
    # The top of the past feeds nothing in a transformer ...
    assert descendants(TransformerRule(2), (1, 2), 3) == frozenset()
    # ... only the same layer later in an RNN, and every later layer in a feedback transformer.
    assert descendants(RNNRule(2), (1, 2), 3) == {(2, 2)}
    assert descendants(FeedbackRule(2), (1, 2), 3) == {(2, 1), (2, 2)}
    assert descendants(RNNRule(2), (1, 1), 3) == {(1, 2), (2, 1), (2, 2)}
    # Only cells of the first `tokens` tokens are counted.
    assert descendants(RNNRule(2), (1, 1), 2) == {(1, 2)}


@pytest.mark.parametrize(
    ("tokens", "layers", "src", "dst", "transformer", "rnn", "feedback"),
    [
        # Transformer: each edge climbs one layer, so any chain has at most L edges.
        # RNN: (src,0) → (src,1), then dst-src steps right and L-1 up: dst-src+L.
        # Feedback: L edges up token src, then for each later token 1 edge from the previous
        # token's top into its layer 1 and L-1 up: L·(dst-src+1).
        (3, 2, 0, 2, 2, 4, 6),  # (0,0)→(0,1)→(0,2)→(1,1)→(1,2)→(2,1)→(2,2) is the feedback chain
        (4, 3, 0, 3, 3, 6, 12),
        (4, 2, 1, 3, 2, 4, 6),
        (4, 3, 2, 2, 3, 3, 3),  # within one token: (t,0)→…→(t,L) for all three
        (1, 1, 0, 0, 1, 1, 1),
    ],
)
def test_longest_path_by_hand(
    tokens: int, layers: int, src: int, dst: int, transformer: int, rnn: int, feedback: int
) -> None:
    assert dst < tokens
    assert longest_path(TransformerRule(layers), src, dst) == transformer
    assert longest_path(RNNRule(layers), src, dst) == rnn
    assert longest_path(FeedbackRule(layers), src, dst) == feedback


@pytest.mark.parametrize("name", NAMES)
def test_no_path_backwards_in_time(name: str) -> None:
    assert longest_path(make_rule(name, 2), 2, 1) is None


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("layers", [1, 2, 4])
@pytest.mark.parametrize("tokens", [1, 2, 5])
def test_training_steps_are_the_longest_path(name: str, layers: int, tokens: int) -> None:
    rule = make_rule(name, layers)
    assert rule.training_sequential_steps(tokens) == longest_path(rule, 0, tokens - 1)


def test_training_steps_by_hand() -> None:
    assert TransformerRule(4).training_sequential_steps(100) == 4
    assert RNNRule(4).training_sequential_steps(100) == 103
    assert FeedbackRule(4).training_sequential_steps(100) == 400


def test_state_values_by_hand() -> None:
    # width 16, L = 2: a K and a V of 16 numbers per layer per past token = 64 per token.
    assert [TransformerRule(2).state_values(t, 16) for t in (0, 1, 5)] == [0, 64, 320]
    assert [RNNRule(2).state_values(t, 16) for t in (0, 1, 5)] == [32, 32, 32]
    assert [FeedbackRule(2).state_values(t, 16) for t in (0, 1, 5)] == [0, 16, 80]
    assert TransformerRule(2).state_bytes(5, 16) == 1280
    assert RNNRule(2).state_bytes(5, 16, bytes_per_value=2) == 64
    with pytest.raises(ValueError):
        RNNRule(2).state_values(-1, 16)


@pytest.mark.parametrize("name", NAMES)
def test_readable_past_is_a_sentence(name: str) -> None:
    rule = make_rule(name, 2)
    assert "0" in rule.readable_past(0)
    assert "3" in rule.readable_past(3)


def test_edge_counts_by_hand() -> None:
    # T = 3, L = 2. Transformer: (t, l≥1) has t+1 parents → 2·(1+2+3) = 12.
    assert len(edges(TransformerRule(2), 3)) == 12
    # RNN: 6 cells with a layer below, 4 of them (t ≥ 1) with a step back → 10.
    assert len(edges(RNNRule(2), 3)) == 10
    # Feedback: (t, l≥1) has 3t + 1 parents → 2·(1 + 4 + 7) = 24.
    assert len(edges(FeedbackRule(2), 3)) == 24
    assert ((0, 1), (2, 2)) in edges(TransformerRule(2), 3)


def test_memory_edges_draw_the_same_dependencies() -> None:
    rule, tokens = FeedbackRule(2), 3
    drawn = rule.memory_edges(tokens)
    # 3 tokens × 3 cells write their memory; 2 layers × (0 + 1 + 2) earlier memories are read.
    assert len(drawn) == 9 + 6
    assert ((0, 2), Memory(0)) in drawn and (Memory(0), (2, 1)) in drawn
    in_token = [((t, k - 1), (t, k)) for t in range(tokens) for k in range(1, 3)]
    graph = [*drawn, *in_token]
    for cell in grid(rule, tokens):
        reached, todo = set(), [cell]
        while todo:
            node = todo.pop()
            for parent, child in graph:
                if child == node and parent not in reached:
                    reached.add(parent)
                    todo.append(parent)
        assert {node for node in reached if not isinstance(node, Memory)} == ancestors(rule, cell)


@settings(max_examples=60, deadline=None)
@given(rule=rules, tokens=st.integers(min_value=1, max_value=5))
def test_grid_order_is_topological(rule: Architecture, tokens: int) -> None:
    order = {cell: index for index, cell in enumerate(grid(rule, tokens))}
    assert all(order[parent] < order[child] for parent, child in edges(rule, tokens))


@settings(max_examples=60, deadline=None)
@given(rule=rules, tokens=st.integers(min_value=1, max_value=5), data=st.data())
def test_cones_are_mirror_images(rule: Architecture, tokens: int, data: st.DataObject) -> None:
    cell = data.draw(st.sampled_from(grid(rule, tokens)))
    past, future = cone_mask(rule, cell, tokens), cone_mask(rule, cell, tokens, "future")
    assert past.shape == future.shape == (tokens, rule.layers + 1)
    assert not past[cell] and not future[cell]
    assert {tuple(map(int, c)) for c in np.argwhere(past)} == ancestors(rule, cell)
    masks = ancestor_masks(rule, tokens)  # [t, l, i, k]: (t, l) depends on (i, k)
    np.testing.assert_array_equal(masks[cell], past)
    np.testing.assert_array_equal(masks[:, :, cell[0], cell[1]], future)
    assert not (past & future).any()  # no cycles
