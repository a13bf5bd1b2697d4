"""Where things live: the project root and the folders each kind of file goes to.

Each folder can be moved with an environment variable, so a scratch build (a reduced exercise of a
GPU profile, a test) never touches the real runs or results:

- ``$CLORG_DATA``: datasets (default ``data/``);
- ``$CLORG_CACHE``: decoded datasets (default ``~/.cache/clorg``);
- ``$CLORG_RUNS``: trained runs, their checkpoints and features (default ``runs/``);
- ``$CLORG_RESULTS``: the small results each chapter stores (default ``results/``);
- ``$CLORG_WEIGHTS``: trained weights brought back from GPU jobs, committed (default ``weights/``).

A relative value is read from the project root, whatever the process's working directory: the notebooks run
in ``notebooks/``, the scripts that start them in the root, and both must find the same folder.
"""

from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
CONFIG_DIR = ROOT / "configs"
PACKAGE = ROOT / "lib" / "clorg"


class NotAFolder(ValueError):
    """A folder variable names an existing file: every later step would fail on it with a bare OS error."""


def _from_env(variable: str, default: Path) -> Path:
    value = os.environ.get(variable)
    path = ROOT / Path(value).expanduser() if value else default  # an absolute value replaces ROOT
    if path.exists() and not path.is_dir():
        told = f"${variable} is {value!r}, which names" if value else f"${variable} is unset, and its default is"
        raise NotAFolder(f"{told} the file {path}; ${variable} must name a folder")
    return path


def data_root() -> Path:
    return _from_env("CLORG_DATA", ROOT / "data")


def cache_root() -> Path:
    return _from_env("CLORG_CACHE", Path.home() / ".cache" / "clorg")


def runs_root() -> Path:
    return _from_env("CLORG_RUNS", ROOT / "runs")


def results_root() -> Path:
    return _from_env("CLORG_RESULTS", ROOT / "results")


def weights_root() -> Path:
    return _from_env("CLORG_WEIGHTS", ROOT / "weights")


def shown(path: Path) -> str:
    """``path`` relative to the project root when it lies inside it (results/quick/x.json), else in full."""
    try:
        return str(Path(path).resolve().relative_to(ROOT))
    except ValueError:
        return str(path)
