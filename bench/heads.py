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

    .venv/bin/python bench/heads.py --features runs/quick/<run>/features_eNNNN.npz

compares, on a run's real features (its training and test images as the nodes), the GCN on the dense graph
held in float32 against the same graph held in bfloat16 (what a CPU with bf16 instructions uses to make the
dense product ~4x cheaper): test accuracy under both protocols, per seed, and the wall time of each.

    .venv/bin/python bench/heads.py --together runs/quick/<run>/features_eNNNN.npz

times one GCN head of the classifiers chapter on a run's real features (the dense graph, in the machine's
dtype; three honest seeds and the authors' fit): the four fits one after another against side by side
(clorg.analysis.heads.fit_gcn_heads, which shares each product with the graph), with each fit's steps and
accuracy (the wider products of the side-by-side fits may round differently: another draw of the same noise).
``--steps N`` caps every fit at N steps: the time of the steps alone, where whole fits would take too long.
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


def _graph_nodes(path: Path):
    """A run's features file as the classifiers chapter's nodes: (train, train labels, test, test labels,
    all nodes (train then test), the test nodes' indices)."""
    import numpy as np

    with np.load(path) as z:
        Xtr, ytr, Xte, yte = z["train"], z["train_labels"], z["test"], z["test_labels"]
    return Xtr, ytr, Xte, yte, np.concatenate([Xtr, Xte]), np.arange(len(Xtr), len(Xtr) + len(Xte))


def dtype_comparison(path: Path, seeds=(0, 1, 2), temperature: float = 0.1) -> str:
    """The dense GCN held in float32 and in bfloat16 on real features: accuracies and wall time."""
    import numpy as np

    from clorg.analysis.classify import validation_split
    from clorg.analysis.heads import GCNHead
    from clorg.core import provenance

    Xtr, ytr, Xte, yte, nodes, test_idx = _graph_nodes(path)
    n_train, n = len(Xtr), len(nodes)
    lines = [f"machine: {provenance.describe_hardware()}; features {path} ({n:,} nodes), T = {temperature}", "",
             "| dense graph held in | honest test acc. per seed | mean | authors' protocol | wall (s), 4 fits and the graph |",
             "|---|---|---:|---:|---:|"]
    for dtype in ("float32", "bfloat16"):
        t0 = time.perf_counter()
        make = lambda seed: GCNHead(temperature=temperature, seed=seed, dense_dtype=dtype, label_smoothing=0.1,  # noqa: E731
                                    mask_range=(0.05, 0.6), dense_max_nodes=n)
        A = make(0).graph(nodes)
        honest = []
        for seed in seeds:
            fit, val = validation_split(ytr, 0.1, seed)
            honest.append(make(seed).fit_on_graph(A, np.concatenate([ytr[fit], ytr[val]]), fit, val, test_idx,
                                                  yte).test_accuracy_)
        authors = make(0).fit_on_graph(A, ytr, np.arange(n_train), [], test_idx, yte).best_test_accuracy_
        lines.append(f"| {dtype} | {', '.join(f'{a:.4f}' for a in honest)} | {np.mean(honest):.4f} | {authors:.4f} | "
                     f"{time.perf_counter() - t0:.1f} |")
        print(lines[-1], flush=True)
    return "\n".join(lines) + "\n"


def together_comparison(path: Path, seeds=(0, 1, 2), temperature: float = 0.1, steps: int | None = None) -> str:
    """Chapter 06's four GCN fits on one graph, one after another and side by side: wall time and the heads
    (``steps``: every fit capped at that many steps, a timing of the steps alone)."""
    import numpy as np

    from clorg.analysis.classify import validation_split
    from clorg.analysis.heads import GCNFit, GCNHead, fit_gcn_heads
    from clorg.core import provenance
    from clorg.core.devices import default_device, dense_dtype

    Xtr, ytr, Xte, yte, nodes, test_idx = _graph_nodes(path)
    n_train, n = len(Xtr), len(nodes)
    dtype = dense_dtype("auto", default_device())

    def make(seed, max_steps=2000):
        return GCNHead(temperature=temperature, seed=seed, dense_dtype=dtype, label_smoothing=0.1,
                       mask_range=(0.05, 0.6), dense_max_nodes=n, max_steps=steps or max_steps)

    def fits():
        out = []
        for seed in seeds:
            fit, val = validation_split(ytr, 0.1, seed)
            out.append(GCNFit(make(seed), np.concatenate([ytr[fit], ytr[val]]), fit, val, test_idx, yte))
        return out + [GCNFit(make(seeds[0], None), ytr, np.arange(n_train), [], test_idx, yte)]

    t0 = time.perf_counter()
    A = make(0).graph(nodes)
    graph_s = time.perf_counter() - t0
    lines = [f"machine: {provenance.describe_hardware()}; features {path} ({n:,} nodes), T = {temperature}, "
             f"the dense graph in {dtype} (built in {graph_s:.1f} s)"
             + (f"; every fit capped at {steps} steps" if steps else ""), "",
             "| the four fits | wall (s) | ratio | steps (seeds 0, 1, 2; authors') | honest test acc. (seeds 0, 1, 2) "
             "| authors' protocol |", "|---|---:|---:|---|---|---:|"]
    base = None
    for how in ("one after another", "side by side"):
        t0 = time.perf_counter()
        heads = ([f.head.fit_on_graph(A, f.labels, f.fit_idx, f.val_idx, f.test_idx, f.y_test) for f in fits()]
                 if how == "one after another" else fit_gcn_heads(A, fits()))
        wall = time.perf_counter() - t0
        base = base or wall
        lines.append(f"| {how} | {wall:.1f} | {base / wall:.2f}x | {', '.join(str(h.n_steps_) for h in heads)} | "
                     f"{', '.join(f'{h.test_accuracy_:.4f}' for h in heads[:-1])} | {heads[-1].best_test_accuracy_:.4f} |")
        print(lines[-1], flush=True)
    return "\n".join(lines) + "\n"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--features", type=Path, help="compare float32 and bfloat16 dense graphs on these features")
    ap.add_argument("--together", type=Path, help="time chapter 06's four GCN fits on these features, one after "
                                                  "another and side by side")
    ap.add_argument("--sizes", type=int, nargs="+", default=[6000, 12000, 30000, 60000])
    ap.add_argument("--dense-sizes", type=int, nargs="+", default=[3000, 6000, 12000])
    ap.add_argument("--k", type=int, default=50)
    ap.add_argument("--steps", type=int, help="with --together: cap every fit at this many steps (a timing)")
    ap.add_argument("--markdown", type=Path)
    args = ap.parse_args()
    if args.features or args.together:
        text = dtype_comparison(args.features) if args.features else together_comparison(args.together, steps=args.steps)
        print("\n" + text)
        if args.markdown:
            args.markdown.write_text(text)
        return 0

    from clorg.core import provenance

    lines = [f"machine: {provenance.describe_hardware()}", "",
             "| nodes (train + test) | head | graph | wall (s), graph included | steps | wall / step (s) | peak RSS (GB) | test acc. | parameters |",
             "|---|---|---|---:|---:|---:|---:|---:|---:|"]
    jobs = [("gcn", n, None, "float32", "dense, float32") for n in args.dense_sizes]
    jobs += [("gcn", n, None, "bfloat16", "dense, held in bfloat16") for n in args.dense_sizes]
    # each size once: a size in both lists would measure (and print) the same top-k row twice
    jobs += [("gcn", n, args.k, "float32", f"top-{args.k}, (A + A^T)/2") for n in sorted(set(args.dense_sizes + args.sizes))]
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
