"""The package's layout: stages that import only earlier stages, no import cycle, one home for each
shared helper, and code versions that notice a changed source file."""

from __future__ import annotations

import ast
import re
import shutil
from pathlib import Path

import pytest

from clorg.core import code
from factories import TINY_BOOK, override_args
from clorg.core.paths import PACKAGE

# helpers that used to be written once per module; each now lives in clorg.core (atomic, checks, paths)
ONCE_DUPLICATED = ("_atomic_write", "_unit_rows", "_to_tensor", "_cpu_tensor", "_positive_int", "write_json",
                   "PROJECT_ROOT", "chi_drop")
ALLOWED = {("clorg/core/atomic.py", "write_json"), ("clorg/core/criteria.py", "chi_drop")}


def test_every_stage_is_a_folder_and_nothing_else_is_at_the_top():
    assert code.STAGES == ("core", "data", "train", "features", "analysis", "book")
    for stage in code.STAGES:
        assert (PACKAGE / stage / "__init__.py").is_file(), stage
    assert sorted(p.name for p in PACKAGE.glob("*.py")) == ["__init__.py"]
    stray = [p.name for p in PACKAGE.iterdir() if p.is_dir() and p.name not in code.STAGES and p.name != "__pycache__"]
    assert stray == []


def test_stage_of_a_module():
    assert code.stage("clorg") == "core" and code.stage("clorg.core.atomic") == "core"
    assert code.stage("clorg.train") == "train" and code.stage("clorg.train.loop") == "train"
    assert code.stage("clorg.analysis.metrics") == "analysis" and code.stage("clorg.book.chapters") == "book"


def test_import_graph_has_no_cycle_and_no_import_from_a_later_stage():
    graph = code.import_graph()
    assert set(graph) == set(code.module_files())
    assert {"clorg.core.config", "clorg.data", "clorg.train.loop", "clorg.features", "clorg.analysis.metrics",
            "clorg.book.chapters"} <= set(graph)
    assert code.cycles() == []
    order = {s: i for i, s in enumerate(code.STAGES)}
    later = [(m, dep) for m, deps in graph.items() for dep in deps
             if order[code.stage(dep)] > order[code.stage(m)]]
    assert later == [], "imports from a later stage: " + ", ".join(f"{m} -> {d}" for m, d in later)
    # the graph is read from the source, lazy imports inside functions included
    assert "clorg.core.config" in graph["clorg.data"]  # choose_profile_dataset imports it in its body
    assert "clorg.train.schedule" in graph["clorg.train.loop"]


def test_the_checks_catch_a_cycle_and_a_backward_import(tmp_path):
    package = tmp_path / "clorg"
    for stage in ("core", "train"):
        (package / stage).mkdir(parents=True)
        (package / stage / "__init__.py").write_text("")
    (package / "__init__.py").write_text("")
    (package / "core" / "a.py").write_text("from ..train import b\n")
    (package / "train" / "b.py").write_text("def f():\n    from clorg.core import a\n")
    graph = code.import_graph(package)
    assert graph["clorg.core.a"] == {"clorg.train.b"} and graph["clorg.train.b"] == {"clorg.core.a"}
    assert code.cycles(package) == [["clorg.core.a", "clorg.train.b", "clorg.core.a"]]


def _top_level_names(path: Path) -> set[str]:
    names = set()
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names.update(t.id for t in targets if isinstance(t, ast.Name))
    return names


def test_formerly_duplicated_helpers_have_one_home():
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = str(path.relative_to(PACKAGE.parent))
        found += [(rel, name) for name in _top_level_names(path) & set(ONCE_DUPLICATED)]
    assert set(found) == ALLOWED, f"defined outside their home: {sorted(set(found) - ALLOWED)}"


@pytest.mark.parametrize("stage", ["book", "analysis"])
def test_no_result_key_is_parsed_by_splitting_it(stage):
    """Metric and result names are fields of tidy records, never parsed back out of a string key."""
    offenders = []
    for path in sorted((PACKAGE / stage).rglob("*.py")):
        for lineno, line in enumerate(path.read_text().splitlines(), 1):
            if any(call in line for call in ('.split(" ")', '.split("=")', ".split()", ".split(' ')", ".split('=')")):
                offenders.append(f"{path.relative_to(PACKAGE.parent)}:{lineno}: {line.strip()}")
    assert offenders == []


def test_code_version_follows_the_source_of_the_closure(tmp_path):
    copy = tmp_path / "lib" / "clorg"
    shutil.copytree(PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__"))
    roots = ("clorg.train.loop",)
    real = code.code_version(roots)
    before = code.code_version(roots, package=copy)
    assert before == real  # paths are relative to the package's parent: a copy has the same version
    files = before["files"]
    assert "clorg/train/loop.py" in files and "clorg/train/schedule.py" in files and "clorg/data/cache.py" in files
    assert "clorg/core/paper.py" in files  # the schedule's constants decide numbers
    assert not {"clorg/core/paths.py", "clorg/core/config.py", "clorg/core/atomic.py"} & set(files)  # plumbing
    assert not any(f.startswith(("clorg/analysis/", "clorg/book/", "clorg/features/")) for f in files)
    assert code.changed_files(before, before) == []

    schedule = copy / "train" / "schedule.py"
    schedule.write_text(schedule.read_text() + "\n# a changed line\n")
    after = code.code_version(roots, package=copy)
    assert after["sha256"] != before["sha256"]
    assert code.changed_files(before, after) == ["clorg/train/schedule.py"]

    # a file outside the closure, or of the unversioned core, changes nothing
    for outside in (copy / "analysis" / "metrics.py", copy / "core" / "paths.py"):
        outside.write_text(outside.read_text() + "\n# another line\n")
    assert code.code_version(roots, package=copy) == after
    assert code.changed_files(None, after) == ["(not recorded)"]
    assert code.changed_files({"sha256": "old"}, after) == ["(not recorded)"]

    # the paper's schedule constants live in clorg.core but decide the learning rate: versioned
    constants = copy / "core" / "paper.py"
    constants.write_text(constants.read_text() + "\n# a changed constant\n")
    assert code.changed_files(after, code.code_version(roots, package=copy)) == ["clorg/core/paper.py"]


def test_how_runs_are_named_and_found_versions_no_result_and_no_run():
    """clorg.train.runs resolves and names runs (its decisions are in the run's name) and lays out their folders:
    every chapter loads runs through it, so versioned it would mark every stored result, and every run, as
    computed by older code at each change of it. What the analysis reads of a run (clorg.train.readers: which
    snapshots and epochs, the weights, the log), the model and the checkpoints stay versioned."""
    from clorg.book.chapters import CHAPTERS
    from clorg.train import runs

    versions = [code.code_version(c.code) for c in CHAPTERS.values() if c.code] + [runs.training_code()]
    assert all("clorg/train/runs.py" not in v["files"] for v in versions)
    features = code.code_version(CHAPTERS["04_metrics"].code)["files"]
    assert {"clorg/train/models.py", "clorg/train/checkpoint.py", "clorg/train/readers.py"} <= set(features)
    reading = [c for c in CHAPTERS.values() if c.code and "clorg.train.runs" in code.closure(c.code)]
    assert len(reading) >= 5 and all("clorg/train/readers.py" in code.code_version(c.code)["files"] for c in reading)
    # a record made while runs.py was versioned lists it: that is no change of the code
    current = runs.training_code()
    recorded = {"files": {**current["files"], "clorg/train/runs.py": "0" * 16}, "sha256": "older"}
    assert code.changed_files(recorded, current) == []


def test_changed_files_names_added_and_removed_files():
    old = {"files": {"clorg/a.py": "1", "clorg/b.py": "2"}, "sha256": "x"}
    new = {"files": {"clorg/a.py": "1", "clorg/c.py": "3"}, "sha256": "y"}
    assert code.changed_files(old, new) == ["clorg/b.py", "clorg/c.py"]
    with pytest.raises(KeyError, match="no module 'clorg.nothing'"):
        code.code_version(("clorg.nothing",))


# the modules that judge claims and show verdicts: their thresholds come from clorg.core.criteria only
VERDICT_MODULES = ("book/claims.py", "book/evidence.py", "book/verdicts.py", "book/report.py", "book/paper_numbers.py",
                   "book/summary.py", "book/across.py", "book/seeds.py")


@pytest.mark.parametrize("module", VERDICT_MODULES)
def test_no_threshold_lives_outside_the_criteria(module):
    """SPEC 7's thresholds are written once, in clorg.core.criteria: a float literal in a module that judges
    or shows a verdict would be a second copy (0.0, the sign of claim 4's gain, is no threshold, nor is
    claims.ON_THE_BAR, how near its bar a statistic lies on it)."""
    from clorg.book.claims import ON_THE_BAR

    tree = ast.parse((PACKAGE / module).read_text())
    floats = [(n.lineno, n.value) for n in ast.walk(tree)
              if isinstance(n, ast.Constant) and isinstance(n.value, float) and n.value != 0.0
              and not (module == "book/claims.py" and n.value == ON_THE_BAR)]
    assert floats == []


def _string_constants(tree: ast.AST) -> list[str]:
    """Every string constant of a module's code, docstrings left out (they may describe a file name)."""
    docstrings = {id(node.body[0].value) for node in ast.walk(tree)
                  if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
                  and node.body and isinstance(node.body[0], ast.Expr) and isinstance(node.body[0].value, ast.Constant)}
    return [n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str)
            and id(n) not in docstrings]


RUN_FILE_NAMES = ("encoder_e", "last.pt", "record.json", "config.json", "log.jsonl")
# the run folder's layout (clorg.train.runs.RunFolder) and what the analysis reads of it (clorg.train.readers)
RUN_FOLDER_MODULES = (PACKAGE / "train" / "runs.py", PACKAGE / "train" / "readers.py")


@pytest.mark.parametrize("name", RUN_FILE_NAMES)
def test_only_the_run_folder_knows_its_file_names(name):
    """A run folder's files (checkpoints/encoder_eNNNN.pt, checkpoints/last.pt, record.json, config.json,
    log.jsonl) are written and read through clorg.train.runs.RunFolder and the readers it delegates to
    (clorg.train.readers) alone: no other module of the package spells, formats or globs a name."""
    spelled = [str(p.relative_to(PACKAGE.parent)) for p in PACKAGE.rglob("*.py")
               if p not in RUN_FOLDER_MODULES and any(name in s for s in _string_constants(ast.parse(p.read_text())))]
    assert spelled == []
    assert any(name in s for p in RUN_FOLDER_MODULES for s in _string_constants(ast.parse(p.read_text())))


# module-level checks outside clorg.core that are not argument checks of the core's kinds: a dataset name is
# looked up in the data package's own registry (core cannot import it)
DOMAIN_CHECKS = {"data/__init__.py": {"_check_name"}}


def test_one_validation_vocabulary():
    """Argument checks are clorg.core.checks' (its rules serve the profile schema, the metrics, the
    augmentations and the heads): no module outside core/ defines a module-level _check_* helper of its own,
    but for the registry lookup listed above."""
    own = {}
    for p in PACKAGE.rglob("*.py"):
        rel = str(p.relative_to(PACKAGE))
        if rel.startswith("core/"):
            continue
        names = {n.name for n in ast.parse(p.read_text()).body
                 if isinstance(n, ast.FunctionDef) and n.name.startswith("_check")}
        names -= DOMAIN_CHECKS.get(rel, set())
        if names:
            own[rel] = sorted(names)
    assert own == {}


# what a key of a stored result may hold: identifiers, numbers and file paths, never words for a reader
RESULT_KEY = re.compile(r"[A-Za-z0-9_./+\-]+")


def _keys(value):
    if isinstance(value, dict):
        for k, v in value.items():
            yield k
            yield from _keys(v)
    elif isinstance(value, list):
        for v in value:
            yield from _keys(v)


def test_no_display_string_is_a_key_of_a_stored_result(results_root):
    """Every chapter's stored result, as the current code writes it (the whole book computed headless on a tiny
    profile), keys its fields by identifiers: what a reader sees ("ours mean", "in regime", "CH falls") is made
    by the presentation layer from them, never stored and read back."""
    import json

    from clorg.book.__main__ import main
    from clorg.book.chapters import CHAPTERS

    assert main(["--profile", "smoke", *override_args(TINY_BOOK)]) == 0
    stored = sorted(results_root.glob("*/*.json"))
    json_results = {name for c in CHAPTERS.values() for name in c.produces if name not in c.arrays}
    assert {p.stem for p in stored} >= json_results | {"summary"}
    shown = {(p.name, k) for p in stored for k in _keys(json.loads(p.read_text())) if not RESULT_KEY.fullmatch(k)}
    assert shown == set()
