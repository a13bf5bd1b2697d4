"""Training dynamics: CH, RLD and the classifier heads at every saved epoch of one run (SPEC section 5).

Why. The paper's case rests on a trend, not on one endpoint: along a contrastive ViT run, CH (a
global measure) goes from 552 at epoch 0 to about 8 at epoch 1200 while RLD at T = 0.1 (local
density) climbs from 0.13 to 0.84, and RLD at T = 1 stays below 0.02. If contrastive learning builds
locally dense clusters, CH and RLD(T = 0.1) should part ways along any contrastive run, ours included.

:func:`dynamics` replays a finished run's encoder snapshots (``checkpoints/encoder_eNNNN.pt``; epoch 0
is the random initialisation) and measures each with the functions of the other chapters:
:mod:`clorg.metrics` on the training features, and the linear and GCN heads of :mod:`clorg.classify`
under both protocols (honest: early stopping on a validation split; the authors': best test accuracy
over steps). Features are extracted once per snapshot and kept next to the run (:mod:`clorg.embed`).
"""

from __future__ import annotations

import re

import pandas as pd
import torch
from tqdm.auto import tqdm

from . import classify, embed, metrics
from .devices import default_device

_SNAPSHOT = re.compile(r"encoder_e(\d+)\.pt")


def checkpoint_epochs(result) -> list[int]:
    """Sorted epochs of the encoder snapshots saved in ``result``'s run folder (a :class:`RunResult`)."""
    folder = result.folder / "checkpoints"
    found = [_SNAPSHOT.fullmatch(p.name) for p in folder.glob("encoder_e*.pt")] if folder.is_dir() else []
    epochs = sorted(int(m.group(1)) for m in found if m)
    if not epochs:
        c = result.config
        raise FileNotFoundError(
            f"no encoder snapshots (checkpoints/encoder_eNNNN.pt) in {result.folder}: the training dynamics "
            f"need them. Retrain the run with `python -m clorg.train --config {result.folder.parent.name} "
            f"--encoder {c['encoder']} --method {c['method']} --force` (with the same overrides and data); "
            f"it saves one every train.checkpoint_every epochs")
    return epochs


def dynamics(result, data, temperatures=(1.0, 0.5, 0.1), gcn_temperature: float = 0.1, seeds=(0,),
             epochs=None, head_cfg: dict | None = None, device=None) -> list[dict]:
    """One record per saved epoch of ``result`` (None: every snapshot; else the listed ones, which must
    be saved): ``epoch``, ``CH``, ``RLD T=<t>`` for each temperature, and test accuracy of the linear
    and the GCN (``gcn_temperature``) heads as ``"<head> (honest)"`` (mean over ``seeds``) and
    ``"<head> (authors' protocol)"``. ``head_cfg`` overrides :data:`clorg.classify.HEAD_DEFAULTS`."""
    saved = checkpoint_epochs(result)
    if epochs is None:
        epochs = saved
    missing = sorted(set(epochs) - set(saved))
    if missing:
        raise ValueError(f"no encoder snapshot for epoch(s) {missing} in {result.folder}; saved epochs: {saved}")
    gcn = f"GCN T={gcn_temperature:g}"
    records = []
    for epoch in tqdm(sorted(set(epochs)), desc=f"dynamics {result.folder.name}", unit="checkpoint"):
        f = embed.run_features(result, data, epoch=epoch, device=device)
        X = torch.as_tensor(f.train).to(default_device())  # the metrics run where X is
        record = {"epoch": int(epoch), "CH": metrics.calinski_harabasz(X, f.train_labels)}
        rld = metrics.rld_sweep(X, f.train_labels, temperatures, progress=False)
        record.update({f"RLD T={t:g}": v for t, v in rld.items()})
        for name, kind, t in (("linear", "linear", None), (gcn, "gcn", gcn_temperature)):
            acc = classify.evaluate_trained(f, kind, temperature=t, seeds=seeds, cfg=head_cfg)
            record[f"{name} (honest)"] = acc["test_mean"]
            record[f"{name} (authors' protocol)"] = acc["authors_protocol"]
        records.append(record)
    return records


def dynamics_table(records: list[dict]) -> pd.DataFrame:
    """The records of :func:`dynamics` as a DataFrame indexed by epoch."""
    return pd.DataFrame(records).set_index("epoch").sort_index()


def trend(table: pd.DataFrame, column: str) -> dict:
    """First, last, highest and lowest value of ``column`` along the run, each as ``(epoch, value)``."""
    s = table[column]
    return {"first": (int(s.index[0]), float(s.iloc[0])), "last": (int(s.index[-1]), float(s.iloc[-1])),
            "peak": (int(s.idxmax()), float(s.max())), "low": (int(s.idxmin()), float(s.min()))}


def follows_paper(table: pd.DataFrame) -> dict:
    """The paper's trend on one run, as the chapter and the report both judge it: CH ends below its
    epoch-0 value (global density falls) while RLD(T = 0.1) ends above its epoch-0 value (local density
    rises). Levels are not compared: the authors' run is a 1,200-epoch ViT."""
    ch, local = trend(table, "CH"), trend(table, "RLD T=0.1")
    falls, rises = ch["last"][1] < ch["first"][1], local["last"][1] > local["first"][1]
    return {"CH falls": falls, "RLD(0.1) rises": rises, "holds": falls and rises}


def compare_with_paper(table: pd.DataFrame, run: str, reference: dict, gcn: str) -> list[str]:
    """Readable lines setting one run's trends (:func:`trend`, :func:`follows_paper`) beside the
    authors' quoted points ``reference`` (:data:`clorg.paper.DYNAMICS_VIT_CONTRASTIVE`); ``gcn`` names the
    GCN head's columns (e.g. "GCN T=0.1")."""
    ch, local, broad = (trend(table, c) for c in ("CH", "RLD T=0.1", "RLD T=1"))
    verdict = follows_paper(table)
    ref_ch, ref_local, bound = reference["CH"], reference["RLD T=0.1"], reference["RLD T=1 below"]
    ref_peak = max(v for e, v in ref_ch if e > 0)
    lines = [
        f"ours, {run}, {table.index[-1]} epochs:",
        f"  CH {ch['first'][1]:.1f} (epoch {ch['first'][0]}) -> {ch['last'][1]:.1f} (epoch {ch['last'][0]}), peak "
        f"{ch['peak'][1]:.1f} at epoch {ch['peak'][0]}: {'falls' if verdict['CH falls'] else 'does NOT fall'} "
        f"({ch['last'][1] / ch['first'][1]:.2f}x; paper {ref_ch[-1][1] / ref_ch[0][1]:.3f}x); from its peak to the "
        f"last epoch {ch['last'][1] / ch['peak'][1] - 1:+.1%} (paper, from the peak after epoch 0: "
        f"{ref_ch[-1][1] / ref_peak - 1:+.1%})",
        f"  RLD(T=0.1) {local['first'][1]:.3f} -> {local['last'][1]:.3f}, peak {local['peak'][1]:.3f} at epoch "
        f"{local['peak'][0]}: {'rises' if verdict['RLD(0.1) rises'] else 'does NOT rise'} (paper "
        f"{ref_local[0][1]:g} -> {ref_local[-1][1]:g}, peak {max(v for _, v in ref_local):g})",
        f"  RLD(T=1) at most {broad['peak'][1]:.4f} (epoch {broad['peak'][0]}): "
        f"{'below' if broad['peak'][1] < bound else 'NOT below'} the paper's {bound:g}",
    ]
    for head in ("linear", gcn):
        a = trend(table, f"{head} (honest)")
        lines.append(f"  {head} test accuracy (honest) {a['first'][1]:.1%} -> {a['last'][1]:.1%}, peak "
                     f"{a['peak'][1]:.1%} at epoch {a['peak'][0]}")
    lines.append("  -> the paper's trend (CH down while RLD(T=0.1) goes up): "
                 + ("reproduced" if verdict["holds"] else "NOT reproduced") + " on this run")
    return lines
