"""/cache figures: the page's two generations against two plain transformers `generate` calls."""

from __future__ import annotations

import torch

from bench.common import paired_ratio, report
from lib import cache_compare, models
from lib.generate import generate
from lib.trace import encode_prompt

PROMPT = "The cure for cancer is"
NEW = 24  # the page's default


def run() -> None:
    lm = models.load(models.DEFAULT_MODEL)
    prompt = encode_prompt(lm, PROMPT, 64).ids

    def page_generations() -> None:
        """What /cache computes on a first visit: both runs, then their comparison."""
        on = generate(lm, prompt, NEW, use_cache=True)
        off = generate(lm, prompt, NEW, use_cache=False)
        assert len(on.steps) == len(off.steps) == NEW, "the prompt must not stop early"
        cache_compare.compare(on, off)

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
    report("cache_page_ratio", paired_ratio(page_generations, plain_generations, repeats=3))
