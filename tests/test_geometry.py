"""Cluster geometry tables and the claim checks on constructed feature sets."""

from __future__ import annotations

import numpy as np
import pandas as pd

from clorg.geometry import capped_ks, check_claims, geometry


def test_capped_ks_says_what_it_capped():
    labels = np.repeat(np.arange(3), [50, 40, 60])
    assert capped_ks([1, 10], labels) == ([1, 10], None)
    ks, note = capped_ks([1, 10, 100, 500], labels)
    assert ks == [1, 10, 39] and "smallest class (40 images)" in note


def test_geometry_separates_compact_from_fragmented_classes():
    rng = np.random.default_rng(0)
    # compact: each class one tight blob; fragmented: each class 10 tiny blobs scattered at random
    compact_c = rng.normal(size=(5, 32))
    y = np.repeat(np.arange(5), 60)
    compact = compact_c[y] + 0.05 * rng.normal(size=(300, 32))
    frag_c = rng.normal(size=(50, 32))
    frag = frag_c[np.arange(300) // 6] + 0.05 * rng.normal(size=(300, 32))
    norm = lambda a: a / np.linalg.norm(a, axis=1, keepdims=True)  # noqa: E731
    table = geometry({"e supervised": (norm(compact), y), "e moco_queue": (norm(frag), y)}, [1.0, 0.1], [1, 50])
    assert list(table.columns) == ["CH", "RLD T=1", "RLD T=0.1", "CHI k=1", "CHI k=50"]
    claims = check_claims(table, ["e"], ["moco_queue", "supervised"])
    assert claims["claim"].tolist() == [1, 2, 3]
    assert claims["holds"].all(), claims.to_string()


def test_claims_can_fail():
    table = pd.DataFrame({"CH": [10.0, 50.0], "RLD T=1": [0.5, 0.1], "RLD T=0.1": [0.6, 0.2],
                          "CHI k=1": [0.9, 0.9], "CHI k=100": [0.89, 0.5]},
                         index=["r supervised", "r simclr"])
    # here the "contrastive" features are the compact ones in CH, and CHI drops for supervised
    table.loc["r simclr", "CH"] = 100.0
    table.loc["r supervised", "CHI k=100"] = 0.5
    claims = check_claims(table, ["r"], ["simclr", "supervised"]).set_index("claim")
    assert not claims.loc[1, "holds"] and not claims.loc[2, "holds"]
