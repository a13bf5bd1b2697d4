"""The API page's examples run as written: a reader copies them, so they must work."""

from __future__ import annotations

import re
from clorg.core.paths import ROOT

import pytest

PAGE = ROOT / "book" / "api.md"
EXAMPLES = re.findall(r"```python\n(.*?)```", PAGE.read_text(), flags=re.S)


def test_the_page_has_examples_and_documents_the_modules():
    text = PAGE.read_text()
    assert len(EXAMPLES) >= 2
    for module in ("clorg.analysis.metrics", "clorg.analysis.heads", "clorg.analysis.geometry"):
        assert f".. automodule:: {module}" in text


@pytest.mark.parametrize("source", EXAMPLES, ids=[f"example{i}" for i in range(len(EXAMPLES))])
def test_example_runs(source, capsys):
    exec(compile(source, str(PAGE), "exec"), {})
    assert capsys.readouterr().out.strip()  # every example prints its numbers
