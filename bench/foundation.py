"""Foundation figures: loading, tracing and decoding against plain transformers calls."""

from __future__ import annotations

import statistics

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from bench.common import median_seconds, paired_ratio, report
from lib import models
from lib.generate import generate
from lib.trace import encode_prompt, run_trace

LONG_PROMPT = (
    "The key and value cache of a transformer holds, for every layer, two projections of the "
    "hidden state that enters that layer. A later token reads them at the same depth, which is "
    "why people argue whether the model starts anew at every token or carries state forward."
)


def run() -> None:
    folder = models.prepare_default_model(lambda fraction, message: None)

    def plain_load_folder() -> None:
        """What a plain transformers user runs to get a usable model from the same folder."""
        AutoTokenizer.from_pretrained(str(folder))
        AutoModelForCausalLM.from_pretrained(str(folder), attn_implementation="eager")

    report("load_ratio", paired_ratio(lambda: models.load(models.DEFAULT_MODEL), plain_load_folder))

    lm = models.load(models.DEFAULT_MODEL)
    ids = encode_prompt(lm, LONG_PROMPT * 3, 64).ids
    assert len(ids) == 64, len(ids)
    batch = torch.tensor([list(ids)])

    def plain_trace() -> None:
        with torch.inference_mode():
            lm.model(input_ids=batch, output_attentions=True, output_hidden_states=True)

    plain_trace()  # warm-up
    report("trace_ratio", paired_ratio(lambda: run_trace(lm, ids), plain_trace))

    prompt = encode_prompt(lm, "The cure for cancer is", 64).ids
    new = 64

    def plain_generate() -> torch.Tensor:
        with torch.inference_mode():
            return lm.model.generate(
                torch.tensor([list(prompt)]),
                max_new_tokens=new,
                min_new_tokens=new,
                do_sample=False,
                pad_token_id=lm.tokenizer.eos_token_id,
            )

    ours = generate(lm, prompt, new, use_cache=True)
    decode_steps = [step.seconds for step in ours.steps[1:]]  # steps after the prefill
    theirs_total = median_seconds(plain_generate)
    prefill = median_seconds(lambda: lm.model(input_ids=torch.tensor([list(prompt)])))
    theirs_per_token = (theirs_total - prefill) / (new - 1)
    report("decode_ratio", statistics.median(decode_steps) / theirs_per_token)

    cached = median_seconds(lambda: generate(lm, prompt, 128, use_cache=True), repeats=1)
    uncached = median_seconds(lambda: generate(lm, prompt, 128, use_cache=False), repeats=1)
    report("cache_speedup_128", uncached / cached)
