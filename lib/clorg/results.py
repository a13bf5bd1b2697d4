"""The results store: the small artifacts of each profile (metrics, tables, t-SNE coordinates) in
results/<profile>/, so the report collects them and a book renders them without recomputing.

:func:`cached` is how every analysis notebook gets its numbers: it returns what is stored when it was
computed for the same profile and data, and computes (then stores) only what is missing. A stored file
records where it came from (profile, dataset checksum, configuration hash, commit, hardware, wall
time), which is what the report shows beside each number.

- A file of another profile or dataset is an error that names the file and the notebook producing it:
  mixing numbers of two datasets silently is the one thing a results store must never do.
- The same profile and data with a changed configuration (an override, an edited YAML) or written in
  an older result format (:data:`FORMAT`) is recomputed and overwritten, with a printed note: that is a
  user changing a parameter on purpose, or code that changed.

Writes are atomic (temporary file, then rename), so an interrupted notebook loses nothing stored.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

import numpy as np

PROJECT_ROOT = Path(__file__).resolve().parents[2]
# the layout of what chapters store: bump it when a chapter changes the shape of its result, so files
# written by older code are recomputed instead of read as if they had the new shape
FORMAT = 1


class ResultsMismatch(ValueError):
    """A stored result belongs to another profile or dataset than the one asked for."""


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


def _atomic_write(path: Path, write: Callable) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        with open(tmp, "wb") as fh:
            write(fh)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def save_json(profile: str, name: str, payload: dict, root: Path | None = None) -> Path:
    """Write ``payload`` to results/<profile>/<name>.json atomically; returns the path."""
    path = results_dir(profile, root) / f"{name}.json"
    text = json.dumps(_plain(payload), indent=1, allow_nan=True).encode()
    _atomic_write(path, lambda fh: fh.write(text))
    return path


def load_json(profile: str, name: str, root: Path | None = None) -> dict | None:
    path = results_dir(profile, root) / f"{name}.json"
    return json.loads(path.read_text()) if path.is_file() else None


# ============================================ fingerprints ============================================


def fingerprint(cfg: dict, data) -> dict:
    """What a result depends on: the profile, the data (by checksum) and the whole configuration.

    ``data`` is a :class:`clorg.data.DatasetChoice` (None for a result that reads no data); only its
    identity enters (which preferred
    datasets were skipped, and why, differs between machines and does not change the numbers)."""
    config = {k: v for k, v in cfg.items() if k != "profile"}
    config_sha = hashlib.sha256(json.dumps(config, sort_keys=True, default=str).encode()).hexdigest()
    if data is None:  # a result that reads no dataset (the 2-D toy figure)
        identity = None
    else:
        summary = data.summary()
        identity = {k: summary[k] for k in ("name", "sha256", "train_images", "test_images")}
    return {"profile": cfg["profile"]["name"], "data": identity, "config_sha256": config_sha[:16], "format": FORMAT}


def _check_identity(path: Path, stored: dict, wanted: dict, producer: str) -> None:
    for key, what in (("profile", "profile"), ("data", "dataset")):
        if stored.get(key) != wanted[key]:
            raise ResultsMismatch(
                f"{path} was computed for {what} {stored.get(key)!r}, but this notebook runs {what} "
                f"{wanted[key]!r}. Results of two {what}s must not be mixed: move or delete {path}, then "
                f"re-run {producer} on this profile to recompute it")


def _stale(stored: dict, wanted: dict, name: str) -> bool:
    """Whether a stored result of the right profile and data must be recomputed, saying why."""
    if stored.get("config_sha256") != wanted["config_sha256"]:
        print(f"{name}: stored with another configuration of profile {wanted['profile']!r}; recomputing")
        return True
    if stored.get("format") != wanted["format"]:
        print(f"{name}: stored by older code (result format {stored.get('format')}, now {wanted['format']}); "
              f"recomputing")
        return True
    return False


# ================================================ store ===============================================


def _meta(fp: dict, seconds: float) -> dict:
    from . import provenance

    return {"fingerprint": fp, "saved_at": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "commit": provenance.git_commit(), "hardware": provenance.describe_hardware(),
            "compute_seconds": round(seconds, 1)}


def stored(cfg: dict, data, name: str, *, producer: str, root: Path | None = None) -> dict | None:
    """The stored entry ``{"meta": ..., "result": ...}`` of ``name`` for this profile and data, None when
    absent or computed with another configuration; :class:`ResultsMismatch` for another profile/data."""
    path = results_dir(cfg["profile"]["name"], root) / f"{name}.json"
    if not path.is_file():
        return None
    try:
        entry = json.loads(path.read_text())
        meta, result = entry["meta"], entry["result"]
        fp = meta["fingerprint"]
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        raise ResultsMismatch(f"{path} is not a results file of this project ({exc!r}); delete it and "
                              f"re-run {producer} to recompute it") from exc
    wanted = fingerprint(cfg, data)
    _check_identity(path, fp, wanted, producer)
    if _stale(fp, wanted, path.name):
        return None
    return {"meta": meta, "result": result}


def cached(cfg: dict, data, name: str, compute: Callable[[], dict], *, producer: str,
           recompute: bool = False, root: Path | None = None) -> dict:
    """``compute()``'s result for this profile and data, read from results/<profile>/<name>.json when it
    is there (see the module docstring), else computed, stored with its provenance and returned.

    ``compute`` returns JSON-able data (numpy values are converted); ``producer`` names the notebook
    or command that produces this result, for error messages."""
    if not recompute:
        entry = stored(cfg, data, name, producer=producer, root=root)
        if entry is not None:
            m = entry["meta"]
            print(f"read results/{cfg['profile']['name']}/{name}.json (computed {m['saved_at']} at commit "
                  f"{m['commit'][:12]}); pass recompute=True to compute it again")
            return entry["result"]
    t0 = time.perf_counter()
    result = _plain(compute())
    meta = _meta(fingerprint(cfg, data), time.perf_counter() - t0)
    save_json(cfg["profile"]["name"], name, {"meta": meta, "result": result}, root)
    return result


def cached_arrays(cfg: dict, data, name: str, compute: Callable[[], dict[str, np.ndarray]], *, producer: str,
                  recompute: bool = False, root: Path | None = None) -> dict[str, np.ndarray]:
    """As :func:`cached`, for named numeric arrays (e.g. t-SNE coordinates), stored as <name>.npz."""
    profile = cfg["profile"]["name"]
    path = results_dir(profile, root) / f"{name}.npz"
    wanted = fingerprint(cfg, data)
    if path.is_file() and not recompute:
        try:
            with np.load(path, allow_pickle=False) as saved:
                meta = json.loads(str(saved["__meta__"]))
                arrays = {k: saved[k] for k in saved.files if k != "__meta__"}
        except (OSError, ValueError, KeyError) as exc:
            raise ResultsMismatch(f"{path} cannot be read as a results archive ({exc}); delete it and re-run "
                                  f"{producer} to recompute it") from exc
        _check_identity(path, meta["fingerprint"], wanted, producer)
        if not _stale(meta["fingerprint"], wanted, path.name):
            print(f"read results/{profile}/{name}.npz (computed {meta['saved_at']}); pass recompute=True "
                  f"to compute it again")
            return arrays
    t0 = time.perf_counter()
    arrays = {k: np.asarray(v) for k, v in compute().items()}
    meta = _meta(wanted, time.perf_counter() - t0)
    _atomic_write(path, lambda fh: np.savez_compressed(fh, __meta__=np.array(json.dumps(meta)), **arrays))
    return arrays
