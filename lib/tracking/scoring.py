"""How the models are measured: fixed held-out programs, per-print accuracy by program length and
by dependency depth, and the shortcuts a model has to beat.

Length is not depth: an unconditional assignment resets the chain, so in the length sets most
prints are shallow whatever the program's length (`depth_statistics` measures it). The depth set
keeps the length fixed and lowers the share of assignments to reach deep prints, then every print
is counted in the bucket of its depth.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import reduce

import numpy as np
import pandas as pd

from lib.tracking.models import TrackingModel
from lib.tracking.task import VALUES, Program, Statement, random_program

TEST_SETS = {
    "10–40 statements": (10, 40),
    "60–80 statements": (60, 80),
    "100 statements": (100, 100),
}
TEST_PROGRAMS = 200  # programs per length set
TEST_SEED = 10_000  # length-set program i comes from seed TEST_SEED + i, never used in training
EVAL_BATCH = 40  # programs per forward pass: a transformer's attention holds h × T² numbers each

DEPTH_BUCKETS: dict[str, tuple[int, int | None]] = {
    "0": (0, 0),
    "1–3": (1, 3),
    "4–7": (4, 7),
    "8–15": (8, 15),
    "16–31": (16, 31),
    "32+": (32, None),
}
DEPTH_STATEMENTS = 100  # every program of the depth set has this length
DEPTH_ASSIGN = (
    0.1,
    0.05,
    0.02,
    0.0,
)  # depth-set program i: share of assignments DEPTH_ASSIGN[i % 4]
DEPTH_PROGRAMS = 200
DEPTH_SEED = 20_000
MIN_PRINTS = 100  # a bucket with fewer prints is reported as too thin to read
RECENT = 3  # updates the "recent updates" shortcut reads before each print
STARTS = range(1, VALUES + 1)

Answer = Callable[[Sequence[Program]], list[tuple[int, ...]]]


def held_out(statements: tuple[int, int], count: int = TEST_PROGRAMS) -> list[Program]:
    """A fixed test set: program i comes from seed TEST_SEED + i (plus the length range)."""
    low, high = statements
    programs = []
    for index in range(count):
        rng = np.random.default_rng([TEST_SEED + index, low, high])
        programs.append(random_program(rng, int(rng.integers(low, high + 1))))
    return programs


def held_out_sets() -> dict[str, list[Program]]:
    """The test sets by length, by label: in the training distribution, and longer."""
    return {label: held_out(statements) for label, statements in TEST_SETS.items()}


def depth_programs(count: int = DEPTH_PROGRAMS) -> list[Program]:
    """The depth set: programs of DEPTH_STATEMENTS statements whose share of unconditional
    assignments cycles through DEPTH_ASSIGN, down to none after the first (then only a run of
    conditionals can fix a value again), so prints reach every bucket of DEPTH_BUCKETS."""
    return [
        random_program(
            np.random.default_rng([DEPTH_SEED + index, DEPTH_STATEMENTS]),
            DEPTH_STATEMENTS,
            DEPTH_ASSIGN[index % len(DEPTH_ASSIGN)],
        )
        for index in range(count)
    ]


def depth_bucket(depth: int) -> str:
    """The label of the bucket of DEPTH_BUCKETS that holds `depth`."""
    for label, (low, high) in DEPTH_BUCKETS.items():
        if low <= depth and (high is None or depth <= high):
            return label
    raise ValueError(f"no bucket holds depth {depth}")


@dataclass(frozen=True)
class Score:
    """Prints answered right out of prints asked."""

    right: int
    prints: int

    @property
    def accuracy(self) -> float:
        return self.right / self.prints if self.prints else float("nan")

    @property
    def thin(self) -> bool:
        """Too few prints for the accuracy to mean much (fewer than MIN_PRINTS)."""
        return self.prints < MIN_PRINTS

    def as_record(self) -> dict[str, float | int]:
        return {"accuracy": round(self.accuracy, 4), "right": self.right, "prints": self.prints}


def score(guesses: Sequence[Sequence[int]], programs: Sequence[Program]) -> Score:
    """Per-print: every print of every program counts once."""
    said = [g for guess in guesses for g in guess]
    truth = [p for program in programs for p in program.printed]
    if len(said) != len(truth):
        raise ValueError(f"{len(said)} answers for {len(truth)} prints")
    return Score(sum(s == t for s, t in zip(said, truth, strict=True)), len(truth))


def accuracy(guesses: Sequence[Sequence[int]], programs: Sequence[Program]) -> float:
    """Per-print accuracy: the share of all prints whose value is right."""
    return score(guesses, programs).accuracy


def score_by_depth(
    guesses: Sequence[Sequence[int]], programs: Sequence[Program]
) -> dict[str, Score]:
    """A score per bucket of DEPTH_BUCKETS, every bucket present, an empty one with 0 prints."""
    right = dict.fromkeys(DEPTH_BUCKETS, 0)
    prints = dict.fromkeys(DEPTH_BUCKETS, 0)
    for guess, program in zip(guesses, programs, strict=True):
        for said, value, depth in zip(guess, program.printed, program.depths, strict=True):
            bucket = depth_bucket(depth)
            right[bucket] += said == value
            prints[bucket] += 1
    return {label: Score(right[label], prints[label]) for label in DEPTH_BUCKETS}


def predictions(model: TrackingModel, programs: Sequence[Program]) -> list[tuple[int, ...]]:
    """The value the model says at every print of every program, EVAL_BATCH programs at a time."""
    said = []
    for start in range(0, len(programs), EVAL_BATCH):
        said += model.answers(programs[start : start + EVAL_BATCH])
    return said


def evaluate(answer: Answer) -> dict[str, dict[str, dict[str, float | int]]]:
    """Scores on every held-out set, as the records keep them: by length set, and by depth
    bucket on the depth set."""
    depth_set = depth_programs()
    return {
        "by_length": {
            label: score(answer(programs), programs).as_record()
            for label, programs in held_out_sets().items()
        },
        "by_depth": {
            label: found.as_record()
            for label, found in score_by_depth(answer(depth_set), depth_set).items()
        },
    }


# Shortcuts that are not sequential tracking


def _run_only(program: Program, kept: Callable[[Statement], bool]) -> tuple[int, ...]:
    """The values printed when only the statements `kept` picks are run."""
    said, value = [], 0
    for line in program.lines:
        if line.op == "print":
            said.append(value)
        elif kept(line):
            value = line.apply(value)
    return tuple(said)


def skip_conditionals(program: Program) -> tuple[int, ...]:
    """What a reader gets who applies only the unconditional updates: no chain through tests."""
    return _run_only(program, lambda line: line.test is None)


def last_assignment(program: Program) -> tuple[int, ...]:
    """What a reader gets who copies the last unconditional `x = …` and ignores every update
    since: right exactly when nothing since has changed the value (always at depth 0)."""
    return _run_only(program, lambda line: line.fixes)


def recent_updates(program: Program, count: int = RECENT) -> tuple[int, ...]:
    """What a reader gets who reads only the last `count` updates before each print and knows
    nothing of x before them: the value those updates lead to from the most starting values
    (ties: the one reached from the smallest start). Right whenever they fix x, so at every
    print of depth below `count`; a model that beats it on deep prints looks further back."""
    said, recent = [], []
    for line in program.lines:
        if line.op == "print":
            ends = [reduce(lambda v, update: update.apply(v), recent, start) for start in STARTS]
            said.append(Counter(ends).most_common(1)[0][0])
        else:
            recent = [*recent, line][-count:]
    return tuple(said)


BASELINES: dict[str, Callable[[Program], tuple[int, ...]]] = {
    "skip the conditionals": skip_conditionals,
    "last assignment": last_assignment,
    f"the last {RECENT} updates only": recent_updates,
}
RECENT_SHORTCUT = f"the last {RECENT} updates only"


def evaluate_baseline(name: str) -> dict[str, dict[str, dict[str, float | int]]]:
    shortcut = BASELINES[name]
    return evaluate(lambda programs: [shortcut(program) for program in programs])


@dataclass(frozen=True)
class DepthStatistics:
    """The dependency depths of a set of prints; None for the statistics of no print."""

    prints: int
    median: float | None
    p90: float | None
    max: int | None

    def as_record(self) -> dict[str, float | int | None]:
        return {"prints": self.prints, "median": self.median, "p90": self.p90, "max": self.max}


def depth_statistics(depths: Sequence[int]) -> DepthStatistics:
    if not depths:
        return DepthStatistics(0, None, None, None)
    return DepthStatistics(
        len(depths),
        round(float(np.median(depths)), 2),
        round(float(np.percentile(depths, 90)), 2),
        int(max(depths)),
    )


def describe_sets() -> dict[str, dict[str, dict[str, float | int | None]]]:
    """The depths of the held-out prints: per length set, and per bucket of the depth set."""
    in_depth_set = [depth for program in depth_programs() for depth in program.depths]
    return {
        "by_length": {
            label: depth_statistics([d for program in programs for d in program.depths]).as_record()
            for label, programs in held_out_sets().items()
        },
        "by_depth": {
            label: depth_statistics(
                [depth for depth in in_depth_set if depth_bucket(depth) == label]
            ).as_record()
            for label in DEPTH_BUCKETS
        },
    }


# Tables for the page, from the records alone


@dataclass(frozen=True, eq=False)
class HeldOutTable:
    """Per-print accuracy on one family of held-out sets ("by_length" or "by_depth"): one row per
    model, then one per shortcut; one column per set or depth bucket."""

    rows: tuple[str, ...]
    kinds: tuple[str, ...]  # each row's model kind, "baseline" for a shortcut
    columns: tuple[str, ...]
    accuracy: np.ndarray  # (rows, columns); NaN where a column holds no print
    prints: tuple[int, ...]  # prints per column, the same for every row

    @property
    def thin(self) -> tuple[bool, ...]:
        """Columns with fewer than MIN_PRINTS prints."""
        return tuple(count < MIN_PRINTS for count in self.prints)

    def frame(self) -> pd.DataFrame:
        return pd.DataFrame(self.accuracy, index=list(self.rows), columns=list(self.columns))


def held_out_table(records: Mapping[str, Mapping], reference: Mapping, family: str) -> HeldOutTable:
    """The table of `family` from the models' records (name → record) and the reference record
    of the held-out sets (with the shortcuts' scores); no model runs. Raises if the records
    disagree on how many prints a column holds: they were scored on different sets."""
    columns = tuple(TEST_SETS if family == "by_length" else DEPTH_BUCKETS)
    scored = {name: record["held_out"][family] for name, record in records.items()}
    scored |= {name: found[family] for name, found in reference["baselines"].items()}
    prints = tuple(reference["sets"][family][column]["prints"] for column in columns)
    for name, found in scored.items():
        if tuple(found[column]["prints"] for column in columns) != prints:
            raise ValueError(f"{name} was scored on other {family} sets than the reference")
    return HeldOutTable(
        rows=tuple(scored),
        kinds=tuple(records[name]["kind"] if name in records else "baseline" for name in scored),
        columns=columns,
        accuracy=np.array(
            [
                [
                    Score(found[column]["right"], found[column]["prints"]).accuracy
                    for column in columns
                ]
                for found in scored.values()
            ]
        ),
        prints=prints,
    )
