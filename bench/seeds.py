"""Do a profile's verdicts hold for other training seeds? Builds the profile and its variants that change only
``train.seed``, one after another, then prints the seeds section of the Across-profiles page
(clorg.book.seeds): each claim's verdict per seed and over every seed (SPEC section 7: a claim holds when it
holds for every seed), the numbers that decide it, and each encoder's kNN accuracy and CHI(1).

    python bench/seeds.py --profile fashion --seeds 1 2 > bench/results/seeds.md

Each build is ``python -m clorg.book --profile P [--override train.seed=N]``, which reuses what is already
trained and computed, so a second call only prints (a new seed of fashion or quick: about 30 minutes on two
cores with bf16). The variants' results go to ``results/<profile>+seed=N-<hash>/`` like any variant's;
``make clean-variants`` removes them. The table has the profile's own seed and the seeds asked for, each
build that succeeded; a seed whose build failed is named under it, and no claim is then judged on every seed
(unless a built seed already says not reproduced); the exit status is 1 when one failed.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from datetime import date

from clorg.book import seeds
from clorg.core.config import load_profile
from clorg.core.provenance import describe_hardware


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--profile", default="fashion")
    ap.add_argument("--seeds", type=int, nargs="+", required=True, help="training seeds besides the profile's own")
    args = ap.parse_args()
    own = load_profile(args.profile)["train"]["seed"]
    if any(s < 0 for s in args.seeds):
        ap.error("--seeds: a training seed is a non-negative integer")
    minutes, failed = {}, {}
    wanted = [own, *(s for s in dict.fromkeys(args.seeds) if s != own)]
    for seed in wanted:
        command = [sys.executable, "-m", "clorg.book", "--profile", args.profile]
        command += [] if seed == own else ["--override", f"{seeds.SEED_KEY}={seed}"]
        print(f"seed {seed}: {' '.join(command[1:])}", file=sys.stderr, flush=True)
        t0 = time.time()
        # stdout is the table: the builds' own output goes to stderr
        if (rc := subprocess.run(command, stdout=sys.stderr).returncode) != 0:
            # exit 3 (chapters skipped) still writes a summary, exit 1 leaves an older one: neither is this build
            print(f"seed {seed}: the build ended with exit status {rc}; its column is left out of the table, "
                  f"and the seed named under it", file=sys.stderr)
            failed[seed] = f"its build ended with exit status {rc} in this call"
        minutes[seed] = (time.time() - t0) / 60
    print(f"<!-- python bench/seeds.py --profile {args.profile} --seeds {' '.join(map(str, args.seeds))} "
          f"({date.today()}); machine: {describe_hardware()}; minutes of this call per seed "
          f"(a seed already built: under one): {', '.join(f'{s}: {m:.1f}' for s, m in minutes.items())}"
          + (f"; their builds failed: {', '.join(map(str, failed))}" if failed else "") + " -->\n")
    # its own title: the Across-profiles page shows this committed table beside any seeds built where it is built
    # a failed seed is named and keeps the claims from being judged on every seed (its folder's summary, if
    # any, is an older build's)
    section = seeds.markdown(args.profile, heading=f"Training seeds of `{args.profile}`, as committed ({date.today()})",
                             only=wanted, failed=failed)
    print(section or f"Fewer than two seeds of `{args.profile}` are built: nothing to set side by side.")
    return 1 if failed or not section else 0


if __name__ == "__main__":
    sys.exit(main())
