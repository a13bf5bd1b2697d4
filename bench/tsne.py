"""When has a t-SNE map converged? KL divergence and map purity along the authors' schedule, per perplexity.

    python bench/tsne.py [--features FILE.npz] [--n 5000] [--iterations 1000] [--every 50]

Runs clorg.analysis.tsne's preprocessing, affinities and the authors' optimisation schedule (early
exaggeration 4 for the first 101 steps, momentum 0.5 then 0.8, learning rate 500) on ``--n`` training
features (a run's ``features_eNNNN.npz``, or locally dense synthetic ones) at the paper's three
perplexity ratios, and prints, every ``--every`` steps after the exaggeration: the KL divergence, the
map purity at k = 10 and at the wide k, and the seconds so far. The last table says at which step each
map is within 1 % of its final KL divergence: where fewer steps lose nothing, a profile can stop there.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from openTSNE import TSNEEmbedding

from clorg.analysis.tsne import (MOMENTUM_SWITCH, _affinities, initial_embedding, map_purity, perplexities,
                                 preprocess, wide_k)
from clorg.core.provenance import describe_hardware
from metrics import features_sample  # bench/metrics.py, beside this script


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--features", help="a run's features_eNNNN.npz (train, train_labels); default: synthetic")
    ap.add_argument("--n", type=int, default=5000)
    ap.add_argument("--iterations", type=int, default=1000)
    ap.add_argument("--every", type=int, default=50)
    args = ap.parse_args()
    if args.iterations <= 101:  # the first 101 steps are the authors' early exaggeration, not measured here
        ap.error(f"--iterations must be above the 101 early-exaggeration steps, not {args.iterations}")
    X, y = features_sample(args.features, args.n)
    Xp = preprocess(X)
    k_wide = wide_k(y)
    print(f"machine: {describe_hardware()}; {len(X):,} points from {args.features or 'synthetic features'}\n")
    settled = []
    for p, note in zip(*perplexities(len(X), [0.001, 0.1, 0.996])):
        t0 = time.perf_counter()
        aff, what = _affinities(Xp, p, 0, -1, 100_000_000, "3P")  # the CPU profiles' choices: 3P, rescaled start
        t_aff = time.perf_counter() - t0
        emb = TSNEEmbedding(initial_embedding(len(X), 0, "rescaled"), aff, negative_gradient_method="fft", n_jobs=-1,
                            random_state=0)
        emb = emb.optimize(MOMENTUM_SWITCH, exaggeration=4.0, momentum=0.5, learning_rate=500.0, inplace=True)
        emb = emb.optimize(101 - MOMENTUM_SWITCH, exaggeration=4.0, momentum=0.8, learning_rate=500.0, inplace=True)
        step, rows = 101, []
        print(f"### perplexity {p:,g} ({what}; affinities {t_aff:.1f} s)\n")
        print("| step | KL | purity k=10 | purity k={} | seconds |".format(k_wide))
        print("|---:|---:|---:|---:|---:|")
        while step < args.iterations:
            n = min(args.every, args.iterations - step)
            emb = emb.optimize(n, momentum=0.8, learning_rate=500.0, inplace=True)
            step += n
            kl = float(emb.kl_divergence)
            purity = map_purity(np.asarray(emb), y, [10, k_wide])
            rows.append((step, kl))
            print(f"| {step} | {kl:.4f} | {purity[10]:.3f} | {purity[k_wide]:.3f} | {time.perf_counter() - t0:.0f} |",
                  flush=True)
        final = rows[-1][1]
        first = next(s for s, kl in rows if kl <= final * 1.01)
        settled.append((p, first, time.perf_counter() - t0))
        print()
    print("| perplexity | step within 1 % of the final KL | seconds for all steps |")
    print("|---:|---:|---:|")
    for p, first, seconds in settled:
        print(f"| {p:,g} | {first} | {seconds:.0f} |")


if __name__ == "__main__":
    main()
