"""Compare every stored number of two builds (clorg.book.compare): did a change of code change a result?

    python ci/compare_results.py BEFORE_RESULTS AFTER_RESULTS [--runs BEFORE_RUNS AFTER_RUNS] [--limit 50]

Build the same profile (with the same overrides) once with each version of the code, each into its own
CLORG_RESULTS (and CLORG_RUNS, to compare the trained checkpoints too), then point this at the two
folders. Exit status 0 when every value compared is the same, 1 when one differs or is on one side
only, 2 when the folders cannot be compared (missing, holding no stored result, or a file unreadable).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "lib"))

from clorg.book.compare import Uncomparable, compare, report  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("before", type=Path)
    ap.add_argument("after", type=Path)
    ap.add_argument("--runs", nargs=2, type=Path, metavar=("BEFORE_RUNS", "AFTER_RUNS"))
    ap.add_argument("--limit", type=int, default=50, help="differences listed of each kind")
    args = ap.parse_args()
    try:
        found = compare(args.before, args.after, tuple(args.runs) if args.runs else None)
    except Uncomparable as exc:
        print(exc, file=sys.stderr)
        return 2
    print(report(found, args.limit), end="")
    return 0 if found.same else 1


if __name__ == "__main__":
    sys.exit(main())
