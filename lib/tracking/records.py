"""The shipped models and what is known about them, in weights/tracking/: `NAME.safetensors` and
`NAME.json` per model (its recipe, budget and held-out scores, written by training), and
`held_out.json` (the held-out sets' print counts and depths, and the shortcuts' scores). The
page reads the JSON files only; tests check that the weights still reach what they record.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from safetensors.torch import load_file, save_file

from lib.tracking.models import TrackingModel, build
from lib.tracking.scoring import (
    BASELINES,
    DEPTH_BUCKETS,
    TEST_SETS,
    describe_sets,
    evaluate_baseline,
)

WEIGHTS_DIR = Path(__file__).resolve().parents[2] / "weights" / "tracking"
REFERENCE = "held_out.json"
KIND_ORDER = ("feedback", "transformer", "scratchpad")  # how tables list the models


@dataclass(frozen=True)
class Shipped:
    """A trained model as shipped: the weights and the JSON written beside them by training."""

    name: str
    model: TrackingModel
    record: dict

    @property
    def description(self) -> str:
        """`1 layer, width 64, 4 heads, trained on 10–40 statements`, from the record."""
        sizes, (low, high) = self.record["sizes"], self.record["train_statements"]
        layers = f"{sizes['layers']} layer{'s' if sizes['layers'] > 1 else ''}"
        shape = f"width {sizes['width']}, {sizes['heads']} heads"
        return f"{layers}, {shape}, trained on {low}–{high} statements"


def shipped_names(folder: Path = WEIGHTS_DIR) -> tuple[str, ...]:
    """Every model with weights in `folder`, feedback first, then by kind and depth."""
    records = {path.stem: read_record(path.stem, folder) for path in folder.glob("*.safetensors")}
    return tuple(
        sorted(
            records,
            key=lambda name: (
                KIND_ORDER.index(records[name]["kind"]),
                records[name]["sizes"]["layers"],
                name,
            ),
        )
    )


def read_record(name: str, folder: Path = WEIGHTS_DIR) -> dict:
    return json.loads((folder / f"{name}.json").read_text())


def read_records(folder: Path = WEIGHTS_DIR) -> dict[str, dict]:
    """Every shipped model's record, by name, in `shipped_names` order."""
    return {name: read_record(name, folder) for name in shipped_names(folder)}


def read_reference(folder: Path = WEIGHTS_DIR) -> dict:
    """The held-out sets' description and the shortcuts' scores (see `reference`)."""
    return json.loads((folder / REFERENCE).read_text())


def load_shipped(name: str, folder: Path = WEIGHTS_DIR) -> Shipped:
    record = read_record(name, folder)
    model = build(record["kind"], **record["sizes"])
    model.load_state_dict(load_file(folder / f"{name}.safetensors"))
    return Shipped(name, model.eval(), record)


def save(name: str, model: TrackingModel, record: dict, folder: Path = WEIGHTS_DIR) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    save_file(model.state_dict(), folder / f"{name}.safetensors")
    write_json(folder / f"{name}.json", record)


def reference() -> dict:
    """What `held_out.json` holds: per held-out set and depth bucket, the prints and their
    depths; per shortcut, its scores."""
    return {
        "sets": describe_sets(),
        "baselines": {name: evaluate_baseline(name) for name in BASELINES},
    }


def write_json(path: Path, data: dict) -> None:
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n")


def records_markdown(folder: Path = WEIGHTS_DIR) -> str:
    """The README's table of the shipped models: steps, CPU seconds and per-print accuracy by
    depth bucket and on the shortest and longest length sets, then the shortcuts."""
    depths = [label for label in DEPTH_BUCKETS if label != "0"]
    lengths = [next(iter(TEST_SETS)), list(TEST_SETS)[-1]]
    rows = [
        "| model | steps | CPU s | "
        + " | ".join(f"depth {label}" for label in depths)
        + " | "
        + " | ".join(lengths)
        + " |",
        "| --- " * (3 + len(depths) + len(lengths)) + "|",
    ]

    def cells(scores: dict) -> str:
        found = [scores["by_depth"][label] for label in depths]
        found += [scores["by_length"][label] for label in lengths]
        return " | ".join(f"{score['right'] / score['prints']:.1%}" for score in found)

    for name, record in read_records(folder).items():
        layers = record["sizes"]["layers"]
        label = f"{name} ({record['kind']}, {layers} layer{'s' if layers > 1 else ''})"
        steps, seconds = record["steps"], f"{record['cpu_seconds']:.0f}"
        rows.append(f"| {label} | {steps} | {seconds} | {cells(record['held_out'])} |")
    for name, scores in read_reference(folder)["baselines"].items():
        rows.append(f"| shortcut: {name} | | | {cells(scores)} |")
    return "\n".join(rows)


if __name__ == "__main__":
    print(records_markdown())
