"""Training the shipped models: one recipe, one CPU budget for all, reproducible by seed.

    python -m bench.train_tracking feedback-1 transformer-1 transformer-2 transformer-4 scratchpad-2

Every model trains on fresh random programs of 10–40 statements (a length curriculum over the
first half of the budget: shortest programs first), batch 32, AdamW at 3e-3 with 100 warm-up
steps and cosine decay, on one thread, for the same budget of process CPU time (`BUDGET`). CPU
time rather than wall time, so that other processes time-sliced on a shared machine do not change
how much training a model gets (they still slow each CPU second a little, through the shared
cores and caches); the records keep the wall time too.

The schedule runs on the budget, not on a step count fixed in advance: before every step the
run reads the share of the budget spent (in thousandths), which sets the cosine's phase and the
curriculum's longest program, and it stops when the budget is spent. A step count planned from a
timing probe would not do: on this machine the CPU cost of a step moved by half with the load of
other processes, so a plan either ended early or was cut before its learning rate decayed. The
record keeps that share at every step (`progress`), so a run is reproducible: same seed and same
progress, same weights, whatever the timing (`replays`).
"""

from __future__ import annotations

import argparse
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from lib.toy.common import single_thread
from lib.tracking.models import TrackingModel, build
from lib.tracking.records import (
    REFERENCE,
    WEIGHTS_DIR,
    load_shipped,
    read_record,
    reference,
    save,
    write_json,
)
from lib.tracking.scoring import evaluate, predictions
from lib.tracking.task import NO_TARGET, TRAIN_STATEMENTS, VALUES, Program, random_program

BUDGET = 540.0  # process CPU seconds of training per model, on one thread
BATCH = 32
LEARNING_RATE = 3e-3
WARM_UP = 100
SIZES = {"width": 64, "heads": 4}
PROGRESS = 1000  # the schedule reads the budget spent in thousandths


@dataclass(frozen=True)
class Recipe:
    kind: str
    layers: int


RECIPES = {
    "feedback-1": Recipe("feedback", 1),
    "transformer-1": Recipe("transformer", 1),
    "transformer-2": Recipe("transformer", 2),
    "transformer-4": Recipe("transformer", 4),
    # Two layers, as transformer-2: the pair differs only in the values written into the text.
    # Each written value is one step from the last: a layer to find it and the statement, a
    # layer to combine them.
    "scratchpad-2": Recipe("scratchpad", 2),
}


def learning_rate(step: int, progress: int) -> float:
    """Linear warm-up over the first WARM_UP steps, times a cosine that decays to 0 as the
    budget is spent (`progress` in thousandths of it)."""
    warm = min(1.0, (step + 1) / WARM_UP)
    return LEARNING_RATE * warm * 0.5 * (1 + math.cos(math.pi * progress / PROGRESS))


def longest_now(progress: int) -> int:
    """The curriculum: the longest program grows from the shortest to the longest over the
    first half of the budget."""
    low, high = TRAIN_STATEMENTS
    return min(high, low + round((high - low) * progress / (PROGRESS / 2)))


def training_batch(rng: np.random.Generator, longest: int) -> list[Program]:
    low = TRAIN_STATEMENTS[0]
    return [random_program(rng, int(rng.integers(low, longest + 1))) for _ in range(BATCH)]


def train_step(
    model: TrackingModel, optimizer: torch.optim.Optimizer, programs: list[Program], rate: float
) -> float:
    """One optimiser step on the programs at learning rate `rate`; returns the loss."""
    for group in optimizer.param_groups:
        group["lr"] = rate
    ids, targets = model.encode(programs)  # (B, T) each
    loss = torch.nn.functional.cross_entropy(
        model(ids).reshape(-1, VALUES), targets.reshape(-1), ignore_index=NO_TARGET
    )
    optimizer.zero_grad()
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    optimizer.step()
    return loss.item()


@dataclass(frozen=True)
class Fit:
    """A trained model and how its training went: `progress` holds, for every step, the share
    of the budget spent before it (thousandths), which set its learning rate and curriculum."""

    model: TrackingModel
    progress: tuple[int, ...]
    cpu_seconds: float
    wall_seconds: float

    @property
    def steps(self) -> int:
        return len(self.progress)


def _log(line: str) -> None:
    print(line, flush=True)


@single_thread()
def fit(
    name: str,
    seed: int = 0,
    budget: float = BUDGET,
    progress: Sequence[int] | None = None,
    log: Callable[[str], None] = _log,
) -> Fit:
    """Train recipe `name` on one thread until `budget` CPU seconds are spent, reading before
    every step how much of it is gone. Given `progress` (a run's record of that), replay the
    run step for step instead: same seed, same progress, same weights, whatever the timing."""
    recipe = RECIPES[name]
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    model = build(recipe.kind, recipe.layers, **SIZES)
    optimizer = torch.optim.AdamW(model.parameters(), lr=LEARNING_RATE)
    spent: list[int] = []
    cpu, wall = time.process_time(), time.perf_counter()
    while True:
        if progress is None:
            now = int(PROGRESS * (time.process_time() - cpu) / budget)
            if now >= PROGRESS:
                break
        elif len(spent) < len(progress):
            now = progress[len(spent)]
        else:
            break
        batch = training_batch(rng, longest_now(now))
        loss = train_step(model, optimizer, batch, learning_rate(len(spent), now))
        spent.append(now)
        if len(spent) % 100 == 0:
            log(
                f"{name} step {len(spent)} loss {loss:.4f} budget {now / PROGRESS:.0%} "
                f"{time.process_time() - cpu:.0f} CPU s {time.perf_counter() - wall:.0f} s"
            )
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    return Fit(model.eval(), tuple(spent), cpu, wall)


@single_thread()
def train(name: str, seed: int = 0, budget: float = BUDGET) -> tuple[Fit, dict]:
    """`fit` within the budget, then score the model on the held-out sets (outside the
    budget): the training and the record shipped beside the weights."""
    done = fit(name, seed, budget)
    recipe = RECIPES[name]
    record = {
        "kind": recipe.kind,
        "sizes": {"layers": recipe.layers, **SIZES},
        "seed": seed,
        "batch": BATCH,
        "learning_rate": LEARNING_RATE,
        "warm_up": WARM_UP,
        "train_statements": list(TRAIN_STATEMENTS),
        "budget_cpu_seconds": budget,
        "cpu_seconds": round(done.cpu_seconds, 1),
        "wall_seconds": round(done.wall_seconds, 1),
        "steps": done.steps,
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "held_out": evaluate(lambda programs: predictions(done.model, programs)),
        "progress": list(done.progress),
    }
    return done, record


def replays(name: str, folder: Path = WEIGHTS_DIR) -> bool:
    """Train `name` again from its record's seed and progress: True when the weights come out
    bit for bit as shipped (same torch version and CPU kind assumed)."""
    record = read_record(name, folder)
    again = fit(name, record["seed"], progress=record["progress"]).model.state_dict()
    shipped = load_shipped(name, folder).model.state_dict()
    return all(torch.equal(again[key], shipped[key]) for key in shipped)


@single_thread()
def rescore(name: str, folder: Path = WEIGHTS_DIR) -> dict:
    """Score a shipped model again and record it (after a change to evaluation, not training)."""
    shipped = load_shipped(name, folder)
    record = {
        **read_record(name, folder),
        "held_out": evaluate(lambda programs: predictions(shipped.model, programs)),
    }
    write_json(folder / f"{name}.json", record)
    return record


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("names", nargs="*", help=f"of {', '.join(RECIPES)}")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--budget", type=float, default=BUDGET, help="CPU seconds per model")
    parser.add_argument("--out", type=Path, default=WEIGHTS_DIR)
    parser.add_argument(
        "--replay", action="store_true", help="retrain from the record's progress, compare"
    )
    parser.add_argument("--rescore", action="store_true", help="only score the shipped models")
    parser.add_argument("--reference", action="store_true", help=f"write {REFERENCE} first")
    args = parser.parse_args()
    unknown = sorted(set(args.names) - set(RECIPES))
    if unknown:
        parser.error(f"unknown models {', '.join(unknown)}: choose from {', '.join(RECIPES)}")
    if args.reference:
        write_json(args.out / REFERENCE, reference())
    for name in args.names:
        if args.rescore:
            print(name, rescore(name, args.out)["held_out"])
        elif args.replay:
            print(name, "same weights:", replays(name, args.out))
        else:
            done, record = train(name, args.seed, args.budget)
            save(name, done.model, record, args.out)
            print(name, record["held_out"])


if __name__ == "__main__":
    main()
