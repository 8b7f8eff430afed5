import threading

import pytest
import torch

from lib import models, trace
from tests.holding import held_elsewhere


def test_registry_has_the_default_and_the_tiny_model():
    assert {"smollm2-135m", "tiny-random"} <= set(models.registry())


def test_local_folders_come_only_from_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv(models.LOCAL_MODELS_ENV, f"workshop={tmp_path};broken;=nameless")
    registry = models.registry()
    assert registry["workshop"].kind == "local"
    assert registry["workshop"].folder == str(tmp_path)
    assert "broken" not in registry and "" not in registry


def test_unknown_model_is_refused_with_a_message():
    with pytest.raises(models.ModelUnavailable, match="Unknown model"):
        models.load("../../etc/passwd")


def test_tiny_model_is_seeded_and_uses_eager_attention(tiny):
    again = models.tiny_model()
    for (name, a), (_, b) in zip(
        tiny.model.state_dict().items(), again.state_dict().items(), strict=True
    ):
        assert torch.equal(a, b), name
    assert tiny.model.config._attn_implementation == "eager"
    assert tiny.shape.kv_heads < tiny.shape.heads  # grouped-query attention, like SmolLM2


def test_cache_bytes_per_token_formula(tiny):
    shape = tiny.shape
    assert shape.cache_bytes_per_token == 2 * shape.layers * shape.kv_heads * shape.head_dim * 4


def test_tiny_tokenizer_round_trips_any_unicode(tiny):
    text = "héllo 🙂 שלום\n\tx"
    ids = tiny.tokenizer(text, add_special_tokens=False).input_ids
    assert tiny.tokenizer.decode(ids) == text


def test_cache_dir_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv(models.CACHE_ENV, str(tmp_path))
    assert models.converted_folder().parent == tmp_path


def test_a_missing_local_folder_gives_a_clear_error(monkeypatch, tmp_path):
    monkeypatch.setenv(models.LOCAL_MODELS_ENV, f"gone={tmp_path / 'nothing'}")
    with pytest.raises(models.ModelUnavailable, match="Could not load"):
        models.load("gone")


def test_busy_tells_whether_another_thread_holds_the_model(tiny):
    assert not tiny.busy()
    with held_elsewhere(tiny.lock):
        assert tiny.busy()
    assert not tiny.busy()


def test_naming_tokens_does_not_wait_for_another_readers_run_of_the_model(tiny):
    """A page model built from stored results only names tokens: while another session runs
    the model (its lock held for seconds), labels, text and prompts are still answered."""
    answered = []

    def name_tokens() -> None:
        labels = trace.token_labels(tiny, [72, 105])
        answered.append(
            (labels, trace.decode_text(tiny, [72, 105]), trace.encode_prompt(tiny, "Hi", 16).ids)
        )

    with held_elsewhere(tiny.lock):
        reader = threading.Thread(target=name_tokens)
        reader.start()
        reader.join(5)
        assert not reader.is_alive(), "naming tokens waited for the model"
    labels, text, ids = answered[0]
    assert len(labels) == 2 and text and len(ids) == 2
