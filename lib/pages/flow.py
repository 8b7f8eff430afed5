"""/flow as a value: which earlier states feed a (token, layer) cell and how strongly, what a real
backward pass says can move it, how far a chain of dependent hops can climb, and what later
tokens do when one token's cached K/V are edited while every word stays the same."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd

from lib import markdown
from lib.charts.flow import table_height
from lib.config import ViewConfig, clamp_index
from lib.content import fill
from lib.export import view_name
from lib.flow import (
    Cones,
    ConeSummary,
    GradientCone,
    IncomingEdges,
    Staircase,
    cone_summary,
    incoming_edges,
    staircase,
    structural_cones,
)
from lib.lab import Lab
from lib.models import ModelShape
from lib.pages.common import session_run
from lib.stepping import Cell
from lib.surgery import CacheEdit, Surgery

PAGE = "flow"
EDGE_COLUMNS = {  # the edge table's number columns: (short heading, format) beside the grid
    "token": ("#", "%d"),
    "% of attention": ("% attn", "%.0f"),
    "% of value-weighted": ("% value", "%.0f"),
    "attention": ("attn", "%.3f"),
    "attn × ‖W_O v‖": ("attn×‖W_O v‖", "%.3f"),
}
HIDDEN = {"export": False}  # masks and raw results: exported through the tables and numbers


@dataclass(frozen=True)
class Metric:
    label: str
    value: str
    help: str = ""


@dataclass(frozen=True)
class EdgesView:
    """Sections 1–2: the grid, and the edges into the selected cell with their table."""

    heading: str
    heads: str  # which query heads the edges read, in words
    edges: IncomingEdges
    table: pd.DataFrame | None  # one row per source token; None on the embedding row
    table_height: int = field(metadata=HIDDEN)  # pixels, beside the grid
    columns: dict[str, tuple[str, str]] = field(metadata=HIDDEN)  # (heading, format) by column
    caption: str  # the edges in words, or why the embedding row has none


@dataclass(frozen=True)
class ConeView:
    """Section 3: the measured gradient cone, the structural cones, and the staircase."""

    heading: str
    gradient: GradientCone  # ‖∂s/∂h‖ of every cell, (L+1, T), row 0 = embedding
    structure: Cones = field(metadata=HIDDEN)
    summary: ConeSummary
    staircase: Staircase
    caption: str
    staircase_text: str


@dataclass(frozen=True)
class SurgeryView:
    """Section 4: one cache edit and what it moved."""

    heading: str
    edit: dict[str, int | str]  # src, from, to, edit (and other): the URL's names
    result: Surgery = field(metadata=HIDDEN)
    description: str
    metrics: tuple[Metric, ...]
    kl_mean: float
    kl_max: float
    top_changed: int  # later positions whose most likely next token changed
    row_change: np.ndarray  # (L+1,): largest ‖Δh‖ / ‖h‖ of later tokens per row, vs unedited
    split_rounding: float  # what splitting the pass alone moves, against one full pass
    first_divergence: int | None  # first regenerated token that differs; None: they agree
    rounding_caption: str
    table_label: str
    table: pd.DataFrame  # one row per later position
    before_heading: str
    after_heading: str
    before: str  # prompt and regenerated continuation, as Markdown
    after: str
    continuation_before: str  # the regenerated tokens alone, as text
    continuation_after: str
    continuation_caption: str


@dataclass(frozen=True)
class FlowPage:
    model: str
    shape: ModelShape
    tokens: tuple[str, ...]  # display label of every token in the grid
    n_tokens: int
    n_layers: int  # decoder layers; the grid has n_layers + 1 rows
    n_prompt: int
    token: int  # the selected cell: token position and grid row (0 = embedding)
    layer: int
    head: int | str  # a query head, or "all"
    agg: str
    weight: str
    notices: tuple[str, ...]
    # The controls as this run allows them (not exported: the configuration says it all).
    cell: Cell = field(metadata=HIDDEN)
    auto_cell: Cell = field(metadata=HIDDEN)  # the one shown when the link names none
    head_options: tuple[str, ...] = field(metadata=HIDDEN)
    agg_disabled: bool = field(metadata=HIDDEN)  # heads are combined only when all are shown
    weight_options: dict[str, str] = field(metadata=HIDDEN)  # value → caption
    src: int = field(metadata=HIDDEN)  # the surgery controls, clamped to this run; `from`
    from_layer: int = field(metadata=HIDDEN)  # above `to` stays as given (the edit is ordered)
    to_layer: int = field(metadata=HIDDEN)
    other: int = field(metadata=HIDDEN)
    edit_kind: str = field(metadata=HIDDEN)
    edit_options: dict[str, str] = field(metadata=HIDDEN)
    other_disabled: bool = field(metadata=HIDDEN)  # `other` matters only for edit=token
    highest: dict[str, int] = field(metadata=HIDDEN)  # each control's largest value in this run
    grid_size: tuple[int, int] = field(metadata=HIDDEN)  # (tokens, rows): bounds of a click
    title: str
    claim: str
    start: str
    example: str
    head_help: str
    weight_help: str
    edges: EdgesView
    cone: ConeView
    surgery: SurgeryView
    files: dict[str, str] = field(metadata=HIDDEN)  # figure and data file names of this view


def counted(number: int, noun: str) -> str:
    """`1 hop`, `2 hops`."""
    return f"{number} {noun}{'' if number == 1 else 's'}"


def pick_cell(n_tokens: int, n_layers: int) -> Cell:
    """The cell a link without one opens on: the last token, halfway up the stack, where every
    earlier token feeds it and the cone has room above and below."""
    return Cell(n_tokens - 1, n_layers // 2)


def heads_text(head: int | str, agg: str, shape: ModelShape) -> str:
    if head == "all":
        return fill(PAGE, f"heads.{agg}", heads=shape.heads)
    kv_head = shape.kv_head_of(int(head))
    group = shape.query_heads_of(kv_head)
    return fill(PAGE, "heads.one", head=head, kv_head=kv_head, group=f"{group[0]}–{group[-1]}")


def edges_caption(edges: IncomingEdges, labels: tuple[str, ...], heads: str) -> str:
    cell = edges.cell
    if not edges.attention.size:
        return fill(PAGE, "edges.row_zero", label=labels[cell.token])
    top, carried = edges.most_attended, edges.most_carried
    contrast = (
        fill(PAGE, "edges.same")
        if carried == top
        else fill(
            PAGE,
            "edges.contrast",
            carried=carried,
            carried_label=labels[carried],
            carried_value=edges.value_share[carried],
            carried_attention=edges.attention_share[carried],
        )
    )
    row = edges.source_row
    source = (
        fill(PAGE, "edges.words")
        if row == 0
        else fill(PAGE, "edges.states", row=row, decoder=row - 1)
    )
    return fill(
        PAGE,
        "edges.caption",
        token=cell.token,
        layer=cell.layer,
        decoder=cell.layer - 1,
        heads=heads,
        row=row,
        source=source,
        sources=cell.token + 1,
        weight=fill(PAGE, f"weight.{edges.weight}"),
        top=top,
        top_label=labels[top],
        top_attention=edges.attention_share[top],
        top_value=edges.value_share[top],
        contrast=contrast,
    )


def cone_view(lab: Lab, ids: tuple[int, ...], cell: Cell, labels, n_layers: int) -> ConeView:
    n_tokens = len(ids)
    gradient = lab.gradient_cone(ids, cell)
    structure = structural_cones(cell, n_tokens, n_layers)
    summary = cone_summary(gradient, structure)
    stairs = staircase(cell, n_tokens, n_layers)
    reach_count = int(structure.forward.sum())
    reach = (
        fill(PAGE, "cone.reach", reach=reach_count)
        if reach_count
        else fill(PAGE, "cone.reach_none")
    )
    strongest = ""
    if summary.strongest_parent is not None and math.isfinite(summary.strongest_parent_ratio):
        strongest = fill(
            PAGE,
            "cone.strongest",
            row=cell.layer - 1,
            parent=summary.strongest_parent,
            parent_label=labels[summary.strongest_parent],
            ratio=summary.strongest_parent_ratio,
        )
    if summary.inside:
        caption = fill(
            PAGE,
            "cone.caption",
            tokens=n_tokens,
            inside=summary.inside,
            inside_nonzero=summary.inside_nonzero,
            outside=summary.outside,
            outside_max=summary.outside_max,
            strongest=strongest,
            reach=reach,
        )
    else:
        caption = fill(PAGE, "cone.embedding", outside_max=summary.outside_max, reach=reach)
    return ConeView(
        heading=fill(PAGE, "cone.heading"),
        gradient=gradient,
        structure=structure,
        summary=summary,
        staircase=stairs,
        caption=caption,
        staircase_text=fill(
            PAGE,
            "staircase.text",
            above=counted(stairs.hops_above, "more dependent hop"),
            below=counted(stairs.hops_below, "dependent hop"),
            vocab=lab.lm.shape.vocab,
            bits=math.log2(lab.lm.shape.vocab),
        ),
    )


def _side(count: int, ended: bool) -> str:
    return fill(
        PAGE,
        "continuation.ended" if ended else "continuation.tokens",
        count=counted(count, "greedy token"),
    )


def surgery_view(
    cfg: ViewConfig, lab: Lab, ids: tuple[int, ...], n_prompt: int, edit: CacheEdit, labels
) -> SurgeryView:
    result = lab.surgery(ids, n_prompt, edit, cfg.seed is None)
    first, last = edit.first, edit.last
    layers = (
        fill(PAGE, "surgery.one_layer", first=first)
        if first == last
        else fill(PAGE, "surgery.layers", first=first, last=last)
    )
    done = fill(
        PAGE,
        f"surgery.done.{edit.kind}",
        tokens=len(ids),
        src=edit.src,
        other=edit.other,
        other_label=labels[edit.other],
    )
    positions = int(result.positions.size)
    changed = int(result.top_changed.sum())
    kl_mean, kl_max = float(result.kl.mean()), float(result.kl.max())
    kl_help = fill(PAGE, "surgery.metric.kl_help")
    prefix = lab.text(ids[: result.start])
    before, after = lab.text(result.continuation_before), lab.text(result.continuation_after)
    if result.wanted:
        divergence = result.first_divergence
        agreement = (
            fill(PAGE, "continuation.agree")
            if divergence is None
            else fill(
                PAGE, "continuation.part", index=divergence, position=result.start + divergence
            )
        )
        continuation_caption = fill(
            PAGE,
            "continuation.caption",
            position=result.start - 1,
            before=_side(len(result.continuation_before), result.ended_before),
            after=_side(len(result.continuation_after), result.ended_after),
            agreement=agreement,
            sampled="" if cfg.seed is None else fill(PAGE, "continuation.sampled", seed=cfg.seed),
        )
    else:
        continuation_caption = fill(PAGE, "continuation.none")
    return SurgeryView(
        heading=fill(PAGE, "surgery.heading"),
        edit=edit.query,
        result=result,
        description=fill(
            PAGE,
            "surgery.description",
            src=edit.src,
            label=labels[edit.src],
            layers=layers,
            done=done,
            words=fill(PAGE, "surgery.words") if first == 0 else "",
        ),
        metrics=(
            Metric(fill(PAGE, "surgery.metric.mean"), f"{kl_mean:.3f}", kl_help),
            Metric(fill(PAGE, "surgery.metric.max"), f"{kl_max:.3f}", kl_help),
            Metric(
                fill(PAGE, "surgery.metric.changed"),
                fill(PAGE, "surgery.metric.changed_value", changed=changed, positions=positions),
            ),
            Metric(
                fill(PAGE, "surgery.metric.rounding"),
                f"{result.split_rounding:.1e}",
                fill(PAGE, "surgery.metric.rounding_help"),
            ),
        ),
        kl_mean=kl_mean,
        kl_max=kl_max,
        top_changed=changed,
        row_change=result.row_change,
        split_rounding=result.split_rounding,
        first_divergence=result.first_divergence,
        rounding_caption=fill(
            PAGE,
            "surgery.rounding",
            rows=(
                fill(PAGE, "surgery.rows_one")
                if first == 0
                else fill(PAGE, "surgery.rows_many", first=first)
            ),
            below=result.below_edit_change,
            above_row=first + 1,
            above=result.above_edit_change,
            rounding=result.split_rounding,
        ),
        table_label=fill(PAGE, "surgery.table"),
        table=result.table(labels, lab.labels(result.top_before), lab.labels(result.top_after)),
        before_heading=fill(PAGE, "surgery.before"),
        after_heading=fill(PAGE, "surgery.after"),
        before=markdown.continuation(prefix, before, True),
        after=markdown.continuation(prefix, after, True),
        continuation_before=before,
        continuation_after=after,
        continuation_caption=continuation_caption,
    )


def flow_page(cfg: ViewConfig, lab: Lab) -> FlowPage:
    lm = lab.lm
    shape = lm.shape
    run = session_run(cfg, lab)
    trace, ids, n_prompt = run.trace, run.token_ids, run.n_prompt
    n_tokens, n_layers, labels = trace.n_tokens, trace.n_layers, trace.tokens
    notices = list(run.notices)

    def clamped(name: str, value: int, size: int) -> int:
        fitted, notice = clamp_index(name, value, size)
        if notice:
            notices.append(notice)
        return fitted

    auto = pick_cell(n_tokens, n_layers)
    token = clamped("token", auto.token if cfg.token is None else cfg.token, n_tokens)
    layer = clamped("layer", auto.layer if cfg.layer is None else cfg.layer, n_layers + 1)
    cell = Cell(token, layer)
    head = "all" if cfg.head == "all" else clamped("head", int(cfg.head), shape.heads)

    heads = heads_text(head, cfg.agg, shape)
    edges = incoming_edges(trace, lab.value_norms(ids), cell, head, cfg.agg, cfg.weight)
    edge_table = edges.table(labels) if edges.attention.size else None

    src = clamped("src", cfg.src, n_tokens - 1)
    from_layer = clamped("from", cfg.from_, shape.layers)
    to_layer = clamped("to", cfg.to, shape.layers)
    other = clamped("other", cfg.other, n_tokens) if cfg.edit == "token" else 0
    first, last = sorted((from_layer, to_layer))
    if from_layer > to_layer:
        notices.append(fill(PAGE, "surgery.swapped", first=from_layer, last=to_layer))
    edit = CacheEdit(src, first, last, cfg.edit, other)

    selected = (("token", token), ("layer", layer))
    heads_part = (("head", head), ("agg", cfg.agg)) if head == "all" else (("head", head),)
    edges_name = view_name(PAGE, *selected, *heads_part, ("weight", cfg.weight))
    edit_name = view_name(PAGE, *edit.query.items())
    return FlowPage(
        model=lm.spec.label,
        shape=shape,
        tokens=labels,
        n_tokens=n_tokens,
        n_layers=n_layers,
        n_prompt=n_prompt,
        token=token,
        layer=layer,
        head=head,
        agg=cfg.agg,
        weight=cfg.weight,
        notices=tuple(notices),
        cell=cell,
        auto_cell=auto,
        head_options=("all", *(str(h) for h in range(shape.heads))),
        agg_disabled=head != "all",
        weight_options={name: fill(PAGE, f"weight.{name}") for name in ("attn", "value")},
        src=src,
        from_layer=from_layer,
        to_layer=to_layer,
        other=other if cfg.edit == "token" else clamp_index("other", cfg.other, n_tokens)[0],
        edit_kind=cfg.edit,
        edit_options={name: fill(PAGE, f"edit.{name}") for name in ("zero", "mean", "token")},
        other_disabled=cfg.edit != "token",
        highest={
            "token": n_tokens - 1,
            "layer": n_layers,
            "src": n_tokens - 2,
            "from": shape.layers - 1,
            "to": shape.layers - 1,
            "other": n_tokens - 1,
        },
        grid_size=(n_tokens, n_layers + 1),
        title=fill(PAGE, "title"),
        claim=fill(
            PAGE,
            "claim",
            **asdict(shape),  # layers, kv_heads, head_dim, hidden, mlp, …
            model=lm.spec.label,
            kv_width=shape.kv_width,
            tokens=n_tokens,
            prompt=n_prompt,
            generated=n_tokens - n_prompt,
            rows=n_layers + 1,
        ),
        start=fill(PAGE, "start"),
        example=fill(PAGE, "example", layer=auto.layer),
        head_help=fill(PAGE, "head_help", **asdict(shape), group=shape.heads // shape.kv_heads),
        weight_help=fill(PAGE, "weight_help"),
        edges=EdgesView(
            heading=fill(PAGE, "edges.heading", token=token, label=labels[token], layer=layer),
            heads=heads,
            edges=edges,
            table=edge_table,
            table_height=table_height(token + 1, n_layers + 1),
            columns=EDGE_COLUMNS,
            caption=edges_caption(edges, labels, heads),
        ),
        cone=cone_view(lab, ids, cell, labels, n_layers),
        surgery=surgery_view(cfg, lab, ids, n_prompt, edit, labels),
        files={
            "grid": f"{edges_name}-figgrid",
            "cone": view_name(PAGE, *selected, ("fig", "cone")),
            "surgery": f"{edit_name}-figsurgery",
            "data": edges_name,
        },
    )
