"""The three dependency rules, the graph numbers derived from them, and the /architectures page
model: against hand counts, a brute-force search over every path, autograd on the toy models,
and the real model's own config."""

from __future__ import annotations

import dataclasses
import json
import math
import re
from functools import cache

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from lib import content, export, site, toy
from lib.architectures import (
    ARCHITECTURES,
    Architecture,
    FeedbackRule,
    Memory,
    RNNRule,
    TransformerRule,
    ancestor_masks,
    ancestors,
    auto_cell,
    cone_mask,
    descendants,
    edges,
    grid,
    longest_path,
    make_rule,
    step_numbers,
)
from lib.config import PARAMS_BY_NAME, ViewConfig
from lib.models import ModelShape
from lib.pages.architectures import (
    PAGE,
    architectures_page,
    real_model,
    real_shape,
    waiting_text,
)
from lib.stepping import Cell

NAMES = sorted(ARCHITECTURES)
MAX_TOKENS, MAX_LAYERS = PARAMS_BY_NAME["tokens"].high, PARAMS_BY_NAME["layers"].high
rules = st.builds(
    make_rule, st.sampled_from(NAMES), st.integers(min_value=1, max_value=4), st.booleans()
)


# --- the rules ------------------------------------------------------------------------------


def test_registry_names() -> None:
    assert NAMES == ["feedback", "rnn", "transformer"]
    for name in NAMES:
        rule = make_rule(name, 3, generation=True)
        assert (rule.name, rule.layers, rule.generation) == (name, 3, True)


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
def test_embeddings_have_no_parents_over_a_text_and_one_while_generating(name: str) -> None:
    reading, generating = make_rule(name, 3), make_rule(name, 3, generation=True)
    assert all(reading.parents((t, 0)) == () for t in range(5))
    assert generating.parents((0, 0)) == ()  # the first token is given
    assert [generating.parents((t, 0)) for t in (1, 4)] == [((0, 3),), ((3, 3),)]
    # Above the embedding the sampled token changes nothing.
    assert all(
        reading.parents(cell) == generating.parents(cell) for cell in grid(reading, 4) if cell[1]
    )


def test_parents_by_hand() -> None:
    # Transformer: layer 2 of token 2 reads layer 1 of tokens 0, 1, 2.
    assert TransformerRule(2).parents((2, 2)) == ((0, 1), (1, 1), (2, 1))
    # RNN: its own layer one step back, and the layer below now; token 0 has no step back.
    assert RNNRule(2).parents((2, 1)) == ((1, 1), (2, 0))
    assert RNNRule(2).parents((0, 1)) == ((0, 0),)
    # Feedback, L = 2: all three cells of token 0 (through m_0), and the layer below now.
    assert FeedbackRule(2).parents((1, 2)) == ((0, 0), (0, 1), (0, 2), (1, 1))
    assert FeedbackRule(2).parents((0, 1)) == ((0, 0),)
    parents = TransformerRule(2).parents(Cell(1, 1))
    assert all(isinstance(parent, Cell) for parent in parents)  # the one Cell type


def test_ancestors_by_hand() -> None:
    # Transformer (2,2) ← (i,1) ← (j,0): all of layers 0 and 1, none of layer 2.
    expected = {(0, 0), (1, 0), (2, 0), (0, 1), (1, 1), (2, 1)}
    assert ancestors(TransformerRule(2), (2, 2)) == expected
    assert ancestors(TransformerRule(2), (2, 1)) == {(0, 0), (1, 0), (2, 0)}
    # While generating, (1, 0) is picked by (0, 2): every cell of token 0 is behind it.
    assert ancestors(TransformerRule(2, True), (1, 0)) == {(0, 0), (0, 1), (0, 2)}
    # RNN (1,1) ← (0,1), (1,0); (0,1) ← (0,0). The top layer of token 0 is out of reach.
    assert ancestors(RNNRule(2), (1, 1)) == {(0, 0), (0, 1), (1, 0)}
    # Feedback (1,1) reads m_0, which mixes all of token 0 including its top layer (0,2).
    assert ancestors(FeedbackRule(2), (1, 1)) == {(0, 0), (0, 1), (0, 2), (1, 0)}


def test_descendants_by_hand() -> None:
    everything_above_0 = {(t, k) for t in range(3) for k in (1, 2)}
    assert descendants(TransformerRule(2), (0, 0), 3) == everything_above_0
    # The top of the past feeds nothing in a transformer over a text ...
    assert descendants(TransformerRule(2), (1, 2), 3) == frozenset()
    # ... everything of the next tokens while generating ...
    assert descendants(TransformerRule(2, True), (1, 2), 3) == {(2, 0), (2, 1), (2, 2)}
    # ... only the same layer later in an RNN, and every later layer in a feedback transformer.
    assert descendants(RNNRule(2), (1, 2), 3) == {(2, 2)}
    assert descendants(FeedbackRule(2), (1, 2), 3) == {(2, 1), (2, 2)}
    assert descendants(RNNRule(2), (1, 1), 2) == {(1, 2)}  # only the first `tokens` tokens


def test_edge_counts_by_hand() -> None:
    # T = 3, L = 2. Transformer: (t, l≥1) has t+1 parents → 2·(1+2+3) = 12.
    assert len(edges(TransformerRule(2), 3)) == 12
    # RNN: 6 cells with a layer below, 4 of them (t ≥ 1) with a step back → 10.
    assert len(edges(RNNRule(2), 3)) == 10
    # Feedback: (t, l≥1) has 3t + 1 parents → 2·(1 + 4 + 7) = 24.
    assert len(edges(FeedbackRule(2), 3)) == 24
    # Generating adds one sampled-token edge per token after the first.
    assert len(edges(FeedbackRule(2, True), 3)) == 24 + 2


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
    assert not past[cell] and not future[cell]
    assert {tuple(map(int, c)) for c in np.argwhere(past)} == ancestors(rule, cell)
    masks = ancestor_masks(rule, tokens)  # [t, l, i, k]: (t, l) depends on (i, k)
    np.testing.assert_array_equal(masks[cell], past)
    np.testing.assert_array_equal(masks[:, :, cell[0], cell[1]], future)
    assert not (past & future).any()  # no cycles


# --- serial paths against a brute-force search over every path ------------------------------


def brute_force_longest(rule: Architecture, src: int, dst: int) -> tuple[int, int] | None:
    """Walk every path of the graph from every cell of token `src`; the most layer
    computations (steps into a layer ≥ 1) on a path that ends on token `dst`, ties broken by
    the most sampled tokens (steps into an embedding)."""
    if dst < src:
        return None
    children: dict[Cell, list[Cell]] = {cell: [] for cell in grid(rule, dst + 1)}
    for parent, child in edges(rule, dst + 1):
        children[parent].append(child)
    best = None

    def walk(cell: Cell, computations: int, samples: int) -> None:
        nonlocal best
        if cell.token == dst:
            best = max(best or (0, 0), (computations, samples))
        for child in children[cell]:
            up = child.layer >= 1
            walk(child, computations + up, samples + (not up))

    for layer in range(rule.layers + 1):
        walk(Cell(src, layer), 0, 0)
    return best


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("generation", [False, True])
@pytest.mark.parametrize(("tokens", "layers"), [(1, 1), (3, 2), (4, 1), (4, 3)])
def test_longest_path_is_the_brute_force_longest_path(
    name: str, generation: bool, tokens: int, layers: int
) -> None:
    rule = make_rule(name, layers, generation)
    for src in range(tokens):
        for dst in range(tokens):
            expected = brute_force_longest(rule, src, dst)
            found = longest_path(rule, src, dst)
            assert (None if found is None else tuple(found)) == expected, (src, dst)


@pytest.mark.parametrize(
    ("layers", "dst", "transformer", "rnn", "feedback"),
    [
        # Over a text. Transformer: each step climbs a layer, so at most L. RNN: up token 0,
        # then d steps right: d + L. Feedback: L up each of the d+1 tokens, (d+1)·L.
        (2, 2, 2, 4, 6),
        (3, 3, 3, 6, 12),
        (4, 0, 4, 4, 4),
    ],
)
def test_longest_path_by_hand(layers, dst, transformer, rnn, feedback) -> None:
    for name, expected in (("transformer", transformer), ("rnn", rnn), ("feedback", feedback)):
        assert longest_path(make_rule(name, layers), 0, dst) == (expected, 0)
        # Generating: up every token and through every sampled token, in all three.
        assert longest_path(make_rule(name, layers, True), 0, dst) == ((dst + 1) * layers, dst)


@cache
def final_numbers(name: str, tokens: int, layers: int, generation: bool):
    return step_numbers(make_rule(name, layers, generation), tokens - 1, tokens, 8)


def test_the_pages_sentences_hold_on_every_grid_a_link_allows() -> None:
    """/architectures says, for the last token t of any grid: over a text the transformer's
    longest chain is L and its top depends on no earlier top; while generating, the longest
    chain is (t+1)·L through t sampled tokens *in all three*, and every earlier top is behind
    the top of t. Checked on all 16 × 8 grids the URL allows."""
    for tokens in range(1, MAX_TOKENS + 1):
        for layers in range(1, MAX_LAYERS + 1):
            t = tokens - 1
            tr = final_numbers("transformer", tokens, layers, False)
            assert (tr.reading_path, tr.past_tops_in_cone) == (layers, 0)
            for name in NAMES:
                gen = final_numbers(name, tokens, layers, True)
                assert (gen.generating_path, gen.generating_samples) == ((t + 1) * layers, t)
                assert gen.past_tops_in_cone == t
                assert gen.generating_steps == tokens * layers


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("layers", [1, 2, 4])
@pytest.mark.parametrize("tokens", [1, 2, 5])
def test_training_steps_are_the_longest_path_over_a_text(name, layers, tokens) -> None:
    rule = make_rule(name, layers)
    assert rule.training_sequential_steps(tokens) == longest_path(rule, 0, tokens - 1)[0]


def test_state_values_by_hand() -> None:
    # width 16, L = 2: a K and a V of 16 numbers per layer per past token = 64 per token.
    assert [TransformerRule(2).state_values(t, 16) for t in (0, 1, 5)] == [0, 64, 320]
    assert [RNNRule(2).state_values(t, 16) for t in (0, 1, 5)] == [32, 32, 32]
    assert [FeedbackRule(2).state_values(t, 16) for t in (0, 1, 5)] == [0, 16, 80]
    assert RNNRule(2).state_bytes(5, 16, bytes_per_value=2) == 64
    with pytest.raises(ValueError):
        RNNRule(2).state_values(-1, 16)


def test_memory_edges_draw_the_same_dependencies() -> None:
    rule, tokens = FeedbackRule(2), 3
    drawn = rule.memory_edges(tokens)
    # 3 tokens × 3 cells write their memory; 2 layers × (0 + 1 + 2) earlier memories are read.
    assert len(drawn) == 9 + 6
    assert ((0, 2), Memory(0)) in drawn and (Memory(0), (2, 1)) in drawn


def test_auto_cell_shows_a_cone_and_a_reach_in_every_rule() -> None:
    for tokens in range(1, MAX_TOKENS + 1):
        for layers in range(2, MAX_LAYERS + 1):
            cell = auto_cell(tokens, layers)
            assert 0 <= cell.token < tokens and 1 <= cell.layer <= layers
            for name in NAMES:
                rule = make_rule(name, layers)
                assert ancestors(rule, cell) and descendants(rule, cell, tokens)


# --- the page model --------------------------------------------------------------------------

TINY = ModelShape(
    layers=3, heads=6, kv_heads=2, hidden=48, head_dim=8, mlp=96, vocab=257, bytes_per_value=4
)


def tiny_reference():
    return real_model("tiny", "test", TINY, "float32")


def page(reference=tiny_reference, **settings):
    return architectures_page(ViewConfig(**settings), toy.verify, reference)


def test_a_link_without_a_cell_opens_the_pick_and_a_bad_one_is_clamped() -> None:
    default = page()
    assert default.cell == default.auto == auto_cell(6, 4) and default.notices == ()
    clamped = page(token=40, layer=9)
    assert clamped.cell == (5, 4)
    assert [n.split(" must")[0] for n in clamped.notices] == ["`token`", "`layer`"]


@pytest.mark.parametrize("generation", ["off", "on"])
def test_cones_and_counts_follow_autograd_on_the_toy_models(generation: str) -> None:
    """The cone counts under each diagram, against autograd on the toy model of the same
    architecture: over a text from the full pass, while generating from soft tokens."""
    view = page(tokens=5, layers=3, token=3, layer=2, generation=generation)
    for panel in view.panels:
        check = panel.check.result
        measured = (check.generating if generation == "on" else check.reading).grad_mask
        t, layers = 3, 3
        top = measured[t, layers]  # what (3, 3) depends on, measured
        assert panel.numbers.past_cells_in_cone == int(top[:t].sum())
        assert panel.numbers.past_tops_in_cone == int(top[:t, layers].sum())
        assert panel.cone == int(measured[3, 2].sum())  # the selected cell's backward cone
        assert panel.reach == int(measured[:, :, 3, 2].sum())  # and everything it reaches
        wires = panel.diagram.wires
        assert wires["wire"].nunique() == (4 if generation == "on" else 0)
        assert bool(panel.gain) == (generation == "on")


def test_the_numbers_the_page_prints_are_the_computed_ones() -> None:
    view = page(tokens=6, layers=4, generation="on")
    tr = next(panel for panel in view.panels if panel.name == "transformer")
    assert f"{tr.numbers.generating_path} computations" in tr.numbers_markdown
    assert f"**{longest_path(TransformerRule(4), 0, 5)[0]}** layer computations" in view.intro
    generating = longest_path(TransformerRule(4, True), 0, 5)
    assert f"**{generating.computations}**" in view.loop
    assert f"{generating.samples} sampled tokens" in view.loop
    # The reference shape: a vocabulary of 257 and 2 KV heads × 8 = 16 numbers per K or V.
    assert f"{math.log2(257):.1f} bits" in view.loop
    assert "16 + 16 numbers per token and layer" in view.loop
    assert all("0 of 900" in panel.check_markdown for panel in view.panels)


def test_the_real_models_numbers_come_from_its_shape() -> None:
    real = tiny_reference()
    assert 2**real.bits_per_token == pytest.approx(257)
    # The transformer rule at the KV width: 2 × layers × kv_heads × head_dim per token.
    assert real.per_token * TINY.bytes_per_value == TINY.cache_bytes_per_token
    assert real.per_token_full_width == real.per_token * TINY.hidden // TINY.kv_width


def test_the_per_token_cache_is_what_the_tiny_llama_caches(tiny) -> None:
    """Grouped-query attention: what the page says a token adds to the cache, against the
    DynamicCache of a real forward pass."""
    real = real_model("tiny", "test", tiny.shape, "float32")
    with torch.no_grad():
        out = tiny.model(torch.tensor([[5, 6, 7, 8, 9]]), use_cache=True)
    held = sum(layer.keys.numel() + layer.values.numel() for layer in out.past_key_values.layers)
    assert held == 5 * real.per_token
    assert real.per_token < real.per_token_full_width  # 2 KV heads of 8, not 48 wide


def test_the_config_read_without_weights_is_the_loaded_models(real) -> None:
    found = real_shape()
    assert found is not None and found.shape == real.shape
    assert found.bits_per_token == pytest.approx(math.log2(real.model.config.vocab_size))


def test_without_the_converted_model_the_page_says_so() -> None:
    view = page(reference=lambda: None)
    assert view.real is None
    assert view.real_text == content.fill(PAGE, "real_missing")
    assert content.fill(PAGE, "no_model") in view.loop


def test_a_failed_check_changes_the_words() -> None:
    def failing(name, tokens, layers):
        result = toy.verify(name, tokens, layers)
        return dataclasses.replace(result, max_abs_diff=0.5, step_equals_full=False)

    view = architectures_page(ViewConfig(tokens=3, layers=2), failing, tiny_reference)
    assert view.sufficient == content.fill(PAGE, "unverified", max_diff=0.5)
    assert all(":material/cancel:" in panel.check_markdown for panel in view.panels)


def test_every_template_is_used() -> None:
    for query in (
        {},
        {"generation": "on"},
        {"generation": "on", "token": 0},
        {"tokens": 1, "layers": 1, "generation": "on"},
    ):
        page(**query)
    page(reference=lambda: None)
    test_a_failed_check_changes_the_words()
    waiting_text()  # what the view says before the page model exists
    unused = set(content.templates(PAGE)) - {key for p, key in content.FILLED if p == PAGE}
    assert unused == set()


def test_the_export_is_the_page_without_its_masks() -> None:
    view = page(tokens=4, layers=2, token=3, layer=1)
    document = json.loads(export.view_json(site.page(PAGE), ViewConfig(tokens=4), view))
    data = document["data"]
    assert data["cell"] == {"token": 3, "layer": 1}
    panel = data["panels"][0]
    assert "result" not in panel["check"] and "lines" not in panel["diagram"]
    assert len(panel["diagram"]["cells"]) == 4 * 3
    assert [row["architecture"] for row in data["table"]] == list(ARCHITECTURES)
    assert view.files["transformer"] == "architectures-tokens4-layers2-token3-layer1-figtransformer"
    assert "generationon" in page(generation="on").files["data"]


@pytest.mark.parametrize("query", [{}, {"generation": "on"}])
def test_no_placeholder_is_left_in_what_the_page_shows(query) -> None:
    view = page(**query)
    shown = [view.intro, view.loop, view.selected, view.real_text, view.sufficient]
    shown += [
        text
        for panel in view.panels
        for text in (panel.cone_caption, panel.numbers_markdown, panel.readable, panel.gain)
    ]
    shown += [panel.check_markdown for panel in view.panels]
    shown += [*view.size_title, *view.path_title, *view.links.values()]
    assert not [text for text in shown if re.search(r"\{[a-z_]+(:[^}]*)?\}", text)]
