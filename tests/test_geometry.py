"""Cluster geometry of feature sets as records (clorg.analysis.geometry) on constructed feature sets. The
claims 1-3 read these records in clorg.book.claims (tested there)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from factories import feature_set

from clorg.analysis import records as R
from clorg.analysis.geometry import capped_ks, chi_ks, class_size, geometry_records, measure
from clorg.analysis.metrics import calinski_harabasz, chi, rld_sweep


def test_capped_ks_says_what_it_capped():
    labels = np.repeat(np.arange(3), [50, 40, 60])
    assert capped_ks([1, 10], labels) == ([1, 10], None)
    ks, note = capped_ks([1, 10, 100, 500], labels)
    assert ks == [1, 10, 39] and "smallest class (40 images)" in note
    assert "asked for [1, 10, 100, 500], used [1, 10, 39]" in note


def _compact_and_fragmented():
    """compact: each class one tight blob; fragmented: each class 10 tiny blobs scattered at random."""
    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(5), 60)
    compact = rng.normal(size=(5, 32))[y] + 0.05 * rng.normal(size=(300, 32))
    frag = rng.normal(size=(50, 32))[np.arange(300) // 6] + 0.05 * rng.normal(size=(300, 32))
    norm = lambda a: (a / np.linalg.norm(a, axis=1, keepdims=True)).astype(np.float32)  # noqa: E731
    return norm(compact), norm(frag), y


def test_measure_on_four_points_computed_by_hand():
    """Two classes of two points, (1, +-e) and (-1, +-e), e = 0.1. CH = B/(C-1) / (W/(n-C)) with B = 4 (each
    point's centre 1 from the mean) and W = 4 e^2: 2/e^2 = 200. CHI by cosine: the nearest is the class
    partner (1), the 2nd the mirror image in the other class (1/2), the 3rd (1/3). RLD: every point has the
    same distances (2e to its partner, 2 and 2 sqrt(1 + e^2) to the others), so all degrees are equal and
    the modularity is the within-class share of W = E^2 minus 1/2, E = exp(-d / mean(d) / T)."""
    e = 0.1
    X = np.array([[1, e], [1, -e], [-1, e], [-1, -e]], dtype=np.float64)
    y = np.array([0, 0, 1, 1])
    within, near, far = 2 * e, 2.0, 2 * np.sqrt(1 + e**2)
    mean_d = (within + 2 * near + 2 * far + within) / 6

    def rld_by_hand(T):
        w, n_, f = (np.exp(-d / mean_d / T) ** 2 for d in (within, near, far))
        return w / (w + n_ + f) - 0.5

    m = measure(X, y, [1.0, 0.1], [1, 2, 3])
    assert set(m) == {"CH", "RLD", "CHI"}
    assert m["CH"] == pytest.approx(2 / e**2, rel=1e-9)
    assert m["CHI"] == {1: pytest.approx(1.0), 2: pytest.approx(0.5), 3: pytest.approx(1 / 3)}
    assert list(m["RLD"]) == [1.0, 0.1]
    assert m["RLD"][1.0] == pytest.approx(rld_by_hand(1.0), abs=1e-9) and 0.3 < m["RLD"][1.0] < 0.4
    assert m["RLD"][0.1] == pytest.approx(rld_by_hand(0.1), abs=1e-9) and m["RLD"][0.1] == pytest.approx(0.5, abs=1e-4)
    assert measure(torch.from_numpy(X), y, [1.0], [1])["CH"] == pytest.approx(m["CH"], rel=1e-12)


def test_geometry_records_separate_compact_from_fragmented_classes():
    compact, frag, y = _compact_and_fragmented()
    sets = [feature_set(compact, y, compact[:5], y[:5], encoder="e", method="supervised"),
            feature_set(frag, y, frag[:5], y[:5], encoder="e", method="moco_queue")]
    records = geometry_records(sets, [1.0, 0.1], [1, 50])
    assert all(list(r) == list(R.FIELDS) for r in records) and len(records) == 2 * (1 + 2 + 2)
    assert R.parameters(records, metric=R.RLD) == [1.0, 0.1] and R.parameters(records, metric=R.CHI) == [1, 50]
    assert R.parameters(records, metric=R.CH) == [None]
    sl = {"encoder": "e", "method": "supervised"}
    cl = {"encoder": "e", "method": "moco_queue"}
    # the records are the metrics of the *training* features
    assert R.value(records, metric=R.CH, **sl) == pytest.approx(calinski_harabasz(compact, y), rel=1e-12)
    assert R.value(records, metric=R.RLD, parameter=0.1, **cl) == pytest.approx(rld_sweep(frag, y, [0.1])[0.1],
                                                                               rel=1e-9)
    assert R.value(records, metric=R.CHI, parameter=50, **cl) == chi(frag, y, 50)[50]
    # what the claims read from them: one blob per class has the higher CH; tiny clusters keep CHI(1) but
    # lose it at k = 50 (beyond a cluster's 6 points); RLD at a small T sees the tiny clusters' purity
    assert R.value(records, metric=R.CH, **sl) > 10 * R.value(records, metric=R.CH, **cl)
    assert R.value(records, metric=R.CHI, parameter=1, **cl) > 0.95
    assert R.value(records, metric=R.CHI, parameter=1, **cl) - R.value(records, metric=R.CHI, parameter=50, **cl) > 0.2
    assert R.value(records, metric=R.CHI, parameter=1, **sl) - R.value(records, metric=R.CHI, parameter=50, **sl) < 0.05
    cl_ratio = R.value(records, metric=R.RLD, parameter=0.1, **cl) / R.value(records, metric=R.RLD, parameter=1.0, **cl)
    sl_ratio = R.value(records, metric=R.RLD, parameter=0.1, **sl) / R.value(records, metric=R.RLD, parameter=1.0, **sl)
    assert cl_ratio > 3 and cl_ratio > sl_ratio
    assert R.value(records, metric=R.RLD, parameter=1.0, **sl) > R.value(records, metric=R.RLD, parameter=1.0, **cl)
    # identity fields come from the feature set
    assert {(r["schedule"], r["epoch"], r["seed"]) for r in records} == {("cosine", 20, None)}


def test_chi_ks_add_claim_ones_k_max():
    """Claim 1's k_max is 0.2 of a class's images (SPEC 7): 200 of 1,000, 20 of 100."""
    labels = np.repeat(np.arange(10), 1000)
    assert chi_ks([1, 10, 100, 200, 500, 1000], labels) == ([1, 10, 100, 200, 500, 999],
                                                            capped_ks([1, 10, 100, 200, 500, 1000], labels)[1])
    ks, note = chi_ks([1, 10], np.repeat(np.arange(3), 100))
    assert ks == [1, 10, 20] and note.startswith("k = 20 added: claim 1's k_max, 0.2 of a class's 100 images")
    assert class_size(np.repeat(np.arange(3), [50, 20, 80])) == 20


# ------------------------------------------- the command's input -------------------------------------------

def _command(capsys, *args) -> tuple[int, str, str]:
    from clorg.analysis.geometry import main

    code = main([str(a) for a in args] + ["--ks", "1", "3", "--temperatures", "1", "--json"])
    out, err = capsys.readouterr()
    return code, out, err


def _points():
    rng = np.random.default_rng(1)
    return rng.normal(size=(40, 5)), np.repeat(np.arange(4), 10)


def test_the_command_reads_a_csv_by_commas_or_spaces_with_or_without_a_header_as_the_npy(tmp_path, capsys):
    """numpy.savetxt writes spaces by default; a header row of names is skipped; the values equal the .npy's."""
    X, y = _points()
    np.save(tmp_path / "X.npy", X)
    np.save(tmp_path / "y.npy", y)
    code, expected, _ = _command(capsys, tmp_path / "X.npy", tmp_path / "y.npy")
    assert code == 0
    np.savetxt(tmp_path / "spaces.csv", X)
    np.savetxt(tmp_path / "commas.csv", X, delimiter=",", header=",".join(f"f{i}" for i in range(5)), comments="")
    np.savetxt(tmp_path / "labels.csv", y, fmt="%d", header="label", comments="")
    # a header of names over data separated otherwise; blank lines and a byte-order mark before it
    np.savetxt(tmp_path / "mixed.csv", X, header="a,b,c,d,e", comments="")
    text = (tmp_path / "spaces.csv").read_text()
    (tmp_path / "bom.csv").write_text("\ufeff\n\nf0 f1 f2 f3 f4\n" + text, encoding="utf-8")
    for features in ("spaces.csv", "commas.csv", "mixed.csv", "bom.csv"):
        code, out, err = _command(capsys, tmp_path / features, tmp_path / "labels.csv")
        assert (code, err) == (0, "") and out == expected, features  # to the last digit: read row-major
    # labels as whole floats, as one column, as a .pt of ints; one feature column is an (n, 1) matrix
    np.save(tmp_path / "yf.npy", y.astype(float)[:, None])
    torch.save({"labels": torch.tensor(y)}, tmp_path / "y.pt")
    for labels in ("yf.npy", "y.pt"):
        assert _command(capsys, tmp_path / "X.npy", tmp_path / labels)[1] == expected, labels
    np.savetxt(tmp_path / "one.csv", X[:, :1])
    assert _command(capsys, tmp_path / "one.csv", tmp_path / "y.npy")[0] == 0
    # pandas' DataFrame(X).to_csv(index=False): its header is the column names 0, 1, ..., d - 1, not a point
    (tmp_path / "pandas.csv").write_text("0,1,2,3,4\n" + "".join(",".join(repr(float(v)) for v in row) + "\n" for row in X))
    assert _command(capsys, tmp_path / "pandas.csv", tmp_path / "labels.csv")[1] == expected


def test_the_command_reads_bfloat16_tensors_with_a_gradient_and_bool_labels(tmp_path, capsys):
    """What this project's own training leaves (bf16, requires_grad) reads as float32; bool labels are classes."""
    X, y = _points()
    rounded = torch.tensor(X, dtype=torch.bfloat16)
    torch.save({"features": rounded.clone().requires_grad_()}, tmp_path / "X.pt")
    np.save(tmp_path / "X.npy", rounded.float().numpy())
    np.save(tmp_path / "y.npy", y % 2 == 0)
    code, expected, _ = _command(capsys, tmp_path / "X.npy", tmp_path / "y.npy")
    assert code == 0 and _command(capsys, tmp_path / "X.pt", tmp_path / "y.npy")[1] == expected


# a features CSV's text, and what the error says after the file's name
BAD_CSV = {"empty-csv": ("\n\n", " is empty: no rows of numbers"),
           "header-only": ("a,b,c\n", " holds a header row and no numbers"),
           "text-cell": ("1,2\n3,4\n5,oops\n", ", line 3, column 2: 'oops' is not a number"),
           "ragged-csv": ("1,2\n3,4,5\n", ", line 2: 3 values where line 1 has 2"),
           "space-in-cell": ("1,2\n3,4 5\n", ", line 2, column 2: '4 5' is not a number"),
           # DataFrame.to_csv with its index: an empty first name over a column of row numbers
           "pandas-index": (",0,1\n0,0.5,0.25\n1,0.75,0.5\n", ", line 1: the header's first name is empty, as pandas "
                                                             "writes it over the index column")}


@pytest.mark.parametrize("case", [*BAD_CSV, "damaged-npy", "object-npy",
                                  "object-npz", "fractional-labels", "text-labels", "no-points", "single-point-class",
                                  "one-dimensional", "bool-features", "pickled-pt", "pandas-label-header",
                                  "numbers-first-point"])
def test_the_command_names_the_file_of_each_bad_input_in_one_line_and_exits_2(tmp_path, capsys, case):
    X, y = _points()
    features, labels = tmp_path / "X.npy", tmp_path / "y.npy"
    np.save(features, X)
    np.save(labels, y)
    if case in BAD_CSV:
        features = tmp_path / "X.csv"
        text, what = BAD_CSV[case]
        features.write_text(text)
        expected = f"{features}{what}"
    elif case == "damaged-npy":
        features.write_bytes(features.read_bytes()[:20])
        expected = f"{features} cannot be read as npy ("
    elif case == "object-npy":
        np.save(features, np.array([{"a": 1}] * 40, dtype=object), allow_pickle=True)
        expected = f"{features} holds Python objects (an object array), which are never unpickled here"
    elif case == "object-npz":
        features = tmp_path / "X.npz"
        np.savez(features, features=np.array([None] * 40, dtype=object))
        expected = f"{features} holds Python objects (an object array), which are never unpickled here"
    elif case == "fractional-labels":
        np.save(labels, y + 0.5 * (np.arange(40) == 7))
        expected = f"{labels} holds labels that are not whole numbers (row 7, counting from 0: "
    elif case == "text-labels":
        np.save(labels, np.array(["cat", "dog"] * 20))
        expected = f"{labels} holds <U3 values, not real numbers; map class names to integers first"
    elif case == "no-points":
        np.save(features, np.zeros((0, 5)))
        expected = f"{features} holds no points (an array of shape (0, 5))"
    elif case == "single-point-class":
        np.save(labels, np.r_[y[:-1], 9])
        expected = f"{labels} holds a class of a single point (class 9); CHI needs at least two points of every class"
    elif case == "bool-features":
        np.save(features, X > 0)
        expected = f"{features} holds bool values, not real numbers"
    elif case == "pandas-label-header":  # Series(y).to_csv(index=False): a header '0' reads as one label too many
        labels = tmp_path / "y.csv"
        labels.write_text("0\n" + "".join(f"{v}\n" for v in y))
        expected = (f"{features} has 40 rows but {labels} has 41 labels; they must match (the first line of {labels}, "
                    f"'0', may be the column name pandas writes over a Series: write it with header=False)")
    elif case == "numbers-first-point":  # a genuine first point 0, 1, ..., d - 1 is taken for pandas' header: named
        features = tmp_path / "X.csv"
        features.write_text("0,1,2,3,4\n" + "".join(",".join(str(float(v)) for v in row) + "\n" for row in X[1:]))
        expected = (f"{features} has 39 rows but {labels} has 40 labels; they must match (the first line of "
                    f"{features}, '0,1,2,3,4', was read as pandas' column names, not as a point")
    elif case == "pickled-pt":
        features = tmp_path / "X.pt"
        torch.save({"features": np.zeros((40, 5))}, features)  # a numpy array: torch's weights_only refuses it
        expected = f"{features} cannot be read as pt (UnpicklingError: "
    elif case == "one-dimensional":
        np.save(features, X[:, 0])
        expected = f"{features} holds an array of shape (40,); features are an (n, d) matrix"
    code, out, err = _command(capsys, features, labels)
    assert code == 2 and out == "" and err.count("\n") == 1, err
    assert err.startswith(f"error: {expected}"), err
