"""/architectures as a value: the transformer, the stacked RNN and the feedback transformer as
dependency graphs on one token × layer grid, with the numbers each graph implies over a fixed text
and while generating, each graph checked live on a tiny torch model, and the real model's shape
where the page speaks of a real model.

No language model runs here: the real model's numbers come from its converted config.json
(`real_shape`), and the live checks come from the `verify` the caller passes (the app's cached
one, or `lib.toy.verify` itself in tests and benchmarks).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass, field

import pandas as pd

from lib import export, markdown
from lib.architectures import (
    ARCHITECTURES,
    Architecture,
    StepNumbers,
    auto_cell,
    longest_paths,
    make_rule,
    step_numbers,
)
from lib.charts.architectures import ROLES, Diagram, diagram_data
from lib.config import ViewConfig, clamp_index
from lib.content import fill
from lib.models import DEFAULT_MODEL, ModelShape, converted_folder, registry
from lib.settings import SETTINGS
from lib.stepping import Cell
from lib.toy import VerificationResult

PAGE = "architectures"
HIDDEN = {"export": False}
Verify = Callable[[str, int, int], VerificationResult]
BYTES = {"float32": 4, "bfloat16": 2}


@dataclass(frozen=True)
class RealModel:
    """The default model's shape, from its converted config.json, and what it implies."""

    label: str
    source: str  # the file the numbers were read from
    shape: ModelShape
    dtype: str
    bits_per_token: float  # log2 of the vocabulary: the most one sampled token can carry
    per_token: int  # numbers the KV cache grows by per token: 2 · layers · kv_width
    per_token_full_width: int  # the same if K and V were as wide as the residual stream


@dataclass(frozen=True)
class Check:
    """One live check in numbers (the masks stay out of the export)."""

    result: VerificationResult = field(metadata=HIDDEN)
    passed: bool
    max_abs_diff: float
    step_equals_full: bool
    reading_mismatches: int
    generating_mismatches: int
    pairs: int


@dataclass(frozen=True)
class Panel:
    """One architecture's column: its diagram, the numbers under it, its live check."""

    name: str
    label: str
    diagram: Diagram
    numbers: StepNumbers  # for the selected token, on the graph as drawn
    cone: int  # cells in the selected cell's backward cone
    reach: int  # cells in its forward reach
    check: Check
    cone_caption: str
    numbers_markdown: str
    readable: str
    gain: str  # what generating adds to this graph ("" when generation is off)
    check_markdown: str
    file_name: str


@dataclass(frozen=True)
class ArchitecturesPage:
    tokens: int
    layers: int
    width: int
    generation: bool
    cell: Cell
    auto: Cell  # the cell shown when the link names none
    panels: tuple[Panel, ...]
    real: RealModel | None
    sizes: pd.DataFrame  # state carried into every step, per architecture
    paths: pd.DataFrame  # longest serial path per distance, over a text and while generating
    table: pd.DataFrame  # one row per architecture: the CSV
    notices: tuple[str, ...]
    title: str
    intro: str
    loop: str
    selected: str
    role_labels: dict[str, str]
    state_heading: str
    real_text: str
    sufficient: str
    curves_heading: str
    curve_labels: dict[str, str]
    size_title: tuple[str, str]
    path_title: tuple[str, str]
    links: dict[str, str]  # page path → label
    files: dict[str, str]  # figure → file name, "data" for the page's data


def waiting_text() -> str:
    """What the view says while a new grid's live checks run (before the page model exists)."""
    return fill(PAGE, "waiting")


def real_shape() -> RealModel | None:
    """The default model's shape, read from the config.json of its converted copy without
    loading any weight; None until the model has been converted on this machine."""
    from transformers import AutoConfig

    folder = converted_folder()
    if not (folder / "config.json").is_file():
        return None
    config = AutoConfig.from_pretrained(str(folder), local_files_only=True)
    dtype = SETTINGS.weights
    shape = ModelShape.from_config(config, BYTES[dtype])
    name = registry()[DEFAULT_MODEL].label.split(" (")[0]  # "SmolLM2-135M-Instruct (30 layers)"
    return real_model(name, "config.json of the converted model", shape, dtype)


def real_model(label: str, source: str, shape: ModelShape, dtype: str) -> RealModel:
    """What a model's shape implies for the page: the per-token cache through the transformer
    rule at the KV width, and the most a sampled token can carry."""
    rule = make_rule("transformer", shape.layers)
    return RealModel(
        label=label,
        source=source,
        shape=shape,
        dtype=dtype,
        bits_per_token=math.log2(shape.vocab),
        per_token=rule.state_values(1, shape.kv_width),
        per_token_full_width=rule.state_values(1, shape.hidden),
    )


def plural(count: int, word: str) -> str:
    """`1 token`, `2 tokens`: the grid on this page goes down to one token and one layer."""
    return f"{count:,} {word}{'' if count == 1 else 's'}"


def check_of(result: VerificationResult) -> Check:
    return Check(
        result=result,
        passed=result.passed,
        max_abs_diff=result.max_abs_diff,
        step_equals_full=result.step_equals_full,
        reading_mismatches=len(result.reading.mismatched_cells),
        generating_mismatches=len(result.generating.mismatched_cells),
        pairs=result.reading.pairs,
    )


def _icon(ok: bool) -> str:
    return fill(PAGE, "check.passed" if ok else "check.failed")


def check_text(check: Check, name: str, label: str, grid: str) -> str:
    result = check.result
    return fill(
        PAGE,
        "check.text",
        label=label,
        grid=grid,
        step_icon=_icon(check.step_equals_full),
        diff=check.max_abs_diff,
        reading_icon=_icon(result.reading.matches),
        reading_wrong=check.reading_mismatches,
        pairs=check.pairs,
        generating_icon=_icon(result.generating.matches),
        generating_wrong=check.generating_mismatches,
        note=fill(PAGE, f"check.{name}"),
    )


def numbers_text(numbers: StepNumbers, layers: int) -> str:
    """The list of numbers under one diagram, for step t = `numbers.step`."""
    t = numbers.step
    growth = (
        fill(PAGE, "numbers.growth", growth=numbers.state_growth)
        if numbers.state_growth
        else fill(PAGE, "numbers.fixed")
    )
    rows = [
        fill(
            PAGE,
            "numbers.state",
            t=t,
            values=numbers.state_values,
            bytes=markdown.human_bytes(numbers.state_bytes),
            growth=growth,
        ),
        fill(
            PAGE,
            "numbers.path",
            t=t,
            reading=plural(numbers.reading_path, "computation"),
            generating=plural(numbers.generating_path, "computation"),
            samples=numbers.generating_samples,
        ),
        fill(
            PAGE,
            "numbers.steps",
            tokens=plural(numbers.tokens, "token"),
            training=numbers.training_steps,
            training_kind=fill(
                PAGE, "numbers.parallel" if numbers.parallel_over_time else "numbers.serial"
            ),
            generating=numbers.generating_steps,
        ),
        fill(PAGE, "numbers.read", t=t, read=numbers.past_cells_read, past=numbers.past_cells),
        fill(
            PAGE,
            "numbers.cone",
            t=t,
            layers=layers,
            cone=numbers.past_cells_in_cone,
            past=numbers.past_cells,
            tops=numbers.past_tops_in_cone,
            mode=fill(PAGE, "numbers.generating" if numbers.generation else "numbers.reading"),
        ),
    ]
    return "\n".join(f"- {row}" for row in rows)


def readable_text(name: str, t: int, layers: int) -> str:
    if t == 0:
        return fill(PAGE, "readable.first")
    return fill(PAGE, f"readable.{name}", t=t, previous=t - 1, layers=layers)


def gain_text(numbers: StepNumbers) -> str:
    """What the sampled-token edge adds to this graph, as computed for the selected token."""
    change = "grows" if numbers.generating_path > numbers.reading_path else "same"
    return " ".join(
        (
            fill(PAGE, f"gain.{numbers.name}"),
            fill(
                PAGE,
                f"gain.{change}",
                t=numbers.step,
                reading=numbers.reading_path,
                generating=numbers.generating_path,
            ),
        )
    )


def state_sizes(rules: dict[str, Architecture], tokens: int, width: int) -> pd.DataFrame:
    """Bytes carried into step t = 0..tokens-1 by each architecture (float32, `width`)."""
    return pd.DataFrame(
        [
            {
                "architecture": rule.label,
                "name": name,
                "step": t,
                "values": rule.state_values(t, width),
                "bytes": rule.state_bytes(t, width),
            }
            for name, rule in rules.items()
            for t in range(tokens)
        ]
    )


def serial_paths(
    rules: dict[str, Architecture], tokens: int, labels: dict[str, str]
) -> pd.DataFrame:
    """Longest serial path from token 0 to token d, d = 0..tokens-1, per architecture, over a
    fixed text and while generating. Generating series that coincide are one series, labelled
    `labels["all"]`."""
    rows = []
    for mode, generating in (("reading", False), ("generating", True)):
        series = {
            name: [
                path.computations
                for path in longest_paths(
                    rule.generating() if generating else rule.reading(), 0, tokens
                )
            ]
            for name, rule in rules.items()
        }
        alike = generating and len({tuple(path) for path in series.values()}) == 1
        if alike:
            series = {"all": next(iter(series.values()))}
        for name, path in series.items():
            for distance, value in enumerate(path):
                rows.append(
                    {
                        "architecture": labels["all"] if name == "all" else rules[name].label,
                        "name": name,
                        "mode": labels[mode],
                        "series": f"{name}-{mode}",
                        "distance": distance,
                        "path": value,
                    }
                )
    return pd.DataFrame(rows)


def export_table(panels: tuple[Panel, ...]) -> pd.DataFrame:
    """One row per architecture: the numbers under its diagram and its live check."""
    return pd.DataFrame(
        [
            {
                "architecture": panel.name,
                **{k: v for k, v in dataclasses.asdict(panel.numbers).items() if k != "name"},
                "backward_cone_cells": panel.cone,
                "forward_reach_cells": panel.reach,
                "check_step_equals_full": panel.check.step_equals_full,
                "check_max_abs_diff": panel.check.max_abs_diff,
                "check_reading_mismatched_pairs": panel.check.reading_mismatches,
                "check_generating_mismatched_pairs": panel.check.generating_mismatches,
                "check_pairs": panel.check.pairs,
            }
            for panel in panels
        ]
    )


def file_names(cfg: ViewConfig, cell: Cell) -> dict[str, str]:
    """The file name of every figure and of the page's data, from the settings that change
    it: the diagrams follow the grid, the mode and the cell; the state sizes the grid, the
    width and the step; the serial paths only the grid."""
    grid = (("tokens", cfg.tokens), ("layers", cfg.layers))
    mode = (("generation", "on"),) if cfg.generation == "on" else ()
    names = {
        name: export.view_name(
            PAGE, *grid, *mode, ("token", cell.token), ("layer", cell.layer), ("fig", name)
        )
        for name in ARCHITECTURES
    }
    names["state-size"] = export.view_name(
        PAGE, *grid, ("width", cfg.width), ("token", cell.token), ("fig", "state-size")
    )
    names["serial-path"] = export.view_name(PAGE, *grid, ("fig", "serial-path"))
    names["data"] = export.view_name(
        PAGE, *grid, ("width", cfg.width), *mode, ("token", cell.token), ("layer", cell.layer)
    )
    return names


def selected_cell(cfg: ViewConfig) -> tuple[Cell, Cell, tuple[str, ...]]:
    """The selected cell (the link's, clamped to the grid, or the page's pick), the pick,
    and the notices of any clamping."""
    auto = auto_cell(cfg.tokens, cfg.layers)
    token, token_notice = clamp_index(
        "token", auto.token if cfg.token is None else cfg.token, cfg.tokens
    )
    layer, layer_notice = clamp_index(
        "layer", auto.layer if cfg.layer is None else cfg.layer, cfg.layers + 1
    )
    notices = tuple(notice for notice in (token_notice, layer_notice) if notice)
    return Cell(token, layer), auto, notices


def architectures_page(
    cfg: ViewConfig,
    verify: Verify,
    reference: Callable[[], RealModel | None] = real_shape,
) -> ArchitecturesPage:
    generation = cfg.generation == "on"
    tokens, layers, width = cfg.tokens, cfg.layers, cfg.width
    cell, auto, notices = selected_cell(cfg)
    t = cell.token
    grid = f"{plural(tokens, 'token')} × {plural(layers, 'layer')}"
    meanings = {role: fill(PAGE, f"roles.{role}") for role in ROLES}
    files = file_names(cfg, cell)
    rules = {name: make_rule(name, layers, generation) for name in ARCHITECTURES}

    panels = []
    for name, rule in rules.items():
        diagram = diagram_data(rule, cell, tokens, meanings)
        numbers = step_numbers(rule, t, tokens, width)
        check = check_of(verify(name, tokens, layers))
        cone, reach = diagram.count("past"), diagram.count("future")
        panels.append(
            Panel(
                name=name,
                label=rule.label,
                diagram=diagram,
                numbers=numbers,
                cone=cone,
                reach=reach,
                check=check,
                cone_caption=fill(
                    PAGE, "cones", past=plural(cone, "cell"), future=plural(reach, "cell")
                ),
                numbers_markdown=numbers_text(numbers, layers),
                readable=readable_text(name, t, layers),
                gain=gain_text(numbers) if generation else "",
                check_markdown=check_text(check, name, rule.label, grid),
                file_name=files[name],
            )
        )

    # The opening paragraphs speak of the last token over a fixed text, then while generating.
    last = tokens - 1
    reading = {
        name: step_numbers(rule.reading(), last, tokens, width) for name, rule in rules.items()
    }
    generating = step_numbers(rules["transformer"].generating(), last, tokens, width)
    tr, rnn, fb = reading["transformer"], reading["rnn"], reading["feedback"]
    past_tops = plural(last, "top-layer state")
    real = reference()
    if real is None:
        kv_numbers = token_numbers = fill(PAGE, "no_model")
        real_text = fill(PAGE, "real_missing")
    else:
        shape = real.shape
        kv_numbers = fill(PAGE, "kv_numbers", kv_width=shape.kv_width, model=real.label)
        token_numbers = fill(
            PAGE, "token_numbers", vocab=shape.vocab, bits=real.bits_per_token, model=real.label
        )
        real_text = fill(
            PAGE,
            "real",
            model=real.label,
            heads=shape.heads,
            kv_heads=shape.kv_heads,
            head_dim=shape.head_dim,
            kv_width=shape.kv_width,
            hidden=shape.hidden,
            layers=shape.layers,
            per_token=real.per_token,
            per_token_bytes=markdown.human_bytes(real.per_token * shape.bytes_per_value),
            dtype=real.dtype,
            full_width=real.per_token_full_width,
            rnn_state=make_rule("rnn", shape.layers).state_values(1, shape.hidden),
            feedback_state=make_rule("feedback", shape.layers).state_values(1, shape.hidden),
            vocab=shape.vocab,
            bits=real.bits_per_token,
        )
    curve_labels = {name: rule.label for name, rule in rules.items()} | {
        key: fill(PAGE, f"curves.{key}") for key in ("all", "reading", "generating")
    }
    panels = tuple(panels)
    return ArchitecturesPage(
        tokens=tokens,
        layers=layers,
        width=width,
        generation=generation,
        cell=cell,
        auto=auto,
        panels=panels,
        real=real,
        sizes=state_sizes(rules, tokens, width),
        paths=serial_paths(rules, tokens, curve_labels),
        table=export_table(panels),
        notices=notices,
        title=fill(PAGE, "title"),
        intro=fill(
            PAGE,
            "intro",
            grid=grid,
            t=last,
            layers=layers,
            transformer=tr.reading_path,
            rnn=rnn.reading_path,
            feedback=fb.reading_path,
            tops=tr.past_tops_in_cone,
            past_tops=past_tops,
            rnn_tops=rnn.past_tops_in_cone,
            feedback_tops=fb.past_tops_in_cone,
            cache=tr.state_values,
            width=width,
            rnn_state=rnn.state_values,
            feedback_state=fb.state_values,
            tokens=plural(tokens, "token"),
            rnn_training=rnn.training_steps,
            feedback_training=fb.training_steps,
            transformer_training=tr.training_steps,
        ),
        loop=fill(
            PAGE,
            "loop",
            t=last,
            generating=generating.generating_path,
            samples=generating.generating_samples,
            past_tops=past_tops,
            layers=layers,
            kv_numbers=kv_numbers,
            token_numbers=token_numbers,
        ),
        selected=fill(PAGE, "selected", token=cell.token, layer=cell.layer),
        role_labels={role: meanings[role] for role in ROLES}
        | ({"sampled": fill(PAGE, "roles.sampled")} if generation else {}),
        state_heading=fill(PAGE, "state_heading"),
        real_text=real_text,
        sufficient=fill(
            PAGE,
            "sufficient" if all(p.check.step_equals_full for p in panels) else "unverified",
            max_diff=max(panel.check.max_abs_diff for panel in panels),
        ),
        curves_heading=fill(PAGE, "curves_heading"),
        curve_labels=curve_labels,
        size_title=(
            fill(PAGE, "curves.size_title"),
            fill(PAGE, "curves.size_subtitle", width=width),
        ),
        path_title=(
            fill(PAGE, "curves.path_title"),
            fill(PAGE, "curves.path_subtitle", layers=layers),
        ),
        links={
            "flow": fill(PAGE, "flow_link"),
            "tracking": fill(PAGE, "tracking_link"),
        },
        files=files,
    )
