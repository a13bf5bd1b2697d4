"""The API page's examples run as written: a reader copies them, so they must work."""

from __future__ import annotations

import re

from clorg.core.paths import ROOT

PAGE = ROOT / "book" / "api.md"
EXAMPLES = re.findall(r"```python\n(.*?)```", PAGE.read_text(), flags=re.S)


def test_the_page_has_examples_and_documents_the_modules():
    text = PAGE.read_text()
    assert len(EXAMPLES) >= 2
    for module in ("clorg.analysis.metrics", "clorg.analysis.heads", "clorg.analysis.geometry"):
        assert f".. automodule:: {module}" in text


def _printed(source: str, capsys) -> list[str]:
    exec(compile(source, str(PAGE), "exec"), {})
    return capsys.readouterr().out.strip().splitlines()


def test_the_metrics_example_prints_what_its_comments_say(capsys):
    """Four classes each shifted along its own axis: RLD is higher at T = 0.1 than at T = 1 (the comment's
    "local density grows at small T"), CH is positive, and CHI is a share in [0, 1] at every k asked."""
    import ast

    rld, ch, chi = _printed(EXAMPLES[0], capsys)
    rld, chi = ast.literal_eval(rld), ast.literal_eval(chi)
    assert list(rld) == [1.0, 0.1] and rld[0.1] > rld[1.0] > 0
    assert float(ch) > 0
    assert list(chi) == [1, 10, 100] and all(0.25 < v <= 1 for v in chi.values())  # above the 1/4 of chance


def test_the_heads_example_prints_three_accuracies_of_separated_classes(capsys):
    """Three classes 3 standard deviations apart: each head's test accuracy is a share, far above chance."""
    lines = _printed(EXAMPLES[1], capsys)
    assert len(lines) == 3 and all(0.9 <= float(v) <= 1.0 for v in lines)
