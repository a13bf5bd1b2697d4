"""Remove what profile variants (profiles loaded with overrides) left behind, listing each folder.

    python ci/clean_variants.py [--dry-run]      # make clean-variants

A variant's results and builds are the folders named ``<profile>+<overrides>-<hash>`` (clorg.core.variants)
under results/ (or $CLORG_RESULTS) and build/. Its runs live under runs/<profile>/ (or $CLORG_RUNS), keyed by
their settings: those the variant trained for itself (its overrides changed their settings) are removed too;
a run the plain profile also uses is kept. The plain profiles' folders are never touched.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "lib"))

from clorg.core.config import all_runs, dataset_candidates, load_profile  # noqa: E402
from clorg.core.paths import results_root, shown  # noqa: E402
from clorg.core.variants import RECORD, SEPARATOR  # noqa: E402


def variant_folders() -> list[Path]:
    """The results and build folders of every variant."""
    out = []
    for root in (results_root(), ROOT / "build"):
        if root.is_dir():
            out += sorted(p for p in root.iterdir() if p.is_dir() and SEPARATOR in p.name)
    return out


def _on(cfg: dict, dataset: str | None) -> dict:
    """``cfg`` with ``dataset`` as its only dataset (None: its own list, in its order)."""
    return cfg if dataset is None else {**cfg, "data": {**cfg["data"], "dataset": [dataset]}}


def run_folders(folder: Path) -> tuple[list[Path] | None, str]:
    """The run folders the variant of results ``folder`` trained for itself (not the plain profile's), and
    a line saying on which dataset they were looked for; or None and why they cannot be located (its
    record is gone, or the data its results name is not here as it was). The dataset is the one its stored
    results name: a run folder's name depends on the data (its name and checksum), so looking on whichever
    dataset this environment finds first would silently find nothing."""
    from clorg.book.store import recorded_data
    from clorg.data import choose_profile_dataset
    from clorg.train import locate

    recorded = recorded_data(folder)
    try:
        cfg = load_profile(folder.name)
        plain = load_profile(cfg["profile"]["base"])
        data = choose_profile_dataset(_on(cfg, recorded and recorded["name"]))
        if recorded and data.summary()["sha256"] != recorded["sha256"]:
            raise ValueError(f"its results were computed on a copy of {data.name} with sha256 "
                             f"{recorded['sha256'][:12]}..., the one found here has {data.summary()['sha256'][:12]}...")
        mine = {locate(cfg, s, data)[1] for s in all_runs(cfg)}
        theirs = set()
        if data.name in dataset_candidates(plain):  # a run is shared only on the same data
            plain_data = choose_profile_dataset(_on(plain, data.name))
            theirs = {locate(plain, s, plain_data)[1] for s in all_runs(plain)}
    except Exception as exc:  # a record or a dataset that is gone: say so, remove nothing of it
        return None, (f"its runs cannot be located ({type(exc).__name__}: {exc}); its results folder and any "
                      f"runs it trained are kept: run this again where its data is, or remove them by hand")
    source = "the dataset its results name" if recorded else "no stored result names one: the first the profile finds"
    return sorted(p for p in mine - theirs if p.is_dir()), f"its runs looked for on {data.name} ({source})"


def size(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dry-run", action="store_true", help="list what would be removed, remove nothing")
    args = ap.parse_args(argv)
    folders = variant_folders()
    runs: dict[Path, None] = {}  # ordered, each once: two variants whose overrides leave a run's settings alike share it
    for folder in [f for f in folders if (f / RECORD).is_file()]:
        mine, said = run_folders(folder)
        print(f"variant {folder.name}: {said}")
        if mine is None:  # its record is the only way back to its runs: keep it
            folders.remove(folder)
        else:
            runs.update(dict.fromkeys(mine))
    # runs first: an interrupted clean keeps every record that leads to a run not yet removed, so running it
    # again finds the rest
    found = list(runs) + folders
    if not found:
        print("no variant folders: nothing to remove")
        return 0
    verb = "would remove" if args.dry_run else "removing"
    for folder in found:
        print(f"{verb} {shown(folder)} ({size(folder) / 2**20:.1f} MiB)", flush=True)
        if not args.dry_run:
            if folder.is_dir():  # removed by hand since it was listed: nothing left to do
                shutil.rmtree(folder)
            folder.with_name(f".{folder.name}.lock").unlink(missing_ok=True)  # a run's lock file beside it
    print(f"{len(found)} folder(s) {'found' if args.dry_run else 'removed'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
