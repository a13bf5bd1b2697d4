"""Progress bars of long work: shown by default from :data:`FROM_N` items (points, images), where a step
takes long enough for a reader to wonder whether anything is happening; below it, quiet."""

from __future__ import annotations

from tqdm import tqdm

FROM_N = 20_000


def bar(progress: bool | None, n: int, total: int, desc: str, unit: str = "it") -> tqdm:
    """A tqdm bar over ``total`` steps of work on ``n`` items; ``progress``: True/False, or None for
    "from :data:`FROM_N` items"."""
    show = n >= FROM_N if progress is None else bool(progress)
    return tqdm(total=total, desc=desc, unit=unit, disable=not show, leave=False)
