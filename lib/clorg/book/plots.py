"""Figures of the book. Each function takes records, arrays or datasets and returns a matplotlib Figure.

Every figure is drawn for the page: :data:`PAGE_WIDTH` inches wide (the book's text column) at
:data:`DPI`, with text no smaller than :data:`SMALL` points, so that axis labels read like the page's
captions. Feature sets are ordered, named and coloured by :func:`feature_sets` (clorg.book.feature_sets), as the
tables under the figures order and name them. A figure of a chapter names, in a grey line above it, what it
shows data of (:mod:`clorg.book.figure_subject`: the profile, the dataset and the encoders' width).
"""

from __future__ import annotations

import functools
import itertools

import matplotlib as mpl
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

from ..analysis import dynamics as D
from ..analysis import records as R
from ..analysis.tsne import map_labels
from ..core import criteria, paper
from ..data import Dataset
from . import evidence as E
from . import feature_sets as FS
from . import figure_subject
from .tables import LOSS_NAMES

PAGE_WIDTH = 9.5   # inches: ~90 % of the book's text column (1,012 px in a 1,280-px window) at the DPI below
DPI = 96
SMALL = 10         # points (13 px at 96 dpi): the smallest text in a figure, tick labels and legends
mpl.rcParams.update({"figure.dpi": DPI, "savefig.dpi": DPI, "font.size": 11, "axes.titlesize": 11,
                     "axes.labelsize": 11, "xtick.labelsize": SMALL, "ytick.labelsize": SMALL,
                     "legend.fontsize": SMALL, "figure.titlesize": 12})


# One colour per kind of feature set, in the book's order (clorg.book.feature_sets): contrastive runs blue
# (then green, purple...), supervised ones orange (then brown, olive), random initialisations grey (then darker
# and lighter greys). In a profile with one encoder every figure of every profile gives CL, SL and RI the same
# colours; profiles list their methods in their own order, and figures that followed it swapped them.
_PALETTES = {FS.CONTRASTIVE: ("C0", "C2", "C4", "C9", "C6"), FS.SUPERVISED: ("C1", "C5", "C8"),
             FS.RANDOM_INIT: ("C7", "0.3", "0.65")}
REFERENCE_COLOUR = "black"  # the authors' curves beside ours, apart from every colour above


def _names_its_subject(draw):
    """Decorator: the figure ``draw`` returns gets :func:`clorg.book.figure_subject.current` as a grey line above
    its top edge, outside every axes, title and legend (the page's PNG is cropped to what is drawn, so it grows
    by that line)."""
    @functools.wraps(draw)
    def drawn(*args, **kwargs):
        fig, subject = draw(*args, **kwargs), figure_subject.current()
        if fig is not None and subject:
            fig.text(0.0, 1.0, subject, ha="left", va="bottom", fontsize=SMALL, color="0.35")
        return fig
    return drawn


def feature_sets(items) -> list[tuple[str, str, dict]]:
    """``[(name, colour, item)]``: the first of ``items`` of each feature set (records or record-like mappings
    with encoder, method, schedule and epoch), in the book's order, under the book's name for it."""
    names, used, out = FS.names(items), {}, []
    for r in FS.ordered(items):
        kind = FS.kind(r)
        palette, used[kind] = _PALETTES[kind], used.get(kind, 0) + 1
        out.append((names[FS.key(r)], palette[(used[kind] - 1) % len(palette)], r))
    return out


def _image(ax, img):
    img = np.asarray(img)
    gray = img.ndim == 2 or img.shape[-1] == 1
    ax.imshow(img.reshape(img.shape[:2]) if gray else img, cmap="gray" if gray else None, vmin=0, vmax=255)
    ax.set_xticks([])
    ax.set_yticks([])


def _log_x_figure(fig, ax, xlabel: str, ylabel: str, ticks=()) -> plt.Figure:
    """A one-axis line figure finished alike: log x axis with a tick at every value in ``ticks`` where they are
    few (labels at the decades alone hide T = 0.2 and 0.5, k = 200 and 500), both labels, and a frameless
    legend below the axes, never over a line."""
    ax.set_xscale("log")
    ticks = sorted(set(ticks))
    if 0 < len(ticks) <= 8:  # a dense grid (the toy's 13 temperatures) reads better at the decades
        ax.set_xticks(ticks, [f"{t:,g}" for t in ticks])
        ax.xaxis.set_minor_formatter(mpl.ticker.NullFormatter())
    ax.set_xlabel(f"{xlabel} (log axis)")
    ax.set_ylabel(ylabel)
    ax.legend(frameon=False, loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=3)
    fig.tight_layout()
    return fig


@_names_its_subject
def sample_grid(ds: Dataset, per_class: int = 8, seed: int = 0) -> plt.Figure:
    """``per_class`` random images of every class, one row per class, class names on the left."""
    rng = np.random.default_rng(seed)
    n_classes = len(ds.classes)
    side = min(0.8, PAGE_WIDTH * 0.8 / per_class)
    fig, axes = plt.subplots(n_classes, per_class, figsize=(per_class * side + 1.2, n_classes * side),
                             squeeze=False, gridspec_kw={"wspace": 0.05, "hspace": 0.05})
    for ci, name in enumerate(ds.classes):
        members = np.flatnonzero(ds.labels == ci)
        picks = rng.choice(members, size=min(per_class, len(members)), replace=False)
        for j, ax in enumerate(axes[ci]):
            for spine in ax.spines.values():
                spine.set_visible(False)
            _image(ax, ds.images[picks[j]]) if j < len(picks) else ax.axis("off")
        axes[ci, 0].set_ylabel(name, rotation=0, ha="right", va="center")
    height = fig.get_figheight()  # the title half an inch above the grid, not the default share of the figure
    fig.subplots_adjust(top=1 - 0.45 / height, bottom=0.1 / height)
    fig.suptitle(f"{ds.name} {ds.split}: {per_class} random images per class", y=1 - 0.1 / height)
    return fig


@_names_its_subject
def class_counts(*splits: Dataset) -> plt.Figure:
    """Images per class for each split, as grouped bars."""
    rows = [{"class": name, "split": ds.split, "images": int(count)}
            for ds in splits for name, count in zip(ds.classes, ds.class_counts)]
    fig, ax = plt.subplots(figsize=(PAGE_WIDTH, 4.4))
    sns.barplot(pd.DataFrame(rows), x="class", y="images", hue="split", ax=ax)
    ax.set_xlabel("")
    ax.tick_params(axis="x", rotation=30)
    ax.set_ylabel("images per class")
    # the legend above the axes, never over a bar
    sns.move_legend(ax, "lower center", bbox_to_anchor=(0.5, 1.0), ncol=len(splits), title=None, frameon=False)
    fig.tight_layout()
    return fig


def toy_grid(panels: dict, titles: dict[str, str], scores: dict[str, dict[str, float]]) -> plt.Figure:
    """The paper's 2 x 3 toy figure: each panel's points coloured by class, RLD and CH in its title."""
    fig, axes = plt.subplots(2, 3, figsize=(PAGE_WIDTH, PAGE_WIDTH * 0.68))
    for ax, (name, (X, y)) in zip(axes.flat, panels.items()):
        ax.scatter(X[:, 0], X[:, 1], c=y, cmap="tab10", vmin=0, vmax=9, s=3, linewidths=0)
        s = scores[name]
        ax.set_title(f"{titles[name]}\nRLD {s['rld']:.2f}, CH {s['ch']:.4g}")
        ax.set_aspect("equal", adjustable="datalim")
        ax.set_xticks([])
        ax.set_yticks([])
    fig.tight_layout()
    return fig


def toy_rld_curves(res: dict, marks: tuple[float, ...] = ()) -> plt.Figure:
    """The toy chapter's stored RLD-temperature curves (:func:`clorg.book.chapters.toy`), one line per panel."""
    return rld_against_temperature({res["titles"][panel]: dict(zip(res["curve_temperatures"], values))
                                    for panel, values in res["curves"].items()}, marks=marks)


def rld_against_temperature(curves: dict[str, dict[float, float]], marks: tuple[float, ...] = (),
                            colours: dict[str, str] | None = None) -> plt.Figure:
    """RLD against the temperature T (log axis), one line per named curve (in ``colours``' colour where it
    names one); vertical lines at ``marks``."""
    fig, ax = plt.subplots(figsize=(PAGE_WIDTH, 4.6))
    for name, curve in curves.items():
        ts = sorted(curve)
        ax.plot(ts, [curve[t] for t in ts], marker="o", ms=3, label=name, color=(colours or {}).get(name))
    for t in marks:
        ax.axvline(t, color="grey", lw=0.8, ls="--")
    return _log_x_figure(fig, ax, "temperature T", "RLD", ticks=[t for c in curves.values() for t in c])


@_names_its_subject
def rld_of_feature_sets(records: list[dict]) -> plt.Figure:
    """RLD against T of every feature set of the geometry records, in the book's order and colours."""
    found = R.select(records, metric=R.RLD)
    sets = feature_sets(found)
    curves = {name: {r["parameter"]: r["value"] for r in found if FS.key(r) == FS.key(s)} for name, _, s in sets}
    return rld_against_temperature(curves, colours={name: colour for name, colour, _ in sets})


def _epoch_axis(ax) -> None:
    """An x axis of epochs: labelled so, with whole-number ticks (a run of a few epochs got 2.5, 7.5)."""
    ax.set_xlabel("epoch")
    ax.xaxis.set_major_locator(mpl.ticker.MaxNLocator(integer=True))


@_names_its_subject
def loss_curves(runs: list[dict]) -> plt.Figure:
    """Training loss per epoch, one panel per method (their losses have different scales), one line per
    run; ``runs``: the rows the training chapter stores (each with its ``log``)."""
    sets = feature_sets(runs)  # the book's order and colours
    methods = list(dict.fromkeys(r["method"] for _, _, r in sets))
    fig, axes = plt.subplots(1, len(methods), figsize=(PAGE_WIDTH, 3.6), squeeze=False)
    for ax, method in zip(axes[0], methods):
        for _, colour, r in sets:
            if r["method"] == method and r["log"]:
                ax.plot([e["epoch"] for e in r["log"]], [e["loss"] for e in r["log"]], marker="o", ms=2,
                        color=colour, label=f"{r['encoder']}, {r['schedule']}")
        ax.set_title(f"{method}: {LOSS_NAMES.get(method, 'loss')}")
        _epoch_axis(ax)
        ax.set_ylabel("training loss")
        ax.legend(frameon=False)
    fig.tight_layout()
    return fig


@_names_its_subject
def neighbours(images, labels, class_names, queries, sets: list[dict]) -> plt.Figure:
    """For each query training image (a row), its nearest training neighbours under each feature set
    (``sets``: records-like dicts with encoder, method, schedule, epoch and ``indices`` (queries, k)),
    side by side. A neighbour's border is green when its class is the query's, red when not."""
    named = feature_sets(sets)  # the book's order and names
    sets = [s for _, _, s in named]
    k = len(sets[0]["indices"][0])
    cols = 1 + len(sets) * k
    side = PAGE_WIDTH / (cols + 0.6 * len(sets))
    fig = plt.figure(figsize=(PAGE_WIDTH, side * len(queries) + 0.6))
    grid = fig.add_gridspec(len(queries), cols + len(sets), wspace=0.06, hspace=0.08,
                            width_ratios=[1] + sum([[0.6] + [1] * k for _ in sets], []))
    for row, q in enumerate(queries):
        ax = fig.add_subplot(grid[row, 0])
        _image(ax, images[q])
        ax.set_ylabel(class_names[labels[q]], rotation=0, ha="right", va="center")
        if row == 0:
            ax.set_title("query")
        col = 1
        for name, _, s in named:
            col += 1  # the spacer column
            for j, n in enumerate(s["indices"][row]):
                ax = fig.add_subplot(grid[row, col + j])
                _image(ax, images[n])
                colour = "tab:green" if labels[n] == labels[q] else "tab:red"
                for spine in ax.spines.values():
                    spine.set_edgecolor(colour)
                    spine.set_linewidth(2.5)
                if row == 0 and j == 0:
                    ax.set_title(f"{name}: {k} nearest", loc="left")
            col += k
    return fig


@_names_its_subject
def chi_against_k(records: list[dict], reference: dict[str, tuple] | None = None, ref_ks=(),
                 class_size: int | None = None) -> plt.Figure:
    """CHI(k) against k (log axis), one line per feature set; ``reference`` adds grey lines, e.g. the authors'
    ViT values at ``ref_ks``; ``class_size`` marks claim 1's k_max, the same share of a class as the authors'
    k = 1,000 of 5,000 (the same k is not: it reaches further into a smaller class)."""
    fig, ax = plt.subplots(figsize=(PAGE_WIDTH, 4.8))
    found = R.select(records, metric=R.CHI)
    for name, colour, s in feature_sets(found):
        points = sorted((r["parameter"], r["value"]) for r in found if FS.key(r) == FS.key(s))
        ax.plot(*zip(*points), marker="o", ms=4, color=colour, label=name)
    styles = [("--", "x"), (":", "s")]  # one line style per reference curve, so the two never look alike
    for (name, values), (ls, marker) in zip((reference or {}).items(), styles * len(reference or {})):
        ax.plot(ref_ks, values, ls=ls, color=REFERENCE_COLOUR, marker=marker, ms=4, label=name)
    if class_size:
        k_max = criteria.claim1_k_max(class_size)
        ax.axvline(k_max, color=REFERENCE_COLOUR, lw=0.8, ls="-.",
                   label=f"claim 1's k_max = {k_max:,} ({criteria.CHI_K_MAX_SHARE:g} of a class here)")
    ours = [r["parameter"] for r in found]
    # the reference's k where none of ours sits near it: 999 and 1,000 side by side would print over each other
    ticks = ours + [k for k in (ref_ks if reference else ()) if not any(abs(np.log10(k / o)) < 0.05 for o in ours)]
    return _log_x_figure(fig, ax, "k, nearest neighbours", "CHI(k)", ticks=ticks)


def _set_ticks(ax, names: list[str]) -> None:
    """One tick per feature set; slanted where four or more would crowd the page's width."""
    crowded = len(names) > 3
    ax.set_xticks(range(len(names)), names, rotation=12 if crowded else 0, ha="right" if crowded else "center")


@_names_its_subject
def classifier_accuracies(records: list[dict]) -> plt.Figure:
    """Honest test accuracy (mean over seeds, std as error bars) of each head per feature set, the GCN at
    each temperature; black dots: the authors' test-selected protocol, which the bars are not."""
    from ..analysis.classify import summary

    shown = feature_sets(records)
    sets = [dict(zip(FS.IDENTITY, FS.key(r))) for _, _, r in shown]
    bars = [("linear", None)] + [("gcn", t) for t in R.parameters(records, metric=R.head_metric("gcn", R.TEST))] \
        + [("label_spreading", None)]
    fig, ax = plt.subplots(figsize=(PAGE_WIDTH, 4.6))
    width = 0.8 / len(bars)
    colours = plt.get_cmap("viridis")(np.linspace(0.1, 0.9, len(bars)))  # heads: apart from the sets' blue and orange
    for i, (head, t) in enumerate(bars):
        pos = np.arange(len(sets)) - 0.4 + width * (i + 0.5)
        stats = [summary(records, head, t, **s) for s in sets]
        name = head.replace("_", " ") + (f" T={t:g}" if t is not None else "")
        ax.bar(pos, [100 * s.get("test_mean", np.nan) for s in stats], width,
               yerr=[100 * s.get("test_std", 0) for s in stats], capsize=2, color=colours[i], label=f"{name} (honest)")
        authors = [s.get("authors") for s in stats]
        if any(a is not None for a in authors):
            ax.plot(pos, [np.nan if a is None else 100 * a for a in authors], "k.", ms=6,
                    label="authors' protocol (best test step)" if i == 0 else None)
    _set_ticks(ax, [name for name, _, _ in shown])
    ax.set_ylabel("test accuracy (%)")
    # the legend below the axes, never over a bar
    ax.legend(frameon=False, ncol=3, loc="upper center", bbox_to_anchor=(0.5, -0.12))
    fig.tight_layout()
    return fig


@_names_its_subject
def classifier_gains(classifiers: dict) -> plt.Figure:
    """Claim 4's statistic on every feature set: the paired gain G = GCN − linear head (honest protocol, the
    GCN at its best-validation temperature) in percentage points, with its 95 % bootstrap interval over test
    images and head seeds, against a line at 0. The accuracies differ by a point or two at levels near 80 %:
    bars from 0 cannot show that, a gain axis can. Crosses: the gain under the authors' test-selected protocol."""
    sets = feature_sets(classifiers["records"])
    fig, ax = plt.subplots(figsize=(PAGE_WIDTH, 3.6))
    marked = False
    for x, (name, colour, r) in enumerate(sets):
        g = E.paired_gain(classifiers, **{k: r[k] for k in ("encoder", "method", "epoch")})
        if g["temperature"] is None:
            continue
        if g["low"] is not None:
            below, above = max(0.0, g["point"] - g["low"]), max(0.0, g["high"] - g["point"])  # 0, not -1e-17
            ax.errorbar([x], [100 * g["point"]], yerr=[[100 * below], [100 * above]], fmt="o", color=colour, capsize=4,
                        ms=6)
        else:
            ax.plot([x], [100 * g["point"]], "o", color=colour, ms=6)
        ax.annotate(f"T = {g['temperature']:g}", (x, 100 * g["point"]), textcoords="offset points", xytext=(8, -3),
                    fontsize=SMALL)
        if g["authors"] is not None:
            ax.plot([x], [100 * g["authors"]], "x", color="black", ms=7,
                    label=None if marked else "authors' protocol (best test step)")
            marked = True
    ax.axhline(0, color="grey", lw=0.8)
    _set_ticks(ax, [name for name, _, _ in sets])
    ax.set_xlim(-0.6, len(sets) - 0.4)
    ax.set_ylabel("GCN − linear (points)")
    if ax.get_legend_handles_labels()[0]:
        ax.legend(frameon=False, loc="upper center", bbox_to_anchor=(0.5, -0.12))
    fig.tight_layout()
    return fig


@_names_its_subject
def tsne_grid(maps: dict, class_names) -> plt.Figure:
    """t-SNE grid (SPEC section 4): one row per perplexity, one column per feature set, points coloured
    by class, one shared legend. ``maps``: the t-SNE chapter's stored arrays."""
    Y, perps = maps["Y"], [float(p) for p in maps["perplexities"]]
    stored = [{k: maps[k][i].item() for k in ("encoder", "method", "schedule", "epoch")} for i in range(len(Y))]
    named = feature_sets(stored)
    order = [stored.index(s) for _, _, s in named]  # the book's column order, whatever was stored
    colours = np.asarray(plt.get_cmap("tab10").colors)
    rows, cols = len(perps), len(order)
    side = PAGE_WIDTH / max(cols, 3)  # square panels, as wide as three columns' at most
    size = float(np.clip(20000 / max(Y.shape[2], 1), 2, 10))  # dots, not specks, at 5,000 points; 2 at 25,000
    fig, axes = plt.subplots(rows, cols, figsize=(side * cols, side * rows + 0.7), squeeze=False)
    for i, p in enumerate(perps):
        for col, (j, (name, _, _)) in enumerate(zip(order, named)):
            ax = axes[i, col]
            # rasterized: 25,000 vector points per panel would make the PDF huge
            ax.scatter(Y[j, i, :, 0], Y[j, i, :, 1], c=colours[map_labels(maps, j, i) % 10], s=size, lw=0,
                       rasterized=True)
            ax.set_title(f"{name}\nperplexity {p:,g}")
            ax.set_aspect("equal", adjustable="datalim")  # distances as the map has them: purity reads them
            ax.set_xticks([])
            ax.set_yticks([])
    handles = [plt.Line2D([], [], ls="", marker="o", ms=6, color=colours[c % 10]) for c in range(len(class_names))]
    fig.legend(handles, class_names, loc="lower center", ncol=min(len(class_names), 5), frameon=False)
    fig.tight_layout(rect=(0, 0.7 / fig.get_figheight(), 1, 1))
    return fig


# the authors' dynamics run: a CIFAR-10 variant, drawn apart from their end-point numbers (paper.VARIANT_CAVEAT)
_THEIR_VARIANT = "the authors' ViT (a CIFAR-10 variant: indicative only)"


# the statistics of the "toward the regime" figure: (key of dynamics.toward_regime, title, the authors'
# value from their saved numbers (None: not saved), what that value comes from, the SPEC 7 bar, log axis)
def _regime_panels() -> list[tuple]:
    a = E.authors()
    one, three, two = a["1"], a["3"], a["2"]
    return [("chi_drop", "claim 1: D = 1 − CHI(k_max) / CHI(1)", criteria.chi_drop(one["chi1_cl"], one["chik_cl"]),
             "the authors' ViT",
             criteria.CHI_DROP_CL_MIN, False),
            ("rld_gain", "claim 3: RLD(0.1) − its epoch-0 value", three["rld_local_cl"] - three["rld_local_ri"],
             _THEIR_VARIANT, criteria.RLD_LOCAL_GAIN_MIN, False),
            ("ch_ratio", "claim 2: CH(supervised) / CH",
             None if two["ch_sl"] is None else two["ch_sl"] / two["ch_cl"], _THEIR_VARIANT, criteria.CH_RATIO_MIN,
             True)]


@_names_its_subject
def toward_regime(paths: dict[str, list[dict]]) -> plt.Figure:
    """The claims' deciding statistics at each snapshot of the followed contrastive runs against the
    encoder's kNN test accuracy there (``paths``: a run's name -> :func:`clorg.analysis.dynamics.toward_regime`),
    the authors' value dashed (or "not saved") and the criterion's bar dotted. Points are joined in epoch
    order, the first and last labelled with their epoch; nothing is fitted or extrapolated."""
    panels, contrastive = _regime_panels(), _PALETTES[FS.CONTRASTIVE]  # the followed runs are contrastive
    fig, axes = plt.subplots(1, len(panels), figsize=(PAGE_WIDTH, 3.6), squeeze=False)
    for ax, (key, title, theirs, source, bar, log) in zip(axes[0], panels):
        drawn = 0
        for n, (name, path) in enumerate(paths.items()):
            pts = [(100 * p["knn"], p[key], p["epoch"]) for p in path if p[key] is not None]
            if not pts:
                continue
            drawn += 1
            x, y, e = zip(*pts)
            ax.plot(x, y, marker="o", ms=3, color=contrastive[n % len(contrastive)], label=name)
            for i in (0, len(pts) - 1):
                ax.annotate(f"e{e[i]}", (x[i], y[i]), textcoords="offset points", xytext=(4, -12 if i == 0 else 4),
                            fontsize=SMALL)
        if not drawn:  # say why the panel holds no path (a GPU job's dynamics stored without this statistic)
            ax.text(0.5, 0.5, "not in this profile's\nstored dynamics", transform=ax.transAxes, ha="center",
                    va="center", fontsize=SMALL)
        if theirs is not None:
            # the authors' end point dashed; their dynamics run (another dataset variant) dash-dotted
            ax.axhline(theirs, ls="-." if source == _THEIR_VARIANT else "--", color="grey", lw=1, label=source)
        else:
            ax.text(0.98, 0.04, "the authors: not saved", transform=ax.transAxes, ha="right", va="bottom",
                    fontsize=SMALL)
        ax.axhline(bar, ls=":", color="black", lw=1, label="SPEC 7 bar")
        if log:
            ax.set_yscale("log")
            ax.yaxis.set_major_locator(mpl.ticker.LogLocator(subs=(1.0, 2.0, 5.0)))  # 2, 5, 10, 20: read as numbers
            ax.yaxis.set_major_formatter(mpl.ticker.FuncFormatter(lambda v, _: f"{v:g}"))
            ax.yaxis.set_minor_formatter(mpl.ticker.NullFormatter())
        ax.set_title(title)
        ax.set_xlabel("kNN test accuracy (%)")
    # every panel's lines once: the authors' value comes from another source in claim 3's panel
    shown = {}
    for ax in axes[0]:
        for handle, name in zip(*ax.get_legend_handles_labels()):
            shown.setdefault(name, handle)
    fig.legend(list(shown.values()), list(shown), loc="lower center", ncol=min(len(shown), 3), frameon=False)
    fig.tight_layout(rect=(0, 0.16, 1, 1))
    return fig


@_names_its_subject
def set_loss_along_run(records: list[dict]) -> plt.Figure | None:
    """The authors' Losseval: the contrastive loss on the whole training set at each snapshot of each
    followed run (not the training loss of chapter 02: that one averages batches against a queue). None, with
    a printed line that says why, where the profile does not measure it."""
    runs = D.runs_in(R.select(records, metric=R.SET_LOSS))
    if not runs:  # the page says why there is no figure, as text a reader can search, not as an image of it
        print("No whole-set loss along the runs: this profile's dynamics.set_loss is off.")
        return None
    fig, ax = plt.subplots(figsize=(PAGE_WIDTH, 3.2))
    for _, colour, run in feature_sets(runs):
        ax.plot(*zip(*D.series(records, R.SET_LOSS, **run)), marker="o", ms=3, color=colour,
                label=f"{run['encoder']} {run['method']}, {run['schedule']}")
    _epoch_axis(ax)
    ax.set_ylabel("contrastive loss, all training images")
    ax.legend(frameon=False)
    fig.tight_layout()
    return fig


def _cross_out_capped(ax, records: list[dict], run: dict, head: str, colour: str) -> str:
    """Cross out ``head``'s fits of ``run`` that stopped at the step cap; returns their count for the title."""
    hits = [r for r in R.select(records, metric=R.head_metric(head, R.CAP_HIT), **run)
            if r["seed"] is not None]  # the honest fits: the authors' protocol has no cap (seed None)
    at_cap = {r["epoch"] for r in hits if r["value"]}
    accuracy = {r["epoch"]: 100 * r["value"] for r in R.select(records, metric=R.head_metric(head, R.TEST), **run)}
    crossed = sorted((e, accuracy[e]) for e in at_cap if e in accuracy)
    if crossed:
        ax.plot(*zip(*crossed), ls="", marker="x", ms=8, color=colour)
    counted = f"{len(at_cap)} of {len(hits)}" if hits else "not recorded"  # records older than the cap's
    return f"{'GCN' if head == 'gcn' else head} {counted}"


@_names_its_subject
def heads_along_run(records: list[dict]) -> plt.Figure | None:
    """The authors' Feateval: the linear head's and the GCN's test accuracy at each snapshot of each followed
    run, in percent, under our honest protocol (solid, one seed; ``dynamics.heads``) and the authors' (dashed:
    the best test accuracy over the steps, a GCN at each temperature; ``dynamics.feateval``), with the kNN
    probe's. An honest fit that stopped at the safety cap on steps (not on patience, as the authors' do) is
    crossed out, and each panel's title counts them. None, with a printed line that says why, where the
    profile fits neither."""
    gcn_test, gcn_theirs = R.head_metric("gcn", R.TEST), R.head_metric("gcn", R.AUTHORS)
    runs = D.runs_in(R.select(records, metric=gcn_test) + R.select(records, metric=gcn_theirs))
    if not runs:  # the page says why there is no figure, as text a reader can search, not as an image of it
        print("No head accuracy along the runs: this profile's dynamics.heads and dynamics.feateval are off.")
        return None
    k = (R.parameters(records, metric=R.KNN) or [None])[0]
    lines = [(R.head_metric("linear", R.TEST), None, "linear head", "C0", "-"),
             (gcn_test, "any", "GCN", "C1", "-"),
             (R.head_metric("linear", R.AUTHORS), None, "linear head, authors' protocol", "C0", "--")]
    # our GCN's colour goes to its temperature only (without ours, to the first); the others cycle
    ours_t = R.parameters(records, metric=gcn_test) or R.parameters(records, metric=gcn_theirs)[:1]
    others = itertools.cycle(("C5", "C4", "C6", "C8", "C9"))
    lines += [(gcn_theirs, t, f"GCN T = {t:g}, authors' protocol", "C1" if t in ours_t else next(others), "--")
              for t in R.parameters(records, metric=gcn_theirs)]
    lines.append((R.KNN, k, f"kNN (k = {k})", "C3", "-"))
    fig, axes = plt.subplots(1, len(runs), figsize=(PAGE_WIDTH, 3.4), squeeze=False, sharey=True)
    for ax, run in zip(axes[0], runs):
        for metric, parameter, name, colour, style in lines:
            found = R.select(records, metric=metric, **run) if parameter == "any" else \
                R.select(records, metric=metric, parameter=parameter, **run)
            pts = sorted((r["epoch"], 100 * r["value"]) for r in found)
            if pts:
                ax.plot(*zip(*pts), marker="o", ms=3, color=colour, ls=style, label=name)
        title = f"{run['encoder']} {run['method']}, {run['schedule']}"
        if R.select(records, metric=gcn_test, **run):  # ours fitted: the cap is theirs to hit
            capped = [_cross_out_capped(ax, records, run, head, colour)
                      for head, colour in (("linear", "C0"), ("gcn", "C1"))]
            title += "\nhonest fits at the step cap: " + ", ".join(capped)
        ax.set_title(title, fontsize=SMALL + 1)
        _epoch_axis(ax)
    axes[0, 0].set_ylabel("test accuracy (%)")
    axes[0, 0].legend(frameon=False, fontsize=SMALL)
    fig.tight_layout()
    return fig


@_names_its_subject
def near_duplicate_pairs(images, pairs, class_names, n: int = 8, per_row: int = 4) -> plt.Figure:
    """The first ``n`` pairs (records with i, j, label_i, label_j, cosine and sl_cosine, as the
    near-duplicates chapter stores them) side by side, each titled with its CL and SL cosine."""
    pairs = pd.DataFrame(pairs).head(n)
    if pairs.empty:
        raise ValueError("no pairs to draw")
    count = len(pairs)
    cols = min(per_row, count)
    rows = -(-count // cols)
    # a pair is two square images side by side under two title lines and a heading: about 0.8 of its width tall
    fig = plt.figure(figsize=(PAGE_WIDTH, PAGE_WIDTH / cols * 0.8 * rows))
    subfigs = np.atleast_1d(fig.subfigures(rows, cols, wspace=0.04, hspace=0.04)).ravel()
    for sub in subfigs[count:]:
        sub.set_visible(False)
    for sub, pair in zip(subfigs, pairs.itertuples(index=False)):
        sub.suptitle(f"CL cos {pair.cosine:.3f} / SL cos {pair.sl_cosine:.2f}", fontsize=SMALL)
        axes = sub.subplots(1, 2, gridspec_kw={"top": 0.7, "bottom": 0.02})  # the images under their titles
        for ax, idx, lab in zip(axes, (pair.i, pair.j), (pair.label_i, pair.label_j)):
            _image(ax, images[int(idx)])
            ax.set_title(f"{class_names[int(lab)]}\n#{int(idx)}", fontsize=SMALL)  # two lines: never overlapping
    return fig


@_names_its_subject
def cl_against_sl_cosine(comparisons: list[dict]) -> plt.Figure:
    """Contrastive against supervised cosine of the same cross-class pairs, one colour per run. Claim 6
    (SPEC 7) reads the rightmost point, the top pair: it needs CL cosine >= 0.99 (dashed line) and an SL
    cosine at most the median SL cosine of random cross-class pairs of that encoder (dotted line); the
    shaded corner is the literal reading, SL <= 0, shown beside."""
    threshold = criteria.NEAR_DUPLICATE_CL_MIN
    fig, ax = plt.subplots(figsize=(PAGE_WIDTH, 4.6))
    for name, colour, comp in feature_sets(comparisons):
        ax.scatter(comp["cl_cosines"], comp["sl_cosines"], s=6, alpha=0.6, lw=0, color=colour, label=name)
        top = max(range(len(comp["cl_cosines"])), key=comp["cl_cosines"].__getitem__)
        ax.scatter([comp["cl_cosines"][top]], [comp["sl_cosines"][top]], s=60, facecolors="none", edgecolors=colour,
                   lw=1.5, label=f"the top pair ({comp['encoder']})")
        ax.axhline(comp["baseline"]["sl_median"], color=colour, lw=1, ls=":",
                   label=f"median SL cos, random cross-class pairs ({comp['encoder']})")
    lo, hi = ax.get_xlim()
    (bottom, top), right = ax.get_ylim(), max(hi, 1.0)
    bottom = min(bottom, -0.1)  # keep the literal corner in view
    ax.fill_between([threshold, right], bottom, criteria.NEAR_DUPLICATE_SL_LITERAL_MAX, color="tab:red", alpha=0.12,
                    lw=0, label=f"literal reading: CL ≥ {threshold:g}, SL ≤ 0")
    ax.set_xlim(min(lo, threshold - 0.002), right)
    ax.set_ylim(bottom, top)  # the shaded corner reaches the axis, not short of it
    ax.axhline(0, color="grey", lw=0.8)
    ax.axvline(threshold, color="grey", lw=0.8, ls="--")
    ax.set_xlabel("contrastive cosine (CL)")
    ax.set_ylabel("supervised cosine (SL)")
    ax.legend(frameon=False, loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=2, fontsize="small")
    fig.tight_layout()
    return fig


@_names_its_subject
def training_dynamics(records: list[dict], with_reference: bool = True) -> plt.Figure:
    """Along each run (one column each): CH (log axis), RLD at each temperature, kNN test accuracy and the
    learning rate that drove it (log axis). A last column holds the authors' quoted points on their own
    1,200-epoch axis, and their learning rate. The y axes of a row are shared, so levels compare across
    runs."""
    from ..train.schedule import paper_compressed_lr

    runs = D.runs_in(R.select(records, metric=R.CH))
    temps = sorted(R.parameters(records, metric=R.RLD), reverse=True)
    colour = {t: f"C{i}" for i, t in enumerate(temps + [t for t in paper.DYNAMICS_RLD if t not in temps])}
    cols = len(runs) + with_reference
    fig, axes = plt.subplots(4, cols, figsize=(PAGE_WIDTH, 10.5), squeeze=False, sharey="row")
    for j, run in enumerate(runs):
        ch, rld, acc, lr = axes[:, j]
        ch.plot(*zip(*D.series(records, R.CH, **run)), marker="o", ms=3, color="black")
        for t in temps:
            rld.plot(*zip(*D.series(records, R.RLD, t, **run)), marker="o", ms=3, color=colour[t], label=f"T = {t:g}")
        k = R.parameters(records, metric=R.KNN)[0]
        epochs, accuracy = zip(*D.series(records, R.KNN, k, **run))
        acc.plot(epochs, [100 * a for a in accuracy], marker="o", ms=3, color="C3")  # percent, as in the tables
        lr.plot(*zip(*D.series(records, R.LR, **run)), color="grey")
        ch.set_title(f"{run['encoder']} {run['method']}\n{run['schedule']} schedule")
        _epoch_axis(lr)
    axes[0, 0].set_yscale("log")
    axes[3, 0].set_yscale("log")
    for ax, name in zip(axes[:, 0], ("CH (log axis)", "RLD", "kNN test accuracy (%)", "learning rate (log)")):
        ax.set_ylabel(name)
    axes[1, 0].legend(frameon=False)
    if with_reference:
        ch, rld, acc, lr = axes[:, -1]
        ch.plot(*zip(*paper.DYNAMICS_CH), ls=":", marker="s", ms=4, color="grey")
        ch.set_title(f"authors: ViT, {paper.DYNAMICS_EPOCHS} epochs\n(a CIFAR-10 variant)")
        for t, points in paper.DYNAMICS_RLD.items():
            rld.plot(*zip(*points), ls=":", marker="s", ms=4, color=colour[t], label=f"T = {t:g}")
        rld.axhspan(0, paper.DYNAMICS_RLD1_BOUND, color=colour.get(1.0, "C0"), alpha=0.25, lw=0,
                    label=f"T = 1: quoted as < {paper.DYNAMICS_RLD1_BOUND:g}")
        rld.legend(frameon=False)
        acc.axis("off")
        acc.text(0.05, 0.5, "Their points: only the\nvalues they quote\n(dotted lines join them);\nno accuracy along it;\n"
                 "data: an undocumented\nCIFAR-10 variant,\nindicative only.",
                 fontsize=SMALL, va="center", transform=acc.transAxes)
        epochs = np.arange(paper.DYNAMICS_EPOCHS)
        lr.plot(epochs, [paper_compressed_lr(e, paper.DYNAMICS_EPOCHS, "contrastive") for e in epochs], color="grey")
        for ax in (ch, rld, lr):
            ax.set_xlim(-40, paper.DYNAMICS_EPOCHS + 40)
        lr.set_xlabel("epoch (their run)")
    fig.tight_layout()
    return fig
