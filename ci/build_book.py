"""Render the executed notebooks of one profile as the HTML book in _build/html.

    python ci/build_book.py --profile smoke

The book is never executed here (``execute_notebooks: off``): ci/execute_notebooks.py ran the
notebooks first. This script stages a source tree that mirrors the repository, build/<profile>/site/
with _config.yml, _toc.yml, book/ and the *executed* notebooks/, and writes the generated pages:

- book/build_info.md (profile, dataset and checksum, commit, hardware) for the intro;
- book/findings.md, the "What we found" block of the intro, from results/<profile>/summary.json (the
  report chapter writes it; clorg.book.verdicts.findings_markdown renders it, as on the report's page);
- book/execution_status.md (each chapter's run time, outcome and warnings);
- book/fidelity_tables.md (every setting of the authors beside each profile's, clorg.book.fidelity);
- book/profiles_table.md (every profile's verdicts side by side, clorg.book.across, then the training seeds
  of each profile built under several, clorg.book.seeds).

Then it runs ``jupyter-book build`` with warnings as errors.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "lib"))

from clorg.book import across, chapters, fidelity, seeds, summary, verdicts  # noqa: E402
from clorg.book.store import results_dir  # noqa: E402
from clorg.core.config import ConfigError, load_profile, parse_overrides  # noqa: E402
from clorg.core.paths import data_root  # noqa: E402
from clorg.core.provenance import describe_hardware  # noqa: E402


def toc_files(toc: dict) -> list[str]:
    """Every file named in a jb-book table of contents, the root first."""
    files = [toc["root"]]

    def walk(entries):
        for entry in entries or []:
            if "file" in entry:
                files.append(entry["file"])
            walk(entry.get("sections"))
            walk(entry.get("chapters"))

    for part in toc.get("parts", []):
        walk(part.get("chapters"))
    walk(toc.get("chapters"))
    return files


def build_info_markdown(info: dict) -> str:
    ds = info["dataset"]
    lines = [
        f"- **Profile:** `{info['profile']}`: {info['description']}"
        + (f"; with overrides {', '.join(f'`{k} = {v}`' for k, v in info['overrides'].items())}, a variant named "
           f"`{info['name']}` whose results are in `results/{info['name']}/`" if info["overrides"] else "") + ".",
        f"- **Dataset used:** {ds['name']}, {ds['train_images']:,} training and {ds['test_images']:,} test images "
        f"of shape {tuple(ds['image_shape'])} in {len(ds['classes'])} classes.",
        f"- **Data source:** {chapters.data_origin(ds)}",
    ]
    for skipped in ds["skipped"]:
        lines.append(f"- **Not used: {skipped['name']}**, because {skipped['reason']}.")
    for note in ds["notes"]:
        lines.append(f"- **Subset:** {note}")
    lines += [
        f"- **Commit:** `{info['commit']}`.",
        f"- **Hardware:** {describe_hardware(info['hardware'])}.",
        "- **Libraries:** " + ", ".join(f"{k} {v}" for k, v in info["libraries"].items()) + ".",
        f"- **Executed:** {info['built_at']}.",
    ]
    return "\n".join(lines) + "\n"


def dataset_note(info: dict) -> str:
    """The intro's first words on the data: the dataset this build used, and, where the profile's first
    choice was not found, a warning that the numbers are another dataset's."""
    ds = info["dataset"]
    line = f"This build used {chapters.data_origin(ds)}"
    if not ds["skipped"]:
        return line + "\n"
    why = "; ".join(f"{s['name']} was not used because {s['reason']}" for s in ds["skipped"])
    return (f":::{{warning}}\nThis build did not use the profile's first choice of data: {why}. It used "
            f"**{ds['name']}** instead, so every number in it is {ds['name']}'s, not the paper's dataset's.\n:::\n\n"
            + line + "\n")


def fallback_line(info: dict, profile: str) -> str:
    """The build's last words when the profile's first choice of data was not found: the site warns on its
    intro, but a reader of the terminal should not have to open it to learn that the numbers are another
    dataset's. Empty when the first choice was used."""
    ds = info["dataset"]
    if not ds["skipped"]:
        return ""
    first = ds["skipped"][0]["name"]
    return (f"note: the book of {profile} is on {ds['name']}, not {first}, the profile's first choice, which was "
            f"not found (the intro page says why). Put {first} under $CLORG_DATA (now {data_root()}) and build "
            f"again for its numbers.")


def execution_markdown(execution: dict) -> str:
    rows = ["| chapter | run time (s) | outcome | warnings |", "|---|---:|---|---|"]
    rows += [f"| `{n['notebook']}` | {n['seconds']:.1f} | {n['outcome']} | "
             f"{' '.join(w.replace('|', '/') for w in n.get('warnings', [])) or '—'} |" for n in execution["notebooks"]]
    together = sum(n["seconds"] for n in execution["notebooks"])
    # a partial build (--from, --only) keeps the earlier chapters' rows: its own wall time covers only its part
    partial = execution["total_seconds"] < together - 1
    return "\n".join(rows) + (f"\n\nProfile `{execution['profile']}`; all chapters together: {together:.0f} s"
                              + (f" (the last build ran part of them, in {execution['total_seconds']:.0f} s; the "
                                 f"other rows are an earlier build's)" if partial else "") + ".\n")


# the intro's findings block ends with a link to the page that sets every profile's verdicts side by side
ACROSS_LINK = "Every profile's verdicts side by side: {doc}`across profiles <profiles>`."


def findings_markdown(profile: str, execution: dict | None = None) -> str:
    """The intro's "What we found" block, from the summary the report chapter wrote. When the report did
    not execute in this build (``execution``: build/<profile>/execution.json), the summary is an earlier
    build's, and a note above the block says so."""
    try:
        found = summary.read(results_dir(profile) / "summary.json")
    except ValueError as exc:  # damaged, or written by older code before SPEC 7 version 2
        return f":::{{warning}}\nNo findings for profile `{profile}`: {exc}.\n:::\n\n{ACROSS_LINK}\n"
    if found is None:
        return (f":::{{warning}}\nNo findings for profile `{profile}`: results/{profile}/summary.json is missing. "
                f"The report chapter writes it (`python ci/execute_notebooks.py --profile {profile}`).\n:::\n\n"
                f"{ACROSS_LINK}\n")
    block = verdicts.findings_markdown(found, link="{doc}`reproduction report <../notebooks/09_report>`")
    block += f"\n{ACROSS_LINK}\n"
    outcome = next((n["outcome"] for n in (execution or {}).get("notebooks", []) if n["notebook"] == "09_report"),
                   None)
    if execution is not None and outcome != "ok":
        written = datetime.fromtimestamp((results_dir(profile) / "summary.json").stat().st_mtime, timezone.utc)
        block = (f":::{{warning}}\nThe report chapter did not execute in this build "
                 f"({outcome or 'not run'}): these findings are those of the summary written "
                 f"{written:%Y-%m-%d %H:%M UTC}, by an earlier build.\n:::\n\n") + block
    return block


def stage(profile: str, execute: str) -> tuple[Path, dict]:
    """The site's sources for ``profile`` (its results' folder name) in build/<profile>/site, and the build's
    build_info.json; ``execute``: the make command that executes its notebooks."""
    build = ROOT / "build" / profile
    info_path = build / "build_info.json"
    if not info_path.is_file():
        raise SystemExit(f"{info_path} is missing: execute the notebooks first ({execute})")
    site = build / "site"
    shutil.rmtree(site, ignore_errors=True)
    shutil.copytree(ROOT / "book", site / "book")
    shutil.copytree(ROOT / "bench" / "results", site / "book" / "bench", ignore=shutil.ignore_patterns("*.json"))
    shutil.copytree(ROOT / "book" / "_static", site / "_static")  # Jupyter Book reads _static/ beside _config.yml
    shutil.copy(ROOT / "_config.yml", site / "_config.yml")
    shutil.copy(ROOT / "book" / "_toc.yml", site / "_toc.yml")
    toc = yaml.safe_load((ROOT / "book" / "_toc.yml").read_text())
    missing = []
    for entry in toc_files(toc):
        if entry.startswith("notebooks/"):
            executed = build / "notebooks" / (Path(entry).name + ".ipynb")
            if not executed.is_file():
                missing.append(executed)
                continue
            (site / "notebooks").mkdir(exist_ok=True)
            shutil.copy(executed, site / "notebooks" / executed.name)
    if missing:
        raise SystemExit(f"executed notebooks missing (run {execute}):\n  "
                         + "\n  ".join(map(str, missing)))
    info = json.loads(info_path.read_text())
    (site / "book" / "build_info.md").write_text(build_info_markdown(info))
    (site / "book" / "dataset_note.md").write_text(dataset_note(info))
    execution = json.loads((build / "execution.json").read_text())
    (site / "book" / "execution_status.md").write_text(execution_markdown(execution))
    (site / "book" / "findings.md").write_text(findings_markdown(profile, execution))
    (site / "book" / "fidelity_tables.md").write_text(fidelity.markdown())
    (site / "book" / "profiles_table.md").write_text(across.markdown() + seeds.sections())
    return site, info


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--profile", default="quick")
    ap.add_argument("--override", action="append", default=[], metavar="KEY=VALUE",
                    help="the overrides the notebooks were executed with: the book of that variant")
    args = ap.parse_args()
    try:
        cfg = load_profile(args.profile, parse_overrides(args.override))
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 2
    profile = cfg["profile"]["variant"]
    site, info = stage(profile, chapters.make_command(cfg, target="execute"))
    shutil.rmtree(ROOT / "_build", ignore_errors=True)  # a fresh site: no page left from another profile
    cmd = [str(Path(sys.executable).parent / "jupyter-book"), "build", str(site), "--path-output", str(ROOT),
           "-W", "-n", "--keep-going", "--all"]
    print(" ".join(cmd), flush=True)
    done = subprocess.run(cmd)
    if done.returncode == 0:
        print(f"book for profile {profile}: {ROOT / '_build' / 'html' / 'index.html'}")
        note = fallback_line(info, profile)
        if note:
            print(note)
    return done.returncode


if __name__ == "__main__":
    sys.exit(main())
