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
