"""Cluster geometry of feature sets: CH, RLD over temperatures and CHI over k, as records.

``geometry_records`` measures every feature set of a profile for the metrics chapter; the same three
metrics for anyone's features come from :func:`measure` (and the command
``python -m clorg.analysis.geometry FEATURES LABELS``).
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

FEATURES: an (n, d) matrix, LABELS: n whole-number class labels, each as .npy, .npz (its only array, or the
one named features/X resp. labels/y), .pt (a tensor, or a dict holding one under those names) or .csv
(numbers separated by commas or spaces; a first row that is not numbers, or is pandas' column names 0, 1, ...,
d - 1, is a header and skipped; labels: one column, with no header of numbers). Every class needs at least two
points. Features are used as given: L2-normalise them first if they are embeddings (as the paper's are).
Prints CH, RLD at each temperature and CHI at each k (capped below the smallest class) as a table, or as JSON
with --json. Progress bars (stderr) appear from 20,000 points. A bad
input is a one-line error and exit status 2.
"""


class InputError(ValueError):
    """A file the geometry command cannot use; the message names it (and the line and column, or the row)."""


def _is_number(cell: str) -> bool:
    try:
        float(cell)
        return True
    except ValueError:
        return False


def _delimiter(line: str) -> str | None:
    """A CSV line's separator: a comma where it has any, else runs of spaces (numpy.savetxt's default; None
    to str.split and numpy.loadtxt)."""
    return "," if "," in line else None


def _cells(line: str) -> list[str]:
    """A CSV line's cells, split at its :func:`_delimiter`."""
    return line.split(_delimiter(line))


def _indexed(cells: list[str]) -> bool:
    """A header that begins with an empty name, as pandas writes it over the index column it adds."""
    return len(cells) > 1 and cells[0].strip() == ""


def _is_header(cells: list[str]) -> bool:
    """A first line of names: no cell a number, or the column names pandas gives an unnamed DataFrame's columns
    (0, 1, ..., d - 1, after an empty name where it wrote the index too), which would otherwise be a point."""
    names = [c.strip() for c in cells]
    if not any(_is_number(c) for c in names):
        return True
    numbered = names[1:] if _indexed(cells) else names  # indexed, a single column of data is named 0 alone
    return len(numbered) >= (1 if _indexed(cells) else 2) and numbered == [str(i) for i in range(len(numbered))]


def _csv_fault(p, rows: list[tuple[int, str]], delimiter: str | None) -> str:
    """Where numpy could not read the data rows ``rows`` ((line number, text)): the first line of another width
    or the first cell that is no number, by the file's own line numbers."""
    width = len(rows[0][1].split(delimiter))
    for number, line in rows:
        cells = line.split(delimiter)
        if len(cells) != width:
            return f"{p}, line {number}: {len(cells)} values where line {rows[0][0]} has {width}"
        for column, cell in enumerate(cells, 1):
            if not _is_number(cell):
                return f"{p}, line {number}, column {column}: {cell.strip()!r} is not a number"
    return f"{p} cannot be read as rows of numbers"


def _read_csv(p) -> np.ndarray:
    """Rows of numbers separated by commas, or by spaces (numpy.savetxt's default), as an (n, d) array; a
    first line none of whose cells is a number is a header, and skipped; blank lines and a byte-order mark
    are ignored."""
    lines = p.read_text(encoding="utf-8-sig").splitlines()
    rows = [(number, line) for number, line in enumerate(lines, 1) if line.strip()]
    if not rows:
        raise InputError(f"{p} is empty: no rows of numbers")
    header = _cells(rows[0][1])
    if _is_header(header):
        if _indexed(header):  # pandas' DataFrame.to_csv writes its index so
            raise InputError(f"{p}, line {rows[0][0]}: the header's first name is empty, as pandas writes it over "
                             f"the index column (DataFrame.to_csv without index=False); that column is row numbers, "
                             f"not a feature: write the file with index=False, or remove the first column")
        rows = rows[1:]
        if not rows:
            raise InputError(f"{p} holds a header row and no numbers")
    delimiter = _delimiter(rows[0][1])  # the data's own, whatever the header's
    try:
        return np.loadtxt([line for _, line in rows], delimiter=delimiter, ndmin=2, dtype=np.float64)
    except ValueError:
        raise InputError(_csv_fault(p, rows, delimiter)) from None


def _read(p, suffix: str, names: tuple[str, ...], what: str) -> np.ndarray:
    if suffix == ".npy":
        return np.load(p, allow_pickle=False)
    if suffix == ".npz":
        with np.load(p, allow_pickle=False) as z:
            keys = [k for k in names if k in z.files] or z.files
            if len(keys) != 1:
                raise InputError(f"{p} holds arrays {z.files}; name the {what} one {names[0]!r}")
            return z[keys[0]]
    if suffix == ".pt":
        obj = torch.load(p, map_location="cpu", weights_only=True)
        if isinstance(obj, dict):
            keys = [k for k in names if k in obj]
            if not keys:
                raise InputError(f"{p} holds a dict without any of {list(names)}")
            obj = obj[keys[0]]
        t = torch.as_tensor(obj).detach()
        if t.is_floating_point() and t.dtype not in (torch.float32, torch.float64):  # bf16, half: no numpy type
            t = t.float()
        return t.numpy()
    return _read_csv(p)


def _load(path: str, names: tuple[str, ...], what: str) -> np.ndarray:
    """The array of ``what`` (features or labels) in ``path``: real numbers (labels: bools too), at least one."""
    from pathlib import Path

    p = Path(path)
    if not p.is_file():
        raise InputError(f"{what} file {path} does not exist")
    suffix = p.suffix.lower()
    if suffix not in (".npy", ".npz", ".pt", ".csv"):
        raise InputError(f"{path}: unknown format {suffix or '(none)'}; use .npy, .npz, .pt or .csv")
    try:
        array = np.asarray(_read(p, suffix, names, what))
    except InputError:
        raise
    except Exception as exc:  # unreadable files of any kind: one clear line, not a traceback
        if isinstance(exc, ValueError) and "allow_pickle" in str(exc):  # an object array: never unpickled here
            raise InputError(f"{path} holds Python objects (an object array), which are never unpickled here; "
                             f"save the {what} as an array of numbers") from exc
        first = (str(exc).strip().splitlines() or [""])[0]  # torch's refusals run over several lines
        raise InputError(f"{path} cannot be read as {suffix[1:]} ({type(exc).__name__}: {first})") from exc
    if array.dtype.kind not in ("iuf" + ("b" if what == "labels" else "")):
        hint = "; map class names to integers first" if what == "labels" else ""
        raise InputError(f"{path} holds {array.dtype} values, not real numbers{hint}")
    if array.size == 0 or array.ndim == 0:
        raise InputError(f"{path} holds no points (an array of shape {array.shape})")
    return array


def _labels(y: np.ndarray, path: str) -> np.ndarray:
    """Class labels as integers: one per row (a single column is one per row) and whole numbers only."""
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1:
        raise InputError(f"labels must be one label per row, got shape {y.shape} in {path}")
    if y.dtype.kind == "f":
        fractional = ~np.isfinite(y) | (y != np.round(y))
        if fractional.any():
            row = int(np.argmax(fractional))
            raise InputError(f"{path} holds labels that are not whole numbers (row {row}, counting from 0: "
                             f"{y[row]!r}); labels are class ids")
    return y.astype(np.int64)


def _first_line(path: str) -> str | None:
    """The first non-blank line of a CSV file (None for other formats)."""
    from pathlib import Path

    p = Path(path)
    if p.suffix.lower() != ".csv":
        return None
    return next((line.strip() for line in p.read_text(encoding="utf-8-sig").splitlines() if line.strip()), "")


def _row_count_hint(features: str, labels: str, extra: int) -> str:
    """Why the labels may count one row more (``extra`` 1) or fewer (-1) than the features: a header of numbers,
    as pandas writes them (0 over an unnamed Series or one-column DataFrame, 0, 1, ..., d - 1 over a DataFrame's
    columns). In a labels file it reads as a label of class 0; in a features file the names of two or more
    columns are skipped as a header (where they could have been a point), a single 0 is read as a point."""
    hints = []
    if extra == 1 and _first_line(labels) == "0":
        hints.append(f"the first line of {labels}, '0', may be the column name pandas writes over a Series: write "
                     f"it with header=False")
    first = _first_line(features) or ""
    cells = _cells(first)
    if extra == 1 and any(_is_number(c) for c in cells) and _is_header(cells):
        hints.append(f"the first line of {features}, {first!r}, was read as pandas' column names, not as a point: "
                     f"if it is a point, put a header of names above it")
    if extra == -1 and first == "0":
        hints.append(f"the first line of {features}, '0', may be the column name pandas writes over a one-column "
                     f"DataFrame: write it with header=False")
    return f" ({'; '.join(hints)})" if hints else ""


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
        y = _labels(_load(args.labels, ("labels", "y"), "labels"), args.labels)
        if X.ndim != 2:
            raise ValueError(f"{args.features} holds an array of shape {X.shape}; features are an (n, d) matrix")
        if len(X) != len(y):
            raise ValueError(f"{args.features} has {len(X)} rows but {args.labels} has {len(y)} labels; they must "
                             f"match{_row_count_hint(args.features, args.labels, len(y) - len(X))}")
        classes, counts = np.unique(y, return_counts=True)
        if len(classes) < 2:
            raise ValueError(f"{args.labels} holds one class; RLD, CH and CHI compare at least two")
        if counts.min() < 2:  # CHI(k) counts a point's neighbours of its class: it has none
            raise ValueError(f"{args.labels} holds a class of a single point (class {classes[counts.argmin()]}); "
                             f"CHI needs at least two points of every class: drop that point or add its class's")
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
