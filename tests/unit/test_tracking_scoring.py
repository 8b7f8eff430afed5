"""Scoring: the depth set fills every depth bucket with prints of that depth, a thin or empty
bucket is reported rather than dropped, the page's tables come from records alone and refuse
records scored on other sets, and the shortcuts do what they say."""

from __future__ import annotations

import math

import numpy as np
import pytest

from lib import tracking
from lib.tracking import scoring


def test_the_depth_set_fills_every_bucket_with_prints_of_that_depth():
    programs = tracking.depth_programs()
    assert {program.statements for program in programs} == {scoring.DEPTH_STATEMENTS}
    depths = np.array([depth for program in programs for depth in program.depths])
    found = scoring.score_by_depth([program.printed for program in programs], programs)
    assert list(found) == list(tracking.DEPTH_BUCKETS)
    for (label, (low, high)), score in zip(
        tracking.DEPTH_BUCKETS.items(), found.values(), strict=True
    ):
        inside = (depths >= low) & (depths <= (high if high is not None else depths.max()))
        assert score.prints == inside.sum() >= tracking.MIN_PRINTS, label
        assert score.accuracy == 1.0 and not score.thin
    assert sum(score.prints for score in found.values()) == len(depths)
    assert found["32+"].prints == (depths >= 32).sum()


def test_a_thin_or_empty_bucket_is_reported_not_dropped():
    short = [tracking.parse_program("x = 1 ; x ++ ; print x ; print x")]
    found = scoring.score_by_depth([(2, 3)], short)
    assert list(found) == list(tracking.DEPTH_BUCKETS)
    assert found["1–3"] == tracking.Score(right=1, prints=2)
    assert found["32+"].prints == 0 and found["32+"].thin and math.isnan(found["32+"].accuracy)
    with pytest.raises(ValueError, match="answers"):
        scoring.score([(2,)], short)


@pytest.mark.parametrize(("depth", "label"), [(0, "0"), (3, "1–3"), (4, "4–7"), (99, "32+")])
def test_depth_buckets(depth, label):
    assert tracking.depth_bucket(depth) == label


def record(kind: str, by_length: list[tuple[int, int]], by_depth: list[tuple[int, int]]) -> dict:
    """A record as training writes it, from (right, prints) per column."""

    def scores(columns, pairs):
        return {
            column: tracking.Score(right, prints).as_record()
            for column, (right, prints) in zip(columns, pairs, strict=True)
        }

    return {
        "kind": kind,
        "held_out": {
            "by_length": scores(tracking.TEST_SETS, by_length),
            "by_depth": scores(tracking.DEPTH_BUCKETS, by_depth),
        },
    }


def test_tables_come_from_the_records():
    depth_prints = [300, 900, 900, 1400, 1300, 0]
    sets = {
        "by_length": {label: {"prints": 100} for label in tracking.TEST_SETS},
        "by_depth": {
            label: {"prints": n}
            for label, n in zip(tracking.DEPTH_BUCKETS, depth_prints, strict=True)
        },
    }
    shortcut = record("baseline", [(20, 100)] * 3, [(n // 5, n) for n in depth_prints])
    records = {
        "fb": record("feedback", [(99, 100), (98, 100), (97, 100)], [(n, n) for n in depth_prints]),
        "t1": record("transformer", [(50, 100)] * 3, [(n // 2, n) for n in depth_prints]),
    }
    reference = {"sets": sets, "baselines": {"last assignment": shortcut["held_out"]}}
    table = tracking.held_out_table(records, reference, "by_length")
    assert table.rows == ("fb", "t1", "last assignment")
    assert table.kinds == ("feedback", "transformer", "baseline")
    np.testing.assert_allclose(table.accuracy[:, 0], [0.99, 0.5, 0.2])
    by_depth = tracking.held_out_table(records, reference, "by_depth")
    assert by_depth.columns == tuple(tracking.DEPTH_BUCKETS)
    assert by_depth.prints == tuple(depth_prints)
    assert by_depth.thin == (False,) * 5 + (True,)
    assert np.isnan(by_depth.accuracy[:, -1]).all()  # no print, no accuracy: shown, not dropped
    assert by_depth.frame().loc["t1", "4–7"] == 0.5
    records["t1"]["held_out"]["by_depth"]["0"]["prints"] = 299
    with pytest.raises(ValueError, match="t1 was scored on other"):
        tracking.held_out_table(records, reference, "by_depth")


def test_the_recent_updates_shortcut_is_right_below_its_reach_and_reads_only_that_far():
    programs = tracking.depth_programs(40)
    for program in programs:
        said = tracking.recent_updates(program)
        for value, truth, depth in zip(said, program.printed, program.depths, strict=True):
            if depth < tracking.RECENT:  # the fixing statement is among the updates it reads
                assert value == truth
    # what came before its window cannot matter: change the first assignment, same answers
    deep = tracking.parse_program("x = 1 ; x ++ ; x ++ ; x ++ ; x ++ ; print x")
    other = tracking.parse_program("x = 3 ; x ++ ; x ++ ; x ++ ; x ++ ; print x")
    assert tracking.recent_updates(deep) == tracking.recent_updates(other)
    assert deep.printed != other.printed


def test_depth_statistics():
    found = scoring.depth_statistics([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 100])
    assert (found.prints, found.median, found.max) == (11, 5.0, 100)
    assert found.p90 == pytest.approx(9.0)
    assert scoring.depth_statistics([]).median is None
