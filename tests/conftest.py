"""Shared fixtures: the tiny random model for fast tests, the real model for integration tests."""

from __future__ import annotations

import pytest

from lib import models


@pytest.fixture(scope="session")
def tiny() -> models.LoadedModel:
    return models.load("tiny-random")


@pytest.fixture(scope="session")
def real() -> models.LoadedModel:
    """The real SmolLM2-135M; `make test` converts it first, so its absence is a failure."""
    return models.load(models.DEFAULT_MODEL)
