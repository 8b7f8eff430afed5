"""/tracking as a value: accuracy against dependency depth for every shipped model and the
shortcuts (from the shipped records: no model runs for it), and the reader's program through
every model, with each print's depth, the scratchpad model's written values, and what one
planted wrong value does to what it writes next."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from lib import tracking
from lib.config import ViewConfig
from lib.content import fill, templates
from lib.markdown import escape_markdown
from lib.pages.common import HIDDEN
from lib.tracking import HeldOutTable, Program, Shipped, Writing
from lib.tracking.scoring import DEPTH_ASSIGN, DEPTH_PROGRAMS, DEPTH_STATEMENTS
from lib.tracking.task import wrap

PAGE = "tracking"
TRUE = "the program"  # the truth's row in the grids
DEPTH = "depth"  # the row of each print's dependency depth
HOLDS = 0.9  # a model "holds up" in a depth bucket while it answers at least this share right
CHANCE = 1 / tracking.VALUES  # a uniform guess among the values
HEADINGS = ("depth", "program", "length", "reads", "limits")
HEADINGS = ("depth", "program", "length", "reads", "limits")


@dataclass(frozen=True)
class Planted:
    """The scratchpad model's writing with one wrong value forced in after statement `line`:
    how many of the values it then writes itself are wrong before one is right again."""

    model: str
    line: int
    value: int
    writing: Writing = field(metadata=HIDDEN)
    wrong_after: int  # wrong values it wrote after the planted one
    recovered_at: int | None  # the first statement after `line` where it is right again


@dataclass(frozen=True, eq=False)
class TrackingPage:
    title: str
    opening: tuple[str, ...]
    headings: dict[str, str]
    notices: tuple[str, ...]
    budget: pd.DataFrame  # how each model was trained
    budget_caption: str
    written_caption: str
    by_depth: HeldOutTable
    by_length: HeldOutTable
    depth_text: str
    depth_caption: str
    length_text: str
    program: Program = field(metadata=HIDDEN)
    own: bool  # the reader's own program is shown
    listing: str  # the program, one statement per line
    depths: tuple[int, ...]  # each print's dependency depth
    grid: pd.DataFrame  # per (print, who): value said, right or wrong
    score_text: str
    grid_caption: str
    written: pd.DataFrame  # per (statement, row): value written, right or wrong
    written_text: str
    planted: Planted | None
    reads: pd.DataFrame = field(metadata=HIDDEN)
    reads_caption: str
    limits: tuple[str, ...]


def percent(value: float) -> str:
    return "–" if np.isnan(value) else f"{value:.1%}"


def program_of(cfg: ViewConfig) -> tuple[Program, bool, tuple[str, ...]]:
    """The reader's program when it reads, else the generated one, and a notice when the
    reader's was refused."""
    if cfg.program:
        try:
            return tracking.parse_program(cfg.program), True, ()
        except ValueError as error:
            refused = fill(PAGE, "notices.refused", reason=escape_markdown(str(error)))
            return generated(cfg), False, (refused,)
    return generated(cfg), False, ()


def generated(cfg: ViewConfig) -> Program:
    return tracking.random_program(
        np.random.default_rng([cfg.pseed, cfg.statements]), cfg.statements
    )


def reach(accuracy: np.ndarray, usable: list[int]) -> int:
    """How many of the `usable` buckets, from the shallowest, stay at or above HOLDS."""
    return next((n for n, i in enumerate(usable) if accuracy[i] < HOLDS), len(usable))


def depth_findings(table: HeldOutTable) -> str:
    """Where each row of the table falls below HOLDS, and whether the models that carry a value
    from token to token hold up deeper than the plain transformers, read off the table."""
    usable = [i for i, thin in enumerate(table.thin) if not thin and table.columns[i] != "0"]
    reaches = [reach(accuracy, usable) for accuracy in table.accuracy]
    text = templates(PAGE)
    rows = [
        fill(
            PAGE,
            "depth.row",
            name=name,
            kind=text[f"kinds.{kind}"],
            start=percent(table.accuracy[row][usable[0]]),
            end=percent(table.accuracy[row][usable[-1]]),
            where=fill(PAGE, "depth.holds", threshold=HOLDS)
            if reaches[row] == len(usable)
            else fill(
                PAGE, "depth.breaks", bucket=table.columns[usable[reaches[row]]], threshold=HOLDS
            ),
        )
        for row, (name, kind) in enumerate(zip(table.rows, table.kinds, strict=True))
    ]
    carriers = [r for r, kind in enumerate(table.kinds) if kind in ("feedback", "scratchpad")]
    plain = [r for r, kind in enumerate(table.kinds) if kind == "transformer"]
    best = max(plain, key=lambda r: (reaches[r], table.accuracy[r][usable[-1]]))
    conclusion = (
        fill(
            PAGE,
            "depth.carriers",
            threshold=HOLDS,
            transformer=table.rows[best],
            transformer_reach=table.columns[usable[reaches[best] - 1]]
            if reaches[best]
            else text["depth.nowhere"],
        )
        if min(reaches[r] for r in carriers) > reaches[best]
        else text["depth.mixed"]
    )
    deepest = usable[-1]
    recent = table.rows.index(tracking.RECENT_SHORTCUT)
    shortcut = table.accuracy[recent][deepest]
    margin = 2 * np.sqrt(2 * shortcut * (1 - shortcut) / table.prints[deepest])
    beaten = [table.rows[r] for r in plain if table.accuracy[r][deepest] > shortcut + margin]
    plain_deep = table.accuracy[plain, deepest]
    against = fill(
        PAGE,
        "depth.recent",
        deepest=table.columns[deepest],
        low=percent(plain_deep.min()),
        high=percent(plain_deep.max()),
        count=tracking.RECENT,
        recent=percent(shortcut),
        verdict=fill(
            PAGE, "depth.recent_some", names=", ".join(beaten), margin=margin, count=tracking.RECENT
        )
        if beaten
        else fill(PAGE, "depth.recent_none", margin=margin),
    )
    first = usable[0]
    short = [
        table.rows[r] for r in plain if table.accuracy[r][first] < table.accuracy[recent][first]
    ]
    if short:
        against += " " + fill(
            PAGE,
            "depth.undertrained",
            first=table.columns[first],
            names=", ".join(short),
            recent=percent(table.accuracy[recent][first]),
        )
    thin = [column for column, thin in zip(table.columns, table.thin, strict=True) if thin]
    if thin:
        conclusion += " " + fill(
            PAGE, "depth.thin", min_prints=tracking.MIN_PRINTS, thin=", ".join(thin)
        )
    return fill(
        PAGE,
        "depth.text",
        first=table.columns[usable[0]],
        deepest=table.columns[usable[-1]],
        chance=CHANCE,
        rows="\n".join(rows),
        conclusion=conclusion,
        recent=against,
    )


def budget_table(models: Mapping[str, Shipped]) -> pd.DataFrame:
    """How each model was trained, from its record."""
    return pd.DataFrame(
        [
            {
                "model": name,
                "kind": shipped.record["kind"],
                "layers": shipped.record["sizes"]["layers"],
                "steps": shipped.record["steps"],
                "batch": shipped.record["batch"],
                "CPU seconds": shipped.record["cpu_seconds"],
                "budget": shipped.record["budget_cpu_seconds"],
                "threads": shipped.record["threads"],
                "seed": shipped.record["seed"],
            }
            for name, shipped in models.items()
        ]
    )


def weights_error(error: Exception) -> str:
    """What the page says when the shipped weights cannot be loaded."""
    return fill(
        PAGE,
        "errors.weights",
        error=f"{type(error).__name__}: {error}",
        folder="/".join(tracking.WEIGHTS_DIR.parts[-2:]),
    )


def grid_frame(program: Program, said: Mapping[str, tuple[int, ...]]) -> pd.DataFrame:
    """One row per (print, who): the value said, and whether it is right ("" for the truth)."""
    rows = []
    for index, (value, depth) in enumerate(zip(program.printed, program.depths, strict=True)):
        rows += [(index + 1, DEPTH, depth, ""), (index + 1, TRUE, value, "")]
        rows += [
            (index + 1, name, guess[index], "right" if guess[index] == value else "wrong")
            for name, guess in said.items()
        ]
    return pd.DataFrame(rows, columns=["print", "who", "value", "verdict"])


def written_frame(program: Program, writings: Mapping[str, Writing]) -> pd.DataFrame:
    """One row per (statement, row): the true value after it, and each writing's value."""
    rows = [
        (line + 1, " ".join(statement.tokens), TRUE, value, "")
        for line, (statement, value) in enumerate(zip(program.lines, program.values, strict=True))
    ]
    for label, writing in writings.items():
        rows += [
            (
                line + 1,
                " ".join(statement.tokens),
                label,
                value,
                "right" if value == true else "wrong",
            )
            for line, (statement, value, true) in enumerate(
                zip(program.lines, writing.written, program.values, strict=True)
            )
        ]
    return pd.DataFrame(rows, columns=["statement", "text", "who", "value", "verdict"])


def plant_line(program: Program) -> int | None:
    """Where to plant a wrong value: the first update from the middle of the program on that is
    not directly followed by an assignment (so the error has somewhere to go); None when there
    is no such place."""
    lines = program.lines
    for line in range(len(lines) // 2, len(lines) - 1):
        following = lines[line + 1]
        if lines[line].op != "print" and not following.fixes:
            return line
    return None


def planted(name: str, shipped: Shipped, program: Program) -> Planted | None:
    """The scratchpad model's writing with the value after `plant_line` forced wrong."""
    line = plant_line(program)
    if line is None:
        return None
    value = wrap(program.values[line] + 1)
    (writing,) = shipped.model.write([program], forced={line: value})
    after = list(zip(writing.written, program.values, strict=True))[line + 1 :]
    recovered = next((line + 1 + i for i, (w, t) in enumerate(after) if w == t), None)
    return Planted(name, line, value, writing, sum(w != t for w, t in after), recovered)


def written_text(name: str, writing: Writing, plant: Planted | None) -> str:
    error = writing.first_error
    own = (
        fill(PAGE, "written.all_right", name=name, count=len(writing.written))
        if error is None
        else fill(
            PAGE,
            "written.first_error",
            name=name,
            line=error + 1,
            statement=" ".join(writing.program.lines[error].tokens),
            wrote=writing.written[error],
            true=writing.program.values[error],
            wrong=sum(w != t for w, t in zip(writing.written, writing.program.values, strict=True)),
        )
    )
    if plant is None:
        return own + " " + fill(PAGE, "written.no_plant")
    recovered = (
        fill(PAGE, "written.recovered", line=plant.recovered_at + 1)
        if plant.recovered_at is not None
        else fill(PAGE, "written.never")
    )
    return (
        own
        + " "
        + fill(
            PAGE,
            "written.planted",
            line=plant.line + 1,
            value=plant.value,
            wrong=plant.wrong_after,
            recovered=recovered,
        )
    )


def tracking_page(cfg: ViewConfig, models: Mapping[str, Shipped]) -> TrackingPage:
    """The page for `cfg`, given the shipped models (feedback first). The held-out tables come
    from the records; only the program shown runs through the models (tiny: milliseconds)."""
    program, own, notices = program_of(cfg)
    live = tracking.live_run(models, program)
    records = {name: shipped.record for name, shipped in models.items()}
    reference = tracking.read_reference()
    by_depth = tracking.held_out_table(records, reference, "by_depth")
    by_length = tracking.held_out_table(records, reference, "by_length")
    lengths = reference["sets"]["by_length"]
    scratchpads = {name: m for name, m in models.items() if m.record["kind"] == "scratchpad"}
    pad_name, pad = next(iter(scratchpads.items()))
    writing = live.writings[pad_name]
    plant = planted(pad_name, pad, program)
    writings = {fill(PAGE, "written.row", name=pad_name): writing}
    if plant is not None:
        writings[fill(PAGE, "written.planted_row", line=plant.line + 1)] = plant.writing
    feedback_name, feedback = next(
        (name, m) for name, m in models.items() if m.record["kind"] == "feedback"
    )
    text = templates(PAGE)
    budget = budget_table(models)
    seconds = " or ".join(f"{b:.0f}" for b in sorted(set(budget["budget"])))
    return TrackingPage(
        title=text["title"],
        opening=(
            fill(PAGE, "opening.paper", values=tracking.VALUES),
            fill(PAGE, "opening.depth"),
            fill(
                PAGE,
                "opening.models",
                models=", ".join(f"**{name}** ({m.description})" for name, m in models.items()),
                budget=seconds,
            ),
        ),
        headings={key: text[f"headings.{key}"] for key in HEADINGS}
        | {"budget": text["budget.heading"]},
        notices=notices,
        budget=budget,
        budget_caption=text["budget.caption"],
        written_caption=text["written.caption"],
        by_depth=by_depth,
        by_length=by_length,
        depth_text=depth_findings(by_depth),
        depth_caption=fill(
            PAGE,
            "depth.caption",
            programs=DEPTH_PROGRAMS,
            statements=DEPTH_STATEMENTS,
            shares=", ".join(f"{share:.0%}" for share in DEPTH_ASSIGN),
            prints=sum(by_depth.prints),
            chance=CHANCE,
        ),
        length_text=fill(
            PAGE,
            "length.text",
            sets=", ".join(
                fill(PAGE, "length.set", label=label, median=found["median"], p90=found["p90"])
                for label, found in lengths.items()
            ),
        ),
        program=program,
        own=own,
        listing=program.text.replace("; ", ";\n"),
        depths=program.depths,
        grid=grid_frame(program, live.said),
        score_text=fill(
            PAGE,
            "program.score",
            scores=" · ".join(
                f"**{name}** {live.right(name)}/{len(program.printed)}" for name in live.said
            ),
            deepest=max(program.depths),
            median=float(np.median(program.depths)),
        ),
        grid_caption=fill(PAGE, "program.caption"),
        written=written_frame(program, writings),
        written_text=written_text(pad_name, writing, plant),
        planted=plant,
        reads=reads_frame(program, live.reads[feedback_name]),
        reads_caption=fill(PAGE, "reads.caption", window=feedback.model.window),
        limits=(
            fill(PAGE, "limits.scratchpad"),
            fill(PAGE, "limits.scale", values=tracking.VALUES, budget=seconds),
        ),
    )


def reads_frame(program: Program, reads: np.ndarray) -> pd.DataFrame:
    """At each print's `x`: the attention weight on the memory of every earlier token."""
    rows = [
        (
            index + 1,
            int(source),
            f"{source} {program.tokens[source]}",
            float(reads[position, source]),
        )
        for index, position in enumerate(program.print_positions)
        for source in np.flatnonzero(reads[position] > 0)
    ]
    return pd.DataFrame(rows, columns=["print", "position", "token", "weight"])
