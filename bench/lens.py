"""Logit-lens figures: what the lens of every cell adds to a traced 64-token sequence.

`lens_ms` is our batched, chunked lens of 64 tokens × 31 rows; `lens_matmul_ms` the bare
unembedding product of those cells (the floor no lens can go under); `lens_ratio` ours ÷ the
plain transformers way (all full-vocabulary logits at once, then softmax, top-k, entropy).
"""

from __future__ import annotations

import torch

from bench.common import median_seconds, paired_ratio, report
from bench.foundation import LONG_PROMPT
from lib import models
from lib.lens import logit_lens
from lib.trace import encode_prompt, run_trace


def run() -> None:
    lm = models.load(models.DEFAULT_MODEL)
    trace = run_trace(lm, encode_prompt(lm, LONG_PROMPT * 3, 64).ids)
    hidden = torch.tensor(trace.hidden)  # (31, 64, 576)
    assert hidden.shape[:2] == (31, 64), hidden.shape

    def plain_lens() -> None:
        with torch.inference_mode():
            states = torch.cat([lm.model.model.norm(hidden[:-1]), hidden[-1:]])
            logits = lm.model.lm_head(states)  # (31, 64, V): 390 MB at once
            log_probs = torch.log_softmax(logits, -1)
            torch.topk(logits, 20, dim=-1)
            -(log_probs.exp() * log_probs).sum(-1)

    def matmul_only() -> None:
        with torch.inference_mode():
            hidden.reshape(-1, hidden.shape[-1]) @ lm.model.lm_head.weight.T  # (1984, V)

    logit_lens(lm, trace)  # warm-up
    report("lens_ms", 1000 * median_seconds(lambda: logit_lens(lm, trace)))
    report("lens_matmul_ms", 1000 * median_seconds(matmul_only))
    report("lens_ratio", paired_ratio(lambda: logit_lens(lm, trace), plain_lens, repeats=3))


if __name__ == "__main__":
    run()
