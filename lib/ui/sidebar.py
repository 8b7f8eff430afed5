"""The controls shared by every page: prompt (with presets), model, tokens to generate.

They live in the entrypoint's sidebar so that their URL parameters survive page switches.
"""

from __future__ import annotations

import streamlit as st

from lib import content, models
from lib.config import MAX_NEW_TOKENS, MAX_PROMPT_CHARS, allowed_models
from lib.settings import SETTINGS
from lib.ui.state import bound, use_preset, view

PRESET_KEY = "_preset"


def show() -> None:
    with st.sidebar:
        st.selectbox(
            "Example prompts",
            content.presets(),
            index=None,
            format_func=lambda preset: preset.label,
            key=PRESET_KEY,
            on_change=use_preset,
            args=(PRESET_KEY,),
            placeholder="Pick an example…",
        )
        bound(
            st.text_area,
            "prompt",
            "Prompt",
            max_chars=MAX_PROMPT_CHARS,
            height=100,
            help="The text the model continues. Press Ctrl+Enter to apply.",
        )
        bound(
            st.selectbox,
            "model",
            "Model",
            options=list(allowed_models()),
            disabled=SETTINGS.workshop,
            help="Locked for this workshop." if SETTINGS.workshop else None,
        )
        st.caption(models.registry()[view().model].provenance)
        bound(st.slider, "new", "Tokens to generate", min_value=1, max_value=MAX_NEW_TOKENS)
