"""The shareable configuration: every setting a page can show, validated, mirrored in the URL.

Query strings come from strangers. Every value is parsed by the parameter that owns it; a value
out of range is clamped, an unusable one replaced by the default, and each correction becomes a
notice the page shows. Nothing here raises on bad input. A page validates only the parameters it
reads (`lib.site`): one carried over from another page by navigation is ignored without a notice.
"""

from __future__ import annotations

import dataclasses
import keyword
import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from lib.models import DEFAULT_MODEL
from lib.readable.pairs import pair_presets
from lib.settings import SETTINGS
from lib.site import PAGES, PageInfo

WHOLE_NUMBER = re.compile(r"[+-]?[0-9]{1,12}", re.ASCII)
MAX_PROMPT_CHARS = 2000
MAX_PROMPT_TOKENS = SETTINGS.max_prompt_tokens
MAX_NEW_TOKENS = SETTINGS.max_new_tokens
MAX_LAYER = 64
MAX_HEAD = 63
MAX_SEED = 2**31 - 1
MAX_STATEMENTS = 120
DEFAULT_PROMPT = SETTINGS.starter_prompt or "The cure for cancer is"
DEFAULT_NEW = min(24, MAX_NEW_TOKENS)
MAX_PAIR_CHARS = 300
DEFAULT_PAIR = pair_presets()[0]
DTYPES = ("bfloat16",) if SETTINGS.weights == "bfloat16" else ("float32", "bfloat16")


@dataclass(frozen=True)
class Param:
    """One URL parameter: its name, default, and how a string from a URL becomes a value."""

    name: str
    default: Any
    help: str

    @property
    def attr(self) -> str:
        """The ViewConfig field: the name itself, or `from_` for a Python keyword like `from`."""
        return f"{self.name}_" if keyword.iskeyword(self.name) else self.name

    def parse(self, raw: str) -> tuple[Any, str | None]:
        """Return (value, notice); the notice is None when the raw string was fine as it was."""
        raise NotImplementedError

    def render(self, value: Any) -> str:
        return str(value)

    def describe(self) -> str:
        """The accepted values, for the README table."""
        raise NotImplementedError


@dataclass(frozen=True)
class IntParam(Param):
    low: int = 0
    high: int = 0
    optional: bool = False  # an empty value means "none" (e.g. no seed: greedy decoding)

    def parse(self, raw: str) -> tuple[Any, str | None]:
        text = raw.strip()
        if self.optional and text.lower() in {"", "none"}:
            return None, None
        if not WHOLE_NUMBER.fullmatch(text):  # no 1e3, 0x10, 1_000, inf, nan or Unicode digits
            shown = "the default" if self.default is None else self.default
            return self.default, f"`{self.name}` must be a whole number; using {shown}."
        number = int(text)
        clamped = min(max(number, self.low), self.high)
        if clamped != number:
            return clamped, f"`{self.name}` must be {self.low}–{self.high}; using {clamped}."
        return number, None

    def render(self, value: Any) -> str:
        return "" if value is None else str(value)

    def describe(self) -> str:
        return f"{self.low}–{self.high}" + (" or empty" if self.optional else "")


@dataclass(frozen=True)
class ChoiceParam(Param):
    choices: tuple[str, ...] = ()

    def parse(self, raw: str) -> tuple[Any, str | None]:
        value = raw.strip().lower()
        if value in self.choices:
            return value, None
        return (
            self.default,
            f"`{self.name}` must be one of {', '.join(self.choices)}; using {self.default}.",
        )

    def describe(self) -> str:
        return " / ".join(self.choices)


@dataclass(frozen=True)
class HeadParam(Param):
    """A query head number, or `all` for the mean (and max) over heads."""

    high: int = MAX_HEAD

    def parse(self, raw: str) -> tuple[Any, str | None]:
        text = raw.strip().lower()
        if text == "all":
            return "all", None
        return IntParam(self.name, self.default, self.help, 0, self.high).parse(text)

    def describe(self) -> str:
        return f"all, or 0–{self.high}"


@dataclass(frozen=True)
class TextParam(Param):
    max_chars: int = MAX_PROMPT_CHARS

    def parse(self, raw: str) -> tuple[Any, str | None]:
        return clean_prompt(raw, self.max_chars, self.default)

    def describe(self) -> str:
        return f"text, up to {self.max_chars} characters"


@dataclass(frozen=True)
class ProgramParam(TextParam):
    """A program typed by the reader; empty (the default) means "use the generated one"."""

    def parse(self, raw: str) -> tuple[Any, str | None]:
        if not raw.strip():
            return "", None
        return clean_prompt(raw, self.max_chars, self.default, noun="program")

    def describe(self) -> str:
        return f"empty, or a program of up to {self.max_chars} characters"


def allowed_models() -> tuple[str, ...]:
    """The registry, or only the default model when a workshop locks it."""
    from lib.models import registry

    return (DEFAULT_MODEL,) if SETTINGS.workshop else tuple(registry())


@dataclass(frozen=True)
class ModelParam(Param):
    """A model id is looked up in the registry; a path or unknown name never reaches a loader."""

    def parse(self, raw: str) -> tuple[Any, str | None]:
        value = raw.strip()
        if value in allowed_models():
            return value, None
        shown = value[:40].encode("unicode_escape").decode()
        return self.default, f"Unknown model `{shown}`; using {self.default}."

    def describe(self) -> str:
        return " / ".join(allowed_models())


def clean_prompt(
    raw: str, max_chars: int, default: str, noun: str = "prompt"
) -> tuple[str, str | None]:
    """Strip control characters, cap the length, refuse an empty text (with a notice each)."""
    notices = []
    kept = "".join(
        char
        for char in raw
        if char in "\n\t" or unicodedata.category(char) not in {"Cc", "Cs", "Co", "Cn"}
    )
    if kept != raw:
        notices.append(f"control characters were removed from the {noun}")
    if len(kept) > max_chars:
        kept = kept[:max_chars]
        notices.append(f"the {noun} was cut to {max_chars} characters")
    if not kept.strip():
        return default, f"The {noun} was empty; using the example “{default}”."
    return kept, ("; ".join(notices).capitalize() + ".") if notices else None


PARAMS: tuple[Param, ...] = (
    TextParam("prompt", DEFAULT_PROMPT, "the text the model continues"),
    ModelParam("model", DEFAULT_MODEL, "model id from the registry"),
    IntParam("new", DEFAULT_NEW, "tokens to generate", 1, MAX_NEW_TOKENS),
    IntParam(
        "token",
        None,
        "selected token position (clamped to the sequence); empty: the page picks one",
        0,
        10_000,
        optional=True,
    ),
    IntParam(
        "layer",
        None,
        "selected layer (clamped to the model's depth); empty: the page picks one",
        0,
        MAX_LAYER,
        optional=True,
    ),
    HeadParam("head", "all", "query head, or all"),
    ChoiceParam("dtype", DTYPES[0], "precision of the weights", choices=DTYPES),
    IntParam("seed", None, "sampling seed; empty for greedy decoding", 0, MAX_SEED, optional=True),
    # /cache
    IntParam("step", 0, "decoding step shown in the step-through", 0, MAX_NEW_TOKENS - 1),
    IntParam("kvhead", 0, "KV head whose cached rows are shown", 0, MAX_HEAD),
    ChoiceParam("offgrid", "off", "also show the cache-off grid", choices=("on", "off")),
    # /flow
    ChoiceParam(
        "weight",
        "attn",
        "edge weight: attention, or attention × ‖value‖",
        choices=("attn", "value"),
    ),
    ChoiceParam("agg", "mean", "how `head=all` combines heads", choices=("mean", "max")),
    IntParam("src", 0, "source token whose cache is edited", 0, 10_000),
    IntParam(
        "from",
        1,
        "first layer of the cache edit, or of the patch (0: the word's own K/V)",
        0,
        MAX_LAYER,
    ),
    IntParam("to", 1, "last layer of the cache edit, or of the patch", 0, MAX_LAYER),
    ChoiceParam("edit", "zero", "how the cache is edited", choices=("zero", "mean", "token")),
    IntParam("other", 0, "with `edit=token`: the token whose K/V replace the source's", 0, 10_000),
    # /plan
    IntParam("k", 10, "how many top next tokens to show", 1, 20),
    # /readable
    TextParam("clean", DEFAULT_PAIR.clean, "the prompt whose K/V are patched in", MAX_PAIR_CHARS),
    TextParam(
        "corrupt",
        DEFAULT_PAIR.corrupt,
        "the prompt that is run, one token different",
        MAX_PAIR_CHARS,
    ),
    # /architectures
    IntParam("tokens", 6, "tokens in the architecture diagrams", 1, 16),
    IntParam("layers", 4, "layers in the architecture diagrams", 1, 8),
    IntParam("width", 64, "hidden width used for state sizes", 1, 4096),
    ChoiceParam(
        "generation",
        "off",
        "draw the sampled token fed back as the next input",
        choices=("on", "off"),
    ),
    # /tracking
    IntParam("statements", 30, "statements in the generated program", 2, MAX_STATEMENTS),
    IntParam("pseed", 0, "seed of the generated program", 0, MAX_SEED),
    ProgramParam("program", "", "a program of your own (replaces the generated one)", 1500),
)
PARAMS_BY_NAME = {param.name: param for param in PARAMS}


@dataclass(frozen=True)
class ViewConfig:
    """Everything a view depends on. Field names are the public URL parameter names."""

    prompt: str = DEFAULT_PROMPT
    model: str = DEFAULT_MODEL
    new: int = DEFAULT_NEW
    token: int | None = None  # None: the page picks a cell that shows something
    layer: int | None = None
    head: int | str = "all"
    dtype: str = DTYPES[0]
    seed: int | None = None
    step: int = 0
    kvhead: int = 0
    offgrid: str = "off"
    weight: str = "attn"
    agg: str = "mean"
    src: int = 0
    from_: int = 1  # layer 0's K/V are projections of the word itself: edit internal states
    to: int = 1
    edit: str = "zero"
    other: int = 0
    k: int = 10
    clean: str = DEFAULT_PAIR.clean
    corrupt: str = DEFAULT_PAIR.corrupt
    tokens: int = 6
    layers: int = 4
    width: int = 64
    generation: str = "off"
    statements: int = 30
    pseed: int = 0
    program: str = ""


@dataclass(frozen=True)
class Validated:
    config: ViewConfig
    notices: tuple[str, ...]

    def query(self, page: PageInfo) -> dict[str, str]:
        """The URL parameters as they should stand: accepted values only, defaults left out,
        the page's own and the sidebar's."""
        return to_query(self.config, page.url_params)


RETIRED = frozenset({"arch", "cache"})  # parameters of old links that no page reads any more


def from_query(
    query: Mapping[str, Sequence[str] | str],
    page: PageInfo | None = None,
    known: Iterable[str] = (),
) -> Validated:
    """Build a config from a query string's parameters; every correction becomes a notice.

    With a `page`, only its parameters are read: another page's (carried over by navigation)
    keep their defaults without a notice. `known` names parameters that belong to something else
    on the page (left alone, no notice). Several values of one parameter: the last one counts.
    """
    values: dict[str, Any] = {}
    notices: list[str] = []
    for name, raw_values in query.items():
        given = [raw_values] if isinstance(raw_values, str) else list(raw_values)
        param = PARAMS_BY_NAME.get(name)
        if param is None:
            if name not in known and name not in RETIRED:
                shown = name[:30].encode("unicode_escape").decode()
                notices.append(f"Ignored unknown parameter `{shown}`.")
            continue
        if not given or (page is not None and name not in page.url_params):
            continue
        if len(given) > 1:
            notices.append(f"`{name}` was given {len(given)} times; using the last one.")
        value, notice = param.parse(given[-1])
        values[param.attr] = value
        if notice:
            notices.append(notice)
    return Validated(ViewConfig(**values), tuple(notices))


def to_query(config: ViewConfig, names: PageInfo | Iterable[str] | None = None) -> dict[str, str]:
    """The non-default settings as URL parameters (only a page's, or only `names`): the
    shortest link that reproduces the view."""
    defaults = ViewConfig()
    keep = names.params if isinstance(names, PageInfo) else names
    return {
        param.name: param.render(getattr(config, param.attr))
        for param in PARAMS
        if getattr(config, param.attr) != getattr(defaults, param.attr)
        and (keep is None or param.name in keep)
    }


def parameters_markdown() -> str:
    """The table of URL parameters for the README, generated so the two cannot drift apart."""
    defaults = ViewConfig()
    rows = [
        "| parameter | pages | meaning | accepted values | default |",
        "| --- | --- | --- | --- | --- |",
    ]
    for param in PARAMS:
        default = param.render(getattr(defaults, param.attr)) or "(none)"
        pages = ", ".join(page.link for page in PAGES if param.name in page.params)
        rows.append(
            f"| `{param.name}` | {pages} | {param.help} | {param.describe()} | `{default}` |"
        )
    return "\n".join(rows)


def replace(config: ViewConfig, **changes: Any) -> ViewConfig:
    return dataclasses.replace(config, **changes)


def clamp_index(name: str, value: int, size: int) -> tuple[int, str | None]:
    """Clamp a position or layer to what this trace actually has (known only after the run)."""
    if 0 <= value < size:
        return value, None
    clamped = min(max(value, 0), size - 1)
    return clamped, f"`{name}` must be 0–{size - 1} here; using {clamped}."


if __name__ == "__main__":
    print(parameters_markdown())  # paste between the README's parameter markers
