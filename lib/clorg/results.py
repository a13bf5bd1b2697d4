"""The results store: small artifacts of each profile (metrics, tables) as JSON in results/<profile>/.

Notebooks write what they computed here, so the report can collect it without re-running them.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def results_dir(profile: str, root: Path | None = None) -> Path:
    env = os.environ.get("CLORG_RESULTS")
    base = Path(root) if root else (Path(env) if env else PROJECT_ROOT / "results")
    return base / profile


def _plain(value):
    """numpy scalars and arrays as plain JSON values."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return value


def save_json(profile: str, name: str, payload: dict, root: Path | None = None) -> Path:
    """Write ``payload`` to results/<profile>/<name>.json atomically; returns the path."""
    folder = results_dir(profile, root)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.json"
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(_plain(payload), indent=1, allow_nan=True))
    os.replace(tmp, path)
    return path


def load_json(profile: str, name: str, root: Path | None = None) -> dict | None:
    path = results_dir(profile, root) / f"{name}.json"
    return json.loads(path.read_text()) if path.is_file() else None
