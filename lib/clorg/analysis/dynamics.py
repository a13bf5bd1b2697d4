"""Training dynamics: CH, RLD and kNN accuracy at every saved epoch of a run (SPEC section 5), as records.

Why. The paper's case rests on a trend, not on one endpoint: along a contrastive ViT run, CH (a
global measure) goes from 552 at epoch 0 to about 8 at epoch 1200 while RLD at T = 0.1 (local
density) climbs from 0.13 to 0.84, and RLD at T = 1 stays below 0.02. If contrastive learning builds
locally dense clusters, CH and RLD(T = 0.1) should part ways along any contrastive run, ours included.
The authors' learning rate *rises* through their run (their schedule quirk, clorg.train.schedule), so
the same measurement along a run under their curve and one under a plain cosine asks whether the trend
comes from the method or from the rising rate.

:func:`dynamics_records` replays a finished run's encoder snapshots (``checkpoints/encoder_eNNNN.pt``;
epoch 0 is the random initialisation) and measures each with :mod:`clorg.analysis.metrics` on the
training features (CH, RLD, and CHI at 1 and claim 1's k_max, so that the claims' deciding statistics
can be followed along the run) and the kNN probe on the test features; optionally the linear and GCN
heads' test accuracy (the authors' ``Feateval``: does the GCN's advantage grow with local density?), under
their protocol, ours or both; and the learning rate of every epoch. Features are extracted once per
snapshot and kept next to the run (:mod:`clorg.features`).
"""

from __future__ import annotations


import torch
from tqdm.auto import tqdm

from ..core import criteria
from ..core.devices import default_device
from ..features import run_features
from ..train.runs import SnapshotNotFound
from ..train.schedule import epoch_rates
from . import records as R
from .classify import snapshot_head_records
from .geometry import class_size, measure_records
from .heads import knn_probe
from .set_loss import view_outputs, whole_set_loss

def checkpoint_epochs(result) -> list[int]:
    """Sorted epochs of the encoder snapshots saved in ``result``'s run folder (a RunResult)."""
    epochs = result.files.snapshot_epochs()
    if not epochs:
        raise SnapshotNotFound(
            f"no encoder snapshots in {result.folder / 'checkpoints'}: the training dynamics need them. Retrain "
            f"the run with {result.retrain_command()}; it saves one every "
            f"train.checkpoint_every epochs")
    return epochs


def followed_encoder(encoders) -> str:
    """The encoder the dynamics chapter follows: the ViT when the profile trains one (the authors'
    figure is a ViT run), else the first encoder."""
    return "vit" if "vit" in encoders else encoders[0]


def dynamics_records(result, data, temperatures, knn_k: int, heads: dict | None = None, protocols=("ours",),
                     set_loss: bool = False, epochs=None, device=None) -> list[dict]:
    """Records of CH, RLD(T) for each temperature, CHI at k = 1 and claim 1's k_max, and kNN accuracy
    (k = ``knn_k``) at every saved epoch of ``result`` (None: every snapshot; else the listed ones, which
    must be saved), plus the learning rate at the start of every epoch of the run (metric
    ``learning_rate``). ``heads`` (the profile's ``heads`` section, or None): also the linear head's and
    the GCN's test accuracy at each snapshot, under each of ``protocols`` ("ours", "feateval": the
    authors'; :func:`clorg.analysis.classify.snapshot_head_records`).
    ``set_loss``: also the contrastive loss on the whole training set (:mod:`clorg.analysis.set_loss`),
    from views drawn with the run's seed at every snapshot."""
    saved = [e for e in checkpoint_epochs(result) if e <= result.final_epoch]
    epochs = saved if epochs is None else sorted(set(epochs))
    missing = sorted(set(epochs) - set(saved))
    if missing:
        raise result.snapshots_missing(missing)
    out = []
    chi_ks = sorted({1, criteria.claim1_k_max(class_size(data.train.labels))})
    for epoch in tqdm(epochs, desc=f"dynamics {result.folder.name}", unit="snapshot"):
        f = run_features(result, data, epoch=epoch, device=device)
        ident = {**f.identity, "epoch": epoch}
        train = torch.as_tensor(f.train).to(default_device())  # one copy on the device, for both
        out += measure_records(ident, train, f.train_labels, temperatures,
                               [k for k in chi_ks if k < len(train)], progress=False)
        ((k, accuracy),) = knn_probe(train, f.train_labels, f.test, f.test_labels, [knn_k]).items()
        out.append(R.record(ident, R.KNN, accuracy, parameter=k))  # the k actually used
        if heads is not None and protocols:
            out += snapshot_head_records(f, heads, protocols)
        if set_loss:
            encoder = result.load_encoder(epoch=epoch, device=device or default_device())
            q, k = view_outputs(encoder, data.train.images, result.config["seed"], device or default_device())
            out.append(R.record(ident, R.SET_LOSS, whole_set_loss(q, k)))
    steps = len(data.train) // result.config["batch_size"]
    ident = {k: result.config[k] for k in ("encoder", "method", "schedule")}
    out += [R.record({**ident, "epoch": e}, R.LR, lr)
            for e, lr in enumerate(epoch_rates(result.config, steps)[:result.final_epoch])]
    return out


def series(records: list[dict], metric: str, parameter=None, **run) -> list[tuple[int, float]]:
    """(epoch, value) of one metric along one run (``run``: encoder, method, schedule), by epoch."""
    return sorted((r["epoch"], r["value"]) for r in R.select(records, metric=metric, parameter=parameter, **run))


def trend(points: list[tuple[int, float]]) -> dict:
    """First, last, highest and lowest point of a series, each as ``(epoch, value)``."""
    if not points:
        raise ValueError("the series is empty")
    return {"first": points[0], "last": points[-1], "peak": max(points, key=lambda p: p[1]),
            "low": min(points, key=lambda p: p[1])}


def runs_in(records: list[dict]) -> list[dict]:
    """The runs (encoder, method, schedule) the records cover, in order of first appearance."""
    out = []
    for r in records:
        run = {k: r[k] for k in ("encoder", "method", "schedule")}
        if run not in out:
            out.append(run)
    return out


def toward_regime(records: list[dict], run: dict, ch_supervised: float | None = None) -> list[dict]:
    """The claims' deciding statistics at every snapshot of one run (``run``: encoder, method, schedule),
    beside the encoder's kNN accuracy at that snapshot, in epoch order:

    - ``chi_drop``: 1 − CHI(k_max) / CHI(1), claim 1's relative drop D (k_max the largest CHI k of the records);
    - ``rld_gain``: RLD(0.1) − RLD(0.1) at epoch 0, claim 3's gain over the random initialisation;
    - ``ch_ratio``: CH of the supervised run / CH of the snapshot, claim 2's ratio (None without
      ``ch_supervised``).

    A description of the path, not a trend fitted to it: no extrapolation."""
    k = (R.parameters(records, metric=R.KNN) or [None])[0]
    ks = R.parameters(records, metric=R.CHI)
    knn = dict(series(records, R.KNN, k, **run))
    chi1 = dict(series(records, R.CHI, 1, **run)) if 1 in ks else {}
    chik = dict(series(records, R.CHI, max(ks), **run)) if ks else {}
    rld = dict(series(records, R.RLD, criteria.RLD_LOCAL_T, **run))
    ch = dict(series(records, R.CH, **run))
    start = rld.get(0)
    out = []
    for epoch in sorted(knn):
        drop = criteria.chi_drop(chi1.get(epoch), chik.get(epoch)) if ks and max(ks) > 1 else None
        gain = rld[epoch] - start if epoch in rld and start is not None else None
        ratio = ch_supervised / ch[epoch] if ch_supervised is not None and ch.get(epoch) else None
        out.append({"epoch": epoch, "knn": knn[epoch], "chi_drop": drop, "rld_gain": gain, "ch_ratio": ratio})
    return out
