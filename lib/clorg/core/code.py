"""The package's own source as data: its modules, the imports between them (read from the source with
:mod:`ast`, lazy imports inside functions included) and the hashes of their files.

Two uses, one reading of the source:

- the layout test checks that no import runs from an earlier stage into a later one (:data:`STAGES`)
  and that the import graph has no cycle;
- a run or a stored result records :func:`code_version` of the modules that compute it (their
  transitive imports, without the plumbing of ``clorg.core``), so that a number computed by code that
  has changed since is never shown as if this commit had computed it (:func:`changed_files`).
"""

from __future__ import annotations

import ast
import hashlib
from functools import lru_cache
from pathlib import Path

from .paths import PACKAGE

# The pipeline's stages in order; a module may import its own stage and earlier ones only.
STAGES = ("core", "data", "train", "features", "analysis", "book")
# Plumbing that changes no number (paths, profiles' schema, atomic writes, locks, provenance, this module):
# left out of code versions, so that adding a profile key does not mark every run as trained by older code.
# The rest of clorg.core decides numbers and is versioned: the paper's schedule constants (paper), the
# dtype policy of every metric (checks) and the choice of bf16 or float32 (devices).
# clorg.train.runs too is left out: what it decides about how a run trains, the resolved configuration, is
# hashed into the run's name, which every result records; the rest is the run folder's layout and its readers.
# Versioned, it put itself into every chapter's code (the analysis loads runs through it), so that a change to
# how a run is named or found marked every stored result and every run as computed by older code. What decides
# which weights and epochs the analysis reads is clorg.train.readers, versioned (runs.py delegates to it).
# clorg.core.variants too: it names a variant's results folder and writes how to repeat it (commands, a
# notebook's parameters); the overrides themselves are in the hashed configuration. Versioned, a change to
# how a command is printed marked every stored result and run as computed by older code (ec6a797).
NOT_VERSIONED = ("clorg", "clorg.core", "clorg.core.paths", "clorg.core.config", "clorg.core.atomic",
                 "clorg.core.locks", "clorg.core.provenance", "clorg.core.code", "clorg.core.variants",
                 "clorg.train.runs")


def module_files(package: Path = PACKAGE) -> dict[str, Path]:
    """Every module of the package, ``{"clorg.analysis.metrics": path}`` (a package is its ``__init__``)."""
    out = {}
    for path in sorted(package.rglob("*.py")):
        parts = path.relative_to(package.parent).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def stage(module: str) -> str:
    """The stage a module belongs to: its folder under ``clorg`` (top-level modules are ``core``)."""
    parts = module.split(".")
    return parts[1] if len(parts) > 2 or (len(parts) == 2 and parts[1] in STAGES) else "core"


def _resolve(module: str, is_package: bool, node: ast.ImportFrom) -> str:
    if node.level == 0:
        return node.module or ""
    base = module.split(".") if is_package else module.split(".")[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def imports_of(module: str, path: Path, known: set[str]) -> set[str]:
    """The package's modules that ``module`` (at ``path``) imports anywhere in its source."""
    tree = ast.parse(path.read_text(), filename=str(path))
    is_package = path.name == "__init__.py"
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = _resolve(module, is_package, node)
            # `from pkg import name`: a submodule when one is called so, else a name of pkg itself
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names]
        else:
            continue
        for target in targets:
            while target and target not in known:  # `import clorg.a.b` also names clorg.a.b's parents
                target = target.rpartition(".")[0]
            if target and target != module:
                found.add(target)
    return found


@lru_cache(maxsize=4)
def _graph(package: Path) -> dict[str, frozenset[str]]:
    files = module_files(package)
    known = set(files)
    return {m: frozenset(imports_of(m, p, known)) for m, p in files.items()}


def import_graph(package: Path = PACKAGE) -> dict[str, frozenset[str]]:
    """``{module: modules it imports}`` for the whole package."""
    return _graph(package)


def closure(roots, package: Path = PACKAGE) -> set[str]:
    """``roots`` and every module they import, directly or not."""
    graph = import_graph(package)
    seen, todo = set(), list(roots)
    while todo:
        m = todo.pop()
        if m in seen:
            continue
        if m not in graph:
            raise KeyError(f"no module {m!r} in {package}")
        seen.add(m)
        todo.extend(graph[m])
    return seen


def cycles(package: Path = PACKAGE) -> list[list[str]]:
    """Import cycles, each as a list of modules (empty when the graph is acyclic)."""
    graph, found, state = import_graph(package), [], {}

    def visit(m, path):
        state[m] = "open"
        for n in sorted(graph[m]):
            if state.get(n) == "open":
                found.append(path[path.index(n):] + [n])
            elif n not in state:
                visit(n, path + [n])
        state[m] = "done"

    for m in sorted(graph):
        if m not in state:
            visit(m, [m])
    return found


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16]


def code_version(roots, package: Path = PACKAGE) -> dict:
    """The source that computes something: ``{"files": {relative path: sha256[:16]}, "sha256": ...}`` over
    ``roots`` and their transitive imports, without the plumbing modules of :data:`NOT_VERSIONED`."""
    files = module_files(package)
    mods = sorted(m for m in closure(roots, package) if m not in NOT_VERSIONED)
    hashes = {str(files[m].relative_to(package.parent)): _sha(files[m]) for m in mods}
    overall = hashlib.sha256("".join(f"{k} {v}\n" for k, v in sorted(hashes.items())).encode()).hexdigest()[:16]
    return {"files": hashes, "sha256": overall}


def changed_files(recorded: dict | None, current: dict, package: Path = PACKAGE) -> list[str]:
    """The files whose source differs between a recorded code version and the current one (added and
    removed files included); ``["(not recorded)"]`` when the record predates code versions. A file of a
    module now in :data:`NOT_VERSIONED` is no change: a record made while it was versioned still lists it."""
    if not recorded or "files" not in recorded:
        return ["(not recorded)"]
    if recorded.get("sha256") == current["sha256"]:
        return []
    files = module_files(package)
    plumbing = {str(files[m].relative_to(package.parent)) for m in NOT_VERSIONED if m in files}
    old, new = recorded["files"], current["files"]
    return sorted(f for f in set(old) | set(new) if old.get(f) != new.get(f) and f not in plumbing)
