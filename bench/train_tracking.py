"""Train the variable-tracking models shipped in weights/tracking/, reproducibly by seed.

    python -m bench.train_tracking feedback-1 transformer-1 transformer-2 transformer-4

Each model trains on fresh random programs of 10–40 statements (a length curriculum over the
first half: shortest programs first), batch 32, AdamW at 3e-3 with warm-up and cosine decay, for
a fixed number of steps chosen to take under 10 minutes on one core of this 2-core machine
(the shipped ones trained two at a time, `OMP_NUM_THREADS=1` each). The weights go to
`NAME.safetensors`; `NAME.json` records the settings, the training time and the accuracy on the
fixed test sets of `lib.tracking`, which a test checks the shipped weights still reach.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import save_file

from lib import tracking
from lib.tracking import NO_TARGET, TRAIN_STATEMENTS, VALUES

RECIPES = {  # name -> (kind, layers, steps); each under 10 minutes on one core
    "feedback-1": ("feedback", 1, 1300),
    "transformer-1": ("transformer", 1, 7000),
    "transformer-2": ("transformer", 2, 4000),
    "transformer-4": ("transformer", 4, 2200),
}
BATCH = 32
LEARNING_RATE = 3e-3
WARM_UP = 100
SIZES = {"width": 64, "heads": 4}


def learning_rate(step: int, steps: int) -> float:
    if step < WARM_UP:
        return LEARNING_RATE * (step + 1) / WARM_UP
    return LEARNING_RATE * 0.5 * (1 + math.cos(math.pi * (step - WARM_UP) / (steps - WARM_UP)))


def longest_now(step: int, steps: int) -> int:
    """The curriculum: the longest program grows from the shortest to the longest over the
    first half of training."""
    low, high = TRAIN_STATEMENTS
    return min(high, low + round((high - low) * step / (steps / 2)))


def batch(rng: np.random.Generator, longest: int) -> list[tracking.Program]:
    low = TRAIN_STATEMENTS[0]
    return [tracking.random_program(rng, int(rng.integers(low, longest + 1))) for _ in range(BATCH)]


def train(name: str, seed: int, out: Path, steps: int | None = None) -> dict:
    """Train one recipe (optionally for fewer steps), save it under `out`, return its record."""
    kind, layers, recipe_steps = RECIPES[name]
    steps = steps or recipe_steps
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    model = tracking.build(kind, layers, **SIZES)
    optimizer = torch.optim.AdamW(model.parameters(), lr=LEARNING_RATE)
    start = time.perf_counter()
    for step in range(steps):
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(step, steps)
        ids, targets = tracking.encode(batch(rng, longest_now(step, steps)))
        loss = torch.nn.functional.cross_entropy(
            model(ids).reshape(-1, VALUES), targets.reshape(-1), ignore_index=NO_TARGET
        )
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        if step % 100 == 0 or step == steps - 1:
            elapsed = time.perf_counter() - start
            print(f"{name} step {step}/{steps} loss {loss.item():.4f} {elapsed:.0f} s", flush=True)
    seconds = time.perf_counter() - start
    accuracies = score(model.eval())
    print(name, accuracies)
    out.mkdir(parents=True, exist_ok=True)
    save_file(model.state_dict(), out / f"{name}.safetensors")
    record = {
        "kind": kind,
        "sizes": {"layers": layers, **SIZES},
        "seed": seed,
        "steps": steps,
        "batch": BATCH,
        "learning_rate": LEARNING_RATE,
        "warm_up": WARM_UP,
        "train_statements": list(TRAIN_STATEMENTS),
        "train_seconds": round(seconds, 1),
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "accuracy": accuracies,
    }
    (out / f"{name}.json").write_text(json.dumps(record, indent=2) + "\n")
    return record


def score(model: tracking.TrackingModel) -> dict[str, float]:
    """Per-print accuracy on each fixed test set, as the JSON records it."""
    return {
        label: round(tracking.accuracy(tracking.predictions(model, programs), programs), 4)
        for label, programs in tracking.held_out_sets().items()
    }


def rescore(name: str) -> None:
    """Score a shipped model again and record it (after a fix to evaluation, not to training)."""
    shipped = tracking.load_shipped(name)
    record = {**shipped.record, "accuracy": score(shipped.model)}
    print(name, record["accuracy"])
    (tracking.WEIGHTS_DIR / f"{name}.json").write_text(json.dumps(record, indent=2) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("names", nargs="+", choices=sorted(RECIPES))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--steps", type=int, help="fewer steps than the recipe (a quick try)")
    parser.add_argument("--out", type=Path, default=tracking.WEIGHTS_DIR)
    parser.add_argument("--rescore", action="store_true", help="only score the shipped models")
    args = parser.parse_args()
    for name in args.names:
        if args.rescore:
            rescore(name)
        else:
            train(name, args.seed, args.out, args.steps)


if __name__ == "__main__":
    main()
