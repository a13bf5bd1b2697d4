"""The results store: the small artifacts of each chapter (records, tables, t-SNE coordinates) in
results/<profile>/, so the report collects them and a book renders them without recomputing.

:func:`cached` is how every chapter gets its numbers: it returns what is stored when it is still
current, and computes (then stores) it otherwise. A stored file records what it depends on, its
*fingerprint*: the profile, the data (by checksum), the hash of the profile sections its chapter
reads (``Chapter.sections`` in :mod:`clorg.book.chapters`: changing the t-SNE sample size does not
recompute the classifiers; a switch added since, at the value that does what the code did before it,
is left out: :data:`clorg.core.config.ADDED_SWITCHES`), the result format, the version of the code that
computed it (:func:`clorg.core.code.code_version` of ``Chapter.code``) and the state of the runs it was
computed from (when each finished, and by which training code). Besides, the commit, hardware and wall time.

What happens to a stored file (:func:`status` decides, the same check everywhere, including the
decision to skip a GPU chapter on a machine without a GPU):

- another profile or dataset: an error that names the file and the chapter producing it. Mixing the
  numbers of two datasets silently is the one thing a results store must never do;
- another configuration of the chapter's sections, an older result format, code changed since, or runs
  retrained since: recomputed, with a printed note, where this machine can compute it. Where it cannot
  (a GPU profile on a machine without a GPU), a result of older code is still shown, and the chapter
  and the execution-status page say which files changed (:func:`clorg.book.chapters.warnings`);
- a file that cannot be read (truncated, not JSON, foreign): reported with its path, then recomputed,
  or refused with the command that produces it.

Writes are atomic (:mod:`clorg.core.atomic`) and one process at a time computes a result
(:mod:`clorg.core.locks`: a second one waits, then reads what the first stored). A long result may be
computed in parts (:class:`Parts`, ``<name>.parts.json``), so that an interrupted computation resumes.
"""

from __future__ import annotations

import hashlib
import json
import time
import zipfile
import zlib
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

import numpy as np

from ..core import code, locks, paths, provenance, variants
from ..core.atomic import remove_leftovers, write_atomic, write_json
from ..core.config import ADDED_SWITCHES

# the layout of what chapters store: bump it when a chapter changes the shape of its result, so files
# written by older code are recomputed instead of read as if they had the new shape.
# 2: tidy records (clorg.analysis.records), fingerprints per chapter with code versions and run states
FORMAT = 2


class ResultsMismatch(ValueError):
    """A stored result belongs to another profile or dataset than the one asked for."""


class UnreadableResult(ValueError):
    """A stored result that cannot be read, on a machine that cannot recompute it."""


class NeedsGpu(UnreadableResult):
    """A result of a GPU profile that is missing or unreadable on a machine without a GPU: a refusal of the
    profile on this machine (``python -m clorg.book`` exits 2, as ``python -m clorg.train`` does), not damage."""


def results_dir(profile: str, root: Path | None = None) -> Path:
    return Path(root) / profile if root else paths.results_root() / profile


def plain(value):
    """numpy scalars and arrays, tuples and non-string keys as plain JSON values."""
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return value


# ============================================ fingerprints ============================================


@dataclass(frozen=True)
class Source:
    """What a stored result depends on, besides the profile and the data (from the chapter registry)."""

    reads: tuple[str, ...]        # profile sections
    code: tuple[str, ...]         # modules that compute it (their imports included)
    runs: list | None = None      # RunResult-like objects or None: runs it reads (their state is recorded)


def _runs_state(runs) -> dict | None:
    if runs is None:
        return None
    return {r.folder.name: {"finished_at": r.record.get("finished_at"), "code": r.record.get("code")}
            for r in runs}


def _hashed_section(name: str, section):
    """A profile section as its results' fingerprint hashes it: without the switches added since results
    were stored, where they are at the value that does what the code did before them (ADDED_SWITCHES)."""
    if not isinstance(section, dict):
        return section
    return {k: v for k, v in section.items() if ADDED_SWITCHES.get((name, k), object()) != v}


def fingerprint(cfg: dict, data, source: Source) -> dict:
    """What a result depends on (see the module docstring). ``data`` is a DatasetChoice (None for a
    result that reads no data): only its identity enters, not why a preferred dataset was skipped."""
    sections = {s: _hashed_section(s, cfg[s]) for s in source.reads}
    config_sha = hashlib.sha256(json.dumps(sections, sort_keys=True, default=str).encode()).hexdigest()
    if data is None:
        identity = None
    else:
        summary = data.summary()
        identity = {k: summary[k] for k in ("name", "sha256", "train_images", "test_images")}
    return {"profile": variants.folder_name(cfg), "data": identity, "sections": list(source.reads),
            "config_sha256": config_sha[:16], "format": FORMAT, "code": code.code_version(source.code),
            "runs": _runs_state(source.runs)}


@dataclass
class Status:
    """The state of one stored result: ``kind`` is "current", "missing", "unreadable", "config",
    "format", "code" (computed by code changed since) or "runs" (its runs were retrained since);
    ``detail`` says why; ``entry`` is the stored {"meta", "result"} when it could be read."""

    kind: str
    detail: str = ""
    entry: dict | None = None
    changed: tuple[str, ...] = ()

    @property
    def usable(self) -> bool:
        """Readable and of this profile's configuration and format (perhaps from older code)."""
        return self.kind in ("current", "code", "runs")


def _path(cfg: dict, name: str, suffix: str, root: Path | None) -> Path:
    return results_dir(variants.folder_name(cfg), root) / f"{name}.{suffix}"


def _read(path: Path) -> tuple[dict, object]:
    """(meta, result) of a stored .json or .npz; ValueError naming the problem when unreadable."""
    try:
        if path.suffix == ".json":
            entry = json.loads(path.read_text())
            return entry["meta"], entry["result"]
        with np.load(path, allow_pickle=False) as saved:
            meta = json.loads(str(saved["__meta__"]))
            return meta, {k: saved[k] for k in saved.files if k != "__meta__"}
    # a truncated or damaged .npz fails in zipfile or zlib, whose errors are not ValueErrors
    except (OSError, ValueError, KeyError, TypeError, EOFError, zipfile.BadZipFile, zlib.error) as exc:
        raise ValueError(f"{type(exc).__name__}: {exc}") from exc


def recorded_data(folder: Path) -> dict | None:
    """The identity of the data the results stored in ``folder`` were computed on, as their fingerprints
    record it (name, sha256, image counts); None when no stored result there names one (nothing computed
    yet, or only results that read no data)."""
    for path in sorted(Path(folder).glob("*.json")) + sorted(Path(folder).glob("*.npz")):
        try:
            identity = _read(path)[0]["fingerprint"]["data"]
        except (ValueError, KeyError, TypeError):  # unreadable, or not a stored result
            continue
        if isinstance(identity, dict) and {"name", "sha256"} <= identity.keys():  # None: a result reads no data
            return identity
    return None


def status(cfg: dict, data, name: str, source: Source, *, producer: str, suffix: str = "json",
           root: Path | None = None) -> Status:
    """The state of results/<profile>/<name>.<suffix> against what it would be computed from now."""
    path = _path(cfg, name, suffix, root)
    if not path.is_file():
        return Status("missing", f"{paths.shown(path)} does not exist")
    try:
        meta, result = _read(path)
        stored = meta["fingerprint"]
        if not isinstance(stored, dict):
            raise TypeError(f"its fingerprint is a {type(stored).__name__}, not a mapping")
    except (ValueError, KeyError, TypeError) as exc:
        return Status("unreadable", f"{paths.shown(path)} cannot be read ({exc})")
    wanted = fingerprint(cfg, data, source)
    for key, what in (("profile", "profile"), ("data", "dataset")):
        if stored.get(key) != wanted[key]:
            # the usual cause is not the results but the data this build found: a profile's dataset list falls
            # back (cifar10, then fashion-mnist, ...) when $CLORG_DATA does not hold its first choice
            fix = f"move or delete {path}, then re-run {producer} on this profile to recompute it"
            fix = (f"If this build should have read the same data, it found another: check $CLORG_DATA (now "
                   f"{paths.data_root()}) and build again, nothing needs deleting. Otherwise {fix}"
                   if key == "data" else fix[0].upper() + fix[1:])
            raise ResultsMismatch(f"{path} was computed for {what} {stored.get(key)!r}, but this chapter runs {what} "
                                  f"{wanted[key]!r}. Results of two {what}s must not be mixed. {fix}")
    entry = {"meta": meta, "result": result}
    if stored.get("format") != FORMAT:
        return Status("format", f"stored by older code (result format {stored.get('format')}, now {FORMAT})")
    if stored.get("config_sha256") != wanted["config_sha256"]:
        return Status("config", f"stored with another setting of the profile sections {list(source.reads)}")
    changed = code.changed_files(stored.get("code"), wanted["code"])
    if changed:
        return Status("code", "computed by older code: these files changed since: " + ", ".join(changed),
                      entry, tuple(changed))
    old_runs, new_runs = stored.get("runs"), wanted["runs"]
    if old_runs is not None and new_runs is not None:
        retrained = sorted(r for r in set(old_runs) | set(new_runs)
                           if (old_runs.get(r) or {}).get("finished_at") != (new_runs.get(r) or {}).get("finished_at"))
        if retrained:
            return Status("runs", "computed from runs that were retrained since: " + ", ".join(retrained),
                          entry, tuple(retrained))
    return Status("current", "", entry)


# ================================================ store ===============================================


def _meta(fp: dict, seconds: float) -> dict:
    return {"fingerprint": fp, "saved_at": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "commit": provenance.git_commit(), "hardware": provenance.describe_hardware(),
            "compute_seconds": round(seconds, 1)}


def _write(path: Path, meta: dict, result) -> None:
    if path.suffix == ".json":
        write_json(path, {"meta": meta, "result": plain(result)})
    else:
        arrays = {k: np.asarray(v) for k, v in result.items()}
        write_atomic(path, lambda fh: np.savez_compressed(fh, __meta__=np.array(json.dumps(meta)), **arrays))


class Parts:
    """The finished parts of a result still being computed, in ``results/<profile>/<name>.parts.json``, so
    that a long computation cut off (a GPU job's timeout, Ctrl-C, a crash) resumes from its last finished
    part rather than from the start. The file keeps the fingerprint the parts were computed under: parts of
    another fingerprint (other settings, code, data or runs) are not reused. :func:`cached` removes the
    file once the whole result is stored. ``get(key)``: a finished part or None; ``save(key, value)``: one
    more, written at once (atomically)."""

    def __init__(self, path: Path, fp: dict, fresh: bool = False):
        self.path, self._fp = path, json.loads(json.dumps(fp, sort_keys=True, default=str))
        self.done, self.hardware, self.resumed = {}, {}, 0  # hardware: where each part was computed
        self._here = provenance.describe_hardware()
        if fresh or not path.is_file():
            return
        try:
            stored = json.loads(path.read_text())
            same = stored["fingerprint"] == self._fp
            parts, hardware = dict(stored["parts"]), dict(stored.get("hardware") or {})
        except (OSError, ValueError, KeyError, TypeError) as exc:
            print(f"{paths.shown(path)} cannot be read ({type(exc).__name__}: {exc}): starting from the first part")
            return
        if same:
            self.done, self.hardware, self.resumed = parts, hardware, len(parts)
            print(f"{paths.shown(path)}: resuming after {len(parts)} finished part(s)")
        else:
            print(f"{paths.shown(path)}: computed under other settings, code, data or runs: not reused")

    def get(self, key: str):
        return self.done.get(key)

    def save(self, key: str, value) -> None:
        self.done[key] = plain(value)
        self.hardware[key] = self._here
        write_json(self.path, {"fingerprint": self._fp, "parts": self.done, "hardware": self.hardware})

    def summary(self) -> dict:
        """What the stored result records of its parts: how many, how many an earlier computation
        finished, and every machine that computed some."""
        return {"count": len(self.done), "resumed": self.resumed, "hardware": sorted(set(self.hardware.values()))}


PARTS_SUFFIX = ".parts.json"  # a file of parts: an unfinished computation's, not a stored result


def parts_path(results: Path, name: str) -> Path:
    """Where :class:`Parts` of the result ``name`` are kept in the results folder ``results``."""
    return Path(results) / f"{name}{PARTS_SUFFIX}"


# how a reader asks for a result computed again, in each place one may ask
FRESH_SPELLINGS = "fresh = True in a notebook, FRESH=1 to make, --fresh to a command"


def cached(cfg: dict, data, name: str, compute: Callable[..., object], source: Source, *, producer: str,
           command: str, recompute: bool = False, can_compute: bool = True, arrays: bool = False,
           root: Path | None = None, why_recompute: str | None = None,
           resumable: bool = False):
    """``compute()``'s result for this profile and data: read from results/<profile>/<name>.json (``.npz``
    with ``arrays=True``: a dict of numeric arrays) when it is current, else computed, stored with its
    provenance and returned. See the module docstring for what is recomputed and when.

    ``producer`` names the chapter (for errors), ``command`` the shell command that produces the result;
    ``can_compute=False`` (a GPU profile on a machine without a GPU) never computes: a missing or
    unreadable result is then an error with that command, and one of older code is returned as it is.
    ``why_recompute`` is what the page prints when a current result is computed again (``recompute``).
    ``resumable``: ``compute(parts)`` is given the :class:`Parts` finished by an earlier, interrupted
    computation of this result (none with ``recompute``), and saves each part it finishes there."""
    suffix = "npz" if arrays else "json"
    path = _path(cfg, name, suffix, root)

    def current() -> Status:
        return status(cfg, data, name, source, producer=producer, suffix=suffix, root=root)

    st = current()
    if not recompute and st.kind == "current":
        m = st.entry["meta"]
        print(f"read {paths.shown(path)} (computed {m.get('saved_at', '?')} at commit {str(m.get('commit'))[:12]})")
        if resumable:  # parts of an interrupted recomputation (FRESH=1) of a result still current: not needed
            parts_path(path.parent, name).unlink(missing_ok=True)
        return st.entry["result"]
    if not can_compute:
        if st.usable:
            print(f"read {paths.shown(path)}: {st.detail or 'current'}; this machine cannot recompute it")
            return st.entry["result"]
        raise NeedsGpu(f"{st.detail}, and this machine cannot compute it (profile {cfg['profile']['name']!r} "
                       f"needs a GPU). Produce it with `{command}` on a machine with a GPU, or here with "
                       f"--allow-cpu added (at full size: hours to days on a CPU; --override shrinks it)")
    with locks.exclusive(path.with_name(f".{path.name}.lock"), f"result {paths.shown(path)}"):
        st = current()  # another process may have stored it while this one waited
        if not recompute and st.kind == "current":
            return st.entry["result"]
        why = f"{st.detail}; computing it" if st.kind != "current" else \
            why_recompute or f"recomputing it, as asked ({FRESH_SPELLINGS})"
        print(f"{name}: {why}", flush=True)
        remove_leftovers(path.parent, {path.name, parts_path(path.parent, name).name})  # of one killed mid-write
        t0, fp = time.perf_counter(), fingerprint(cfg, data, source)
        if resumable:
            parts = Parts(parts_path(path.parent, name), fp, fresh=recompute)
            result = compute(parts)
        else:
            result = compute()
        meta = _meta(fp, time.perf_counter() - t0)
        if resumable:  # the seconds are this computation's; the parts say where each was computed
            meta["parts"] = parts.summary()
        _write(path, meta, result)
        if resumable:
            parts.path.unlink(missing_ok=True)
    return plain(result) if not arrays else {k: np.asarray(v) for k, v in result.items()}

