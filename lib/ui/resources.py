"""Cached, shared computations: one model per server, one trace per distinct input.

Models and traces are immutable once built (traces hold read-only numpy arrays), so they are
kept with `st.cache_resource` and shared by every session instead of being pickled and copied
on every rerun. A rerun that only changes a selection finds everything here and calls no model.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import streamlit as st

from lib import generate, models, trace
from lib.config import MAX_PROMPT_TOKENS, ViewConfig
from lib.generate import GenerationTrace, Step
from lib.models import LoadedModel, ModelUnavailable
from lib.store import LruStore
from lib.trace import EncodedPrompt, Trace


@st.cache_resource(show_spinner=False, max_entries=2)
def _model(model_id: str, dtype: str) -> LoadedModel:
    return models.load(model_id, dtype)


def loaded_model(cfg: ViewConfig) -> LoadedModel:
    """The shared model for this view; a progress bar while it is fetched and converted.

    When the model cannot be had, the page says why and how to fix it, and stops there: the
    rest of the app keeps running.
    """
    slot = st.empty()

    def show(fraction: float, message: str) -> None:
        slot.progress(min(max(fraction, 0.0), 1.0), text=message)

    try:
        models.prepare(cfg.model, show)
        with st.spinner(f"Loading {cfg.model}…"):
            lm = _model(cfg.model, cfg.dtype)
    except ModelUnavailable as error:
        slot.empty()
        st.error(f"The model is not available. {error}", icon="🚫")
        st.stop()
    slot.empty()
    return lm


@st.cache_resource(show_spinner=False, max_entries=64)
def _encoded(model_id: str, dtype: str, prompt: str) -> EncodedPrompt:
    return trace.encode_prompt(_model(model_id, dtype), prompt, MAX_PROMPT_TOKENS)


def encoded_prompt(cfg: ViewConfig) -> EncodedPrompt:
    """The prompt's tokens within the budget; says so on the page when it had to be cut."""
    prompt = _encoded(cfg.model, cfg.dtype, cfg.prompt)
    for notice in prompt.notices:
        st.warning(notice, icon="✂️")
    return prompt


@st.cache_resource(show_spinner=False)
def _generations() -> LruStore[GenerationTrace]:
    return LruStore(max_entries=16)


def generation(
    cfg: ViewConfig,
    prompt_ids: tuple[int, ...],
    use_cache: bool = True,
    on_step: Callable[[Step], None] | None = None,
) -> GenerationTrace:
    """The generation for this view, computed once; `on_step` sees each step while it runs."""
    key = (cfg.model, cfg.dtype, prompt_ids, cfg.new, use_cache, cfg.seed)
    found = _generations().get(key)
    if found is None:
        lm = _model(cfg.model, cfg.dtype)
        say_if_waiting(lm)
        found = generate.generate(lm, prompt_ids, cfg.new, use_cache, cfg.seed, on_step=on_step)
        _generations().put(key, found)
    return found


@st.cache_resource(show_spinner=False, max_entries=8)
def _trace(model_id: str, dtype: str, token_ids: tuple[int, ...]) -> Trace:
    return trace.run_trace(_model(model_id, dtype), token_ids)


def say_if_waiting(lm: LoadedModel) -> None:
    """Tell the reader when another session holds the shared model: their turn comes next."""
    if lm.busy():
        st.toast("Another reader is using the model; yours runs as soon as it is free.", icon="⏳")


def traced(cfg: ViewConfig, token_ids: tuple[int, ...]) -> Trace:
    say_if_waiting(_model(cfg.model, cfg.dtype))
    with st.spinner(
        "Tracing the forward pass… (waits its turn if another reader is using the model)"
    ):
        return _trace(cfg.model, cfg.dtype, token_ids)


@dataclass(frozen=True)
class SessionRun:
    """The prompt, its continuation, and the trace of the whole sequence, for one view."""

    prompt: EncodedPrompt
    generation: GenerationTrace
    trace: Trace

    @property
    def n_prompt(self) -> int:
        return len(self.prompt.ids)


def session_run(cfg: ViewConfig) -> SessionRun:
    """Prompt + greedy (or seeded) continuation with the cache on, then one trace of it all.

    Pages that look inside the model (/flow, /plan) read this; everything is cached, so a rerun
    that only changes a selection calls no model.
    """
    loaded_model(cfg)
    prompt = encoded_prompt(cfg)
    with st.spinner(f"Generating {cfg.new} tokens…"):
        run = generation(cfg, prompt.ids)
    return SessionRun(prompt, run, traced(cfg, prompt.ids + run.new_ids))
