"""Training: the schedule warms up then decays with the budget spent, the curriculum grows over
the first half, a run stops when its CPU budget is spent, and replaying a run's recorded
progress with its seed gives the same weights bit for bit."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lib.tracking import TRAIN_STATEMENTS, train


def test_learning_rate_warms_up_then_decays_with_the_budget():
    early = [train.learning_rate(step, 0) for step in range(train.WARM_UP)]
    assert early[0] < early[-1] == pytest.approx(train.LEARNING_RATE)
    assert np.all(np.diff(early) > 0)
    later = [train.learning_rate(500, progress) for progress in range(train.PROGRESS + 1)]
    assert later[0] == pytest.approx(train.LEARNING_RATE)
    assert np.all(np.diff(later) <= 0) and later[-1] == pytest.approx(0, abs=1e-12)


def test_the_curriculum_reaches_the_longest_programs_halfway():
    assert train.longest_now(0) == TRAIN_STATEMENTS[0]
    assert train.longest_now(train.PROGRESS // 4) == sum(TRAIN_STATEMENTS) // 2
    assert train.longest_now(train.PROGRESS // 2) == train.longest_now(900) == TRAIN_STATEMENTS[1]


def test_a_run_spends_its_budget_and_replays_bit_for_bit():
    budget = 1.0  # CPU seconds: a handful of steps
    run = train.fit("transformer-1", seed=7, budget=budget, log=lambda line: None)
    assert run.cpu_seconds >= budget
    assert run.steps == len(run.progress) >= 2
    assert list(run.progress) == sorted(run.progress) and run.progress[-1] < train.PROGRESS
    replay = train.fit("transformer-1", seed=7, progress=run.progress)
    other_seed = train.fit("transformer-1", seed=8, progress=run.progress)
    weights, again = run.model.state_dict(), replay.model.state_dict()
    assert weights.keys() == again.keys()
    assert all(torch.equal(weights[key], again[key]) for key in weights)
    assert any(not torch.equal(weights[key], other_seed.model.state_dict()[key]) for key in weights)


@pytest.mark.parametrize("name", sorted(train.RECIPES))
def test_every_recipe_takes_a_step(name):
    run = train.fit(name, seed=0, progress=(0,))
    assert run.steps == 1 and run.model.kind == train.RECIPES[name].kind
