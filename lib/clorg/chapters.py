"""Which chapter (notebook) produces which stored result, and the command that produces it.

The report uses this to say where each number comes from and how to produce a missing one; the
notebook executor uses it to know which chapters can render from stored results alone (a GPU profile
built on a machine without a GPU).
"""

from __future__ import annotations

# notebook stem -> names of the results it stores in results/<profile>/ (<name>.json or <name>.npz)
PRODUCES = {
    "01_toy_clusters": ("toy",),
    "02_train": ("training",),
    "03_embeddings": ("embeddings",),
    "04_metrics": ("geometry",),
    "05_tsne": ("tsne", "tsne_claims"),
    "06_classifiers": ("classifiers",),
    "07_dynamics": ("dynamics",),
    "08_near_duplicates": ("near_duplicates",),
}

# chapters whose results need no trained run (and little compute): they execute on any machine
NEEDS_NO_RUNS = ("01_toy_clusters",)


def producer(result: str) -> str:
    """The notebook that stores ``result``, as a path from the project root."""
    for stem, names in PRODUCES.items():
        if result in names:
            return f"notebooks/{stem}.ipynb"
    raise KeyError(f"no chapter stores a result named {result!r}; known: "
                   f"{sorted(n for names in PRODUCES.values() for n in names)}")


def command(result: str, profile: str) -> str:
    """The shell command, from the project root, that (re)produces ``result`` on ``profile``."""
    stem = producer(result).split("/")[1].removesuffix(".ipynb")
    return f"python ci/execute_notebooks.py --profile {profile} --only {stem}"
