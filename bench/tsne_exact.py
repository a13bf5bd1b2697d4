"""What do the CPU profiles' t-SNE approximations change? The authors' exact t-SNE beside ours, on one sample.

    python bench/tsne_exact.py [--features FILE.npz] [--n 2000] [--iterations 500]

The `paper` profile draws its maps as the authors did (N(0, 1) start, Gaussian affinities over all points,
the exact O(n^2) gradient: clorg.analysis.tsne.exact_optimise); the CPU profiles take openTSNE's start scale,
the 3P nearest neighbours and the FFT-approximated repulsion. On ``--n`` training features (a run's
``features_eNNNN.npz``, or locally dense synthetic ones) at the paper's three perplexity ratios, this draws
three maps per perplexity from the same sample and the same seed:

- **exact** (the authors' four choices but the sample per map);
- **fft, all, normal**: the same affinities and start, the FFT repulsion in place of the exact gradient;
- **quick**: the CPU profiles' choices (rescaled start, 3P neighbours, FFT repulsion).

and prints, for each: the seconds, the map purity at k = 10 and at the wide k (what claim 5 reads), and the
share of each point's 10 nearest map neighbours that it shares with the exact map (1: the same
neighbourhoods). Markdown, ready for bench/results/tsne_exact.md.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from sklearn.neighbors import NearestNeighbors

from clorg.analysis.tsne import map_purity, perplexities, tsne_embedding, wide_k
from clorg.core.provenance import describe_hardware
from metrics import features_sample  # bench/metrics.py, beside this script

SETTINGS = {"exaggeration_iterations": 101, "exaggeration": 4.0, "learning_rate": 500.0,
            "max_affinities": 100_000_000}
CHOICES = {"exact": {"start": "normal", "neighbours": "all", "gradient": "exact"},
           "fft, all, normal": {"start": "normal", "neighbours": "all", "gradient": "fft"},
           "quick": {"start": "rescaled", "neighbours": "3P", "gradient": "fft"}}


def neighbours(Y, k=10) -> np.ndarray:
    return NearestNeighbors(n_neighbors=k + 1).fit(Y).kneighbors(Y, return_distance=False)[:, 1:]


def shared(a: np.ndarray, b: np.ndarray) -> float:
    """Mean share of each point's neighbours in ``a`` that are also its neighbours in ``b``."""
    return float(np.mean([len(set(x) & set(y)) / len(x) for x, y in zip(a, b)]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--features", help="a run's features_eNNNN.npz (train, train_labels); default: synthetic")
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--iterations", type=int, default=500)
    args = ap.parse_args()
    if args.iterations <= SETTINGS["exaggeration_iterations"]:
        ap.error(f"--iterations must be above the {SETTINGS['exaggeration_iterations']} early-exaggeration steps")
    X, y = features_sample(args.features, args.n)
    print(f"machine: {describe_hardware()}; {len(X):,} points from {args.features or 'synthetic features'}; "
          f"{args.iterations} steps\n")
    print("| perplexity | map | seconds | purity k=10 | purity wide k | neighbours shared with exact |")
    print("|---:|---|---:|---:|---:|---:|")
    k_wide = wide_k(y)
    for p in perplexities(len(X), [0.001, 0.1, 0.996])[0]:
        maps = {}
        for name, choice in CHOICES.items():
            t0 = time.perf_counter()
            Y, _ = tsne_embedding(X, p, {**SETTINGS, **choice, "iterations": args.iterations}, seed=0)
            maps[name] = (Y, time.perf_counter() - t0)
        exact = neighbours(maps["exact"][0])
        for name, (Y, seconds) in maps.items():
            purity = map_purity(Y, y, [10, k_wide])
            print(f"| {p:,g} | {name} | {seconds:.1f} | {purity[10]:.3f} | {purity[k_wide]:.3f} | "
                  f"{shared(neighbours(Y), exact):.3f} |", flush=True)


if __name__ == "__main__":
    main()
