"""/readable's measurements on the real SmolLM2-135M: the probes on the shipped corpus, and
counterfactual patching on the capital-of preset."""

import numpy as np
import pytest

from lib.content import presets
from lib.readable.corpus import load_corpus
from lib.readable.patching import PromptPair, patch, prompt_pair, restoration_curve
from lib.readable.probe import fit_probes, measured_widths, prompt_readability, widths
from lib.trace import decode_text, encode_prompt

pytestmark = pytest.mark.real

CLEAN = next(preset.prompt for preset in presets() if "capital" in preset.prompt)
CORRUPT = CLEAN.replace(" Italy", " Germany")


@pytest.fixture(scope="module")
def corpus():
    return load_corpus()


@pytest.fixture(scope="module")
def probes(real, corpus):
    return fit_probes(real, corpus)


def test_the_corpus_decodes_to_its_prompts_and_their_continuations(real, corpus):
    assert corpus.model_id == real.spec.id
    assert corpus.chunks.max() < real.shape.vocab
    for prompt, chunk in zip(corpus.prompts, corpus.chunks, strict=True):
        prompt_ids = encode_prompt(real, prompt, len(chunk)).ids
        assert tuple(chunk[: len(prompt_ids)]) == prompt_ids
        text = decode_text(real, chunk)
        assert text.startswith(prompt) and len(text) > 3 * len(chunk)  # words, not bytes
        assert "\ufffd" not in text


def test_the_widths_are_those_of_smollm2(real):
    assert widths(real) == measured_widths(real)
    assert (widths(real).residual, widths(real).mlp_hidden, widths(real).readable) == (
        576,
        1536,
        384,
    )


def test_what_later_tokens_read_lies_between_the_floor_and_the_ceiling(real, corpus, probes):
    names = ("readable", "ceiling", "floor")
    readable, ceiling, floor = (probes.scores(name)[:-1] for name in names)
    assert np.isnan(probes.r2[:, -1]).all()
    assert np.all(floor < 0.02)  # shuffled pairs explain nothing held out
    assert np.all(readable > floor + 0.05)
    assert np.all(readable <= ceiling + 0.02)  # K and V are linear in the ceiling's predictor
    assert np.mean(ceiling < 0.5) > 0.5  # most of the wide state is not linear in the residual
    held_out = len(corpus.held_out) * (corpus.chunks.shape[1] - 1)
    assert probes.tokens[2] == held_out and sum(probes.tokens) == corpus.n_tokens - len(
        corpus.prompts
    )


def test_the_readers_prompt_is_scored_on_the_held_out_scale(real, corpus, probes):
    """Scored one by one as prompts, the held-out chunks give back the held-out R²; the presets
    are among them, so a preset prompt is scored as text the probes never saw."""
    assert corpus.prompts.index(CLEAN) in corpus.held_out
    errors = np.stack(
        [prompt_readability(real, probes, corpus.chunks[c]).errors for c in corpus.held_out]
    )  # (chunks, L, T)
    scores = 1 - np.nanmean(errors[:, :-1], axis=(0, 2))  # (L − 1,)
    np.testing.assert_allclose(scores, probes.scores("readable")[:-1], atol=1e-3)
    prompt = prompt_readability(real, probes, encode_prompt(real, CLEAN, 64).ids).scores
    assert np.isnan(prompt[-1]) and np.isfinite(prompt[:-1]).all()


@pytest.fixture(scope="module")
def pair(real):
    found = prompt_pair(real, CLEAN, CORRUPT, max_tokens=64)
    assert isinstance(found, PromptPair)
    return found


def test_the_capital_pair_differs_in_the_country(real, pair):
    assert decode_text(real, [pair.clean_ids[pair.position]]) == " Italy"
    assert decode_text(real, [pair.corrupt_ids[pair.position]]) == " Germany"


def test_patching_internal_states_restores_the_clean_answer(real, pair):
    result = patch(real, pair, range(1, real.shape.layers))
    assert not result.notice
    assert decode_text(real, [result.clean_answer]) == " Rome"
    assert decode_text(real, [result.corrupt_answer]) == " Berlin"
    assert result.restored > 0.9
    assert result.patched.top_ids[0] == result.clean_answer


def test_the_restoration_curve_is_a_step_down_at_the_layer_that_reads_the_country(real, pair):
    """Patching layers a..L−1 restores the clean answer while the range includes the layer at
    which the last token reads the country's states, and nothing once it starts above it."""
    curve = restoration_curve(real, pair)
    assert curve.word == pytest.approx(1, abs=1e-4)  # every layer: the clean run itself
    internal = curve.internal  # a = 1..L−1
    step = int(np.argmax(internal < 0.5))  # the first start that restores less than half
    assert 0 < step < len(internal) - 1
    assert np.all(internal[:step] > 0.8) and np.all(np.abs(internal[step:]) < 0.2)
