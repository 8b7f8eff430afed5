"""Every heavy computation a page needs, behind one object that keeps each by its inputs.

A page model (`lib.pages`) asks the lab for what it shows — the continuation, both runs of the
cache comparison, a trace, a lens, a gradient cone — and never runs the model itself. In the app
the lab keeps results in the server's shared, byte-bounded store and tells the reader what it is
doing (`lib.ui.resources`); in tests and benchmarks a lab with a store of its own computes the
same things in-process (`Lab.direct`). Keys carry the model, its dtype and every input, so one
result serves every session that asks for it, and a rerun that only moves a selection finds
everything already there.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import TypeVar

import numpy as np

from lib import cache_compare, flow, generate, lens, models, surgery, trace
from lib.cache_compare import CacheRuns
from lib.flow import GradientCone
from lib.generate import GenerationTrace, Step
from lib.lens import Lens
from lib.models import LoadedModel
from lib.readable import corpus as readable_corpus
from lib.readable import patching, probe
from lib.readable.corpus import Corpus
from lib.readable.patching import Patching, PromptPair, Refusal, RestorationCurve
from lib.readable.probe import ProbeFit, PromptReadability
from lib.settings import SETTINGS
from lib.stepping import Cell
from lib.store import ResultStore
from lib.surgery import CacheEdit, Surgery
from lib.trace import EncodedPrompt, Trace

Result = TypeVar("Result")
Progress = Callable[[float | None, str], None]  # (fraction done or None, what is happening)


def silent(fraction: float | None, message: str) -> None:
    """Progress reported to nobody: tests and benchmarks."""


@dataclass
class Lab:
    """The computations of one model at one precision; `progress` hears about slow ones."""

    model_id: str
    dtype: str
    store: ResultStore
    load: Callable[[str, str], LoadedModel] = models.load
    progress: Progress = silent
    max_prompt_tokens: int = field(default=SETTINGS.max_prompt_tokens)

    @classmethod
    def direct(cls, lm: LoadedModel, budget_mb: int = 4096) -> Lab:
        """A lab around an already loaded model, with a store of its own."""
        return cls(lm.spec.id, lm.dtype, ResultStore(budget_mb << 20), load=lambda *_: lm)

    @cached_property
    def lm(self) -> LoadedModel:
        return self.load(self.model_id, self.dtype)

    def keep(self, kind: str, parts: tuple[Hashable, ...], what: str, make: Callable[[], Result]):
        """`make()` once per (model, dtype, kind, parts); the reader hears what is computed, and
        that they wait when another session holds the model or computes the same thing."""
        key = (kind, self.model_id, self.dtype, *parts)
        found = self.store.get(key)
        if found is not None:
            return found
        sharing = f"Another reader is computing the same view: {what}. Sharing it…"
        if self.store.computing(key):
            self.progress(None, sharing)
        elif self.lm.busy():
            self.progress(None, f"Waiting for another reader's use of the model, then {what}…")
        else:
            self.progress(None, f"{what[0].upper()}{what[1:]}…")
        try:
            return self.store.compute(key, make, on_wait=lambda: self.progress(None, sharing))
        finally:
            self.progress(None, "")

    def prompt(self, text: str) -> EncodedPrompt:
        return self.keep(
            "prompt",
            (text, self.max_prompt_tokens),
            "reading the prompt",
            lambda: trace.encode_prompt(self.lm, text, self.max_prompt_tokens),
        )

    def generation(
        self,
        prompt_ids: tuple[int, ...],
        new: int,
        seed: int | None,
        on_step: Callable[[Step], None] | None = None,
    ) -> GenerationTrace:
        """The continuation with the cache on; `on_step` sees each token while it is made."""

        def make() -> GenerationTrace:
            made: list[Step] = []

            def step(latest: Step) -> None:
                made.append(latest)
                self.progress(len(made) / new, f"Generating: token {len(made)} of {new}")
                if on_step is not None:
                    on_step(latest)

            return generate.generate(self.lm, prompt_ids, new, True, seed, on_step=step)

        return self.keep("generation", (prompt_ids, new, seed), f"generating {new} tokens", make)

    def cache_runs(self, prompt_ids: tuple[int, ...], new: int, seed: int | None) -> CacheRuns:
        """Both runs of /cache, in lockstep; the cached one also serves as `generation`."""

        def make() -> CacheRuns:
            def step(done: int, use_cache: bool) -> None:
                mode = "on" if use_cache else "off"
                fraction = (done + (0 if use_cache else new)) / (2 * new)
                self.progress(fraction, f"Step {done} of {new} with the cache {mode}")

            runs = cache_compare.run_both(self.lm, prompt_ids, new, seed, on_step=step)
            key = ("generation", self.model_id, self.dtype, prompt_ids, new, seed)
            self.store.save(key, runs.on)
            return runs

        return self.keep(
            "cache_runs", (prompt_ids, new, seed), f"generating {new} tokens twice", make
        )

    def trace(self, token_ids: tuple[int, ...]) -> Trace:
        return self.keep(
            "trace",
            (token_ids,),
            f"tracing the forward pass over {len(token_ids)} tokens",
            lambda: trace.run_trace(self.lm, token_ids),
        )

    def value_norms(self, token_ids: tuple[int, ...]) -> np.ndarray:
        """‖W_O v‖ of every layer, head and token of the trace of `token_ids`: (L, H, T)."""
        return self.keep(
            "value_norms",
            (token_ids,),
            "measuring the value vectors",
            lambda: flow.value_norms(self.lm, self.trace(token_ids)),
        )

    def gradient_cone(self, token_ids: tuple[int, ...], cell: Cell) -> GradientCone:
        return self.keep(
            "gradient_cone",
            (token_ids, cell),
            "measuring the cone: one forward and one backward pass",
            lambda: flow.gradient_cone(self.lm, token_ids, cell),
        )

    def surgery(
        self, token_ids: tuple[int, ...], n_prompt: int, edit: CacheEdit, greedy: bool
    ) -> Surgery:
        return self.keep(
            "surgery",
            (token_ids, n_prompt, edit, greedy),
            "editing the cache and recomputing every later position",
            lambda: surgery.run_surgery(self.lm, token_ids, n_prompt, edit, greedy),
        )

    def lens(self, token_ids: tuple[int, ...]) -> Lens:
        return self.keep(
            "lens",
            (token_ids,),
            "reading every layer through the final norm and the unembedding",
            lambda: lens.logit_lens(self.lm, self.trace(token_ids)),
        )

    def corpus(self) -> Corpus:
        """The probes' corpus: the shipped one, or one sampled from a model it was not made for."""
        return self.keep(
            "corpus",
            (),
            "reading the probes' corpus (sampling one first for a model it was not made for)",
            lambda: readable_corpus.corpus_for(self.lm),
        )

    def probe_fit(self) -> ProbeFit:
        """The three probes of every layer: once per model, precision and corpus."""
        corpus = self.corpus()

        def make() -> ProbeFit:
            return probe.fit_probes(self.lm, corpus, self.progress)

        what = f"fitting the probes of every layer on {corpus.n_tokens:,} tokens (once per model)"
        return self.keep("probe_fit", (corpus.digest,), what, make)

    def readability(self, token_ids: tuple[int, ...]) -> PromptReadability:
        fit = self.probe_fit()
        return self.keep(
            "readability",
            (token_ids, self.corpus().digest),
            "scoring your text with the probes",
            lambda: probe.prompt_readability(self.lm, fit, token_ids),
        )

    def prompt_pair(self, clean: str, corrupt: str) -> PromptPair | Refusal:
        return self.keep(
            "prompt_pair",
            (clean, corrupt, self.max_prompt_tokens),
            "reading the two prompts",
            lambda: patching.prompt_pair(self.lm, clean, corrupt, self.max_prompt_tokens),
        )

    def patching(self, pair: PromptPair, layers: range) -> Patching:
        return self.keep(
            "patching",
            (pair, layers),
            "running the clean, the corrupted and the patched prompt",
            lambda: patching.patch(self.lm, pair, layers),
        )

    def restoration(self, pair: PromptPair) -> RestorationCurve:
        return self.keep(
            "restoration",
            (pair,),
            "patching from every starting layer",
            lambda: patching.restoration_curve(self.lm, pair),
        )

    def labels(self, token_ids: Sequence[int]) -> tuple[str, ...]:
        return trace.token_labels(self.lm, token_ids)

    def text(self, token_ids: Sequence[int]) -> str:
        return trace.decode_text(self.lm, token_ids)
