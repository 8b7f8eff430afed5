"""The variable-tracking task: programs and their printed values (checked by an interpreter of
their own, written here from the grammar), parsing of a reader's programs, the encodings, and
every print's dependency depth against a brute force that re-runs the program."""

from __future__ import annotations

import re

import numpy as np
import pytest

from lib import tracking
from lib.tracking import task

STATEMENT = re.compile(
    r"(?:if x == (?P<test>\d) : )?(?:x (?P<op>=|\+\+|--)(?: (?P<arg>\d))?|(?P<print>print) x)"
)
ASSIGN_SHARES = (0.1, 0.05, 0.02, 0.0)


def statements_of(text: str) -> list[re.Match]:
    matches = [STATEMENT.fullmatch(part.strip()) for part in text.split(";") if part.strip()]
    assert all(matches), text
    return matches


def execute(statements: list[re.Match], value: int | None) -> tuple[int | None, list[int]]:
    """Run statements from `value`: the value after them and the values printed."""
    printed = []
    for match in statements:
        if match["test"] is not None and value != int(match["test"]):
            continue
        if match["print"]:
            printed.append(value)
        elif match["op"] == "=":
            value = int(match["arg"])
        else:
            value = (value - 1 + (1 if match["op"] == "++" else -1)) % 5 + 1
    return value, printed


def interpret(text: str) -> list[int]:
    """Run a program from its text alone: a regex per statement, Python's own modulo."""
    return execute(statements_of(text), None)[1]


def brute_force_depths(text: str) -> list[int]:
    """For each print, re-run the program from every earlier statement onward with each value
    1..5 x could hold there; the latest statement from which all five runs print the same value
    fixes it, and the depth counts the updates after that statement and before the print."""
    statements = statements_of(text)
    depths = []
    for end, match in enumerate(statements):
        if not match["print"]:
            continue
        start = next(
            start
            for start in range(end - 1, -1, -1)
            if len({execute(statements[start:end], v)[0] for v in range(1, 6)}) == 1
        )
        depths.append(sum(not m["print"] for m in statements[start + 1 : end]))
    return depths


@pytest.mark.parametrize("seed", range(40))
def test_generated_programs_print_what_an_interpreter_prints(seed):
    rng = np.random.default_rng(seed)
    statements = int(rng.integers(2, 120))
    program = tracking.random_program(rng, statements)
    assert list(program.printed) == interpret(program.text)
    assert all(program.tokens[p - 1 : p + 1] == ("print", "x") for p in program.print_positions)
    assert len([part for part in program.text.split(";") if part.strip()]) == statements
    assert program.statements == statements == len(program.values)


def test_depths_match_a_brute_force_on_100_programs():
    deep = 0
    for seed in range(100):
        rng = np.random.default_rng([seed, 17])
        program = tracking.random_program(
            rng, int(rng.integers(2, 121)), ASSIGN_SHARES[seed % len(ASSIGN_SHARES)]
        )
        assert list(program.depths) == brute_force_depths(program.text), seed
        if program.printed:
            assert tracking.parse_program(program.text).depths == program.depths
        deep += sum(depth >= 32 for depth in program.depths)
    assert deep > 50  # the check reached deep prints, not only shallow ones


@pytest.mark.parametrize(
    ("text", "depths"),
    [
        ("x = 3 ; print x ; x ++ ; print x ; print x", (0, 1, 1)),
        ("x = 3 ; x ++ ; if x == 2 : x -- ; x = 1 ; print x", (0,)),
        ("x = 3 ; if x == 3 : x = 1 ; print x", (1,)),  # a conditional assignment fixes nothing
        # four conditionals funnel every value into 5: the first of them fixes the print
        (
            "x = 3 ; x ++ ; if x == 1 : x = 5 ; if x == 2 : x = 5 ; if x == 3 : x = 5 ; "
            "if x == 4 : x = 5 ; x -- ; print x",
            (4,),
        ),
    ],
)
def test_depth_by_hand(text, depths):
    assert tracking.parse_program(text).depths == depths


def test_the_share_of_assignments_sets_how_deep_prints_go():
    assert task.kind_shares(task.ASSIGN) == pytest.approx((0.1, 0.25, 0.15, 0.25, 0.25))
    none = tracking.random_program(np.random.default_rng(0), 200, assign=0.0)
    assert not any(line.fixes for line in none.lines[1:])
    assert max(none.depths) > 40
    with pytest.raises(ValueError, match="share"):
        task.kind_shares(1.0)


def test_conditionals_fire_often_enough_to_matter():
    programs = tracking.held_out((10, 40))
    fired = sum(
        tracking.skip_conditionals(program) != program.printed for program in programs
    ) / len(programs)
    assert fired > 0.5  # the shortcut is wrong somewhere in most programs


def test_a_readers_program_is_parsed_and_run():
    program = tracking.parse_program("x = 5 ; x ++ ; print x ; if x == 1 : x = 4 ; x -- ;print x")
    assert program.printed == (1, 3)
    assert program.values == (5, 1, 1, 4, 3, 3)
    assert program.depths == (1, 3)
    assert program.tokens[-1] == ";"
    assert [program.tokens[p] for p in program.print_positions] == ["x", "x"]
    generated = tracking.random_program(np.random.default_rng(3), 30)
    assert tracking.parse_program(generated.text) == generated


def test_spaces_are_optional():
    spaced = tracking.parse_program("x = 3 ; if x == 3 : x ++ ; x -- ; print x ;")
    assert tracking.parse_program("x=3;if x==3:x++;x--;print x") == spaced


@pytest.mark.parametrize(
    ("text", "complaint"),
    [
        ("", "prints nothing"),
        ("x = 3 ;", "prints nothing"),
        ("print x ;", "assigned"),
        ("x ++ ; print x", "assigned"),
        ("if x == 2 : x ++ ; print x", "assigned"),
        ("x = 9 ; print x", "unknown symbols 9"),
        ("<script>alert(1)</script>", "unknown symbols"),
        ("x = 3 ; if x : print x ;", "condition"),
        ("x = 3 ; x x ; print x", "cannot read"),
        ("x=3;x+++;print x", "unknown symbols +"),
        ("x = 3 ; = x 3 ; print x", "cannot read"),
        ("x = 3 ; if x == 3 : print x ;", "only updates"),
        ("x = 3 ;; print x", "cannot read"),
        (" ".join(f"w{i}" for i in range(50)), "w0, w1, w10, w11, w12 …"),
    ],
)
def test_bad_programs_are_refused_with_a_reason(text, complaint):
    with pytest.raises(ValueError, match=complaint):
        tracking.parse_program(text)


def test_encoding_marks_targets_only_at_prints():
    programs = [tracking.random_program(np.random.default_rng(seed), 12) for seed in range(3)]
    ids, targets = tracking.encode(programs)
    for row, program in enumerate(programs):
        assert ids[row, : len(program.tokens)].tolist() == [
            tracking.TOKEN_ID[t] for t in program.tokens
        ]
        (marked,) = np.flatnonzero(targets[row].numpy() != tracking.NO_TARGET).reshape(1, -1)
        assert marked.tolist() == list(program.print_positions)
        assert (targets[row, marked] + 1).tolist() == list(program.printed)


def test_the_scratchpad_text_holds_each_value_after_its_statement():
    program = tracking.parse_program("x = 2 ; x -- ; if x == 1 : x = 4 ; print x")
    written = "x = 2 ; 2 x -- ; 1 if x == 1 : x = 4 ; 4 print x ; 4"
    assert " ".join(task.with_values(program)) == written
    ids, targets = task.encode_with_values([program])
    positions = task.written_positions(program)
    text = task.with_values(program, (1, 2, 3, 4))
    assert [text[p] for p in positions] == ["1", "2", "3", "4"]
    marked = np.flatnonzero(targets[0].numpy() != tracking.NO_TARGET)
    assert marked.tolist() == [p - 1 for p in positions]  # asked at every `;`
    assert all(text[p - 1] == ";" for p in positions)
    assert (targets[0, marked] + 1).tolist() == list(program.values)
    with pytest.raises(ValueError, match="one value per statement"):
        task.with_values(program, (1, 2))


@pytest.mark.parametrize("seed", range(20))
def test_the_shortcuts_are_the_program_with_statements_deleted(seed):
    """Skipping the conditionals is running the text without its `if` statements; copying the
    last assignment is running it with only its unconditional assignments and prints."""
    program = tracking.random_program(np.random.default_rng([seed, 5]), 60)
    parts = [part.strip() for part in program.text.split(";") if part.strip()]
    unconditional = " ; ".join(part for part in parts if not part.startswith("if"))
    assignments = " ; ".join(p for p in parts if p.startswith("x =") or p.startswith("print"))
    assert list(tracking.skip_conditionals(program)) == interpret(unconditional)
    assert list(tracking.last_assignment(program)) == interpret(assignments)
    shallow = [
        s for s, d in zip(tracking.last_assignment(program), program.depths, strict=True) if d == 0
    ]
    truth = [p for p, d in zip(program.printed, program.depths, strict=True) if d == 0]
    assert shallow == truth  # at depth 0 the last assignment is the answer
