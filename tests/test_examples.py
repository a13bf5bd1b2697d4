"""The commands the README and the intro print, run as written: a chapter re-executed with overrides after a
plain build gets results of its own and leaves the plain profile's byte for byte as they were (issue 22)."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from factories import write_image_tree

from clorg.core.paths import ROOT

PAGES = ("README.md", "book/intro.md")


def papermill_examples(page: Path) -> list[str]:
    """Every papermill command a page prints (in a code span or block)."""
    return re.findall(r"^\s*`?(papermill [^`\n]+)", page.read_text(), flags=re.M)


def _snapshot(folder: Path) -> dict:
    return {p.relative_to(folder): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _run(words: list[str], **kwargs) -> subprocess.CompletedProcess:
    done = subprocess.run(words, cwd=ROOT, capture_output=True, text=True, **kwargs)
    assert done.returncode == 0, f"{shlex.join(words)} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done


def _variants(results: Path, profile: str) -> list[Path]:
    return sorted(p for p in results.iterdir() if p.name.startswith(f"{profile}+"))


@pytest.mark.parametrize("page", PAGES)
def test_the_printed_papermill_example_runs_as_written(page, results_root, tmp_path):
    (example,) = papermill_examples(ROOT / page)
    words = shlex.split(example)
    notebook = next(w for w in words if w.startswith("notebooks/"))
    stem, profile = Path(notebook).stem, words[words.index("profile") + 1]
    # the plain build of what the example re-runs
    _run([sys.executable, "-m", "clorg.book", "--profile", profile, "--only", stem])
    plain = _snapshot(results_root / profile)
    assert plain, "the plain build stored nothing"
    words[0:1] = [sys.executable, "-m", "papermill"]
    words[words.index(notebook) + 1] = str(tmp_path / "out.ipynb")  # the example's output notebook
    _run(words)
    assert _snapshot(results_root / profile) == plain  # the plain profile's results, byte for byte
    (variant,) = _variants(results_root, profile)
    stored = {p.name for p in variant.iterdir()}
    assert "overrides.json" in stored and len(stored) > 1, stored


def test_an_image_folder_dataset_override_gets_its_own_results(results_root, tmp_path):
    """Your own images, as a new user would point the book at them, after the plain profile's results exist."""
    _run([sys.executable, "-m", "clorg.book", "--profile", "smoke", "--only", "01_toy_clusters"])
    plain = _snapshot(results_root / "smoke")
    classes = ["cat", "dog", "ship"]
    write_image_tree(tmp_path / "mine", classes, per_class=(12, 4), size=(32, 32))
    override = ["--override", f"data.dataset=imagefolder:{tmp_path / 'mine'}", "--override", "data.train_per_class=12",
                "--override", "data.test_per_class=4", "--override", "train.contrastive_batch_size=12",
                "--override", "train.supervised_batch_size=12"]
    done = _run([sys.executable, "-m", "clorg.book", "--profile", "smoke", *override, "--only", "02_train",
                 "--only", "03_embeddings", "--only", "04_metrics"])
    assert "a variant named smoke+" in done.stdout
    assert _snapshot(results_root / "smoke") == plain
    (variant,) = _variants(results_root, "smoke")
    assert {"overrides.json", "training.json", "embeddings.json", "geometry.json"} <= {p.name for p in variant.iterdir()}
    # the variant's own runs are under runs/smoke/, and make clean-variants removes them with its results
    runs = sorted(p for p in (results_root.parent / "runs" / "smoke").iterdir() if p.is_dir())
    assert len(runs) == 2  # contrastive and supervised, trained on the three classes
    listing = _run([sys.executable, "ci/clean_variants.py"]).stdout
    assert variant.name in listing and all(r.name in listing for r in runs)
    assert not variant.exists() and not any(r.exists() for r in runs)
    assert list((results_root.parent / "runs" / "smoke").iterdir()) == []  # their lock files too
    assert _snapshot(results_root / "smoke") == plain
