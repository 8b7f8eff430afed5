"""The task: programs over one variable, their tokens, the values they print, and how deep each
print's dependency runs.

A program is a list of statements over one variable `x` holding a value 1..5 that wraps around:
`x = 3 ;`, `x ++ ;`, `x -- ;`, `if x == 2 : x ++ ;` and `print x ;`. At the `x` of every print
the model must say the current value.

An unconditional assignment resets the chain: what came before it no longer matters. So a print
depends on the statements since the last point that fixes its value, not on the whole program;
`dependency_depths` counts them. That count, not the program's length, is the number of updates
a reader has to chain, one after the other, to know the printed value.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache, reduce
from operator import or_

import numpy as np
import torch
from torch import Tensor

VALUES = 5  # x holds 1..VALUES and wraps around
VOCAB = ("<pad>", "x", "=", "++", "--", "print", "if", "==", ":", ";") + tuple(
    str(value) for value in range(1, VALUES + 1)
)
TOKEN_ID = {token: index for index, token in enumerate(VOCAB)}
PAD = TOKEN_ID["<pad>"]
NO_TARGET = -1
# How a typed program splits into symbols, spaces or not: `x=3;x++` reads as `x = 3 ; x ++`.
SYMBOLS = re.compile(r"\+\+|--|==|[=;:]|\d+|\w+|\S")
TRAIN_STATEMENTS = (10, 40)

KINDS = ("=", "++", "--", "if", "print")
ASSIGN = 0.1  # the training programs' share of unconditional assignments among statements
_KIND_SHARES = (ASSIGN, 0.25, 0.15, 0.25, 0.25)  # of KINDS, in the training programs
_CONDITIONAL_SHARES = (0.2, 0.5, 0.3)  # of "=", "++", "--" under an `if`


@dataclass(frozen=True)
class Statement:
    """One statement: an update (`op` "=" with its `argument`, "++" or "--") or a print (`op`
    "print"). `test` is the value of `if x == test :` in front of an update, None when there is
    no condition."""

    op: str
    argument: int | None = None
    test: int | None = None

    @property
    def tokens(self) -> tuple[str, ...]:
        if self.op == "print":
            return ("print", "x", ";")
        condition = () if self.test is None else ("if", "x", "==", str(self.test), ":")
        argument = () if self.argument is None else (str(self.argument),)
        return (*condition, "x", self.op, *argument, ";")

    @property
    def fixes(self) -> bool:
        """True for an unconditional assignment: the value after it is the same whatever x was."""
        return self.op == "=" and self.test is None

    def apply(self, value: int) -> int:
        """The value of x after this statement, when x held `value` before it."""
        if self.op == "print" or (self.test is not None and self.test != value):
            return value
        if self.op == "=":
            assert self.argument is not None
            return self.argument
        return wrap(value + 1) if self.op == "++" else wrap(value - 1)


@dataclass(frozen=True)
class Program:
    """A program: its statements (`lines`), its tokens, and at each print the position of its
    `x`, the value printed and the print's dependency depth (see `dependency_depths`). `values`
    holds the value of x after every statement."""

    lines: tuple[Statement, ...]
    tokens: tuple[str, ...]
    print_positions: tuple[int, ...]
    printed: tuple[int, ...]
    depths: tuple[int, ...]
    values: tuple[int, ...]

    @property
    def text(self) -> str:
        return " ".join(self.tokens)

    @property
    def statements(self) -> int:
        return len(self.lines)

    @property
    def print_lines(self) -> tuple[int, ...]:
        """The index in `lines` of every print."""
        return tuple(index for index, line in enumerate(self.lines) if line.op == "print")


def wrap(value: int) -> int:
    """Into 1..VALUES."""
    return (value - 1) % VALUES + 1


def compile_program(lines: Sequence[Statement]) -> Program:
    """Run the statements: tokens, print positions, printed values, depths, values after each."""
    if not lines or not lines[0].fixes:
        raise ValueError("a program starts with an unconditional assignment")
    tokens: list[str] = []
    positions, printed, values = [], [], []
    value = 0  # never read: the first statement assigns
    for line in lines:
        if line.op == "print":
            positions.append(len(tokens) + 1)
            printed.append(value)
        value = line.apply(value)
        values.append(value)
        tokens += line.tokens
    return Program(
        tuple(lines),
        tuple(tokens),
        tuple(positions),
        tuple(printed),
        dependency_depths(lines),
        tuple(values),
    )


def dependency_depths(lines: Sequence[Statement]) -> tuple[int, ...]:
    """The dependency depth of every print.

    Let f_j map the value x holds just before statement j to the value the print shows. The
    print is fixed from j when f_j is constant; the first statement is an assignment, so some j
    fixes every print. Take the latest such j (usually the last unconditional assignment; a run
    of conditionals that funnels every value into one can fix it too). The depth is the number
    of updates, conditional or not, fired or not, strictly between j and the print: the
    dependent steps a reader must chain to know the value. Prints in between do not count, and
    a print right after the assignment that fixes it has depth 0.

    One forward pass: for every update since the fixing point, the set of values that x can hold
    now had it held any value just before that update (a bit mask). These sets shrink towards
    earlier starts, so the starts whose set is a single value form a prefix, dropped as the new
    fixing point; the updates left are the depth of a print here."""
    depths = []
    images: list[int] = []  # one per update after the latest fixing point, oldest first
    for line in lines:
        if line.op == "print":
            depths.append(len(images))
            continue
        table = _image_table(line)
        images = [table[image] for image in images] + [table[_ANY_VALUE]]
        fixed = next((i for i, image in enumerate(images) if image & (image - 1)), len(images))
        images = images[fixed:]
    return tuple(depths)


_ANY_VALUE = 2**VALUES - 1  # the bit mask of every value: bit v-1 stands for v


@cache
def _image_table(line: Statement) -> tuple[int, ...]:
    """For every set of values (a bit mask), the set `line` maps it to."""
    after = [1 << (line.apply(value) - 1) for value in range(1, VALUES + 1)]
    return tuple(
        reduce(or_, (after[v] for v in range(VALUES) if mask >> v & 1), 0)
        for mask in range(2**VALUES)
    )


def kind_shares(assign: float) -> tuple[float, ...]:
    """The chance of each of KINDS per statement when a share `assign` of statements are
    unconditional assignments; the other kinds keep their training proportions."""
    if not 0 <= assign < 1:
        raise ValueError(f"the share of assignments must be in [0, 1), got {assign}")
    rest = (1 - assign) / (1 - ASSIGN)
    return (assign, *(share * rest for share in _KIND_SHARES[1:]))


@dataclass(frozen=True)
class _Draw:
    """One of `choices` at random: the same draw as `rng.choice(choices, p=shares)` (one uniform
    number against the normalised cumulative shares, `bounds`), without its per-call cost, which
    dominated the time to make a training batch."""

    choices: tuple[str, ...]
    bounds: tuple[float, ...]

    @classmethod
    def of(cls, choices: tuple[str, ...], shares: Sequence[float]) -> _Draw:
        cumulative = np.cumsum(shares)
        return cls(choices, tuple((cumulative / cumulative[-1]).tolist()))

    def __call__(self, rng: np.random.Generator) -> str:
        return self.choices[bisect_right(self.bounds, rng.random())]


_CONDITIONAL = _Draw.of(KINDS[:3], _CONDITIONAL_SHARES)


def random_program(rng: np.random.Generator, statements: int, assign: float = ASSIGN) -> Program:
    """A program of `statements` statements, the first an assignment; `assign` is the share of
    later statements that are unconditional assignments, so a low share makes deep prints (the
    held-out sets by depth use 0.1 down to 0). Half of the conditions test the current value,
    so conditional updates fire often enough that skipping them is no shortcut."""
    value = int(rng.integers(1, VALUES + 1))
    lines = [Statement("=", value)]
    kinds = _Draw.of(KINDS, kind_shares(assign))
    for _ in range(statements - 1):
        kind = kinds(rng)
        if kind == "print":
            lines.append(Statement("print"))
            continue
        test = None
        if kind == "if":
            test = value if rng.random() < 0.5 else int(rng.integers(1, VALUES + 1))
            kind = _CONDITIONAL(rng)
        argument = int(rng.integers(1, VALUES + 1)) if kind == "=" else None
        lines.append(Statement(kind, argument, test))
        value = lines[-1].apply(value)
    return compile_program(lines)


def parse_program(text: str) -> Program:
    """A program typed by a reader, checked statement by statement; raises ValueError naming
    what is wrong. The values printed are computed by running it."""
    tokens = SYMBOLS.findall(text)
    if tokens and tokens[-1] != ";":
        tokens.append(";")
    unknown = sorted({token for token in tokens if token not in TOKEN_ID or token == "<pad>"})
    if unknown:
        shown = ", ".join(symbol[:20] for symbol in unknown[:5]) + (
            " …" if len(unknown) > 5 else ""
        )
        raise ValueError(f"unknown symbols {shown}: use x = ++ -- print if == : ; and 1–{VALUES}")
    lines: list[Statement] = []
    start, assigned = 0, False
    for end, token in enumerate(tokens):
        if token == ";":
            lines.append(_statement(tokens[start:end], assigned))
            start, assigned = end + 1, assigned or lines[-1].fixes
    if not any(line.op == "print" for line in lines):
        raise ValueError("the program prints nothing: add `print x ;`")
    return compile_program(lines)


def _statement(words: list[str], assigned: bool) -> Statement:
    """One statement's words (without `;`); `assigned`: x has had an unconditional value."""
    test = None
    if words[:1] == ["if"]:
        if len(words) < 6 or words[1:3] != ["x", "=="] or words[4] != ":":
            raise ValueError(f"a condition reads `if x == 3 : x ++ ;`, not `{' '.join(words)}`")
        if not words[3].isdigit():
            raise ValueError(f"`if x == …` needs a value 1–{VALUES}")
        if not assigned:
            raise ValueError("x must be assigned (`x = 3 ;`) before it is tested")
        test, words = int(words[3]), words[5:]
        if words == ["print", "x"]:
            raise ValueError("only updates can be conditional, not `print x`")
    if words[:1] != ["x"] and words != ["print", "x"]:
        raise ValueError(f"cannot read the statement `{' '.join(words)}`")
    if not assigned and words[:2] != ["x", "="]:
        raise ValueError("x must be assigned (`x = 3 ;`) before it is used")
    if words == ["print", "x"]:
        return Statement("print")
    if len(words) == 3 and words[:2] == ["x", "="] and words[2].isdigit():
        return Statement("=", int(words[2]), test)
    if words in (["x", "++"], ["x", "--"]):
        return Statement(words[1], None, test)
    raise ValueError(f"cannot read the statement `{' '.join(words)}`")


def encode(programs: Sequence[Program]) -> tuple[Tensor, Tensor]:
    """Token ids (B, T), padded; targets (B, T): the value index (0..VALUES-1) at every print's
    `x`, NO_TARGET elsewhere."""
    return _padded(
        [program.tokens for program in programs],
        [dict(zip(program.print_positions, program.printed, strict=True)) for program in programs],
    )


def with_values(program: Program, values: Sequence[int] | None = None) -> tuple[str, ...]:
    """The scratchpad text: after every statement's `;`, the value x holds (`values`, one per
    statement; the true ones by default)."""
    values = program.values if values is None else values
    if len(values) != program.statements:
        raise ValueError(f"need one value per statement, got {len(values)}")
    return tuple(
        token
        for line, value in zip(program.lines, values, strict=True)
        for token in (*line.tokens, str(value))
    )


def written_positions(program: Program) -> tuple[int, ...]:
    """Where the scratchpad text holds each statement's value: one past each `;`."""
    ends = np.cumsum([len(line.tokens) + 1 for line in program.lines])  # (statements,)
    return tuple(int(end) - 1 for end in ends)


def encode_with_values(programs: Sequence[Program]) -> tuple[Tensor, Tensor]:
    """The scratchpad's training pairs: ids (B, T') of the text with the true values written in,
    and targets (B, T') that ask, at every `;`, for the value written next."""
    wanted = [
        {
            position - 1: value
            for position, value in zip(written_positions(p), p.values, strict=True)
        }
        for p in programs
    ]
    return _padded([with_values(program) for program in programs], wanted)


def _padded(
    texts: Sequence[Sequence[str]], targets: Sequence[dict[int, int]]
) -> tuple[Tensor, Tensor]:
    """Ids (B, T) padded with PAD, and value indices at the given positions, NO_TARGET elsewhere."""
    length = max(len(text) for text in texts)
    ids = torch.full((len(texts), length), PAD, dtype=torch.long)
    marked = torch.full((len(texts), length), NO_TARGET, dtype=torch.long)
    for row, (text, wanted) in enumerate(zip(texts, targets, strict=True)):
        ids[row, : len(text)] = torch.tensor([TOKEN_ID[token] for token in text])
        for position, value in wanted.items():
            marked[row, position] = value - 1
    return ids, marked
