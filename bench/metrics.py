"""Benchmark: blockwise RLD and CHI (clorg.analysis.metrics) against the authors' dense RLD.

    .venv/bin/python bench/metrics.py [--sizes 2000 5000 10000 20000 50000] [--out FILE.json]

For each n: `rld_sweep` at T = 1, 0.5, 0.2, 0.1 and a faithful port of the authors' dense code
(imageComponent/analyze.py: full n x n float32 similarity matrix, one dense graph per temperature)
on the same features, plus `chi` (k = 1, 10, 100, 500, 1000) at the largest size. Every measurement
runs in a fresh spawned process, so its peak RSS (ru_maxrss at the end) is its own; the idle RSS of
a process that imported torch is reported next to it. The dense code is only run where its
estimated peak (DENSE_BYTES_PER_PAIR * n^2) fits under --dense-limit-gb; elsewhere it prints
"does not fit" rather than taking the machine down. Results go to stdout as markdown tables and,
with --out, to JSON for the book.

Features: 10 balanced classes, each a mixture of 20 sub-clusters in 512-d (class direction + sub-
cluster offset + point noise, seeded), L2-normalised float32 — locally dense classes with CHI
falling with k, like contrastive features, rather than pure noise.
"""

from __future__ import annotations

import argparse
import collections.abc
import json
import math
import multiprocessing as mp
import os
import platform
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

TEMPERATURES = [1.0, 0.5, 0.2, 0.1]
CHI_KS = [1, 10, 100, 500, 1000]
# Peak bytes of the dense port per n^2: ~14 while the similarity matrix is assembled (pdist 2 + matrix
# 4 + int64 triu indices 8) and ~13 per temperature (matrix, its transformed copy, k k^T, same-class
# mask); measured 17.0 above the loaded process at n = 10,000 and 20,000. Rounded up for the go /
# no-go decision, which has to be made before running it.
DENSE_BYTES_PER_PAIR = 18


# ================================================ features ===========================================

def features_sample(path: str | None, n: int) -> tuple[np.ndarray, np.ndarray]:
    """A stratified sample of ``n`` training features and labels: from a run's ``features_eNNNN.npz``
    (``path``), or synthetic, locally dense ones (:func:`make_features`) when ``path`` is None."""
    from clorg.analysis.tsne import sample_indices

    if path:
        with np.load(path) as z:
            X, y = z["train"], z["train_labels"]
    else:
        X, y = make_features(n, seed=0)
    idx = sample_indices(y, n, 0)
    return X[idx], y[idx]


def make_features(n: int, dim: int = 512, n_classes: int = 10, seed: int = 0,
                  sub_clusters: int = 20) -> tuple[np.ndarray, np.ndarray]:
    """Unit-norm float32 features and balanced int64 labels: x = class + 2 * sub-cluster + 5 * noise
    (all standard normal in `dim` dimensions), normalised."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % n_classes
    rng.shuffle(y)
    classes = rng.normal(size=(n_classes, 1, dim)).astype(np.float32)
    centres = classes + 2 * rng.normal(size=(n_classes, sub_clusters, dim)).astype(np.float32)
    X = centres[y, rng.integers(0, sub_clusters, size=n)]
    X += 5 * rng.normal(size=(n, dim)).astype(np.float32)
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    return X, y.astype(np.int64)


# ======================================= the authors' dense RLD ======================================
# Ported from imageComponent/analyze.py (xsgxlz/How-does-Contrastive-Learning-Organize-Images), same
# steps and dtypes: float32 throughout, pdist -> full matrix via triu indices, exp, n^2 E^2 / (r c),
# then modularity with k k^T and a dense same-class mask, one temperature after the other.

def _authors_pnorm_sim_matrix(X, diag_ninf: bool = True):
    import torch
    import torch.nn.functional as F
    device = X.device
    similarity = F.pdist(X) / math.sqrt(X.shape[1])
    similarity /= -similarity.mean()
    similarity = similarity.cpu()
    sim_matrix = torch.zeros((len(X), len(X)))
    idx = torch.triu_indices(len(X), len(X), offset=1)
    sim_matrix[idx[0], idx[1]] = similarity
    sim_matrix[idx[1], idx[0]] = similarity
    if diag_ninf:
        idx = torch.arange(len(X))
        sim_matrix[idx, idx] = float("-inf")
    del similarity, idx
    return sim_matrix.to(device)


def _authors_edge_weight(sim_matrix, temperature: float):
    n = sim_matrix.shape[0]
    sim_matrix /= temperature
    sim_matrix = sim_matrix.exp()
    row_sum = sim_matrix.sum(dim=1, keepdim=True)
    col_sum = sim_matrix.sum(dim=0, keepdim=True)
    sim_matrix *= sim_matrix
    sim_matrix *= n * n
    sim_matrix /= row_sum
    sim_matrix /= col_sum
    return sim_matrix


def _authors_modularity_inplace(adj, communities):
    m = adj.sum() / 2
    k = adj.sum(dim=1)
    kk = k[:, None] * k[None]
    kk /= (2 * m)
    adj -= kk
    delta = communities[:, None] == communities[None]
    adj *= delta
    Q = adj.sum() / (2 * m)
    del m, k, kk, adj, delta
    return Q


def authors_dense_rld(X, y, temperatures):
    """relative_local_density_score(X, y, temperature=[...]) of the authors, returning floats."""
    sim_matrix = _authors_pnorm_sim_matrix(X)
    if isinstance(temperatures, collections.abc.Iterable):
        scores = []
        for t in temperatures:
            weight = _authors_edge_weight(sim_matrix.clone().to(X.device), t)
            scores.append(float(_authors_modularity_inplace(weight, y)))
            del weight
        return scores
    return float(_authors_modularity_inplace(_authors_edge_weight(sim_matrix, temperatures), y))


# ====================================== isolated measurements ========================================

def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def _cpu_s() -> float:
    """User + system CPU seconds of this process: less sensitive than wall time to other load."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _child(task: str, data_dir: str, queue) -> None:
    """One measurement in a fresh process: load the features, time the call, report peak RSS."""
    import torch
    from clorg.analysis.metrics import chi, rld_sweep
    if task == "idle":
        queue.put({"peak_rss_mb": _peak_rss_mb()})
        return
    X, y = np.load(Path(data_dir) / "X.npy"), np.load(Path(data_dir) / "y.npy")
    run = {
        "ours": lambda X, y: list(rld_sweep(X, y, TEMPERATURES, progress=False).values()),
        "dense": lambda X, y: authors_dense_rld(torch.from_numpy(X), torch.from_numpy(y), TEMPERATURES),
        "chi": lambda X, y: list(chi(X, y, [k for k in CHI_KS if k < len(y)], progress=False).values()),
    }[task]
    with torch.no_grad():
        run(X[:300], y[:300])  # warm-up: thread pools and BLAS start-up are not the method's cost
        loaded = _peak_rss_mb()
        start, cpu = time.perf_counter(), _cpu_s()
        values = run(X, y)
    queue.put({"wall_s": time.perf_counter() - start, "cpu_s": _cpu_s() - cpu, "peak_rss_mb": _peak_rss_mb(),
               "rss_after_load_mb": loaded, "values": values, "threads": torch.get_num_threads()})


def run_isolated(task: str, data_dir: str | None = None, timeout_s: float = 3600) -> dict:
    load_before = os.getloadavg()[0]  # 1-min load average: other work on the machine skews wall times
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_child, args=(task, data_dir, queue))
    proc.start()
    try:
        result = queue.get(timeout=timeout_s)
    except Exception as err:  # the child died (e.g. killed for memory) or hung
        proc.kill()
        result = {"error": f"{type(err).__name__}; exit code {proc.exitcode}"}
    proc.join()
    return result | {"load_before": load_before, "load_after": os.getloadavg()[0]}


# ============================================== reporting ============================================

def _gb(mb: float | None) -> str:
    return "" if mb is None else f"{mb / 1024:.2f}"


def rld_table(rows: list[dict], idle_mb: float) -> str:
    head = ("| n | implementation | wall (s) | CPU (s) | peak RSS (GB) | above idle (GB) | "
            + " | ".join(f"RLD T={t:g}" for t in TEMPERATURES) + " | max rel. diff vs dense |")
    lines = [head, "|" + "---|" * (7 + len(TEMPERATURES))]
    for r in rows:
        if "wall_s" not in r:
            note = r.get("note") or r.get("error", "")
            lines.append(f"| {r['n']:,} | {r['impl']} | {note} |" + " |" * (4 + len(TEMPERATURES)))
            continue
        vals = " | ".join(f"{v:.5f}" for v in r["values"])
        diff = "" if r.get("max_rel_diff") is None else f"{r['max_rel_diff']:.1e}"
        lines.append(f"| {r['n']:,} | {r['impl']} | {r['wall_s']:.1f} | {r['cpu_s']:.1f} | {_gb(r['peak_rss_mb'])} | "
                     f"{_gb(r['peak_rss_mb'] - idle_mb)} | {vals} | {diff} |")
    return "\n".join(lines)


def chi_table(rows: list[dict], idle_mb: float) -> str:
    lines = ["| n | wall (s) | CPU (s) | peak RSS (GB) | above idle (GB) | "
             + " | ".join(f"CHI({k})" for k in CHI_KS) + " |", "|" + "---|" * (5 + len(CHI_KS))]
    for r in rows:
        if "wall_s" not in r:
            lines.append(f"| {r['n']:,} | {r.get('error', '')} |" + " |" * (3 + len(CHI_KS)))
            continue
        vals = " | ".join(f"{v:.4f}" for v in r["values"])
        lines.append(f"| {r['n']:,} | {r['wall_s']:.1f} | {r['cpu_s']:.1f} | {_gb(r['peak_rss_mb'])} | "
                     f"{_gb(r['peak_rss_mb'] - idle_mb)} | {vals} |")
    return "\n".join(lines)


def machine() -> dict:
    import torch
    return {"platform": platform.platform(), "processor": platform.processor() or platform.machine(),
            "cpus_available": len(os.sched_getaffinity(0)), "torch": torch.__version__,
            "numpy": np.__version__, "python": sys.version.split()[0],
            "memory_gb": os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30}


def measure_rld(n: int, data_dir: str, dense_limit_gb: float) -> list[dict]:
    """Ours, then the dense port where its estimated peak fits; their agreement goes on our row."""
    ours = {"n": n, "impl": "clorg rld_sweep (blockwise)", **run_isolated("ours", data_dir)}
    estimate_gb = DENSE_BYTES_PER_PAIR * n * n / 2**30
    dense = {"n": n, "impl": "authors' dense (port)", "estimate_gb": estimate_gb}
    if estimate_gb > dense_limit_gb:
        dense["note"] = f"does not fit (estimated {estimate_gb:.0f} GB > {dense_limit_gb:g} GB)"
    else:
        dense.update(run_isolated("dense", data_dir))
    if "values" in ours and "values" in dense:
        ours["max_rel_diff"] = max(abs(a - b) / abs(b) for a, b in zip(ours["values"], dense["values"]))
        dense["bytes_per_pair_measured"] = (dense["peak_rss_mb"] - dense["rss_after_load_mb"]) * 2**20 / n**2
    for r in (ours, dense):
        status = (f"{r['wall_s']:7.1f} s  peak {r['peak_rss_mb']:7.0f} MB  load {r['load_before']:.1f}"
                  if "wall_s" in r else r.get("note", r.get("error", "")))
        print(f"n={n:>6} {r['impl']:<30} {status}", flush=True)
    return [ours, dense]


# ================================================ main ===============================================

def render(result: dict) -> str:
    """The markdown tables of a result (what the book's benchmarks page includes)."""
    idle = result["idle_rss_mb"]
    temps = ", ".join(f"{t:g}" for t in result["temperatures"])
    return (f"### RLD (4 temperatures: {temps})\n\n{rld_table(result['rld'], idle)}\n\n"
            f"### CHI (k = {', '.join(map(str, CHI_KS))})\n\n{chi_table(result['chi'], idle)}\n\n"
            f"Idle process (torch + clorg imported): {idle:.0f} MB peak RSS. {describe_machine(result['machine'])}\n")


def describe_machine(m: dict) -> str:
    return (f"Machine: {m['processor']}, {m['cpus_available']} CPU cores, {m['memory_gb']:.0f} GiB, no GPU used; "
            f"python {m['python']}, torch {m['torch']}, numpy {m['numpy']}.")


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[2000, 5000, 10000, 20000, 50000])
    parser.add_argument("--chi-size", type=int, default=None, help="n for CHI (default: largest size)")
    parser.add_argument("--dense-limit-gb", type=float, default=16.0,
                        help="skip the dense port where its estimated peak exceeds this")
    parser.add_argument("--dim", type=int, default=512)
    parser.add_argument("--classes", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=None, help="write the results as JSON here")
    parser.add_argument("--markdown", type=Path, default=None, help="write the tables as markdown here (the book)")
    parser.add_argument("--render", type=Path, default=None, help="only re-render the tables of a saved --out JSON")
    args = parser.parse_args(argv)
    if args.render:
        report = render(json.loads(args.render.read_text()))
        print(report)
        if args.markdown:
            args.markdown.write_text(report)
        return {}
    chi_size = args.chi_size or max(args.sizes)

    idle = run_isolated("idle")["peak_rss_mb"]
    print(f"idle process with torch + clorg imported: peak RSS {idle:.0f} MB", flush=True)
    rows, chi_rows = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for n in sorted(set(args.sizes) | {chi_size}):
            X, y = make_features(n, args.dim, args.classes, args.seed)
            np.save(Path(tmp) / "X.npy", X)
            np.save(Path(tmp) / "y.npy", y)
            del X, y
            if n in args.sizes:
                rows += measure_rld(n, tmp, args.dense_limit_gb)
            if n == chi_size:
                chi_rows.append({"n": n, "ks": CHI_KS, **run_isolated("chi", tmp)})
                print(f"n={n:>6} chi: {chi_rows[-1].get('wall_s', float('nan')):.1f} s", flush=True)

    result = {"machine": machine(), "idle_rss_mb": idle, "temperatures": TEMPERATURES,
              "dense_bytes_per_pair_estimate": DENSE_BYTES_PER_PAIR, "config": vars(args) | {"out": str(args.out)},
              "rld": rows, "chi": chi_rows}
    report = render(result)
    print("\n" + report)
    if args.markdown:
        args.markdown.parent.mkdir(parents=True, exist_ok=True)
        args.markdown.write_text(report)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=2))
        print(f"wrote {args.out}")
    return result


if __name__ == "__main__":
    main()
