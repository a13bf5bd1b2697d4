"""Cluster geometry of feature sets (CH, RLD over temperatures, CHI over k) and the paper's claims 1-3.

The claims as checks (SPEC section 7), with the thresholds the SPEC states:

1. CHI(1) - CHI(k_max) > 0.2 for contrastive features and < 0.05 for supervised ones, per encoder.
2. CH(supervised) > CH(contrastive), per encoder.
3. RLD(T = 0.1) >> RLD(T = 1) for contrastive features, while supervised features keep a high RLD at
   large T too. Checked as: RLD(0.1) / RLD(1) of the contrastive features is above 3 and above that
   of the supervised features, and RLD(1) of the supervised features is above the contrastive one.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from .devices import default_device
from .metrics import calinski_harabasz, chi, rld_sweep

CONTRASTIVE = ("moco_queue", "simclr")


def capped_ks(ks, labels) -> tuple[list[int], str | None]:
    """The ks below the smallest class size (CHI(k) of a class smaller than k mixes in other classes by
    construction), and a note when some were capped."""
    smallest = int(np.bincount(np.asarray(labels)).min())
    kept = sorted({min(int(k), smallest - 1) for k in ks})
    if kept == sorted(int(k) for k in ks):
        return kept, None
    return kept, (f"k capped at {smallest - 1}, one below the smallest class ({smallest} images): "
                  f"asked for {sorted(int(k) for k in ks)}, used {kept}")


def geometry(features: dict[str, tuple[np.ndarray, np.ndarray]], temperatures, ks) -> pd.DataFrame:
    """One row per feature set (name -> (X, y)): CH, RLD at each T, CHI at each k."""
    rows = []
    device = default_device()  # the metrics run blockwise on whichever device holds X
    for name, (X, y) in features.items():
        X = torch.as_tensor(X).to(device)
        row = {"features": name, "CH": calinski_harabasz(X, y)}
        row.update({f"RLD T={t:g}": v for t, v in rld_sweep(X, y, temperatures).items()})
        row.update({f"CHI k={k}": v for k, v in chi(X, y, ks).items()})
        rows.append(row)
    return pd.DataFrame(rows).set_index("features")


def check_claims(table: pd.DataFrame, encoders, methods) -> pd.DataFrame:
    """Claims 1-3 per encoder and contrastive method, with the numbers and a verdict.

    ``table`` is :func:`geometry`'s output with rows named ``"<encoder> <method>"``.
    """
    chi_cols = [c for c in table.columns if c.startswith("CHI k=")]
    k_first, k_last = chi_cols[0], chi_cols[-1]
    rows = []
    for enc in encoders:
        if "supervised" not in methods:
            continue
        sl = table.loc[f"{enc} supervised"]
        for method in (m for m in methods if m in CONTRASTIVE):
            cl = table.loc[f"{enc} {method}"]
            drop_cl, drop_sl = cl[k_first] - cl[k_last], sl[k_first] - sl[k_last]
            rows.append({"claim": 1, "encoder": enc, "contrastive": method,
                         "numbers": f"CHI drop {k_first[4:]}..{k_last[4:]}: CL {drop_cl:.3f}, SL {drop_sl:.3f}",
                         "holds": bool(drop_cl > 0.2 and drop_sl < 0.05)})
            rows.append({"claim": 2, "encoder": enc, "contrastive": method,
                         "numbers": f"CH: SL {sl['CH']:.1f}, CL {cl['CH']:.1f}", "holds": bool(sl["CH"] > cl["CH"])})
            ratio_cl = cl["RLD T=0.1"] / cl["RLD T=1"]
            ratio_sl = sl["RLD T=0.1"] / sl["RLD T=1"]
            rows.append({"claim": 3, "encoder": enc, "contrastive": method,
                         "numbers": (f"RLD(0.1)/RLD(1): CL {ratio_cl:.2f}, SL {ratio_sl:.2f}; "
                                     f"RLD(1): CL {cl['RLD T=1']:.4f}, SL {sl['RLD T=1']:.4f}"),
                         "holds": bool(ratio_cl > 3 and ratio_cl > ratio_sl and sl["RLD T=1"] > cl["RLD T=1"])})
    return pd.DataFrame(rows)
