"""/cache figures: the page function against plain transformers calls, and a first visit.

`cache_page_ratio`: `cache_page` on a fresh lab (both runs in lockstep with a warm-up pass, the
comparison, the grid and the texts) ÷ two plain `model.generate` calls of the same length.
`first_visit_ratio`: a first visit of /cache through Streamlit's AppTest on a fresh server
state ÷ the model work the page itself shows (the step times of both runs).
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch
from streamlit.testing.v1 import AppTest

from bench.common import paired_ratio, report
from lib import models
from lib.config import ViewConfig
from lib.lab import Lab
from lib.pages.cache import cache_page
from lib.ui import resources

PROMPT = "The cure for cancer is"
NEW = 24  # the page's default
APP = str(Path(__file__).resolve().parents[1] / "app.py")


def first_visit_ratio(prompt_ids: tuple[int, ...], new: int) -> float:
    resources.store().clear()
    at = AppTest.from_file(APP, default_timeout=900)
    at.query_params.update({"new": str(new), "prompt": PROMPT})
    at.switch_page("views/cache.py")
    start = time.perf_counter()
    at.run()
    seconds = time.perf_counter() - start
    assert not at.exception, at.exception
    key = ("cache_runs", models.DEFAULT_MODEL, "float32", prompt_ids, new, None)
    runs = resources.store().get(key)
    shown = float(np.sum(runs.on.seconds) + np.sum(runs.off.seconds))
    return seconds / shown


def run() -> None:
    lm = models.load(models.DEFAULT_MODEL)
    cfg = ViewConfig(prompt=PROMPT, new=NEW)

    def page() -> None:
        on = cache_page(cfg, Lab.direct(lm)).on
        assert len(on.steps) == NEW, "the prompt must not stop early"

    prompt = Lab.direct(lm).prompt(PROMPT).ids

    def plain_generations() -> None:
        with torch.inference_mode():
            for use_cache in (True, False):
                lm.model.generate(
                    torch.tensor([list(prompt)]),
                    max_new_tokens=NEW,
                    min_new_tokens=NEW,
                    do_sample=False,
                    use_cache=use_cache,
                    pad_token_id=lm.tokenizer.eos_token_id,
                )

    plain_generations()  # warm-up
    report("cache_page_ratio", paired_ratio(page, plain_generations, repeats=3))
    report("first_visit_ratio", first_visit_ratio(prompt, NEW))
