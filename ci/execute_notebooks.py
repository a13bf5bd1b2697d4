"""Execute every notebook of notebooks/ in order with papermill, on one profile.

    python ci/execute_notebooks.py --profile smoke [--only 00_data] [--override data.train_per_class=50]

Before any notebook runs, the profile's dataset is chosen (the first of its list that loads) and the
choice, with the reason each preferred dataset was passed over, is printed and written with the
commit and hardware to build/<profile>/build_info.json, which the book's intro shows. Executed copies
go to build/<profile>/notebooks/ (git-ignored); the sources stay without outputs. Each notebook's run
time and outcome go to build/<profile>/execution.json.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import papermill as pm
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "lib"))  # works before `pip install -e .` too

from clorg import provenance  # noqa: E402
from clorg.config import load_profile  # noqa: E402
from clorg.data import choose_profile_dataset  # noqa: E402


def parse_override(text: str) -> tuple[str, object]:
    key, sep, value = text.partition("=")
    if not sep:
        raise SystemExit(f"--override needs KEY=VALUE (e.g. data.train_per_class=50), got {text!r}")
    return key, yaml.safe_load(value)


def write_json(path: Path, payload: dict) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(payload, indent=1))
    os.replace(tmp, path)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--profile", default="quick")
    ap.add_argument("--override", action="append", default=[], metavar="KEY=VALUE")
    ap.add_argument("--only", action="append", default=[], metavar="NAME", help="run only these notebooks")
    args = ap.parse_args()

    overrides = dict(parse_override(o) for o in args.override)
    cfg = load_profile(args.profile, overrides)
    name = cfg["profile"]["name"]
    out = ROOT / "build" / name
    (out / "notebooks").mkdir(parents=True, exist_ok=True)

    started = time.time()
    choice = choose_profile_dataset(cfg)
    print(choice.describe(), flush=True)
    write_json(out / "build_info.json", {
        "profile": name, "description": cfg["profile"]["description"], "overrides": overrides,
        "dataset": choice.summary(), "commit": provenance.git_commit(), "hardware": provenance.hardware(),
        "libraries": provenance.library_versions(),
        "built_at": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
    })

    notebooks = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    if args.only:
        notebooks = [nb for nb in notebooks if nb.stem in args.only]
        if not notebooks:
            raise SystemExit(f"--only {args.only} matches none of {[p.stem for p in (ROOT / 'notebooks').glob('*.ipynb')]}")
    status = []
    failed = None
    for nb in notebooks:
        target = out / "notebooks" / nb.name
        print(f"[{name}] executing {nb.name} ...", flush=True)
        t0 = time.time()
        outcome = "ok"
        try:
            pm.execute_notebook(nb, target, parameters={"profile": args.profile, "overrides": overrides},
                                kernel_name="python3", cwd=str(ROOT / "notebooks"), progress_bar=False)
        except Exception as exc:  # papermill's error names the failing cell; the executed copy shows it
            outcome = f"failed: {type(exc).__name__}: {str(exc).strip().splitlines()[-1] if str(exc).strip() else ''}"
            failed = (nb.name, exc)
        seconds = time.time() - t0
        status.append({"notebook": nb.stem, "seconds": round(seconds, 1), "outcome": outcome})
        print(f"[{name}] {nb.name}: {outcome} in {seconds:.1f} s", flush=True)
        if failed:
            break
    write_json(out / "execution.json", {"profile": name, "total_seconds": round(time.time() - started, 1),
                                        "notebooks": status})
    if failed:
        print(f"\n{failed[0]} failed; its executed copy with the error is {out / 'notebooks' / failed[0]}\n"
              f"{failed[1]}", file=sys.stderr)
        return 1
    print(f"[{name}] all {len(status)} notebooks executed in {time.time() - started:.0f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
