"""Everything the server keeps: the loaded models and one store of computed results.

Models are loaded once per server (`st.cache_resource`) and shared by every session; calls into
them are serialised by the model's lock. Every other result — generations, traces, lenses,
cones, checks of the toy models — lives in one store with a byte budget (`KV_LENS_MAX_CACHE_MB`),
reached through a `Lab` that tells the reader what is being computed and why they wait. The
page models built from them, and the charts drawn from those, live in two smaller stores within
the same budget.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import TypeVar
from urllib.parse import urlparse

import streamlit as st

from lib import models, toy, tracking
from lib.config import ViewConfig
from lib.lab import Lab
from lib.models import LoadedModel, ModelUnavailable
from lib.pages.tracking import TrackingPage, tracking_page, weights_error
from lib.settings import SETTINGS
from lib.store import DiskTier, ResultStore
from lib.toy import VerificationResult

LOCAL_HOSTS = {"localhost", "127.0.0.1", "::1"}  # where an error may show server paths


VIEW_SHARE = 16  # page models and drawn figures keep 1/16 of KV_LENS_MAX_CACHE_MB each
Page = TypeVar("Page")


def view_budget() -> int:
    return (SETTINGS.max_cache_mb << 20) // VIEW_SHARE


@st.cache_resource(show_spinner=False)
def store() -> ResultStore:
    """The one store of computed results, shared by every session of this server, and, behind
    it, the results folder shared by every server process that uses it."""
    return ResultStore((SETTINGS.max_cache_mb << 20) - 2 * view_budget(), results_on_disk())


@st.cache_resource(show_spinner=False)
def figures() -> ResultStore:
    """Drawn charts as Vega-Lite specs with their data in Arrow, shared by every session.

    Building charts through Altair, with its schema validation, was most of the script's time
    in a profiled /cache view whose results were stored: a link opened by a crowd builds each
    of its charts once. Only in memory: a spec is quick to rebuild, and is not a result."""
    return ResultStore(view_budget(), report=None)


@st.cache_resource(show_spinner=False)
def page_models() -> ResultStore:
    """Page models per view configuration, shared by every session.

    With its results stored, building a view's page model (texts, tables, grids) was the
    largest part of the script's time left in a profiled /cache view, and a crowd on one link
    asks for the same one. Only in memory: it is quick to rebuild from the stored results."""
    return ResultStore(view_budget(), report=None)


def results_on_disk() -> DiskTier | None:
    """$KV_LENS_RESULTS_DIR, else the results folder beside the converted model; None when
    set to `off` or when the folder cannot be made (the app then keeps results in memory)."""
    if SETTINGS.results_dir == "off":
        return None
    folder = Path(SETTINGS.results_dir) if SETTINGS.results_dir else models.cache_dir() / "results"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        return DiskTier(folder, SETTINGS.max_disk_mb << 20)
    except OSError:
        return None


@st.cache_resource(show_spinner=False, max_entries=2)
def _model(model_id: str, dtype: str) -> LoadedModel:
    return models.load(model_id, dtype)


def loaded_model(model_id: str, dtype: str) -> LoadedModel:
    """The shared model; a progress bar while it is fetched and converted the first time.

    When the model cannot be had, the page says why and how to fix it, and stops there: the
    rest of the app keeps running.
    """
    slot = st.empty()

    def show(fraction: float, message: str) -> None:
        slot.progress(min(max(fraction, 0.0), 1.0), text=message)

    try:
        models.prepare(model_id, show)
        with st.spinner(f"Loading {model_id}…"):
            lm = _model(model_id, dtype)
    except ModelUnavailable as error:
        slot.empty()
        local = urlparse(st.context.url or "").hostname in LOCAL_HOSTS
        detail = f" ({error.detail})" if local and error.detail else ""
        st.error(f"The model is not available. {error}{detail}", icon="🚫")
        st.stop()
    slot.empty()
    return lm


@contextmanager
def lab(cfg: ViewConfig, dtype: str | None = None) -> Iterator[Lab]:
    """The lab of this view's model, reporting into a slot at this point of the page: a
    progress bar for work with steps, a line for waits and single passes."""
    dtype = dtype or SETTINGS.weights
    loaded_model(cfg.model, dtype)
    slot = st.empty()

    def progress(fraction: float | None, message: str) -> None:
        if not message:
            slot.empty()
        elif fraction is None:
            slot.info(message, icon="⏳")
        else:
            slot.progress(min(max(fraction, 0.0), 1.0), text=message)

    try:
        yield Lab(cfg.model, dtype, store(), load=_model, progress=progress)
    finally:
        slot.empty()


def page_model(
    build: Callable[[ViewConfig, Lab], Page], cfg: ViewConfig, dtype: str | None = None
) -> Page:
    """`build(cfg, lab)`, once per configuration (model, weights and every URL setting): the
    sessions that open one view at once wait for the first one's page model and share it."""
    dtype = dtype or SETTINGS.weights
    key = (build.__module__, build.__qualname__, dtype, cfg)
    kept = page_models().get(key)
    if kept is not None:
        return kept
    with lab(cfg, dtype) as opened:
        if page_models().computing(key):
            opened.progress(None, "Another reader is opening the same view. Sharing it…")
        return page_models().compute(key, partial(build, cfg, opened))


def verification(arch_name: str, tokens: int, layers: int) -> VerificationResult:
    """The live check of one toy model, once per grid; kept with every other result."""
    return toy.checked(store(), arch_name, tokens, layers)


@st.cache_resource(show_spinner="Loading the trained tracking models…")
def _tracking_models() -> dict[str, tracking.Shipped]:
    return {name: tracking.load_shipped(name) for name in tracking.shipped_names()}


@st.cache_resource(max_entries=64, show_spinner="Running the models on the program…")
def _tracking_page(cfg: ViewConfig) -> TrackingPage:
    return tracking_page(cfg, _tracking_models())


def tracking_view(cfg: ViewConfig) -> TrackingPage:
    """/tracking for `cfg`, kept per configuration; when the shipped weights cannot be loaded,
    the page says so and how to rebuild them, and stops there."""
    try:
        return _tracking_page(cfg)
    except (OSError, ValueError, RuntimeError, KeyError) as error:  # missing or damaged files
        st.error(weights_error(error), icon="🚫")
        st.stop()
