"""/readable figures on the real model.

`readable_fit_s`: the probe of every layer from the shipped corpus — its prefill and the fits of
the readable, ceiling and floor probes — run once per model and server, behind a progress bar.
`patch_ratio`: one patching run (clean, corrupted and patched passes of the capital-of pair) ÷
one plain transformers forward of both prompts, the two timed alternately.
"""

from __future__ import annotations

import torch

from bench.common import median_seconds, paired_ratio, report
from lib import models
from lib.content import presets
from lib.readable.corpus import load_corpus
from lib.readable.patching import PromptPair, patch, prompt_pair
from lib.readable.probe import fit_probes

CLEAN = next(p.prompt for p in presets() if "capital" in p.prompt)
CORRUPT = CLEAN.replace(" Italy", " Germany")


def run() -> None:
    lm = models.load(models.DEFAULT_MODEL)
    corpus = load_corpus()
    report("readable_fit_s", median_seconds(lambda: fit_probes(lm, corpus), repeats=1))

    pair = prompt_pair(lm, CLEAN, CORRUPT, max_tokens=64)
    assert isinstance(pair, PromptPair), pair
    layers = range(1, lm.shape.layers)

    def plain() -> None:
        with torch.inference_mode():
            lm.model(input_ids=torch.tensor([pair.clean_ids]))
            lm.model(input_ids=torch.tensor([pair.corrupt_ids]))

    plain()  # warm-up
    report("patch_ratio", paired_ratio(lambda: patch(lm, pair, layers), plain))
