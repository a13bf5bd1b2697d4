"""Figures of the book. Each function takes arrays or datasets and returns a matplotlib Figure."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

from .data import Dataset


def sample_grid(ds: Dataset, per_class: int = 8, seed: int = 0) -> plt.Figure:
    """``per_class`` random images of every class, one row per class, class names on the left."""
    rng = np.random.default_rng(seed)
    n_classes = len(ds.classes)
    fig, axes = plt.subplots(n_classes, per_class, figsize=(per_class * 0.9, n_classes * 0.9),
                             squeeze=False, gridspec_kw={"wspace": 0.05, "hspace": 0.05})
    gray = ds.images.shape[-1] == 1
    for ci, name in enumerate(ds.classes):
        members = np.flatnonzero(ds.labels == ci)
        picks = rng.choice(members, size=min(per_class, len(members)), replace=False)
        for j, ax in enumerate(axes[ci]):
            ax.set_xticks([])
            ax.set_yticks([])
            for spine in ax.spines.values():
                spine.set_visible(False)
            if j < len(picks):
                img = ds.images[picks[j]]
                ax.imshow(img[..., 0] if gray else img, cmap="gray" if gray else None, vmin=0, vmax=255)
        axes[ci, 0].set_ylabel(name, rotation=0, ha="right", va="center", fontsize=9)
    fig.suptitle(f"{ds.name} {ds.split}: {per_class} random images per class", y=0.995)
    return fig


def class_counts(*splits: Dataset) -> plt.Figure:
    """Images per class for each split, as grouped bars."""
    rows = [{"class": name, "split": ds.split, "images": int(count)}
            for ds in splits for name, count in zip(ds.classes, ds.class_counts)]
    fig, ax = plt.subplots(figsize=(8, 3.2))
    sns.barplot(pd.DataFrame(rows), x="class", y="images", hue="split", ax=ax)
    ax.set_xlabel("")
    ax.tick_params(axis="x", rotation=30)
    ax.set_title("images per class")
    fig.tight_layout()
    return fig


def toy_grid(panels: dict, titles: dict[str, str], scores: dict[str, dict[str, float]]) -> plt.Figure:
    """The paper's 2 x 3 toy figure: each panel's points coloured by class, RLD and CH in its title."""
    fig, axes = plt.subplots(2, 3, figsize=(11, 7.2))
    for ax, (name, (X, y)) in zip(axes.flat, panels.items()):
        ax.scatter(X[:, 0], X[:, 1], c=y, cmap="tab10", vmin=0, vmax=9, s=3, linewidths=0)
        s = scores[name]
        ax.set_title(f"{titles[name]}\nRLD {s['rld']:.2f}, CH {s['ch']:.4g}", fontsize=10)
        ax.set_aspect("equal", adjustable="datalim")
        ax.set_xticks([])
        ax.set_yticks([])
    fig.tight_layout()
    return fig


def rld_against_temperature(curves: dict[str, dict[float, float]], titles: dict[str, str] | None = None,
                            marks: tuple[float, ...] = ()) -> plt.Figure:
    """RLD against the temperature T (log axis), one line per curve; vertical lines at ``marks``."""
    fig, ax = plt.subplots(figsize=(7, 4))
    for name, curve in curves.items():
        ts = sorted(curve)
        ax.plot(ts, [curve[t] for t in ts], marker="o", ms=3, label=(titles or {}).get(name, name))
    for t in marks:
        ax.axvline(t, color="grey", lw=0.8, ls="--")
    ax.set_xscale("log")
    ax.set_xlabel("temperature T")
    ax.set_ylabel("RLD")
    ax.legend(fontsize=8, frameon=False, loc="best")
    fig.tight_layout()
    return fig


def loss_curves(logs: dict[tuple[str, str], list[dict]]) -> plt.Figure:
    """Training loss per epoch, one panel per method (their losses have different scales), one line per encoder."""
    methods = sorted({m for _, m in logs})
    fig, axes = plt.subplots(1, len(methods), figsize=(4.2 * len(methods), 3.2), squeeze=False)
    for ax, method in zip(axes[0], methods):
        for (encoder, m), log in sorted(logs.items()):
            if m == method and log:
                ax.plot([e["epoch"] for e in log], [e["loss"] for e in log], marker="o", ms=3, label=encoder)
        ax.set_title(method)
        ax.set_xlabel("epoch")
        ax.set_ylabel("training loss")
        ax.legend(fontsize=8, frameon=False)
    fig.tight_layout()
    return fig


def chi_against_k(table: pd.DataFrame, reference: dict[str, tuple] | None = None, ref_ks=()) -> plt.Figure:
    """CHI(k) against k (log axis), one line per feature set (rows of ``table``, columns ``CHI k=...``);
    ``reference`` adds dashed lines, e.g. the authors' ViT values at ``ref_ks``."""
    cols = [c for c in table.columns if c.startswith("CHI k=")]
    ks = [int(c.split("=")[1]) for c in cols]
    fig, ax = plt.subplots(figsize=(7, 4))
    for name, row in table.iterrows():
        ax.plot(ks, [row[c] for c in cols], marker="o", ms=4, label=name)
    for name, values in (reference or {}).items():
        ax.plot(ref_ks, values, ls="--", color="grey", marker="x", ms=4, label=name)
    ax.set_xscale("log")
    ax.set_xlabel("k (nearest neighbours)")
    ax.set_ylabel("CHI(k): share of neighbours in the same class")
    ax.legend(fontsize=8, frameon=False)
    fig.tight_layout()
    return fig


def tsne_grid(embeddings: dict, labels, class_names, columns, perplexities) -> plt.Figure:
    """t-SNE grid (SPEC section 4): one row per perplexity, one column per feature set in ``columns``'
    order, points coloured by class (tab10) with one shared legend. ``embeddings[(column, perplexity)]``
    is Y (n, 2) or a ``(Y, note)`` pair as :func:`clorg.tsne.tsne_grid_embeddings` returns."""
    labels = np.asarray(labels)
    colours = plt.get_cmap("tab10").colors
    point_colours = np.asarray(colours)[labels % 10]
    rows, cols = len(perplexities), len(columns)
    size = float(np.clip(3000 / max(len(labels), 1), 0.3, 4))  # visible at 500 points, no ink blot at 25,000
    fig, axes = plt.subplots(rows, cols, figsize=(2.3 * cols, 2.3 * rows + 0.6), squeeze=False)
    for i, p in enumerate(perplexities):
        for j, name in enumerate(columns):
            ax, Y = axes[i, j], embeddings[name, p]
            Y = np.asarray(Y[0] if isinstance(Y, tuple) else Y)
            # rasterized: 25,000 vector points per panel would make the PDF huge
            ax.scatter(Y[:, 0], Y[:, 1], c=point_colours, s=size, lw=0, rasterized=True)
            ax.set_title(f"{name}\nperplexity {p:,g}", fontsize=8)
            ax.set_xticks([])
            ax.set_yticks([])
    handles = [plt.Line2D([], [], ls="", marker="o", ms=5, color=colours[c % 10]) for c in range(len(class_names))]
    ncol = max(2, min(len(class_names), int(2.3 * cols / 1.1)))  # ~1.1 inch a class name, within the figure width
    fig.legend(handles, class_names, loc="lower center", ncol=ncol, fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, 0.6 / fig.get_figheight(), 1, 1))
    return fig
