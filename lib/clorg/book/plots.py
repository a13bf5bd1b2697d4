"""Figures of the book. Each function takes records, arrays or datasets and returns a matplotlib Figure.

Every figure is drawn for the page: :data:`PAGE_WIDTH` inches wide (the book's text column) at
:data:`DPI`, with text no smaller than :data:`SMALL` points, so that axis labels read like the page's
captions. Labels are made here, from records' fields (clorg.features.label), and nowhere before.
"""

from __future__ import annotations

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
from ..features import label
from . import evidence as E

PAGE_WIDTH = 9.5   # inches: ~90 % of the book's text column (1,012 px in a 1,280-px window) at the DPI below
DPI = 96
SMALL = 10         # points (13 px at 96 dpi): the smallest text in a figure, tick labels and legends
mpl.rcParams.update({"figure.dpi": DPI, "savefig.dpi": DPI, "font.size": 11, "axes.titlesize": 11,
                     "axes.labelsize": 11, "xtick.labelsize": SMALL, "ytick.labelsize": SMALL,
                     "legend.fontsize": SMALL, "figure.titlesize": 12})


def _image(ax, img):
    img = np.asarray(img)
    gray = img.ndim == 2 or img.shape[-1] == 1
    ax.imshow(img.reshape(img.shape[:2]) if gray else img, cmap="gray" if gray else None, vmin=0, vmax=255)
    ax.set_xticks([])
    ax.set_yticks([])


def _log_x_figure(fig, ax, xlabel: str, ylabel: str, legend_at: str) -> plt.Figure:
    """A one-axis line figure finished alike: log x axis, both labels, a frameless legend at ``legend_at``."""
    ax.set_xscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.legend(frameon=False, loc=legend_at)
    fig.tight_layout()
    return fig


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
    fig.suptitle(f"{ds.name} {ds.split}: {per_class} random images per class", y=0.995)
    return fig


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


def rld_against_temperature(curves: dict[str, dict[float, float]], marks: tuple[float, ...] = ()) -> plt.Figure:
    """RLD against the temperature T (log axis), one line per named curve; vertical lines at ``marks``."""
    fig, ax = plt.subplots(figsize=(PAGE_WIDTH, 4.4))
    for name, curve in curves.items():
        ts = sorted(curve)
        ax.plot(ts, [curve[t] for t in ts], marker="o", ms=3, label=name)
    for t in marks:
        ax.axvline(t, color="grey", lw=0.8, ls="--")
    return _log_x_figure(fig, ax, "temperature T", "RLD", legend_at="best")


def rld_curves_of(records: list[dict]) -> dict[str, dict[float, float]]:
    """{feature-set label: {T: RLD}} from geometry records."""
    out: dict[str, dict[float, float]] = {}
    for r in R.select(records, metric=R.RLD):
        out.setdefault(label(r), {})[r["parameter"]] = r["value"]
    return out


def loss_curves(runs: list[dict]) -> plt.Figure:
    """Training loss per epoch, one panel per method (their losses have different scales), one line per
    run; ``runs``: the rows the training chapter stores (each with its ``log``)."""
    methods = list(dict.fromkeys(r["method"] for r in runs))
    fig, axes = plt.subplots(1, len(methods), figsize=(PAGE_WIDTH, 3.6), squeeze=False)
    for ax, method in zip(axes[0], methods):
        for r in runs:
            if r["method"] == method and r["log"]:
                ax.plot([e["epoch"] for e in r["log"]], [e["loss"] for e in r["log"]], marker="o", ms=2,
                        label=f"{r['encoder']}, {r['schedule']}")
        ax.set_title(method)
        ax.set_xlabel("epoch")
        ax.set_ylabel("training loss")
        ax.legend(frameon=False)
    fig.tight_layout()
    return fig


def neighbours(images, labels, class_names, queries, sets: list[dict]) -> plt.Figure:
    """For each query training image (a row), its nearest training neighbours under each feature set
    (``sets``: records-like dicts with encoder, method, schedule, epoch and ``indices`` (queries, k)),
    side by side. A neighbour's border is green when its class is the query's, red when not."""
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
        for s in sets:
            col += 1  # the spacer column
            for j, n in enumerate(s["indices"][row]):
                ax = fig.add_subplot(grid[row, col + j])
                _image(ax, images[n])
                colour = "tab:green" if labels[n] == labels[q] else "tab:red"
                for spine in ax.spines.values():
                    spine.set_edgecolor(colour)
                    spine.set_linewidth(2.5)
                if row == 0 and j == 0:
                    ax.set_title(f"{label(s)}: {k} nearest", loc="left")
            col += k
    return fig


def chi_against_k(records: list[dict], reference: dict[str, tuple] | None = None, ref_ks=()) -> plt.Figure:
    """CHI(k) against k (log axis), one line per feature set; ``reference`` adds dashed lines, e.g. the
    authors' ViT values at ``ref_ks``."""
    fig, ax = plt.subplots(figsize=(PAGE_WIDTH, 4.6))
    sets: dict[str, list] = {}
    for r in R.select(records, metric=R.CHI):
        sets.setdefault(label(r), []).append((r["parameter"], r["value"]))
    for name, points in sets.items():
        points.sort()
        ax.plot(*zip(*points), marker="o", ms=4, label=name)
    styles = [("--", "x"), (":", "s")]  # one line style per reference curve, so the two never look alike
    for (name, values), (ls, marker) in zip((reference or {}).items(), styles * len(reference or {})):
        ax.plot(ref_ks, values, ls=ls, color="grey", marker=marker, ms=4, label=name)
    return _log_x_figure(fig, ax, "k (nearest neighbours)", "CHI(k)", legend_at="lower left")


def classifier_accuracies(records: list[dict]) -> plt.Figure:
    """Honest test accuracy (mean over seeds, std as error bars) of each head per feature set, the GCN at
    each temperature; black dots: the authors' test-selected protocol, which the bars are not."""
    from ..analysis.classify import summary

    sets = []
    for r in records:
        ident = {k: r[k] for k in ("encoder", "method", "schedule", "epoch")}
        if ident not in sets:
            sets.append(ident)
    bars = [("linear", None)] + [("gcn", t) for t in R.parameters(records, metric=R.head_metric("gcn", R.TEST))] \
        + [("label_spreading", None)]
    fig, ax = plt.subplots(figsize=(PAGE_WIDTH, 4.6))
    width = 0.8 / len(bars)
    colours = plt.get_cmap("tab10").colors
    for i, (head, t) in enumerate(bars):
        pos = np.arange(len(sets)) - 0.4 + width * (i + 0.5)
        stats = [summary(records, head, t, **s) for s in sets]
        name = head.replace("_", " ") + (f" T={t:g}" if t is not None else "")
        ax.bar(pos, [100 * s.get("test_mean", np.nan) for s in stats], width,
               yerr=[100 * s.get("test_std", 0) for s in stats], capsize=2, color=colours[i % 10], label=f"{name} (honest)")
        authors = [s.get("authors") for s in stats]
        if any(a is not None for a in authors):
            ax.plot(pos, [np.nan if a is None else 100 * a for a in authors], "k.", ms=6,
                    label="authors' protocol (best test step)" if i == 0 else None)
    ax.set_xticks(np.arange(len(sets)), [label(s) for s in sets], rotation=12, ha="right")
    ax.set_ylabel("test accuracy (%)")
    # the legend below the axes, never over a bar
    ax.legend(frameon=False, ncol=3, loc="upper center", bbox_to_anchor=(0.5, -0.22))
    fig.tight_layout()
    return fig


def tsne_grid(maps: dict, class_names) -> plt.Figure:
    """t-SNE grid (SPEC section 4): one row per perplexity, one column per feature set, points coloured
    by class, one shared legend. ``maps``: the t-SNE chapter's stored arrays."""
    Y, perps = maps["Y"], [float(p) for p in maps["perplexities"]]
    sets = [{k: maps[k][i].item() for k in ("encoder", "method", "schedule", "epoch")} for i in range(len(Y))]
    colours = np.asarray(plt.get_cmap("tab10").colors)
    rows, cols = len(perps), len(sets)
    side = PAGE_WIDTH / max(cols, 3)  # square panels; two columns keep the width of three
    size = float(np.clip(20000 / max(Y.shape[2], 1), 2, 10))  # dots, not specks, at 5,000 points; 2 at 25,000
    fig, axes = plt.subplots(rows, cols, figsize=(PAGE_WIDTH, side * rows + 0.7), squeeze=False)
    for i, p in enumerate(perps):
        for j, s in enumerate(sets):
            ax = axes[i, j]
            # rasterized: 25,000 vector points per panel would make the PDF huge
            ax.scatter(Y[j, i, :, 0], Y[j, i, :, 1], c=colours[map_labels(maps, j, i) % 10], s=size, lw=0,
                       rasterized=True)
            ax.set_title(f"{label(s)}\nperplexity {p:,g}")
            ax.set_xticks([])
            ax.set_yticks([])
    handles = [plt.Line2D([], [], ls="", marker="o", ms=6, color=colours[c % 10]) for c in range(len(class_names))]
    fig.legend(handles, class_names, loc="lower center", ncol=min(len(class_names), 5), frameon=False)
    fig.tight_layout(rect=(0, 0.7 / fig.get_figheight(), 1, 1))
    return fig


# the statistics of the "toward the regime" figure: (key of dynamics.toward_regime, title, the authors'
# value from their saved numbers (None: not saved), what that value comes from, the SPEC 7 bar, log axis)
def _regime_panels() -> list[tuple]:
    a = E.authors()
    one, three, two = a["1"], a["3"], a["2"]
    variant = "the authors' ViT (a CIFAR-10 variant: indicative only)"  # their dynamics run (paper.VARIANT_CAVEAT)
    return [("chi_drop", "claim 1: D = 1 − CHI(k_max) / CHI(1)", criteria.chi_drop(one["chi1_cl"], one["chik_cl"]),
             "the authors' ViT",
             criteria.CHI_DROP_CL_MIN, False),
            ("rld_gain", "claim 3: RLD(0.1) − its epoch-0 value", three["rld_local_cl"] - three["rld_local_ri"],
             variant, criteria.RLD_LOCAL_GAIN_MIN, False),
            ("ch_ratio", "claim 2: CH(supervised) / CH",
             None if two["ch_sl"] is None else two["ch_sl"] / two["ch_cl"], variant, criteria.CH_RATIO_MIN, True)]


def toward_regime(paths: dict[str, list[dict]]) -> plt.Figure:
    """The claims' deciding statistics at each snapshot of the followed contrastive runs against the
    encoder's kNN test accuracy there (``paths``: a run's name -> :func:`clorg.analysis.dynamics.toward_regime`),
    the authors' value dashed (or "not saved") and the criterion's bar dotted. Points are joined in epoch
    order, the first and last labelled with their epoch; nothing is fitted or extrapolated."""
    panels = _regime_panels()
    fig, axes = plt.subplots(1, len(panels), figsize=(PAGE_WIDTH, 3.6), squeeze=False)
    for ax, (key, title, theirs, source, bar, log) in zip(axes[0], panels):
        for n, (name, path) in enumerate(paths.items()):
            pts = [(100 * p["knn"], p[key], p["epoch"]) for p in path if p[key] is not None]
            if not pts:
                continue
            x, y, e = zip(*pts)
            ax.plot(x, y, marker="o", ms=3, color=f"C{n}", label=name)
            for i in (0, len(pts) - 1):
                ax.annotate(f"e{e[i]}", (x[i], y[i]), textcoords="offset points", xytext=(4, 4), fontsize=SMALL)
        if theirs is not None:
            ax.axhline(theirs, ls="--", color="grey", lw=1, label=source)
        else:
            ax.text(0.02, 0.96, "the authors: not saved", transform=ax.transAxes, va="top", fontsize=SMALL)
        ax.axhline(bar, ls=":", color="black", lw=1, label="SPEC 7 bar")
        if log:
            ax.set_yscale("log")
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


def set_loss_along_run(records: list[dict]) -> plt.Figure:
    """The authors' Losseval: the contrastive loss on the whole training set at each snapshot of each
    followed run (not the training loss of chapter 02: that one averages batches against a queue)."""
    runs = D.runs_in(R.select(records, metric=R.SET_LOSS))
    fig, ax = plt.subplots(figsize=(PAGE_WIDTH, 3.2))
    if not runs:  # the page still shows why the figure is empty
        ax.axis("off")
        ax.text(0.5, 0.5, "No whole-set loss along the runs: this profile's dynamics.set_loss is off.", ha="center",
                va="center")
        return fig
    for n, run in enumerate(runs):
        ax.plot(*zip(*D.series(records, R.SET_LOSS, **run)), marker="o", ms=3, color=f"C{n}",
                label=f"{run['encoder']} {run['method']}, {run['schedule']}")
    ax.set_xlabel("epoch")
    ax.set_ylabel("contrastive loss, all training images")
    ax.legend(frameon=False)
    fig.tight_layout()
    return fig


def _cross_out_capped(ax, records: list[dict], run: dict, head: str, colour: str) -> str:
    """Cross out ``head``'s fits of ``run`` that stopped at the step cap; returns their count for the title."""
    hits = R.select(records, metric=R.head_metric(head, R.CAP_HIT), **run)
    at_cap = {r["epoch"] for r in hits if r["value"]}
    accuracy = {r["epoch"]: 100 * r["value"] for r in R.select(records, metric=R.head_metric(head, R.TEST), **run)}
    crossed = sorted((e, accuracy[e]) for e in at_cap if e in accuracy)
    if crossed:
        ax.plot(*zip(*crossed), ls="", marker="x", ms=8, color=colour)
    counted = f"{len(at_cap)} of {len(hits)}" if hits else "not recorded"  # records older than the cap's
    return f"{'GCN' if head == 'gcn' else head} {counted}"


def heads_along_run(records: list[dict]) -> plt.Figure:
    """The authors' Feateval: the linear head's and the GCN's test accuracy (honest protocol, one seed)
    and the kNN probe's at each snapshot of each followed run, in percent. A fit that stopped at the
    honest protocol's safety cap on steps (not on patience, as the authors' do) is crossed out, and each
    panel's title counts them."""
    runs = D.runs_in(R.select(records, metric=R.head_metric("gcn", R.TEST)))
    if not runs:  # the page still shows why the figure is empty
        fig, ax = plt.subplots(figsize=(PAGE_WIDTH, 1.2))
        ax.axis("off")
        ax.text(0.5, 0.5, "No head accuracy along the runs: this profile's dynamics.heads is off.", ha="center",
                va="center")
        return fig
    fig, axes = plt.subplots(1, len(runs), figsize=(PAGE_WIDTH, 3.4), squeeze=False, sharey=True)
    k = (R.parameters(records, metric=R.KNN) or [None])[0]
    for ax, run in zip(axes[0], runs):
        for metric, parameter, name, colour in ((R.head_metric("linear", R.TEST), None, "linear head", "C0"),
                                                (R.head_metric("gcn", R.TEST), "any", "GCN", "C1"),
                                                (R.KNN, k, f"kNN (k = {k})", "C3")):
            found = R.select(records, metric=metric, **run) if parameter == "any" else \
                R.select(records, metric=metric, parameter=parameter, **run)
            pts = sorted((r["epoch"], 100 * r["value"]) for r in found)
            if pts:
                ax.plot(*zip(*pts), marker="o", ms=3, color=colour, label=name)
        capped = [_cross_out_capped(ax, records, run, head, colour)
                  for head, colour in (("linear", "C0"), ("gcn", "C1"))]
        ax.set_title(f"{run['encoder']} {run['method']}, {run['schedule']}\nfits at the step cap: " + ", ".join(capped),
                     fontsize=SMALL + 1)
        ax.set_xlabel("epoch")
    axes[0, 0].set_ylabel("test accuracy (%)")
    axes[0, 0].legend(frameon=False)
    fig.tight_layout()
    return fig


def near_duplicate_pairs(images, pairs, class_names, n: int = 8, per_row: int = 4) -> plt.Figure:
    """The first ``n`` pairs (records with i, j, label_i, label_j, cosine and sl_cosine, as the
    near-duplicates chapter stores them) side by side, each titled with its CL and SL cosine."""
    pairs = pd.DataFrame(pairs).head(n)
    if pairs.empty:
        raise ValueError("no pairs to draw")
    count = len(pairs)
    cols = min(per_row, count)
    rows = -(-count // cols)
    fig = plt.figure(figsize=(PAGE_WIDTH, PAGE_WIDTH / cols * 0.95 * rows))
    subfigs = np.atleast_1d(fig.subfigures(rows, cols, wspace=0.04, hspace=0.04)).ravel()
    for sub in subfigs[count:]:
        sub.set_visible(False)
    for sub, pair in zip(subfigs, pairs.itertuples(index=False)):
        sub.suptitle(f"CL cos {pair.cosine:.3f} / SL cos {pair.sl_cosine:.2f}", fontsize=SMALL)
        for ax, idx, lab in zip(sub.subplots(1, 2), (pair.i, pair.j), (pair.label_i, pair.label_j)):
            _image(ax, images[int(idx)])
            ax.set_title(f"{class_names[int(lab)]}\n#{int(idx)}", fontsize=SMALL)  # two lines: never overlapping
    return fig


def cl_against_sl_cosine(comparisons: list[dict]) -> plt.Figure:
    """Contrastive against supervised cosine of the same cross-class pairs, one colour per run. Claim 6
    (SPEC 7) reads the rightmost point, the top pair: it needs CL cosine >= 0.99 (dashed line) and an SL
    cosine at most the median SL cosine of random cross-class pairs of that encoder (dotted line); the
    shaded corner is the literal reading, SL <= 0, shown beside."""
    threshold = criteria.NEAR_DUPLICATE_CL_MIN
    fig, ax = plt.subplots(figsize=(PAGE_WIDTH, 4.6))
    for k, comp in enumerate(comparisons):
        colour = plt.get_cmap("tab10").colors[k % 10]
        ax.scatter(comp["cl_cosines"], comp["sl_cosines"], s=6, alpha=0.6, lw=0, color=colour, label=label(comp))
        top = max(range(len(comp["cl_cosines"])), key=comp["cl_cosines"].__getitem__)
        ax.scatter([comp["cl_cosines"][top]], [comp["sl_cosines"][top]], s=60, facecolors="none", edgecolors=colour,
                   lw=1.5, label=f"the top pair ({comp['encoder']})")
        ax.axhline(comp["baseline"]["sl_median"], color=colour, lw=1, ls=":",
                   label=f"median SL cos, random cross-class pairs ({comp['encoder']})")
    lo, hi = ax.get_xlim()
    right, bottom = max(hi, 1.0), min(ax.get_ylim()[0], -0.1)  # keep the literal corner in view
    ax.fill_between([threshold, right], bottom, criteria.NEAR_DUPLICATE_SL_LITERAL_MAX, color="tab:red", alpha=0.12,
                    lw=0, label=f"literal reading: CL ≥ {threshold:g}, SL ≤ 0")
    ax.set_xlim(min(lo, threshold - 0.002), right)
    ax.axhline(0, color="grey", lw=0.8)
    ax.axvline(threshold, color="grey", lw=0.8, ls="--")
    ax.set_xlabel("contrastive cosine (CL)")
    ax.set_ylabel("supervised cosine (SL)")
    ax.legend(frameon=False, loc="best", fontsize="small")
    fig.tight_layout()
    return fig


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
        lr.set_xlabel("epoch")
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
        rld.axhspan(0, paper.DYNAMICS_RLD1_BOUND, color=colour.get(1.0, "C0"), alpha=0.25, lw=0, label="T = 1: below")
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
