"""What the pages that look inside the model share: the prompt, its continuation, and one
trace of the whole sequence, bounded in length."""

from __future__ import annotations

from dataclasses import dataclass, field

from lib.config import ViewConfig
from lib.content import fill
from lib.generate import GenerationTrace
from lib.lab import Lab
from lib.settings import SETTINGS
from lib.trace import EncodedPrompt, Trace

HIDDEN = {"export": False}  # a field the page's data export leaves out (big, or shown elsewhere)


@dataclass(frozen=True)
class SessionRun:
    """The prompt, its continuation, and the trace of (at most `limit` tokens of) both."""

    prompt: EncodedPrompt = field(metadata=HIDDEN)
    generation: GenerationTrace = field(metadata=HIDDEN)
    trace: Trace = field(metadata=HIDDEN)
    notices: tuple[str, ...]

    @property
    def token_ids(self) -> tuple[int, ...]:
        return tuple(int(i) for i in self.trace.token_ids)

    @property
    def n_prompt(self) -> int:
        """Prompt tokens within the trace."""
        return min(len(self.prompt.ids), self.trace.n_tokens)


def session_run(cfg: ViewConfig, lab: Lab, limit: int | None = None) -> SessionRun:
    """Prompt + continuation (greedy or seeded, cache on), then one trace of the first `limit`
    tokens (default: KV_LENS_MAX_GRID_TOKENS): the grids of /flow and /plan, and their gradient
    and surgery passes, grow with the square of the length. The same sequence gives the same
    trace on both pages."""
    limit = SETTINGS.max_grid_tokens if limit is None else limit
    prompt = lab.prompt(cfg.prompt)
    run = lab.generation(prompt.ids, cfg.new, cfg.seed)
    ids = prompt.ids + run.new_ids
    notices = prompt.notices
    if len(ids) > limit:
        notices += (fill("common", "run.cut", limit=limit, tokens=len(ids)),)
    return SessionRun(prompt, run, lab.trace(ids[:limit]), notices)
