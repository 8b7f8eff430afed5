"""The logit lens on the real SmolLM2-135M: its top row is the model's own output, its
probabilities sum to one, greedy tokens are the output's argmax, and the last hidden state
transformers returns is already through the final norm; /plan's page model on it."""

import numpy as np
import pytest
import torch

from lib.config import ViewConfig
from lib.generate import generate
from lib.lab import Lab
from lib.lens import first_seen, logit_lens
from lib.pages.plan import plan_page
from lib.trace import encode_prompt, run_trace

PROMPT = "The cure for cancer is"


@pytest.fixture(scope="module")
def greedy(real):
    prompt = encode_prompt(real, PROMPT, 64).ids
    run = generate(real, prompt, 8, use_cache=True)
    trace = run_trace(real, prompt + run.new_ids)
    return prompt, trace, logit_lens(real, trace)


def test_the_last_hidden_state_is_already_normed(real, greedy):
    _, trace, _ = greedy
    with torch.inference_mode():
        out = real.model(input_ids=torch.tensor([trace.token_ids.tolist()]))
        last = torch.tensor(trace.hidden[-1])  # (T, d)
        direct = real.model.lm_head(last)
        twice = real.model.lm_head(real.model.model.norm(last))
    np.testing.assert_allclose(direct.numpy(), out.logits[0].numpy(), atol=1e-4)
    assert (twice - out.logits[0]).abs().max() > 1.0  # norming twice would change the output


def test_the_top_row_is_the_models_output_distribution(real, greedy):
    _, trace, lensed = greedy
    with torch.inference_mode():
        logits = real.model(input_ids=torch.tensor([trace.token_ids.tolist()])).logits[0]
    probs = torch.softmax(logits.float(), -1)  # (T, V)
    top = lensed.n_layers - 1
    np.testing.assert_array_equal(lensed.top_ids[top], torch.topk(logits, 20).indices.numpy())
    expected = probs.gather(-1, torch.from_numpy(lensed.top_ids[top].copy()))
    np.testing.assert_allclose(lensed.top_probs[top], expected.numpy(), rtol=1e-4, atol=1e-6)
    entropy = -(probs * torch.log_softmax(logits.float(), -1)).sum(-1)
    np.testing.assert_allclose(lensed.entropy[top], entropy.numpy(), atol=1e-4)


def test_a_middle_layer_matches_plain_transformers(real, greedy):
    _, trace, lensed = greedy
    layer = 15
    with torch.inference_mode():
        out = real.model(
            input_ids=torch.tensor([trace.token_ids.tolist()]), output_hidden_states=True
        )
        logits = real.model.lm_head(real.model.model.norm(out.hidden_states[layer][0]))
    np.testing.assert_array_equal(lensed.top_ids[layer, :, 0], logits.argmax(-1).numpy())
    probs = torch.softmax(logits, -1).max(-1).values
    np.testing.assert_allclose(lensed.top_probs[layer, :, 0], probs.numpy(), atol=1e-5)


def test_probabilities_sum_to_one(real, greedy):
    prompt, _, _ = greedy
    short = run_trace(real, prompt[:3])
    whole = logit_lens(real, short, top_k=real.shape.vocab)  # every token: (L+1, 3, V)
    np.testing.assert_allclose(whole.top_probs.sum(-1), 1.0, atol=1e-4)


def test_greedy_tokens_are_the_argmax_and_settle_by_the_output(greedy):
    prompt, trace, lensed = greedy
    top = lensed.n_layers - 1
    emitted = range(len(prompt) - 1, trace.n_tokens - 1)
    np.testing.assert_array_equal(
        lensed.top_ids[top, list(emitted), 0], trace.token_ids[len(prompt) :]
    )
    sightings = first_seen(lensed, trace.token_ids, len(prompt) - 1, k=10)
    assert [s.position for s in sightings] == list(emitted)
    assert all(s.ranks[top] == 0 and s.settled is not None for s in sightings)
    assert all(1 <= s.entered <= s.settled for s in sightings)
    # The lens is not the output below the top: some token settles only above layer 1.
    assert any(s.settled > 1 for s in sightings)


def test_the_plan_page_on_the_real_model(real):
    page = plan_page(ViewConfig(prompt=PROMPT, new=8, token=4), Lab.direct(real))
    assert (page.token, page.layer) == (4, page.auto_layer) and page.n_rows == 31
    assert page.output.came_next == 0  # greedy: the token that came next is the likeliest
    summary = page.summary
    assert summary.emitted == summary.settled == 8  # greedy tokens all end in the top-k
    assert "Of the 8 that end in the top 10 at the output" in page.seen_text
    assert f"at layer {summary.median_settled:.0f} of 30" in page.seen_text
    if summary.compared:
        assert f"against {summary.matched_rate:.0%} of their matched tokens" in page.lookback_text
    for s in page.sightings:
        if s.p_value is not None:
            assert s.p_value >= 1 / (1 + s.matched)
            assert s.is_hint == (not s.in_text_before and s.p_value <= 0.05)
    assert not page.table.isna().any().any()
    # Row 0 reads back the input token at most positions: the embeddings are tied.
    assert page.echo > len(page.tokens) // 2 and "one matrix" in page.opening[2]
