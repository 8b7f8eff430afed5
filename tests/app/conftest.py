"""What the AppTest tests share: counting the model's work a page run does."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import streamlit as st
import torch


@pytest.fixture
def counting(monkeypatch) -> Callable[..., dict[str, int]]:
    """`counting(name=(owner, "function"), …)` returns counts that grow with every call of each
    named function and of any torch module (`"modules"`). The server's caches are cleared
    before and after, so a page's first run really computes."""
    handles = []

    def start(**targets: tuple[Any, str]) -> dict[str, int]:
        counts = dict.fromkeys(("modules", *targets), 0)

        def count_module(module, args):
            counts["modules"] += 1

        for name, (owner, attribute) in targets.items():
            original = getattr(owner, attribute)

            def wrapper(*args, _name=name, _original=original, **kwargs):
                counts[_name] += 1
                return _original(*args, **kwargs)

            monkeypatch.setattr(owner, attribute, wrapper)
        handles.append(torch.nn.modules.module.register_module_forward_pre_hook(count_module))
        st.cache_resource.clear()
        return counts

    yield start
    for handle in handles:
        handle.remove()
    st.cache_resource.clear()
