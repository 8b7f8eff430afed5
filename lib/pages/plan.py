"""/plan as a value: the next-token distribution the text throws away, the logit lens of every
(position, layer) cell, and when each emitted token first shows up inside the model — with the
rate at which matched tokens that were not emitted show up in the same cells, so that a
sighting is called a hint only when it beats that baseline."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from lib import lens, markdown
from lib.config import ViewConfig, clamp_index
from lib.content import decoding, fill, tour_sides
from lib.lab import Lab
from lib.lens import ALPHA, LATE_LAYERS, MATCH_FACTOR, LookbackSummary, Sighting, TopK
from lib.models import ModelShape
from lib.pages.common import session_run

PAGE = "plan"
HIDDEN = {"export": False}  # shown elsewhere, or rebuilt from what is exported
ROUND = 4  # decimals of the exported probability and entropy grids


@dataclass(frozen=True)
class Distribution:
    """One top-k distribution as the page shows it: bars, and the numbers under them."""

    labels: tuple[str, ...]
    ids: np.ndarray  # (k,)
    probs: np.ndarray  # (k,)
    entropy: float  # nats, of the full distribution
    mass_outside: float  # probability outside the top-k
    came_next: int | None  # index in the top-k of the token that came next (None: outside)
    next_rank: int | None  # its rank, 1 = likeliest (None at the last position)
    numbers: str  # "**entropy** … · **outside the top k** … · `x` **ranked** #r"


@dataclass(frozen=True)
class PlanPage:
    model: str
    shape: ModelShape
    tokens: tuple[str, ...]  # display labels of the traced sequence
    token_ids: tuple[int, ...]
    n_prompt: int
    n_rows: int  # lens rows: the embedding and one per decoder layer
    token: int
    layer: int
    k: int
    auto_token: int  # the position shown when the link names none: the prompt's last
    auto_layer: int  # the layer shown when the link names none: the middle one
    entropy: np.ndarray  # (T,): of the model's next-token distribution after each position
    output: Distribution
    cell: Distribution
    lens_top1: np.ndarray  # (L+1, T): the lens's likeliest next token at each cell, as text
    lens_top1_prob: np.ndarray  # (L+1, T)
    lens_entropy: np.ndarray  # (L+1, T), nats
    lens_next_rank: np.ndarray  # (L+1, T): rank (0 = top) of the token that came next; -1 last
    echo: int  # positions whose layer-0 top guess is the input token itself
    sightings: tuple[Sighting, ...] = field(metadata=HIDDEN)  # exported through `table`
    summary: LookbackSummary
    table: pd.DataFrame
    notices: tuple[str, ...]
    title: str
    sides: dict[str, str]  # "hidden" / "open": the claim each part of the page makes
    headings: dict[str, str]
    opening: tuple[str, str, str]  # hidden, not carried; the open question; the lens
    output_heading: str
    output_caption: str
    strip_caption: str
    lens_caption: str
    cell_heading: str
    cell_caption: str
    seen_text: str
    seen_caption: str
    lookback_text: str
    means_text: str
    table_caption: str


def chip(label: str) -> str:
    return markdown.token_chips([label])


def top_k_view(lab: Lab, top: TopK, following: int | None, rank: int | None) -> Distribution:
    """`top` with its labels, where the token that came next stands, and its numbers line;
    `rank` is that token's rank in this distribution (1 = likeliest), None at the end."""
    k = len(top.ids)
    numbers = fill(PAGE, "output.numbers", entropy=top.entropy, k=k, outside=top.mass_outside)
    if following is not None:
        came = fill(PAGE, "output.rank", next=chip(lab.labels([following])[0]), rank=rank)
        numbers = f"{numbers} · {came}"
    return Distribution(
        labels=lab.labels(top.ids.tolist()),
        ids=top.ids,
        probs=top.probs,
        entropy=top.entropy,
        mass_outside=top.mass_outside,
        came_next=None if following is None else top.index_of(following),
        next_rank=rank,
        numbers=numbers,
    )


def row_caption(layer: int, n_rows: int, token: str, shape: ModelShape) -> str:
    """Who can read lens row `layer`: through K/V below the top, nobody at the top."""
    kind = "embedding" if layer == 0 else "top" if layer == n_rows - 1 else "middle"
    return fill(
        PAGE,
        f"lens_cell.{kind}",
        layer=layer,
        token=token,
        kv_width=shape.kv_width,
        hidden=shape.hidden,
    )


def seen_text(summary: LookbackSummary, k: int, top: int) -> str:
    """Entered and settled, as measured; then the late settlers and whether they were in
    before. Under greedy decoding every emitted token ends in the top-k (it is the output's
    likeliest); only sampled ones can end outside it."""
    parts = [fill(PAGE, "seen.intro", emitted=summary.emitted)]
    if not summary.settled:
        return " ".join([*parts, fill(PAGE, "seen.never_settled", k=k)])
    parts.append(
        fill(
            PAGE,
            "seen.settled",
            settled_count=summary.settled,
            k=k,
            entered=summary.median_entered,
            settled=summary.median_settled,
            top=top,
        )
    )
    if summary.settled < summary.emitted:
        parts.append(fill(PAGE, "seen.unsettled", unsettled=summary.emitted - summary.settled, k=k))
    if not summary.settled_late:
        parts.append(fill(PAGE, "seen.no_late", late_layers=LATE_LAYERS))
    else:
        parts.append(
            fill(
                PAGE,
                "seen.late",
                late=summary.settled_late,
                settled_count=summary.settled,
                late_layers=LATE_LAYERS,
                late_in_before=summary.late_in_before,
                late_new=summary.settled_late - summary.late_in_before,
                k=k,
            )
        )
    return " ".join(parts)


def readable_text(s: Sighting, top: int, shape: ModelShape) -> str:
    """Item by item: can later positions read the row where the token was seen?"""
    first_position, first_layer = s.earlier
    if first_layer < top:
        return fill(
            PAGE,
            "lookback.readable",
            layer=first_layer,
            kv_width=shape.kv_width,
            hidden=shape.hidden,
        )
    if s.earlier_below_top is not None:
        position, layer = s.earlier_below_top
        return fill(
            PAGE,
            "lookback.top_then_below",
            first=first_position,
            position=position,
            layer=layer,
        )
    return fill(PAGE, "lookback.top_only")


def best_text(s: Sighting, tokens: tuple[str, ...], top: int, shape: ModelShape) -> str:
    first, layer = s.earlier
    common = {
        "token": chip(tokens[s.position + 1]),
        "position": s.position,
        "cells": s.earlier_cells,
        "window": s.window_cells,
        "as_often": s.matched_as_often,
        "matched": s.matched,
        "p": s.p_value,
    }
    if s.is_hint:
        text = fill(
            PAGE,
            "lookback.best_hint",
            first=first,
            first_token=chip(tokens[first]),
            layer=layer,
            steps=s.steps_ahead,
            **common,
        )
    else:
        least = 1 / (1 + s.matched)
        above = (
            fill(PAGE, "lookback.above_floor", alpha=ALPHA, matched=s.matched, least=least)
            if least > ALPHA
            else fill(PAGE, "lookback.above", alpha=ALPHA)
        )
        text = fill(PAGE, "lookback.best_other", above=above, **common)
    return f"{text} {readable_text(s, top, shape)}"


def lookback_text(summary: LookbackSummary, tokens, k: int, top: int, shape) -> str:
    if not summary.new:
        return fill(PAGE, "lookback.none_new")
    if not summary.compared:
        return fill(PAGE, "lookback.none_compared")
    if summary.hints:
        verdict = fill(
            PAGE,
            "lookback.hints",
            hints=summary.hints,
            tested=summary.tested,
            alpha=ALPHA,
            chance=summary.chance_hints,
        )
    elif summary.seen_rate > summary.matched_rate:
        verdict = fill(PAGE, "lookback.no_hint_more", alpha=ALPHA)
    else:
        verdict = fill(PAGE, "lookback.no_hint", alpha=ALPHA)
    if summary.best is not None:
        verdict += " " + best_text(summary.best, tokens, top, shape)
    return fill(
        PAGE,
        "lookback.text",
        new=summary.new,
        emitted=summary.emitted,
        top=top,
        seen=summary.compared_seen,
        compared=summary.compared,
        seen_rate=summary.seen_rate,
        k=k,
        factor=MATCH_FACTOR,
        matched_rate=summary.matched_rate,
        verdict=verdict,
    )


def means_text(summary: LookbackSummary, k: int, shape: ModelShape) -> str:
    """What a hint would mean and what it does not prove; how many hints later positions can
    read at all, when there are hints."""
    below = (
        fill(PAGE, "lookback.below_top", below=summary.below_top, hints=summary.hints)
        if summary.hints
        else ""
    )
    return fill(
        PAGE,
        "lookback.means",
        k=k,
        kv_width=shape.kv_width,
        hidden=shape.hidden,
        below_top=below,
    )


def verdict(s: Sighting) -> str:
    if s.in_text_before:
        return fill(PAGE, "table.old")
    if s.earlier is None:
        return fill(PAGE, "table.unseen")
    if s.p_value is None:
        return fill(PAGE, "table.unmatched")
    return fill(PAGE, "table.hint", alpha=ALPHA) if s.is_hint else fill(PAGE, "table.chance")


def sightings_table(sightings: tuple[Sighting, ...], tokens: tuple[str, ...]) -> pd.DataFrame:
    """One row per emitted token; optional values are words or a dash, never a bare None."""
    dash = fill(PAGE, "table.none")

    def cell(found: tuple[int, int] | None) -> str:
        if found is None:
            return dash
        return fill(PAGE, "table.sighting", position=found[0], layer=found[1])

    def readable(s: Sighting) -> str:
        if s.earlier is None:
            return dash
        if s.earlier_below_top is None:
            return fill(PAGE, "table.top_only")
        position, layer = s.earlier_below_top
        return fill(PAGE, "table.read_kv", position=position, layer=layer)

    return pd.DataFrame(
        {
            "emitted": [tokens[s.position + 1] for s in sightings],
            "at position": [s.position for s in sightings],
            "enters top-k at layer": [
                fill(PAGE, "table.never") if s.entered is None else str(s.entered)
                for s in sightings
            ],
            "settles at layer": [
                fill(PAGE, "table.not_at_output") if s.settled is None else str(s.settled)
                for s in sightings
            ],
            "new to the text": [not s.in_text_before for s in sightings],
            "earliest earlier sighting": [cell(s.earlier) for s in sightings],
            "later positions read it": [readable(s) for s in sightings],
            "earlier cells holding it": [s.earlier_cells for s in sightings],
            "share of earlier cells": [s.earlier_share for s in sightings],
            "matched tokens": [s.matched for s in sightings],
            "matched seen": [
                dash if s.matched_rate is None else f"{s.matched_rate:.0%}" for s in sightings
            ],
            "p": [dash if s.p_value is None else f"{s.p_value:.3f}" for s in sightings],
            "verdict": [verdict(s) for s in sightings],
        }
    )


def plan_page(cfg: ViewConfig, lab: Lab) -> PlanPage:
    lm = lab.lm
    shape = lm.shape
    run = session_run(cfg, lab)
    trace = run.trace
    lensed = lab.lens(run.token_ids)
    ids = trace.token_ids
    n_tokens, n_prompt, n_rows = trace.n_tokens, run.n_prompt, lensed.n_layers
    top = n_rows - 1
    tokens = trace.tokens
    auto_token, auto_layer = n_prompt - 1, n_rows // 2
    token, token_notice = clamp_index(
        "token", auto_token if cfg.token is None else cfg.token, n_tokens
    )
    layer, layer_notice = clamp_index(
        "layer", auto_layer if cfg.layer is None else cfg.layer, n_rows
    )
    k = cfg.k
    following = int(ids[token + 1]) if token + 1 < n_tokens else None

    def rank(row: int) -> int | None:
        return None if following is None else int(lensed.next_rank[row, token]) + 1

    output = top_k_view(lab, lens.output_top_k(trace, token, k), following, rank(top))
    cell = top_k_view(lab, lens.cell_top_k(lensed, layer, token, k), following, rank(layer))
    sightings = lens.first_seen(lensed, ids, n_prompt - 1, k)
    summary = lens.summarize(sightings, n_rows)

    if following is None:
        output_caption = fill(PAGE, "output.last")
    else:
        kind = "output.prompt" if token + 1 < n_prompt else "output.generated"
        if token + 1 >= n_prompt and cfg.seed is not None:
            kind = "output.sampled"
        where = (
            fill(PAGE, "output.in_top")
            if output.came_next is not None
            else fill(PAGE, "output.outside_top", k=k, rank=output.next_rank)
        )
        output_caption = fill(
            PAGE,
            "output.caption",
            next=chip(tokens[token + 1]),
            kind=fill(PAGE, kind),
            where=where,
            k=k,
            inside=1 - output.mass_outside,
            rest=shape.vocab - k,
            outside=output.mass_outside,
        )
    strip_caption = fill(PAGE, "output.strip")
    if n_tokens - n_prompt > 1:
        surest, hesitant = lens.entropy_extremes(trace, n_prompt - 1, n_tokens - 1)
        strip_caption += " " + fill(
            PAGE,
            "output.extremes",
            surest=chip(tokens[surest]),
            surest_position=surest,
            surest_entropy=float(trace.entropy[surest]),
            hesitant=chip(tokens[hesitant]),
            hesitant_position=hesitant,
            hesitant_entropy=float(trace.entropy[hesitant]),
        )
    echo = int((lensed.top_ids[0, :, 0] == ids).sum())
    tied = bool(getattr(lm.model.config, "tie_word_embeddings", False))
    sides = {side: entry["label"] for side, entry in tour_sides().items()}
    return PlanPage(
        model=lm.spec.label,
        shape=shape,
        tokens=tokens,
        token_ids=run.token_ids,
        n_prompt=n_prompt,
        n_rows=n_rows,
        token=token,
        layer=layer,
        k=k,
        auto_token=auto_token,
        auto_layer=auto_layer,
        entropy=trace.entropy,
        output=output,
        cell=cell,
        lens_top1=lensed.top1_labels,
        lens_top1_prob=lensed.top_probs[:, :, 0].astype(float).round(ROUND),
        lens_entropy=lensed.entropy.astype(float).round(ROUND),
        lens_next_rank=lensed.next_rank,
        echo=echo,
        sightings=sightings,
        summary=summary,
        table=sightings_table(sightings, tokens),
        notices=run.notices + tuple(n for n in (token_notice, layer_notice) if n),
        title=fill(PAGE, "title"),
        sides={
            "hidden": fill(PAGE, "side", side=sides["hidden"]),
            "open": fill(PAGE, "side", side=sides["open"]),
        },
        headings={
            key: fill(PAGE, key)
            for key in (
                "output_section",
                "lens_section",
                "seen_section",
                "strip_heading",
                "lookback_heading",
            )
        },
        opening=(
            fill(
                PAGE,
                "opening.hidden",
                model=lm.spec.label,
                vocab=shape.vocab,
                layers=shape.layers,
                below_top=top - 1,
            ),
            fill(
                PAGE,
                "opening.open",
                tokens=n_tokens,
                prompt=n_prompt,
                generated=n_tokens - n_prompt,
                decoding=decoding(cfg.seed),
            ),
            fill(
                PAGE,
                "opening.lens",
                rows=n_rows,
                layers=shape.layers,
                echo=echo,
                tokens=n_tokens,
                tied=fill(PAGE, "opening.tied") + " " if tied else "",
            ),
        ),
        output_heading=fill(PAGE, "output.heading", token=chip(tokens[token]), position=token),
        output_caption=output_caption,
        strip_caption=strip_caption,
        lens_caption=fill(PAGE, "lens_cell.caption", k=k),
        cell_heading=fill(
            PAGE, "lens_cell.heading", layer=layer, token=chip(tokens[token]), position=token
        ),
        cell_caption=row_caption(layer, n_rows, chip(tokens[token]), shape),
        seen_text=seen_text(summary, k, top),
        seen_caption=fill(PAGE, "seen.caption", k=k),
        lookback_text=lookback_text(summary, tokens, k, top, shape),
        means_text=means_text(summary, k, shape),
        table_caption=fill(PAGE, "lookback.table", top=top),
    )
