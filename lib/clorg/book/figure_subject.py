"""What the figures of the chapter executing in this process show data of, in one line: the profile (variant),
the dataset, its training images, the encoders and their width. :func:`clorg.book.chapters.setup` sets it for
its chapter; every figure of :mod:`clorg.book.plots` carries it above its top edge, so that a figure taken out
of the book still says which profile it is of (the feature sets' labels name the encoder alone: fashion's
quarter-width ResNet-18 and gpu10's full-width one are both "resnet18"). A module of its own, without
matplotlib, because the headless run and the GPU job call ``setup`` too and draw nothing.

Once a chapter has returned a result in this process, the figures name that result's profile instead: in Jupyter,
a reader who changes the parameters and runs the setup cell again, but not the cell that computes, draws the
results still in hand, and the line must name their profile, not the new one."""

from __future__ import annotations

_current = ""  # the chapter set up last
_lines: dict[str, str] = {}  # the line of each profile (variant) set up with its data in this process
_of_results: str | None = None  # the profile (variant) of the result a chapter returned last, once one has


def describe(cfg: dict, data) -> str:
    """The line for profile ``cfg`` on ``data``; "" where the chapter reads no dataset (the toy chapter)."""
    if data is None:
        return ""
    t = cfg["train"]
    width = "full width" if t["width_scale"] == 1 else f"{t['width_scale']:g}x width"
    return (f"profile {cfg['profile']['variant']}: {data.name}, {len(data.train):,} training images; "
            f"{', '.join(t['encoders'])} at {width}")


def set_for(cfg: dict, data) -> None:
    """Name profile ``cfg`` on ``data`` above every figure drawn from now on: a process (a notebook's kernel)
    executes one chapter of one profile, and the records a figure is drawn from carry no profile."""
    global _current
    _current = describe(cfg, data)
    if data is not None:
        _lines[cfg["profile"]["variant"]] = _current


def results_of(cfg: dict) -> None:
    """A chapter returned a result of profile ``cfg`` (the chapters' computing functions call it)."""
    global _of_results
    _of_results = cfg["profile"]["variant"]


def current() -> str:
    """The line the figures drawn now carry ("" for none): that of the last result's profile, as it was set up,
    else that of the setup."""
    return _current if _of_results is None else _lines.get(_of_results, _current)
