"""Fixtures shared by every test."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def isolated_env(monkeypatch, tmp_path):
    """No test reads the user's data root or cache, or reaches for the network."""
    monkeypatch.setenv("CLORG_OFFLINE", "1")
    monkeypatch.setenv("CLORG_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("CLORG_DATA", raising=False)
