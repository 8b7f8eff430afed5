"""The home page as a value: the prompt as tokens, the continuation, the model's shape, and the
bytes its cache held, measured."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from lib import markdown, site
from lib.config import ViewConfig
from lib.content import decoding, fill, tour, tour_sides
from lib.generate import Step
from lib.lab import Lab
from lib.models import ModelShape

PAGE = "home"


@dataclass(frozen=True)
class Link:
    path: str
    label: str
    summary: str
    params: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class TourCard:
    number: int
    claim: str
    side: str
    look: str
    link: Link


@dataclass(frozen=True)
class HomePage:
    prompt_ids: tuple[int, ...]
    prompt_tokens: tuple[str, ...]
    prompt_text: str  # the prompt as the model read it, after any cut
    continuation_ids: tuple[int, ...]
    continuation: str
    step_seconds: np.ndarray  # (N,)
    cache_tokens: int  # tokens whose K and V the cache held after the run
    cache_bytes: int  # measured on the cache tensors
    shape: ModelShape
    model: str
    notices: tuple[str, ...]
    title: str
    intro: str
    prompt_heading: str
    continuation_heading: str
    continuation_caption: str
    model_heading: str
    cache_caption: str
    explore_heading: str
    explore: tuple[Link, ...]
    tour_heading: str
    tour_caption: str
    tour: tuple[TourCard, ...]

    @property
    def continuation_markdown(self) -> str:
        return markdown.continuation(self.prompt_text, self.continuation, done=True)


def tour_cards() -> tuple[TourCard, ...]:
    """The tour as the home page draws it: claims and sides in words, links with their query."""
    sides = tour_sides()
    return tuple(
        TourCard(
            number,
            step.claim,
            sides[step.side]["label"],
            step.look,
            Link(step.page, f"Open /{step.page}" if step.page else "Here", "", step.params),
        )
        for number, step in enumerate(tour(), start=1)
    )


def home_page(cfg: ViewConfig, lab: Lab, on_step: Callable[[Step], None] | None = None) -> HomePage:
    """Encode, continue (streaming each token to `on_step`), and measure the cache."""
    lm = lab.lm
    prompt = lab.prompt(cfg.prompt)
    run = lab.generation(prompt.ids, cfg.new, cfg.seed, on_step=on_step)
    shape = lm.shape
    held = len(prompt.ids) + len(run.steps) - 1  # the last token chosen was never fed back
    seconds = run.seconds
    label = lm.spec.label
    return HomePage(
        prompt_ids=prompt.ids,
        prompt_tokens=lab.labels(prompt.ids),
        prompt_text=lab.text(prompt.ids),
        continuation_ids=run.new_ids,
        continuation=lab.text(run.new_ids),
        step_seconds=seconds,
        cache_tokens=held,
        cache_bytes=int(run.cache_bytes[-1]),
        shape=shape,
        model=label,
        notices=prompt.notices,
        title=fill(PAGE, "title"),
        intro=fill(PAGE, "intro", model=label),
        prompt_heading=fill(PAGE, "prompt_heading", tokens=len(prompt.ids)),
        continuation_heading=fill(PAGE, "continuation_heading"),
        continuation_caption=fill(
            PAGE,
            "continuation_caption",
            steps=len(run.steps),
            decoding=decoding(cfg.seed),
            seconds=float(seconds.sum()),
        ),
        model_heading=fill(PAGE, "model_heading", model=label),
        cache_caption=fill(
            PAGE,
            "cache_caption",
            layers=shape.layers,
            kv_heads=shape.kv_heads,
            head_dim=shape.head_dim,
            kv_width=shape.kv_width,
            per_token=markdown.human_bytes(shape.cache_bytes_per_token),
            held=held,
            held_bytes=markdown.human_bytes(int(run.cache_bytes[-1])),
            hidden=shape.hidden,
            mlp=shape.mlp,
        ),
        explore_heading=fill(PAGE, "explore_heading"),
        explore=tuple(
            Link(page.path, page.link, fill(PAGE, f"explore.{page.path}"))
            for page in site.PAGES
            if page.path
        ),
        tour_heading=fill(PAGE, "tour_heading"),
        tour_caption=fill(PAGE, "tour_caption"),
        tour=tour_cards(),
    )
