"""Fixtures shared by every test."""

from __future__ import annotations

import pytest
from factories import count_calls

from clorg.book import figure_subject
from clorg.data import sources


@pytest.fixture(autouse=True)
def isolated_env(monkeypatch, tmp_path):
    """No test reads the user's data root or cache, or reaches for the network."""
    monkeypatch.setenv("CLORG_OFFLINE", "1")
    monkeypatch.setenv("CLORG_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("CLORG_DATA", raising=False)
    monkeypatch.setattr(figure_subject, "_current", "")  # a chapter set up by one test names no figure of another
    monkeypatch.setattr(figure_subject, "_of_results", None)
    monkeypatch.setattr(figure_subject, "_lines", {})


@pytest.fixture
def results_root(tmp_path, monkeypatch):
    """Results and runs go to the test's folder, never the project's: the results root (runs beside it)."""
    monkeypatch.setenv("CLORG_RESULTS", str(tmp_path / "results"))
    monkeypatch.setenv("CLORG_RUNS", str(tmp_path / "runs"))
    return tmp_path / "results"


@pytest.fixture
def decode_calls(monkeypatch):
    """The folders whose images were really decoded (the expensive step the data cache exists to skip)."""
    return count_calls(monkeypatch, sources, "decode_images", lambda *args, **kwargs: args[2])
