"""Variable tracking in miniature (Fan et al. 2020, §4.1): can a model follow one value through a
program of sequential, sometimes conditional, updates?

A program is a list of statements over one variable `x` holding a value 1..5 that wraps around:
`x = 3 ;`, `x ++ ;`, `x -- ;`, `if x == 2 : x ++ ;` and `print x ;`. At the `x` of every print the
model must say the current value. Each update depends on the value before it, so the answer is
the end of a chain as long as the program: a transformer reads the states of earlier tokens only
at its own depth, a feedback transformer reads the top of every earlier token.

Both trained models here are small (width 64, 4 heads). Neither has position embeddings; both
bias their attention towards recent tokens in the same way (ALiBi), which works at any length.
The feedback model attends to the memories of the last `window` tokens only, as in the paper's
experiments.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file
from torch import Tensor, nn

VALUES = 5  # x holds 1..VALUES and wraps around
VOCAB = ("<pad>", "x", "=", "++", "--", "print", "if", "==", ":", ";") + tuple(
    str(value) for value in range(1, VALUES + 1)
)
TOKEN_ID = {token: index for index, token in enumerate(VOCAB)}
PAD = TOKEN_ID["<pad>"]
NO_TARGET = -1
WEIGHTS_DIR = Path(__file__).resolve().parents[1] / "weights" / "tracking"

TRAIN_STATEMENTS = (10, 40)
TEST_SETS = {
    "10–40 statements": (10, 40),
    "60–80 statements": (60, 80),
    "100 statements": (100, 100),
}
TEST_PROGRAMS = 200  # programs per test set
TEST_SEED = 10_000
EVAL_BATCH = 40  # test programs come from seeds TEST_SEED + i, never used in training


# The program


@dataclass(frozen=True)
class Program:
    """Tokens of a program, and at each print the position of its `x` and the value printed."""

    tokens: tuple[str, ...]
    print_positions: tuple[int, ...]
    printed: tuple[int, ...]

    @property
    def text(self) -> str:
        return " ".join(self.tokens)

    @property
    def statements(self) -> int:
        return self.tokens.count(";")


def wrap(value: int) -> int:
    """Into 1..VALUES."""
    return (value - 1) % VALUES + 1


def _update(op: str, argument: int | None, value: int) -> int:
    if op == "=":
        return int(argument)
    return wrap(value + 1) if op == "++" else wrap(value - 1)


def random_program(rng: np.random.Generator, statements: int) -> Program:
    """A program of `statements` statements, the first an assignment. About half of the
    conditions test the current value, so conditional updates fire often enough that skipping
    them is no shortcut."""
    value = int(rng.integers(1, VALUES + 1))
    tokens = ["x", "=", str(value), ";"]
    positions, printed = [], []
    for _ in range(statements - 1):
        kind = rng.choice(["=", "++", "--", "if", "print"], p=[0.1, 0.25, 0.15, 0.25, 0.25])
        if kind == "print":
            positions.append(len(tokens) + 1)
            printed.append(value)
            tokens += ["print", "x", ";"]
            continue
        condition = None
        if kind == "if":
            tested = value if rng.random() < 0.5 else int(rng.integers(1, VALUES + 1))
            condition = tested == value
            tokens += ["if", "x", "==", str(tested), ":"]
            kind = rng.choice(["=", "++", "--"], p=[0.2, 0.5, 0.3])
        argument = int(rng.integers(1, VALUES + 1)) if kind == "=" else None
        tokens += ["x", str(kind)] + ([str(argument)] if argument is not None else []) + [";"]
        if condition is not False:
            value = _update(str(kind), argument, value)
    return Program(tuple(tokens), tuple(positions), tuple(printed))


def parse_program(text: str) -> Program:
    """A program typed by a reader, checked statement by statement; raises ValueError naming
    what is wrong. The values printed are computed by running it."""
    tokens = text.replace(";", " ; ").replace(":", " : ").split()
    if tokens and tokens[-1] != ";":
        tokens.append(";")
    unknown = sorted({token for token in tokens if token not in TOKEN_ID or token == "<pad>"})
    if unknown:
        shown = ", ".join(symbol[:20] for symbol in unknown[:5]) + (
            " …" if len(unknown) > 5 else ""
        )
        raise ValueError(f"unknown symbols {shown}: use x = ++ -- print if == : ; and 1–{VALUES}")
    positions, printed, value = [], [], None
    start = 0
    for end, token in enumerate(tokens):
        if token != ";":
            continue
        words, first, start = tokens[start:end], start, end + 1
        condition = True
        if words[:1] == ["if"]:
            if len(words) < 6 or words[1:3] != ["x", "=="] or words[4] != ":":
                raise ValueError(f"a condition reads `if x == 3 : x ++ ;`, not `{' '.join(words)}`")
            if not words[3].isdigit():
                raise ValueError(f"`if x == …` needs a value 1–{VALUES}")
            if value is None:
                raise ValueError("x must be assigned (`x = 3 ;`) before it is tested")
            condition = value == int(words[3])
            words, first = words[5:], first + 5
            if words == ["print", "x"]:
                raise ValueError("only updates can be conditional, not `print x`")
        if words[:1] != ["x"] and words != ["print", "x"]:
            raise ValueError(f"cannot read the statement `{' '.join(words)}`")
        if value is None and words[:2] != ["x", "="]:
            raise ValueError("x must be assigned (`x = 3 ;`) before it is used")
        if words == ["print", "x"]:
            positions.append(first + 1)
            printed.append(value)
        elif len(words) == 3 and words[:2] == ["x", "="] and words[2].isdigit():
            value = int(words[2]) if condition else value
        elif words in (["x", "++"], ["x", "--"]):
            value = _update(words[1], None, value) if condition else value
        else:
            raise ValueError(f"cannot read the statement `{' '.join(words)}`")
    if not positions:
        raise ValueError("the program prints nothing: add `print x ;`")
    return Program(tuple(tokens), tuple(positions), tuple(printed))


def encode(programs: Sequence[Program]) -> tuple[Tensor, Tensor]:
    """Token ids (B, T), padded; targets (B, T): the value index (0..VALUES-1) at every print's
    `x`, NO_TARGET elsewhere."""
    length = max(len(program.tokens) for program in programs)
    ids = torch.full((len(programs), length), PAD, dtype=torch.long)
    targets = torch.full((len(programs), length), NO_TARGET, dtype=torch.long)
    for row, program in enumerate(programs):
        ids[row, : len(program.tokens)] = torch.tensor([TOKEN_ID[t] for t in program.tokens])
        for position, value in zip(program.print_positions, program.printed, strict=True):
            targets[row, position] = value - 1
    return ids, targets


def held_out(statements: tuple[int, int], count: int = TEST_PROGRAMS) -> list[Program]:
    """A fixed test set: program i comes from seed TEST_SEED + i (plus the length range)."""
    low, high = statements
    programs = []
    for index in range(count):
        rng = np.random.default_rng([TEST_SEED + index, low, high])
        programs.append(random_program(rng, int(rng.integers(low, high + 1))))
    return programs


def held_out_sets() -> dict[str, list[Program]]:
    """The test sets, by label: in the training distribution, and longer."""
    return {label: held_out(statements) for label, statements in TEST_SETS.items()}


# Shortcuts that are not sequential tracking


def skip_conditionals(program: Program) -> tuple[int, ...]:
    """What a reader gets who applies only the unconditional updates: no chain through tests."""
    return _run_ignoring_conditions(program.tokens)


def _run_ignoring_conditions(tokens: Sequence[str]) -> tuple[int, ...]:
    printed, value, statement = [], 1, []
    for token in tokens:
        statement.append(token)
        if token != ";":
            continue
        words, statement = statement[:-1], []
        if words[:1] == ["if"]:
            continue
        if words == ["print", "x"]:
            printed.append(value)
        elif words[:2] == ["x", "="]:
            value = int(words[2])
        elif words[:2] in (["x", "++"], ["x", "--"]):
            value = _update(words[1], None, value)
    return tuple(printed)


# The models


def recency_slopes(heads: int) -> Tensor:
    """ALiBi's slopes (Press et al. 2022), 2^(-8i/h) for head i = 1..h: each head's attention
    score drops by slope × distance. The only notion of position either model has, the same in
    both, and one that extends to any length."""
    return 2.0 ** (-8.0 * torch.arange(1, heads + 1) / heads)  # (h,)


def causal_recency_mask(length: int, heads: int) -> Tensor:
    """Additive attention mask (h, T, T): -slope × (t - s) for s ≤ t, -inf for the future."""
    distance = torch.arange(length)[:, None] - torch.arange(length)[None, :]  # (T, T)
    bias = -recency_slopes(heads)[:, None, None] * distance  # (h, T, T)
    return bias.masked_fill(distance < 0, float("-inf"))


@contextmanager
def _no_attention_fast_path() -> Iterator[None]:
    """Run torch's encoder layers on their ordinary path. In eval mode they would take a fused
    "fast path" that reads a per-head (B·h, T, T) float mask differently from training (measured
    here: logits off by up to 11), so a model would be scored with attention it never learned.
    The switch is process-wide; nothing else in the app uses torch's attention modules."""
    before = torch.backends.mha.get_fastpath_enabled()
    torch.backends.mha.set_fastpath_enabled(False)
    try:
        yield
    finally:
        torch.backends.mha.set_fastpath_enabled(before)


class TrackingTransformer(nn.Module):
    """A causal transformer (pre-norm, torch's own encoder layers) with a recency bias for
    position, as the feedback model has."""

    kind = "transformer"

    def __init__(self, layers: int, width: int = 64, heads: int = 4) -> None:
        super().__init__()
        self.layers, self.width, self.heads = layers, width, heads
        self.embed = nn.Embedding(len(VOCAB), width)
        self.blocks = nn.ModuleList(
            nn.TransformerEncoderLayer(
                width, heads, 4 * width, dropout=0.0, batch_first=True, norm_first=True
            )
            for _ in range(layers)
        )
        self.norm = nn.LayerNorm(width)
        self.head = nn.Linear(width, VALUES)

    def forward(self, ids: Tensor) -> Tensor:
        """Logits over the values at every position: (B, T) → (B, T, VALUES)."""
        batch, length = ids.shape
        mask = causal_recency_mask(length, self.heads).repeat(batch, 1, 1)  # (B·h, T, T)
        x = self.embed(ids)
        with _no_attention_fast_path():
            for block in self.blocks:
                x = block(x, src_mask=mask)
        return self.head(self.norm(x))


class FeedbackLayer(nn.Module):
    """One layer of the feedback transformer: the token's state attends to past memories, with
    this layer's own key/value projections of them, then an MLP."""

    def __init__(self, width: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.norm_x, self.norm_m, self.norm_mlp = (nn.LayerNorm(width) for _ in range(3))
        self.query, self.key, self.value, self.out = (nn.Linear(width, width) for _ in range(4))
        self.mlp = nn.Sequential(
            nn.Linear(width, 4 * width), nn.GELU(), nn.Linear(4 * width, width)
        )

    def keys_values(self, memories: Tensor) -> tuple[Tensor, Tensor]:
        """(B, m, d) → keys and values (B, h, m, dh)."""
        normed = self.norm_m(memories)
        return self._split(self.key(normed)), self._split(self.value(normed))

    def _split(self, x: Tensor) -> Tensor:
        batch, length, width = x.shape
        return x.view(batch, length, self.heads, width // self.heads).transpose(1, 2)

    def forward(
        self, x: Tensor, keys: Tensor, values: Tensor, recency: Tensor
    ) -> tuple[Tensor, Tensor]:
        """x (B, d) reads keys/values (B, h, m, dh), scores biased by `recency` (h, m); returns
        the new x and the attention weights (B, h, m). With no memories (the first token) the
        attention adds nothing."""
        batch, width = x.shape
        if keys.shape[2] == 0:
            weights = x.new_zeros(batch, self.heads, 0)
        else:
            query = self._split(self.query(self.norm_x(x))[:, None])  # (B, h, 1, dh)
            scores = query @ keys.transpose(2, 3) / math.sqrt(width // self.heads)  # (B,h,1,m)
            weights = (scores + recency[:, None]).softmax(dim=-1)
            read = (weights @ values).transpose(1, 2).reshape(batch, width)  # (B, d)
            x = x + self.out(read)
            weights = weights[:, :, 0]
        return x + self.mlp(self.norm_mlp(x)), weights


@dataclass(frozen=True)
class FeedbackState:
    """What the feedback model carries: the memories of the last `window` tokens, (m, d)."""

    memories: Tensor


@dataclass(frozen=True)
class FeedbackRun:
    """A feedback model's run over one program: logits (T, VALUES), and for every position the
    attention weights of layer 0 over its past memories, averaged over heads (T, T): row t,
    column s is how much token t read the memory of token s."""

    logits: Tensor
    reads: np.ndarray


class TrackingFeedback(nn.Module):
    """A feedback transformer: token t's layers all attend to memories m_<t, where m_s mixes
    every layer of token s (softmax weights). Only the last `window` memories are read, with the
    same recency bias as the transformer's attention."""

    kind = "feedback"

    def __init__(self, layers: int, width: int = 64, heads: int = 4, window: int = 32) -> None:
        super().__init__()
        self.layers, self.width, self.heads, self.window = layers, width, heads, window
        self.embed = nn.Embedding(len(VOCAB), width)
        self.blocks = nn.ModuleList(FeedbackLayer(width, heads) for _ in range(layers))
        self.mix = nn.Parameter(torch.zeros(layers + 1))
        self.norm = nn.LayerNorm(width)
        self.head = nn.Linear(width, VALUES)

    def _token(
        self, x: Tensor, keys_values: Sequence[tuple[Tensor, Tensor]]
    ) -> tuple[Tensor, Tensor, list[Tensor]]:
        """One token's layers: (B, d) → top state, memory (B, d), and each layer's weights."""
        cells, weights = [x], []
        past = keys_values[0][0].shape[2]  # memories in the window, oldest first
        recency = -recency_slopes(self.heads)[:, None] * torch.arange(past, 0, -1)  # (h, m)
        for block, (keys, values) in zip(self.blocks, keys_values, strict=True):
            x, read = block(x, keys, values, recency)
            cells.append(x)
            weights.append(read)
        memory = torch.einsum("l,lbd->bd", self.mix.softmax(0), torch.stack(cells))
        return x, memory, weights

    def forward(self, ids: Tensor) -> Tensor:
        """Logits (B, T, VALUES), token by token. Each memory is projected to keys and values
        once, when it is made; `step` re-projects its window every time (a second code path)."""
        batch, length = ids.shape
        keys = [[] for _ in self.blocks]  # per layer: one (B, h, 1, dh) per past token
        values = [[] for _ in self.blocks]
        tops = []
        for t in range(length):
            start = max(0, t - self.window)
            window = [
                (torch.cat(k[start:t], dim=2), torch.cat(v[start:t], dim=2))
                if t
                else self._empty(batch)
                for k, v in zip(keys, values, strict=True)
            ]
            top, memory, _ = self._token(self.embed(ids[:, t]), window)
            tops.append(top)
            for block, k, v in zip(self.blocks, keys, values, strict=True):
                new_k, new_v = block.keys_values(memory[:, None])
                k.append(new_k)
                v.append(new_v)
        return self.head(self.norm(torch.stack(tops, dim=1)))

    def _empty(self, batch: int) -> tuple[Tensor, Tensor]:
        empty = self.embed.weight.new_zeros(batch, self.heads, 0, self.width // self.heads)
        return empty, empty

    def initial_state(self) -> FeedbackState:
        return FeedbackState(self.embed.weight.new_zeros(0, self.width))

    def step(self, token: int, state: FeedbackState) -> tuple[Tensor, list[Tensor], FeedbackState]:
        """The generation path: one token, its logits (VALUES,), each layer's attention weights
        (h, m) over the window, and the state with this token's memory appended."""
        past = state.memories[None]  # (1, m, d)
        window = [block.keys_values(past) for block in self.blocks]
        top, memory, weights = self._token(self.embed.weight[token][None], window)
        memories = torch.cat([state.memories, memory])[-self.window :]
        return self.head(self.norm(top))[0], [w[0] for w in weights], FeedbackState(memories)

    @torch.inference_mode()
    def run(self, program: Program) -> FeedbackRun:
        """Step through one program, keeping what layer 0's attention read at every token."""
        state, logits = self.initial_state(), []
        reads = np.zeros((len(program.tokens), len(program.tokens)))
        for t, token in enumerate(program.tokens):
            out, weights, state = self.step(TOKEN_ID[token], state)
            logits.append(out)
            read = weights[0].mean(0).numpy()  # (m,) over the last m tokens
            reads[t, t - read.shape[0] : t] = read
        return FeedbackRun(torch.stack(logits), reads)


TrackingModel = TrackingTransformer | TrackingFeedback


def build(kind: str, layers: int, **sizes: int) -> TrackingModel:
    if kind == "feedback":
        return TrackingFeedback(layers, **sizes)
    if kind == "transformer":
        return TrackingTransformer(layers, **sizes)
    raise ValueError(f"unknown model kind {kind!r}")


# Accuracy


def predictions(model: TrackingModel, programs: Sequence[Program]) -> list[tuple[int, ...]]:
    """The value the model says at every print of every program, `EVAL_BATCH` programs at a
    time (the transformer's mask holds heads × T² numbers per program)."""
    said = []
    for start in range(0, len(programs), EVAL_BATCH):
        part = programs[start : start + EVAL_BATCH]
        with torch.inference_mode():
            chosen = model(encode(part)[0]).argmax(-1) + 1  # (B, T): values 1..VALUES
        said += [
            tuple(int(chosen[row, p]) for p in program.print_positions)
            for row, program in enumerate(part)
        ]
    return said


def accuracy(guesses: Sequence[Sequence[int]], programs: Sequence[Program]) -> float:
    """Per-print accuracy: the share of all prints whose value is right."""
    right = sum(
        g == p
        for guess, program in zip(guesses, programs, strict=True)
        for g, p in zip(guess, program.printed, strict=True)
    )
    total = sum(len(program.printed) for program in programs)
    return right / total if total else float("nan")


@dataclass(frozen=True)
class Verdict:
    """What a table of accuracies (model -> test set -> accuracy, sets in TEST_SETS order) says
    about the feedback model against the transformers."""

    feedback: str
    best_transformer: str  # on the longest set
    wins_everywhere: bool  # the feedback model beats every transformer on every set
    feedback_drop: float  # accuracy in the training lengths minus on the longest set
    transformer_drop: float  # the same, for `best_transformer`


def verdict(accuracies: Mapping[str, Mapping[str, float]], kinds: Mapping[str, str]) -> Verdict:
    first, last = list(TEST_SETS)[0], list(TEST_SETS)[-1]
    (feedback,) = [name for name, kind in kinds.items() if kind == "feedback"]
    transformers = [name for name, kind in kinds.items() if kind == "transformer"]
    best = max(transformers, key=lambda name: accuracies[name][last])
    return Verdict(
        feedback=feedback,
        best_transformer=best,
        wins_everywhere=all(
            accuracies[feedback][label] > accuracies[name][label]
            for name in transformers
            for label in TEST_SETS
        ),
        feedback_drop=accuracies[feedback][first] - accuracies[feedback][last],
        transformer_drop=accuracies[best][first] - accuracies[best][last],
    )


# Shipped weights


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


def shipped_names() -> tuple[str, ...]:
    return tuple(sorted(path.stem for path in WEIGHTS_DIR.glob("*.json")))


def load_shipped(name: str) -> Shipped:
    record = json.loads((WEIGHTS_DIR / f"{name}.json").read_text())
    model = build(record["kind"], **record["sizes"])
    model.load_state_dict(load_file(WEIGHTS_DIR / f"{name}.safetensors"))
    return Shipped(name, model.eval(), record)
