"""The repository's own contracts: pins agree, notebooks are clean and all in the book."""

from __future__ import annotations

import json

import yaml

from clorg.core.paths import ROOT  # the project root, defined once
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


def pins(lines):
    return {line.strip().lstrip("- ").strip() for line in lines if "==" in line and not line.strip().startswith("#")}


def test_environment_yml_pins_exactly_requirements_txt():
    req = pins((ROOT / "requirements.txt").read_text().splitlines())
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    assert "python=3.11" in env["dependencies"]
    pip_section = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    assert pins(pip_section) == req


def test_requirements_pin_every_package_and_the_required_versions():
    lines = [line for line in (ROOT / "requirements.txt").read_text().splitlines()
             if line.strip() and not line.startswith("#")]
    assert all("==" in line for line in lines), [line for line in lines if "==" not in line]
    versions = dict(line.split("==") for line in lines)
    lower = {k.lower(): v for k, v in versions.items()}
    assert lower["torch"] == "2.14.1" and lower["torchvision"] == "0.29.1"
    assert lower["jupyter-book"].startswith("1.")
    for needed in ("jupyter", "ipykernel", "papermill", "seaborn", "opentsne", "scikit-learn", "networkx",
                   "tqdm", "pyyaml", "pytest", "selenium"):
        assert needed in lower, needed


def test_the_lock_pins_every_package_but_clorg_and_help_writes_nothing():
    import subprocess
    import sys

    sys.path.insert(0, str(ROOT / "ci"))
    from lock import pinned

    assert pinned(["torch==2.14.1", "clorg==0.1.0", "-e git+x#egg=y", "numpy==2.4.6", "Clorg==0.2"]) == [
        "numpy==2.4.6", "torch==2.14.1"]
    before = {f: (ROOT / f).stat().st_mtime_ns for f in ("requirements.txt", "environment.yml")}
    done = subprocess.run([sys.executable, str(ROOT / "ci" / "lock.py"), "--help"], capture_output=True, text=True)
    assert done.returncode == 0 and "usage" in done.stdout
    assert {f: (ROOT / f).stat().st_mtime_ns for f in before} == before


def test_notebooks_are_committed_without_outputs_and_take_parameters():
    assert NOTEBOOKS, "no notebooks found"
    for path in NOTEBOOKS:
        nb = json.loads(path.read_text())
        code = [c for c in nb["cells"] if c["cell_type"] == "code"]
        assert all(not c.get("outputs") and c.get("execution_count") is None for c in code), path.name
        ids = [c.get("id") for c in nb["cells"]]  # nbformat 4.5: every cell an id, unique (papermill warns, then fails)
        assert None not in ids and len(set(ids)) == len(ids), f"{path.name}: a cell without an id, or a repeated one"
        tagged = [c for c in code if "parameters" in c.get("metadata", {}).get("tags", [])]
        assert len(tagged) == 1, f"{path.name} needs exactly one cell tagged 'parameters'"
        assert "profile =" in "".join(tagged[0]["source"])
        first = nb["cells"][0]
        assert first["cell_type"] == "markdown" and "".join(first["source"]).startswith("# "), \
            f"{path.name} must open with a '# Title' markdown cell (the page title in the book)"


def test_every_notebook_is_in_the_table_of_contents_and_vice_versa():
    import sys

    sys.path.insert(0, str(ROOT / "ci"))
    from build_book import toc_files

    toc = toc_files(yaml.safe_load((ROOT / "book" / "_toc.yml").read_text()))
    in_toc = {f.split("/", 1)[1] for f in toc if f.startswith("notebooks/")}
    assert in_toc == {p.stem for p in NOTEBOOKS}
    for f in toc:
        if not f.startswith("notebooks/"):
            assert (ROOT / f"{f}.md").is_file(), f


def test_every_included_benchmark_table_is_saved():
    import re

    for page in (ROOT / "book").glob("*.md"):
        for target in re.findall(r"```\{include\}\s+(\S+)", page.read_text()):
            if target.startswith("bench/"):  # staged from bench/results/ by ci/build_book.py
                assert (ROOT / "bench" / "results" / target.split("/", 1)[1]).is_file(), f"{page.name}: {target}"
            else:
                assert target in ("build_info.md", "dataset_note.md", "execution_status.md", "findings.md",
                                  "fidelity_tables.md", "profiles_table.md"), \
                    f"{page.name} includes {target}, which ci/build_book.py does not generate"


def test_plumbing_cells_are_hidden_and_figures_have_captions():
    """Pages read like a paper: setup code folds away (hide-input), and every figure cell carries a caption."""
    for path in NOTEBOOKS:
        nb = json.loads(path.read_text())
        code = [c for c in nb["cells"] if c["cell_type"] == "code"]
        setup = [c for c in code if "chapters.setup(" in "".join(c["source"])]
        assert all("hide-input" in c["metadata"].get("tags", []) for c in setup), path.name
        for c in code:
            source = "".join(c["source"])
            if "plots." in source and source.rstrip().endswith(";"):
                assert c["metadata"].get("mystnb", {}).get("figure", {}).get("caption"), f"{path.name}: {source[:60]}"
