"""Did a change of code change a number? Every stored number of two results folders, side by side.

A refactor promises "the same numbers as before". :func:`compare` holds it to that: it reads every JSON
and ``.npz`` file the chapters stored under two results folders (one computed by the old code, one by the
new, from the same runs or from runs each code trained), and lists each value that differs, each value
found on one side only, and, for two runs folders, each checkpoint whose bytes differ.

What is matched, and how:

- a file by its path below the results folder; a folder that holds nothing but one folder (one profile's
  or variant's results, whose name holds a hash of its settings) stands for that folder, so two variant
  folders named differently still match;
- a value by its path of keys in the file; a record (a dict with a ``value``) by what it measures (its
  other fields), not by its position, so records written in another order still match;
- the files' ``meta`` blocks and the keys in :data:`PROVENANCE` (when, by which commit, how fast) are
  expected to differ and are not compared; but two builds whose results name different data (another
  dataset, or another copy of it: the name and checksum the fingerprints of a profile's results folder
  record) cannot be compared at all, since every number would differ for a reason that is not the code.
  The check reads the folder compared (one profile's results); a side whose results name no data is not
  checked, and the report says what each side read.

``python ci/compare_results.py BEFORE AFTER [--runs BEFORE_RUNS AFTER_RUNS]`` prints the report.
"""

from __future__ import annotations

import hashlib
import json
import math
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..analysis.records import FIELDS
from .store import PARTS_SUFFIX, recorded_data

# Keys whose values say when, where, by which commit or how fast something was computed: they differ
# between any two builds and say nothing about the numbers.
PROVENANCE = frozenset({"meta", "__meta__", "commit", "saved_at", "trained_at", "finished_at", "seconds",
                        "compute_seconds", "build_seconds", "train_seconds", "images_per_s", "written"})


class Uncomparable(ValueError):
    """Two folders that cannot be compared: one is missing, holds no stored result, or a file is unreadable."""


@dataclass
class Comparison:
    """What :func:`compare` found: ``changed`` as (where, before, after); ``only_before`` and
    ``only_after`` as where; ``checkpoints`` as (file, how it differs)."""
    folders: tuple[str, str] = ("", "")
    data: tuple[str, str] = ("not recorded", "not recorded")
    compared: int = 0
    changed: list[tuple[str, object, object]] = field(default_factory=list)
    only_before: list[str] = field(default_factory=list)
    only_after: list[str] = field(default_factory=list)
    checkpoints_compared: int = 0
    checkpoints: list[tuple[str, str]] = field(default_factory=list)

    @property
    def same(self) -> bool:
        return not (self.changed or self.only_before or self.only_after or self.checkpoints)


def _record_key(record: dict) -> str:
    """What a record measures: its fields of :data:`clorg.analysis.records.FIELDS` but the value."""
    return "[" + ",".join(f"{k}={record[k]}" for k in FIELDS if k in record and k != "value") + "]"


def _leaves(obj, path: str):
    """(path, value) of every leaf of a JSON value, records keyed by what they measure."""
    if isinstance(obj, dict):
        for k, v in obj.items():
            if k not in PROVENANCE:
                yield from _leaves(v, f"{path}/{k}")
    elif isinstance(obj, list):
        seen: dict[str, int] = {}
        for i, v in enumerate(obj):
            if isinstance(v, dict) and "value" in v:
                key = _record_key(v)
                seen[key] = seen.get(key, 0) + 1  # two records that measure alike stay two values
                where = f"{path}{key}" + (f"#{seen[key]}" if seen[key] > 1 else "")
                yield where, v["value"]
                # fields beyond a record's (a claim condition's threshold, whether it holds) are values too
                yield from _leaves({k: x for k, x in v.items() if k not in FIELDS}, where)
            else:
                yield from _leaves(v, f"{path}[{i}]")
    else:
        yield path, obj


def _only_folder(folder: Path) -> Path:
    inside = list(folder.iterdir())
    return _only_folder(inside[0]) if len(inside) == 1 and inside[0].is_dir() else folder


def stored_values(results: Path) -> dict[str, object]:
    """Every stored value below ``results`` by where it is (see the module docstring)."""
    results = _only_folder(Path(results))
    out: dict[str, object] = {}
    for p in sorted(results.rglob("*")):
        if p.name.endswith(PARTS_SUFFIX):  # an unfinished computation's, not a stored result
            continue
        name = p.relative_to(results).as_posix()
        try:
            if p.suffix == ".json":
                out.update(_leaves(json.loads(p.read_text()), name))
            elif p.suffix == ".npz":
                with np.load(p, allow_pickle=False) as z:
                    out.update((f"{name}:{k}", z[k]) for k in z.files if k not in PROVENANCE)
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile, zlib.error) as exc:
            raise Uncomparable(f"{p} cannot be read ({type(exc).__name__}: {exc})") from exc
    if not out:
        raise Uncomparable(f"{results} holds no stored result (.json or .npz): is it the results folder of a build?")
    return out


def _equal(a, b) -> bool:
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        a, b = np.asarray(a), np.asarray(b)
        return a.shape == b.shape and a.dtype == b.dtype and bool(
            np.array_equal(a, b, equal_nan=a.dtype.kind in "fc"))
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return type(a) is type(b) and a == b


def _file_hashes(runs: Path) -> dict[str, str]:
    out = {}
    for p in sorted(runs.rglob("*.pt")):
        with open(p, "rb") as fh:
            out[str(p.relative_to(runs))] = hashlib.file_digest(fh, "sha256").hexdigest()
    return out


def compare(before: Path, after: Path, runs: tuple[Path, Path] | None = None) -> Comparison:
    """Every stored value of results folder ``before`` against ``after``; with ``runs`` (two runs
    folders), every checkpoint's bytes too."""
    for folder in (before, after, *(runs or ())):
        if not Path(folder).is_dir():
            raise Uncomparable(f"{folder} is not a folder: give two results folders (and two runs folders)")
    a, b = stored_values(Path(before)), stored_values(Path(after))
    read = [recorded_data(_only_folder(Path(f))) for f in (before, after)]
    if None not in read and {(d["name"], d["sha256"]) for d in read} != {(read[0]["name"], read[0]["sha256"])}:
        raise Uncomparable("the two builds read different data: "
                           + ", ".join(f"{side} {d['name']} (sha256 {d['sha256'][:12]})"
                                       for side, d in zip(("before", "after"), read))
                           + "; build both from the same copy (set CLORG_DATA to it for both)")
    out = Comparison(folders=(str(_only_folder(Path(before))), str(_only_folder(Path(after)))),
                     compared=len(a.keys() & b.keys()),
                     data=tuple("not recorded" if d is None else f"{d['name']} (sha256 {d['sha256'][:12]})" for d in read))
    out.changed = [(k, a[k], b[k]) for k in sorted(a.keys() & b.keys()) if not _equal(a[k], b[k])]
    out.only_before, out.only_after = sorted(a.keys() - b.keys()), sorted(b.keys() - a.keys())
    if runs:
        ha, hb = _file_hashes(Path(runs[0])), _file_hashes(Path(runs[1]))
        out.checkpoints_compared = len(ha.keys() & hb.keys())
        out.checkpoints = [(k, "other bytes" if k in ha and k in hb else "before only" if k in ha else "after only")
                           for k in sorted(ha.keys() | hb.keys()) if ha.get(k) != hb.get(k)]
    return out


def _shown(v) -> str:
    if isinstance(v, np.ndarray):
        return f"array {v.shape} {v.dtype}"
    return repr(v) if len(repr(v)) <= 40 else repr(v)[:37] + "..."


def _how_arrays_differ(x, y) -> str:
    if isinstance(x, np.ndarray) and isinstance(y, np.ndarray) and x.shape == y.shape and x.dtype == y.dtype \
            and x.dtype.kind in "iuf":
        gap = np.abs(x.astype(float) - y.astype(float))
        return f" ({int((gap > 0).sum()):,} of {x.size:,} elements differ, by at most {np.nanmax(gap):.3g})"
    return ""


def report(c: Comparison, limit: int = 50) -> str:
    """The comparison as markdown: counts, then each difference (the first ``limit`` of each kind)."""
    lines = [f"before: {c.folders[0]} (data: {c.data[0]})", f"after:  {c.folders[1]} (data: {c.data[1]})",
             f"values compared: {c.compared:,} (an array counts as one); differ: {len(c.changed):,}; "
             f"before only: {len(c.only_before):,}; after only: {len(c.only_after):,}"]
    if c.checkpoints_compared or c.checkpoints:
        lines.append(f"checkpoints on both sides: {c.checkpoints_compared:,}; other bytes or one side only: "
                     f"{len(c.checkpoints):,}")
    if c.changed:
        lines += ["", "| where | before | after |", "|---|---|---|"]
        lines += [f"| {k} | {_shown(x)} | {_shown(y)}{_how_arrays_differ(x, y)} |" for k, x, y in c.changed[:limit]]
    for title, keys in (("before only", c.only_before), ("after only", c.only_after)):
        if keys:
            lines += ["", f"{title}:"] + [f"- {k}" for k in keys[:limit]]
    if c.checkpoints:
        lines += ["", "checkpoints:"] + [f"- {k}: {why}" for k, why in c.checkpoints[:limit]]
    lines.append("" if not c.same else "\nevery value compared is the same")
    return "\n".join(lines).rstrip() + "\n"
