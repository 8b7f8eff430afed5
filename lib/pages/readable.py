"""/readable as a value: the widths of one layer and what a later token reads of it; how much of a
token's MLP activation linear probes recover from its K and V at the next layer, bracketed by a
ceiling and a floor, with the reader's text placed on the same scale; and counterfactual patching
of one token's K/V between two prompts that differ in it, layer 0 (the word itself) apart."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from lib import markdown
from lib.charts.readable import CLEAN_ANSWER, CORRUPT_ANSWER, OTHER
from lib.config import ViewConfig, clamp_index
from lib.content import fill, tour_sides
from lib.lab import Lab
from lib.models import ModelShape
from lib.readable.pairs import PairPreset, pair_presets
from lib.readable.patching import TOP_K, NextTokens, Patching, PromptPair, RestorationCurve
from lib.readable.probe import FIRST_POSITION, ProbeFit, Widths

PAGE = "readable"
HIDDEN = {"export": False}  # shown elsewhere, or rebuilt from what is exported
HALF = 0.5  # the curve's sentence names the highest start that restores at least this


@dataclass(frozen=True)
class NextTokenBars:
    """One run's next-token distribution as bars: its top tokens and which answer each is."""

    heading: str
    labels: tuple[str, ...]
    probs: np.ndarray  # (k,)
    kinds: tuple[str, ...]  # CLEAN_ANSWER, CORRUPT_ANSWER or OTHER, per bar


@dataclass(frozen=True)
class PatchView:
    """Section 3 for a pair that can be patched."""

    position: int  # where the prompts differ
    clean_token: str
    corrupt_token: str
    first: int  # the patched layers, first..last
    last: int
    restored: float  # NaN when both prompts predict the same token
    curve: np.ndarray  # (L,): restored from start layer a = 0..L−1 to the top
    bars: tuple[NextTokenBars, NextTokenBars, NextTokenBars]  # clean, corrupted, patched
    pair_text: str
    restored_text: str  # "" when undefined (the notice says why)
    curve_caption: str
    curve_text: str


@dataclass(frozen=True)
class ReadablePage:
    model: str
    shape: ModelShape
    widths: Widths
    layer: int  # the probed layer ℓ shown in detail (its K/V are read at ℓ + 1)
    auto_layer: int
    probed_layers: int  # layers with a probe: 0..L−2
    readable_r2: np.ndarray  # (L,): held-out R² of the K/V probe per layer; NaN at the top
    ceiling_r2: np.ndarray  # (L,)
    floor_r2: np.ndarray  # (L,)
    prompt_scores: np.ndarray  # (L,): the reader's text on the same scale
    prompt_tokens: int
    fit_tokens: tuple[int, int, int]  # probed tokens that fit, chose the penalty, scored
    fit_seconds: float
    patch_from: int = field(metadata=HIDDEN)  # as configured, clamped (the URL's from and to)
    patch_to: int = field(metadata=HIDDEN)
    patch: PatchView | None  # None when the pair was refused
    patch_notice: str  # why there is no patch, or why nothing can be restored; "" otherwise
    presets: tuple[PairPreset, ...] = field(metadata=HIDDEN)
    table: pd.DataFrame  # one row per layer: the three R², the reader's score, restored
    notices: tuple[str, ...]
    title: str
    side: str
    headings: dict[str, str]
    labels: dict[str, str]  # the controls' labels
    opening: tuple[str, str, str]  # the skeptic, the reply, how to read the numbers
    widths_caption: str
    probe_summary: str
    below_ceiling: str
    layer0_text: str
    layer_heading: str
    layer_text: str
    chart_caption: str
    prompt_caption: str
    fit_caption: str
    patch_intro: str
    bars_caption: str
    patch_means: str


def chip(label: str) -> str:
    return markdown.token_chips([label])


def probe_texts(fit: ProbeFit, shape: ModelShape) -> dict[str, str]:
    """The summary over layers 1..L−2 (layer 0, the word's own, apart) and layer 0's line."""
    readable, ceiling, floor = (fit.scores(name) for name in ("readable", "ceiling", "floor"))
    inner = slice(1, shape.layers - 1)
    w = fit.widths
    summary = fill(
        PAGE,
        "probe.summary",
        top_probe=shape.layers - 2,
        low=readable[inner].min(),
        high=readable[inner].max(),
        median=float(np.median(readable[inner])),
        ceiling_low=ceiling[inner].min(),
        ceiling_high=ceiling[inner].max(),
        ceiling_median=float(np.median(ceiling[inner])),
        floor_low=floor[inner].min(),
        floor_high=floor[inner].max(),
        gap=float(np.median(ceiling[inner] - readable[inner])),
        key_width=w.key,
        residual=w.residual,
    )
    layer0 = fill(PAGE, "probe.layer0", readable=readable[0], ceiling=ceiling[0])
    return {"summary": summary, "layer0": layer0}


def bars_of(heading: str, run: NextTokens, answers: tuple[int, int], lab: Lab) -> NextTokenBars:
    ids = [int(i) for i in run.top_ids]
    kinds = {answers[1]: CORRUPT_ANSWER, answers[0]: CLEAN_ANSWER}  # agreeing: the clean one
    return NextTokenBars(
        heading, lab.labels(ids), run.top_probs, tuple(kinds.get(i, OTHER) for i in ids)
    )


def curve_text(curve: RestorationCurve) -> str:
    internal = curve.internal  # starts 1..L−1
    top = len(curve.restored) - 1
    half = np.flatnonzero(internal >= HALF)
    if not len(half):
        return fill(PAGE, "patch.curve_none", from_one=internal[0])
    return fill(
        PAGE,
        "patch.curve_steps",
        from_one=internal[0],
        last_half=int(half[-1]) + 1,
        top=top,
        from_top=internal[-1],
    )


def patch_view(lab: Lab, pair: PromptPair, first: int, last: int) -> tuple[PatchView, str]:
    """Section 3 of a pair that can be patched, and the notice when its answers agree."""
    result: Patching = lab.patching(pair, range(first, last + 1))
    curve = lab.restoration(pair)
    top = len(curve.restored) - 1
    clean_token, corrupt_token = lab.labels(
        [pair.clean_ids[pair.position], pair.corrupt_ids[pair.position]]
    )
    answers = (result.clean_answer, result.corrupt_answer)
    clean_answer, corrupt_answer = (chip(label) for label in lab.labels(answers))
    restored_text = ""
    if not result.notice:
        restored_text = fill(
            PAGE,
            "patch.restored",
            clean_answer=clean_answer,
            corrupt_answer=corrupt_answer,
            first=first,
            last=last,
            restored=result.restored,
            clean_difference=result.clean.difference,
            corrupt_difference=result.corrupt.difference,
            patched_difference=result.patched.difference,
        )
        if first == 0:
            restored_text += " " + fill(PAGE, "patch.with_word")
    view = PatchView(
        position=pair.position,
        clean_token=clean_token,
        corrupt_token=corrupt_token,
        first=first,
        last=last,
        restored=result.restored,
        curve=curve.restored,
        bars=(
            bars_of(fill(PAGE, "patch.clean_heading"), result.clean, answers, lab),
            bars_of(fill(PAGE, "patch.corrupt_heading"), result.corrupt, answers, lab),
            bars_of(
                fill(PAGE, "patch.patched_heading_one", first=first)
                if first == last
                else fill(PAGE, "patch.patched_heading", first=first, last=last),
                result.patched,
                answers,
                lab,
            ),
        ),
        pair_text=fill(
            PAGE,
            "patch.pair",
            position=pair.position,
            clean_token=chip(clean_token),
            corrupt_token=chip(corrupt_token),
            tokens=len(pair.clean_ids),
        ),
        restored_text=restored_text,
        curve_caption=fill(PAGE, "patch.curve", top=top, word=curve.word),
        curve_text="" if curve.notice else curve_text(curve),
    )
    return view, result.notice


def layer_table(fit: ProbeFit, prompt: np.ndarray, curve: np.ndarray | None) -> pd.DataFrame:
    """One row per layer: the three held-out R², the reader's score, restored from it up."""
    table = fit.table()
    table.insert(4, "R² your text", prompt)
    table["restored from this layer up"] = np.nan if curve is None else curve
    return table


def readable_page(cfg: ViewConfig, lab: Lab) -> ReadablePage:
    lm = lab.lm
    shape = lm.shape
    fit = lab.probe_fit()
    w = fit.widths
    notices: list[str] = []

    prompt = lab.prompt(cfg.prompt)
    run = lab.generation(prompt.ids, cfg.new, cfg.seed)
    ids = prompt.ids + run.new_ids
    notices += prompt.notices
    scores = lab.readability(ids).scores

    probed = shape.layers - 1  # the top layer has no probe
    auto_layer = probed // 2
    layer, layer_notice = clamp_index(
        "layer", auto_layer if cfg.layer is None else cfg.layer, probed
    )
    patch_from, from_notice = clamp_index("from", cfg.from_, shape.layers)
    patch_to, to_notice = clamp_index("to", cfg.to, shape.layers)
    notices += [n for n in (layer_notice, from_notice, to_notice) if n]
    first, last = sorted((patch_from, patch_to))
    if patch_from > patch_to:
        notices.append(fill(PAGE, "patch.swapped", first=patch_from, last=patch_to))

    pair = lab.prompt_pair(cfg.clean, cfg.corrupt)
    if isinstance(pair, PromptPair):
        patch, patch_notice = patch_view(lab, pair, first, last)
    else:
        patch, patch_notice = None, fill(PAGE, "patch.refused", reason=pair.reason)

    readable, ceiling, floor = (fit.scores(name) for name in ("readable", "ceiling", "floor"))
    texts = probe_texts(fit, shape)
    fit_tokens, _, test_tokens = fit.tokens
    layer_text = fill(
        PAGE,
        "probe.layer",
        layer=layer,
        next=layer + 1,
        readable=readable[layer],
        ceiling=ceiling[layer],
        floor=floor[layer],
        prompt=scores[layer],
    )
    if layer == 0:
        layer_text += " " + fill(PAGE, "probe.layer_zero")
    corpus = lab.corpus()
    side = tour_sides()["carried"]["label"]
    return ReadablePage(
        model=lm.spec.label,
        shape=shape,
        widths=w,
        layer=layer,
        auto_layer=auto_layer,
        probed_layers=probed,
        readable_r2=readable,
        ceiling_r2=ceiling,
        floor_r2=floor,
        prompt_scores=scores,
        prompt_tokens=len(ids),
        fit_tokens=fit.tokens,
        fit_seconds=fit.seconds,
        patch_from=patch_from,
        patch_to=patch_to,
        patch=patch,
        patch_notice=patch_notice,
        presets=pair_presets(),
        table=layer_table(fit, scores, None if patch is None else patch.curve),
        notices=tuple(notices),
        title=fill(PAGE, "title"),
        side=fill(PAGE, "side", side=side),
        headings={
            key: fill(PAGE, key)
            for key in ("widths_section", "probe_section", "patch_section", "curve_heading")
        },
        labels={
            key: fill(PAGE, f"patch.{key}")
            for key in ("pairs_label", "clean_label", "corrupt_label", "from_label", "to_label")
        },
        opening=(
            fill(
                PAGE,
                "opening.skeptic",
                model=lm.spec.label,
                layers=shape.layers,
                mlp_hidden=w.mlp_hidden,
                residual=w.residual,
                key_width=w.key,
                value=w.value,
                readable=w.readable,
                share=w.readable / w.mlp_hidden,
            ),
            fill(PAGE, "opening.reply"),
            fill(PAGE, "opening.reading", fit_tokens=fit_tokens, test_tokens=test_tokens),
        ),
        widths_caption=fill(
            PAGE,
            "widths.caption",
            model=lm.spec.label,
            kv_heads=shape.kv_heads,
            head_dim=shape.head_dim,
            key_width=w.key,
            value=w.value,
            residual=w.residual,
            mlp_hidden=w.mlp_hidden,
        ),
        probe_summary=texts["summary"],
        below_ceiling=fill(PAGE, "probe.below_ceiling"),
        layer0_text=texts["layer0"],
        layer_heading=fill(PAGE, "layer_heading", layer=layer),
        layer_text=layer_text,
        chart_caption=fill(PAGE, "probe.chart", top=shape.layers - 1, missing=fit.missing[0][1]),
        prompt_caption=fill(
            PAGE, "probe.prompt", tokens=len(ids), first=FIRST_POSITION, last=len(ids) - 1
        ),
        fit_caption=fill(
            PAGE,
            "probe.fit",
            tokens=corpus.n_tokens,
            chunks=corpus.chunks.shape[0],
            chunk_tokens=fit.chunk_tokens,
            fit=fit.tokens[0],
            val=fit.tokens[1],
            test=fit.tokens[2],
            seconds=fit.seconds,
        ),
        patch_intro=fill(PAGE, "patch.intro"),
        bars_caption=fill(PAGE, "patch.bars", k=TOP_K),
        patch_means=fill(PAGE, "patch.means"),
    )
