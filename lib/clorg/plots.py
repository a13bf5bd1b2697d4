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



def classifier_accuracies(table: pd.DataFrame) -> plt.Figure:
    """Test accuracy of each head per feature set (rows of :func:`clorg.classify.accuracy_table`):
    bars for the honest protocol (mean, with the std over seeds as error bars) and for the untrained
    baselines; black dots for the authors' test-selected protocol, which the bars should not be read as."""
    heads = [c[: -len(" (honest)")] for c in table.columns if c.endswith(" (honest)")]
    baselines = [c for c in table.columns if c.startswith("kNN") or c == "label spreading"]
    bars = heads + baselines
    fig, ax = plt.subplots(figsize=(max(6.0, 1.6 * len(table) * len(bars) / 3), 4))
    width = 0.8 / len(bars)
    x = np.arange(len(table))
    colours = plt.get_cmap("tab10").colors
    for i, name in enumerate(bars):
        pos = x - 0.4 + width * (i + 0.5)
        if name in heads:
            ax.bar(pos, table[f"{name} (honest)"], width, yerr=table[f"{name} ± std"], capsize=2,
                   color=colours[i % 10], label=f"{name} (honest)")
            ax.plot(pos, table[f"{name} (authors' protocol)"], "k.", ms=5,
                    label="authors' protocol (best test step)" if i == 0 else None)
        else:
            ax.bar(pos, table[name], width, color=colours[i % 10], alpha=0.6, label=name)
    ax.set_xticks(x, table.index, rotation=15, ha="right", fontsize=8)
    ax.set_ylabel("test accuracy")
    ax.legend(fontsize=7, frameon=False, ncol=2)
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


def near_duplicate_pairs(images, pairs_table, class_names, n: int = 8, per_row: int = 4) -> plt.Figure:
    """The first ``n`` pairs of ``pairs_table`` (a DataFrame or records with i, j, label_i, label_j,
    cosine and optionally sl_cosine, as :func:`clorg.near_duplicates.cross_class_report` gives) side by
    side: each pair titled "CL cos 0.998 / SL cos -0.07", each image with its class name.
    ``images``: uint8 (N, H, W, C), C = 1 for grayscale, in the row order the pairs index."""
    pairs = pd.DataFrame(pairs_table).head(n)
    if pairs.empty:
        raise ValueError("pairs_table has no pairs to draw")
    count = len(pairs)
    cols = min(per_row, count)
    rows = -(-count // cols)
    fig = plt.figure(figsize=(2.6 * cols, 1.75 * rows))
    subfigs = np.atleast_1d(fig.subfigures(rows, cols, wspace=0.04, hspace=0.04)).ravel()
    for sub in subfigs[count:]:
        sub.set_visible(False)
    for sub, pair in zip(subfigs, pairs.itertuples(index=False)):
        title = f"CL cos {pair.cosine:.3f}"
        if "sl_cosine" in pairs.columns:
            title += f" / SL cos {pair.sl_cosine:.2f}"
        sub.suptitle(title, fontsize=9)
        for ax, idx, label in zip(sub.subplots(1, 2), (pair.i, pair.j), (pair.label_i, pair.label_j)):
            img = np.asarray(images[int(idx)])
            gray = img.ndim == 2 or img.shape[-1] == 1
            ax.imshow(img.reshape(img.shape[:2]) if gray else img, cmap="gray" if gray else None, vmin=0, vmax=255)
            ax.set_title(f"{class_names[int(label)]} #{int(idx)}", fontsize=8)
            ax.set_xticks([])
            ax.set_yticks([])
    return fig


def cl_against_sl_cosine(runs: dict[str, tuple], threshold: float = 0.99,
                         sl_reference: dict[str, float] | None = None) -> plt.Figure:
    """Contrastive against supervised cosine of the same cross-class pairs, one colour per run
    (name -> (CL cosines, SL cosines)); the shaded corner (CL > threshold, SL <= 0) is claim 6.
    ``sl_reference`` (name -> value) draws dotted lines, e.g. the SL cosine of a typical cross-class pair."""
    fig, ax = plt.subplots(figsize=(6, 4))
    for name, (cl, sl) in runs.items():
        ax.scatter(cl, sl, s=6, alpha=0.6, lw=0, label=name)
    for k, (name, value) in enumerate((sl_reference or {}).items()):
        ax.axhline(value, color=plt.get_cmap("tab10").colors[(k + len(runs)) % 10], lw=1, ls=":", label=name)
    lo, hi = ax.get_xlim()
    right, bottom = max(hi, 1.0), min(ax.get_ylim()[0], -0.1)  # keep the claim-6 corner in view
    ax.fill_between([threshold, right], bottom, 0, color="tab:red", alpha=0.12, lw=0,
                    label=f"claim 6: CL > {threshold:g}, SL <= 0")
    ax.set_xlim(min(lo, threshold - 0.002), right)
    ax.axhline(0, color="grey", lw=0.8)
    ax.axvline(threshold, color="grey", lw=0.8, ls="--")
    ax.set_xlabel("contrastive cosine (CL)")
    ax.set_ylabel("supervised cosine (SL)")
    ax.set_title("the most similar cross-class training pairs")
    ax.legend(fontsize=8, frameon=False, loc="best")
    fig.tight_layout()
    return fig


def training_dynamics(table, reference: dict | None = None) -> plt.Figure:
    """CH (log axis), RLD (one line per temperature) and test accuracy of the heads (honest solid,
    authors' protocol dashed) against the training epoch, one row of panels per run.

    ``table``: a :func:`clorg.dynamics.dynamics_table` DataFrame (index: epoch), or {run name: table}.
    ``reference``: the authors' quoted points (``paper.DYNAMICS_VIT_CONTRASTIVE``), drawn in a last row
    on their own epoch axis: their run is 1200 epochs of a ViT, ours far shorter, so the x axes are
    not shared. The y axes of each column are, so levels compare directly."""
    tables = table if isinstance(table, dict) else {"": table}
    ref = reference or {}
    ref_temps = {float(k.split("=")[1].split()[0]) for k in ref if k.startswith("RLD T=")}
    temps = sorted({float(c.split("=")[1]) for t in tables.values() for c in t.columns if c.startswith("RLD T=")}
                   | ref_temps, reverse=True)
    colour = {T: f"C{i}" for i, T in enumerate(temps)}  # one colour per temperature in every row
    rows = len(tables) + (reference is not None)
    fig, axes = plt.subplots(rows, 3, figsize=(12.5, 2.9 * rows + 0.3), squeeze=False, sharey="col")
    for row, (name, t) in zip(axes, tables.items()):
        prefix = f"{name}: " if name else ""
        row[0].plot(t.index, t["CH"], marker="o", ms=4, color="black")
        row[0].set_title(prefix + "CH (global)", fontsize=10)
        for c in sorted((c for c in t.columns if c.startswith("RLD T=")), key=lambda c: -float(c.split("=")[1])):
            T = float(c.split("=")[1])
            row[1].plot(t.index, t[c], marker="o", ms=4, color=colour[T], label=f"T = {T:g}")
        row[1].set_title(prefix + "RLD (local at small T)", fontsize=10)
        heads = [c[: -len(" (honest)")] for c in t.columns if c.endswith(" (honest)")]
        for i, head in enumerate(heads):
            row[2].plot(t.index, t[f"{head} (honest)"], marker="o", ms=4, color=f"C{i}", label=f"{head}, honest")
            if f"{head} (authors' protocol)" in t:
                row[2].plot(t.index, t[f"{head} (authors' protocol)"], marker="x", ms=4, ls="--", color=f"C{i}",
                            label=f"{head}, authors' protocol")
        row[2].set_title(prefix + "test accuracy", fontsize=10)
        row[2].set_ylabel("accuracy")
        for ax in row:
            ax.set_xlabel("epoch")
            if len(t.index) <= 12:  # a tick per snapshot while they fit; long runs keep automatic ticks
                ax.set_xticks(t.index)
        row[1].legend(fontsize=7, frameon=False)
        row[2].legend(fontsize=7, frameon=False)
    if reference is not None:
        row = axes[-1]
        title = "authors, ViT, 1200 epochs"
        if "CH" in ref:
            e, v = zip(*ref["CH"])
            row[0].plot(e, v, ls=":", marker="s", ms=5, color="grey")
        row[0].set_title(f"{title}: CH", fontsize=10)
        for key, points in ref.items():
            if not key.startswith("RLD T="):
                continue
            T = float(key.split("=")[1].split()[0])
            if key.endswith("below"):
                row[1].axhspan(0, points, color=colour[T], alpha=0.25, lw=0, label=f"T = {T:g}: below {points:g}")
            else:
                e, v = zip(*points)
                row[1].plot(e, v, ls=":", marker="s", ms=5, color=colour[T], label=f"T = {T:g}")
        row[1].set_title(f"{title}: RLD", fontsize=10)
        row[1].legend(fontsize=7, frameon=False)
        for ax in row[:2]:
            ax.set_xlabel("epoch (their run)")
            ax.set_xlim(-40, 1240)
        row[2].axis("off")
        row[2].text(0, 0.5, "The authors' run: only the values they quote\n(points; dotted lines only join them).\n"
                    "No accuracy was reported along it.", fontsize=8, va="center", transform=row[2].transAxes)
    axes[0, 0].set_yscale("log")
    for ax in axes[:, 0]:
        ax.set_ylabel("CH (log axis)")
    for ax in axes[:, 1]:
        ax.set_ylabel("RLD")
    axes[0, 1].set_ylim(bottom=0)
    fig.tight_layout()
    return fig
