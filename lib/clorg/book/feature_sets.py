"""The feature sets a chapter's records hold, listed one way for every table and figure of the book: each set
(encoder, method, schedule, epoch) once, in one order (contrastive runs, then supervised ones, then random
initialisations) and under one name. A set so keeps its place and its name from a figure to the table under
it, and from one profile's book to another's, whatever order a profile lists its methods in."""

from __future__ import annotations

from ..features import label

IDENTITY = ("encoder", "method", "schedule", "epoch")
CONTRASTIVE, SUPERVISED, RANDOM_INIT = 0, 1, 2


def key(r) -> tuple:
    """The identity of the set a record (or record-like mapping) belongs to."""
    return tuple(r.get(k) for k in IDENTITY)


def kind(r) -> int:
    """:data:`CONTRASTIVE`, :data:`SUPERVISED` or :data:`RANDOM_INIT` (epoch 0); a training run's row has no
    epoch and is a trained run."""
    if r.get("epoch") == 0:
        return RANDOM_INIT
    return SUPERVISED if r["method"] == "supervised" else CONTRASTIVE


def ordered(items) -> list:
    """The first of ``items`` of each set, in the book's order: by kind, then encoder, method, schedule, epoch."""
    first: dict[tuple, object] = {}
    for r in items:
        first.setdefault(key(r), r)
    return sorted(first.values(), key=lambda r: (kind(r), r["encoder"], r["method"], r.get("schedule") or "",
                                                 r.get("epoch") or 0))


def names(items) -> dict[tuple, str]:
    """``{key: name}``: a set's label, with its epoch where one run has several trained epochs among ``items``
    (an extra snapshot beside the analysed one, e.g. `paper`'s supervised ResNet-18 at 600 beside 120)."""
    epochs: dict[str, set] = {}
    for r in items:
        if r.get("epoch"):
            epochs.setdefault(label(r), set()).add(r["epoch"])
    return {key(r): label(r) + (f" (epoch {r['epoch']})" if len(epochs.get(label(r), ())) > 1 else "")
            for r in items}


def identities(items) -> list[dict]:
    """The sets of ``items`` as ``{encoder, method, schedule, epoch}`` mappings, in the book's order."""
    return [dict(zip(IDENTITY, key(r))) for r in ordered(items)]
