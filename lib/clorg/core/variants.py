"""A profile with overrides is a variant with a name of its own, so its results never meet the profile's.

Results live in a folder named after the profile (``results/<name>/``). A profile loaded with overrides
that change a setting is a variant named

    smoke+train_per_class=50-3f1c0a9b

the profile's name, ``+``, the overridden keys and values (readable in a listing), and a hash of the
overrides (the same overrides always give the same name; two that read alike never share one): its
results go to ``results/<variant>/``, with its overrides recorded beside them (``overrides.json``), so
the name alone loads it again (``--profile smoke+train_per_class=50-3f1c0a9b``), and every "run this"
command repeats them (:func:`profile_args`). An override that sets a value the profile already has
changes nothing and is dropped: the plain profile keeps its own folder. Runs need no variant folder:
they are keyed by their resolved settings under ``runs/<profile>/``, so a variant that changes a run's
settings trains its own run there, and one that does not reuses the profile's.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shlex
from pathlib import Path

from . import paths
from .atomic import write_json
from .paths import results_root

SEPARATOR = "+"
RECORD = "overrides.json"


def _slug_value(value) -> str:
    if isinstance(value, list):
        return ",".join(_slug_value(v) for v in value)
    return json.dumps(value, sort_keys=True) if isinstance(value, dict) else str(value)


def variant_name(base: str, overrides: dict) -> str:
    """The name of profile ``base`` with ``overrides`` (effective ones: see :func:`effective`); ``base``
    itself when there are none."""
    if not overrides:
        return base
    digest = hashlib.sha256(json.dumps(overrides, sort_keys=True, default=str).encode()).hexdigest()[:8]
    slug = "_".join(f"{key.rsplit('.', 1)[-1]}={_slug_value(v)}" for key, v in sorted(overrides.items()))
    slug = re.sub(r"[^A-Za-z0-9.,=_-]+", "_", slug).strip("_")[:48]
    return f"{base}{SEPARATOR}{slug}-{digest}"


def is_variant(name: str) -> bool:
    return SEPARATOR in str(name) and Path(str(name)).suffix not in (".yaml", ".yml")


def effective(overrides: dict, value_of) -> dict:
    """The overrides that change a value of the profile (``value_of(key)``: the profile's own value)."""
    return {k: v for k, v in sorted((overrides or {}).items()) if value_of(k) != v}


def record_paths(name: str) -> list[Path]:
    """Where a variant's overrides are recorded: beside its results."""
    return [results_root() / name / RECORD]


def read_record(name: str) -> tuple[str, dict]:
    """(the profile to load, its overrides) recorded for variant ``name``; a clear error when absent."""
    for path in record_paths(name):
        if path.is_file():
            try:
                rec = json.loads(path.read_text())
                profile, overrides = rec["profile"], rec["overrides"]
            except (ValueError, KeyError, TypeError) as exc:
                raise ValueError(f"{path} cannot be read ({exc}); delete it and load the variant with its "
                                 f"profile and overrides again") from None
            return profile, overrides
    base = str(name).split(SEPARATOR, 1)[0]
    raise ValueError(f"profile {name!r} names a variant of {base!r}, but no {RECORD} records its overrides "
                     f"(looked in {', '.join(str(p) for p in record_paths(name))}); load it as "
                     f"--profile {base} --override KEY=VALUE ...")


def folder_name(cfg: dict) -> str:
    """The name of the folder a profile's results and builds go to: its variant name (the profile's own name
    when it has no overrides, or was built by hand without going through load_profile)."""
    return cfg["profile"].get("variant", cfg["profile"]["name"])


def write_record(cfg: dict) -> None:
    """Record a variant's profile and overrides beside its results (nothing for a plain profile).
    Rewritten only when absent or different."""
    p = cfg["profile"]
    if not p.get("overrides"):
        return
    payload = {"name": p["variant"], "profile": p["base"], "overrides": p["overrides"]}
    for path in record_paths(p["variant"]):
        try:
            if json.loads(path.read_text()) == payload:
                continue
        except (OSError, ValueError):
            pass
        write_json(path, payload)


def shown_profile(cfg: dict, where: Path = paths.ROOT) -> str:
    """The profile as a command (or code) run in the folder ``where`` names it: a shipped profile by its name, a
    profile file by its path from there when it lies in the project (configs/mine.yaml from the root,
    ../configs/mine.yaml from notebooks/), else in full."""
    p = cfg["profile"]
    base = str(p.get("base", p["name"]))
    if not base.endswith((".yaml", ".yml")):
        return base
    path = Path(base).resolve()
    return os.path.relpath(path, where) if path.is_relative_to(paths.ROOT) else str(path)


def profile_args(cfg: dict) -> str:
    """``--profile P --override K=V ...``: what repeats this profile and its overrides on a command line (run in
    the project root, as every command the book prints)."""
    p = cfg["profile"]
    out = [f"--profile {shlex.quote(shown_profile(cfg))}"]
    out += [f"--override {shlex.quote(f'{k}={json.dumps(v)}')}" for k, v in p.get("overrides", {}).items()]
    return " ".join(out)


def notebook_parameters(cfg: dict) -> str:
    """``profile = 'P', overrides = {...}``: what repeats this profile and its overrides in a chapter's
    parameters cell (every later chapter needs the same, or it reads another variant's runs and results)."""
    notebooks = paths.ROOT / "notebooks"  # where a chapter's kernel runs
    return f"profile = {shown_profile(cfg, notebooks)!r}, overrides = {dict(cfg['profile'].get('overrides', {}))!r}"
