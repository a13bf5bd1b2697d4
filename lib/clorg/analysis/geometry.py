"""Cluster geometry of feature sets: CH, RLD over temperatures and CHI over k, as records.

``geometry_records`` measures every feature set of a profile for the metrics chapter; the same three
metrics for anyone's features come from :func:`measure` (and the command ``python -m
clorg.analysis.geometry FEATURES LABELS``).
"""

from __future__ import annotations

import numpy as np
import torch

from ..core import criteria
from ..core.devices import default_device
from . import records as R
from .metrics import calinski_harabasz, chi, rld_sweep


def capped_ks(ks, labels) -> tuple[list[int], str | None]:
    """The ks below the smallest class size (CHI(k) of a class smaller than k mixes in other classes by
    construction), and a note when some were capped."""
    smallest = int(np.unique(np.asarray(labels), return_counts=True)[1].min())  # classes that occur
    kept = sorted({min(int(k), smallest - 1) for k in ks})
    if kept == sorted(int(k) for k in ks):
        return kept, None
    return kept, (f"k capped at {smallest - 1}, one below the smallest class ({smallest} images): "
                  f"asked for {sorted(int(k) for k in ks)}, used {kept}")


def class_size(labels) -> int:
    """n_c: the training images of the smallest class that occurs (the classes of a profile are balanced)."""
    return int(np.unique(np.asarray(labels), return_counts=True)[1].min())


def chi_ks(ks, labels) -> tuple[list[int], str | None]:
    """The CHI k values a profile measures: its ``ks`` with claim 1's k_max = 0.2 n_c added where the profile
    lacks it (SPEC 7), capped as :func:`capped_ks` caps them, and a note of what was added or capped."""
    k_max = criteria.claim1_k_max(class_size(labels))
    kept, note = capped_ks(sorted(set(int(k) for k in ks) | {k_max}), labels)
    if k_max not in {int(k) for k in ks}:
        note = "; ".join(filter(None, [f"k = {k_max} added: claim 1's k_max, 0.2 of a class's {class_size(labels):,} "
                                       f"images (SPEC 7)", note]))
    return kept, note


def measure(X, y, temperatures, ks, *, progress: bool | None = None) -> dict:
    """CH, RLD at each temperature and CHI at each k of features ``X`` with labels ``y``:
    ``{"CH": float, "RLD": {T: value}, "CHI": {k: value}}``. Runs where X is (a GPU tensor: on the GPU)."""
    X = torch.as_tensor(X) if not isinstance(X, torch.Tensor) else X
    return {"CH": calinski_harabasz(X, y), "RLD": rld_sweep(X, y, temperatures, progress=progress),
            "CHI": chi(X, y, ks, progress=progress)}


def measure_records(identity: dict, X, y, temperatures, ks, *, progress: bool | None = None) -> list[dict]:
    """:func:`measure` of ``X`` as records of ``identity``: CH, then RLD(T) and CHI(k) in the order given.
    ``X`` is moved to the default device first (the metrics run blockwise where X is)."""
    m = measure(torch.as_tensor(X).to(default_device()), y, temperatures, ks, progress=progress)
    return ([R.record(identity, R.CH, m["CH"])]
            + [R.record(identity, R.RLD, v, parameter=t) for t, v in m["RLD"].items()]
            + [R.record(identity, R.CHI, v, parameter=k) for k, v in m["CHI"].items()])


def geometry_records(features, temperatures, ks) -> list[dict]:
    """Records of CH, RLD(T) and CHI(k) of each feature set's *training* features (SPEC 2.1-2.3)."""
    return [r for f in features for r in measure_records(f.identity, f.train, f.train_labels, temperatures, ks)]


# ============================================ the command =============================================

_USAGE = """RLD, CH and CHI of anyone's features.

    python -m clorg.analysis.geometry FEATURES LABELS [--temperatures 1 0.5 0.2 0.1] [--ks 1 10 100 500 1000] [--json]

FEATURES: an (n, d) matrix, LABELS: n integer class labels, each as .npy, .npz (its only array, or the one
named features/X resp. labels/y), .pt (a tensor, or a dict holding one under those names) or .csv (numbers,
comma-separated; a header row is skipped; labels: one column). Features are used as given: L2-normalise
them first if they are embeddings (as the paper's are). Prints CH, RLD at each temperature and CHI at each k
(capped below the smallest class) as a table, or as JSON with --json. Progress bars (stderr) appear from
20,000 points. A bad input is a one-line error and exit status 2.
"""


def _load(path: str, names: tuple[str, ...], what: str) -> np.ndarray:
    from pathlib import Path

    p = Path(path)
    if not p.is_file():
        raise ValueError(f"{what} file {path} does not exist")
    suffix = p.suffix.lower()
    try:
        if suffix == ".npy":
            return np.load(p, allow_pickle=False)
        if suffix == ".npz":
            with np.load(p, allow_pickle=False) as z:
                keys = [k for k in names if k in z.files] or z.files
                if len(keys) != 1:
                    raise ValueError(f"{path} holds arrays {z.files}; name the {what} one {names[0]!r}")
                return z[keys[0]]
        if suffix == ".pt":
            obj = torch.load(p, map_location="cpu", weights_only=True)
            if isinstance(obj, dict):
                keys = [k for k in names if k in obj]
                if not keys:
                    raise ValueError(f"{path} holds a dict without any of {list(names)}")
                obj = obj[keys[0]]
            return torch.as_tensor(obj).numpy()
        if suffix == ".csv":
            import pandas as pd

            frame = pd.read_csv(p, header=None)
            if not all(pd.api.types.is_numeric_dtype(t) for t in frame.dtypes):  # a header row
                frame = pd.read_csv(p)
            return frame.to_numpy().squeeze() if frame.shape[1] == 1 else frame.to_numpy()
    except ValueError:
        raise
    except Exception as exc:  # unreadable files of any kind: one clear line, not a traceback
        raise ValueError(f"{path} cannot be read as {suffix[1:]} ({type(exc).__name__}: {exc})") from exc
    raise ValueError(f"{path}: unknown format {suffix or '(none)'}; use .npy, .npz, .pt or .csv")


def main(argv=None) -> int:
    import argparse
    import json
    import sys

    ap = argparse.ArgumentParser(prog="python -m clorg.analysis.geometry", description=_USAGE,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("features")
    ap.add_argument("labels")
    ap.add_argument("--temperatures", type=float, nargs="+", default=[1.0, 0.5, 0.2, 0.1])
    ap.add_argument("--ks", type=int, nargs="+", default=[1, 10, 100, 500, 1000])
    ap.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = ap.parse_args(argv)
    try:
        X = _load(args.features, ("features", "X"), "features")
        y = _load(args.labels, ("labels", "y"), "labels")
        if np.asarray(y).ndim != 1:
            raise ValueError(f"labels must be one label per row, got shape {np.asarray(y).shape}")
        if np.asarray(X).ndim == 2 and len(X) != len(y):
            raise ValueError(f"{args.features} has {len(X)} rows but {args.labels} has {len(y)} labels; they must match")
        if len(np.unique(y)) < 2:
            raise ValueError(f"{args.labels} holds one class; RLD, CH and CHI compare at least two")
        finite = np.isfinite(np.asarray(X))
        if not finite.all():  # named here, with the file: the metrics would only name their argument X
            bad = int(np.argwhere(~finite)[0, 0])
            raise ValueError(f"{args.features} holds NaN or infinite values ({int((~finite).sum())} of them, first "
                             f"in row {bad}); remove or repair those rows, then run again")
        ks, note = capped_ks(args.ks, np.unique(np.asarray(y), return_inverse=True)[1])
        m = measure(X, y, args.temperatures, ks, progress=None)
    except (ValueError, TypeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps({"n": int(len(y)), "CH": m["CH"], "RLD": {str(t): v for t, v in m["RLD"].items()},
                          "CHI": {str(k): v for k, v in m["CHI"].items()}, "note": note}, indent=1))
        return 0
    print(f"{len(y):,} points, {X.shape[1]} dimensions, {len(np.unique(y))} classes" + (f"; {note}" if note else ""))
    print(f"{'metric':<12} {'value':>10}")
    print(f"{'CH':<12} {m['CH']:>10.4g}")
    for t, v in m["RLD"].items():
        print(f"{f'RLD T={t:g}':<12} {v:>10.4f}")
    for k, v in m["CHI"].items():
        print(f"{f'CHI k={k}':<12} {v:>10.4f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
