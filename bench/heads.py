"""Benchmark: the GCN head (clorg.analysis.heads.GCNHead) on the authors' dense RLD graph (float32, and
held in bfloat16) against the sparse top-k graph, and the linear head, as the number of nodes grows to
the paper's 60,000.

    .venv/bin/python bench/heads.py [--sizes 6000 12000 30000 60000] [--dense-sizes 3000 6000 12000] [--markdown FILE.md]

Nodes: train + test features in a 5:1 ratio, like CIFAR-10's 50,000 + 10,000, from bench/metrics.py's
locally dense synthetic features (10 classes of 20 sub-clusters in 512-d). Each fit runs in a fresh
spawned process (peak RSS is its own), with the authors' training rule (train-accuracy early stopping,
patience 50) so the step counts are theirs. The dense graph is n^2 entries: 0.58 GB in float32 at 12,000
nodes, 14 GB at 60,000 (a GPU's job). The features are easy (every head reaches ~100 %): this measures
time and memory; the classifier chapter measures what the graphs change in accuracy on real features.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from metrics import make_features  # noqa: E402


def _fit(kind: str, n: int, k, dtype, queue) -> None:
    import torch

    from clorg.analysis.heads import GCNHead, LinearHead

    torch.set_num_threads(torch.get_num_threads())
    X, y = make_features(n, seed=0)
    n_test = n // 6
    Xtr, ytr, Xte, yte = X[n_test:], y[n_test:], X[:n_test], y[:n_test]
    t0 = time.perf_counter()
    if kind == "linear":
        head = LinearHead(label_smoothing=0.1).fit(Xtr, ytr, X_test=Xte, y_test=yte)
    else:
        head = GCNHead(temperature=0.1, k=k, label_smoothing=0.1, dense_max_nodes=n, dense_dtype=dtype).fit(
            Xtr, ytr, X_test=Xte, y_test=yte)
    wall = time.perf_counter() - t0
    queue.put({"wall": wall, "steps": head.n_steps_, "test": head.test_accuracy_,
               "rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20,
               "params": head.n_parameters_})


def measure(kind: str, n: int, k=None, dtype="float32") -> dict:
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_fit, args=(kind, n, k, dtype, queue))
    proc.start()
    out = queue.get()
    proc.join()
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[6000, 12000, 30000, 60000])
    ap.add_argument("--dense-sizes", type=int, nargs="+", default=[3000, 6000, 12000])
    ap.add_argument("--k", type=int, default=50)
    ap.add_argument("--markdown", type=Path)
    args = ap.parse_args()

    from clorg.core import provenance

    lines = [f"machine: {provenance.describe_hardware()}", "",
             "| nodes (train + test) | head | graph | wall (s), graph included | steps | wall / step (s) | peak RSS (GB) | test acc. | parameters |",
             "|---|---|---|---:|---:|---:|---:|---:|---:|"]
    jobs = [("gcn", n, None, "float32", "dense, float32") for n in args.dense_sizes]
    jobs += [("gcn", n, None, "bfloat16", "dense, held in bfloat16") for n in args.dense_sizes]
    jobs += [("gcn", n, args.k, "float32", f"top-{args.k}, (A + A^T)/2") for n in args.dense_sizes + args.sizes]
    jobs += [("linear", n, None, "float32", "—") for n in args.sizes]
    for kind, n, k, dtype, graph in jobs:
        r = measure(kind, n, k, dtype)
        line = (f"| {n:,} | {kind} | {graph} | {r['wall']:.1f} | {r['steps']} | {r['wall'] / r['steps']:.3f} | "
                f"{r['rss_gb']:.2f} | {r['test']:.3f} | {r['params']:,} |")
        print(line, flush=True)
        lines.append(line)
    text = "\n".join(lines) + "\n"
    print("\n" + text)
    if args.markdown:
        args.markdown.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
