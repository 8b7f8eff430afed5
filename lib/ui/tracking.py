"""The /tracking page's Streamlit side: the shipped models and their held-out accuracy, computed
once per server, and each program's run through every model, cached by its text."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import streamlit as st

from lib import tracking
from lib.config import ViewConfig
from lib.tracking import Program, Shipped

PAGE = "tracking"
SKIP = "skip the conditionals"  # the baseline's name in tables and charts
CURVE_STATEMENTS = (10, 20, 30, 40, 60, 80, 100)
CURVE_PROGRAMS = 60


@st.cache_resource(show_spinner="Loading the trained models…")
def shipped() -> dict[str, Shipped]:
    """Every model in weights/tracking/, by name (feedback first)."""
    names = sorted(
        tracking.shipped_names(), key=lambda name: (not name.startswith("feedback"), name)
    )
    return {name: tracking.load_shipped(name) for name in names}


@st.cache_resource(show_spinner="Scoring the models on the held-out programs…")
def held_out_table() -> pd.DataFrame:
    """Per-print accuracy of every model and of the shortcut, on each test set: one row each."""
    rows = {}
    sets = tracking.held_out_sets()
    for name, model in shipped().items():
        rows[name] = {
            label: tracking.accuracy(tracking.predictions(model.model, programs), programs)
            for label, programs in sets.items()
        }
    rows[SKIP] = {
        label: tracking.accuracy([tracking.skip_conditionals(p) for p in programs], programs)
        for label, programs in sets.items()
    }
    return pd.DataFrame.from_dict(rows, orient="index")


@st.cache_resource(show_spinner="Measuring accuracy against program length…")
def length_curve() -> pd.DataFrame:
    """Accuracy at each program length of CURVE_STATEMENTS: columns model, statements, accuracy."""
    records = []
    for statements in CURVE_STATEMENTS:
        programs = tracking.held_out((statements, statements), CURVE_PROGRAMS)
        guesses = {name: tracking.predictions(m.model, programs) for name, m in shipped().items()}
        guesses[SKIP] = [tracking.skip_conditionals(program) for program in programs]
        for name, guess in guesses.items():
            records.append((name, statements, tracking.accuracy(guess, programs)))
    return pd.DataFrame(records, columns=["model", "statements", "accuracy"])


@dataclass(frozen=True)
class ProgramRun:
    """One program through every model: the value each says at every print, and what the
    feedback model's attention read at every token."""

    program: Program
    guesses: dict[str, tuple[int, ...]]
    reads: np.ndarray  # (T, T), see `tracking.FeedbackRun`

    def right(self, name: str) -> int:
        return sum(g == p for g, p in zip(self.guesses[name], self.program.printed, strict=True))


@st.cache_resource(max_entries=32, show_spinner="Running the models on the program…")
def program_run(text: str) -> ProgramRun:
    """Every model on the program `text` (already checked by `program_of`)."""
    program = tracking.parse_program(text)
    guesses = {name: tracking.predictions(m.model, [program])[0] for name, m in shipped().items()}
    guesses[SKIP] = tracking.skip_conditionals(program)
    feedback = next(m.model for m in shipped().values() if m.record["kind"] == "feedback")
    return ProgramRun(program, guesses, feedback.run(program).reads)


def program_of(cfg: ViewConfig) -> tuple[str, str | None]:
    """The program to show: the reader's own when it reads, else the generated one. Returns its
    text and, when the reader's program was refused, why."""
    refusal = None
    if cfg.program:
        try:
            return tracking.parse_program(cfg.program).text, None
        except ValueError as error:
            refusal = str(error)
    rng = np.random.default_rng([cfg.pseed, cfg.statements])
    return tracking.random_program(rng, cfg.statements).text, refusal


def new_program() -> None:
    """`on_click` of "Another program": the next seed, and back to generated programs."""
    st.session_state["pseed"] = st.session_state.get("pseed", 0) + 1
    st.session_state["program"] = ""
