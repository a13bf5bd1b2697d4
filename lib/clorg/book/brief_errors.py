"""clorg's own errors shown in a notebook as their message, not as a traceback through the package.

Each error class of the package (:func:`own_errors`) is raised with a message that says what is wrong and
how to fix it: a parameter or profile that does not fit, a dataset that is missing, a damaged file, a run
that diverged. IPython shows an exception with its whole traceback, some 40 lines through clorg's internals
above the one line a reader needs, and papermill repeats them in its own error. :func:`install`, called by
every chapter's setup, has IPython show these errors (those of the modules loaded by then, which a chapter
uses) as their message, with a line saying that ``%tb`` shows the whole traceback; any other exception is a
bug, and keeps its traceback. Outside IPython (``python -m clorg.book``, the tests, a script) it does nothing.

An interrupt (Kernel > Interrupt, or papermill's) is shown the same way, with what is kept and how to resume,
as ``python -m clorg.book`` says it on Ctrl-C; and the progress bars it cut off are closed: the traceback
IPython keeps for ``%tb`` holds them open, and the cell run again would draw its bar below their stale lines.
"""

from __future__ import annotations

import sys

RED, RESET = "\x1b[0;31m", "\x1b[0m"  # IPython's colour for an exception's name


def _subclasses(cls: type) -> set[type]:
    found = set()
    for sub in cls.__subclasses__():
        found |= {sub, *_subclasses(sub)}
    return found


def own_errors() -> tuple[type[Exception], ...]:
    """Every error class of the package loaded so far (found, not listed, so that none is forgotten; a module
    not loaded raises none): ConfigError, DatasetError, UnreadableCheckpoint, TrainingDiverged and the rest."""
    return tuple(sorted((c for c in _subclasses(Exception) if c.__module__.startswith("clorg.")),
                        key=lambda c: (c.__module__, c.__qualname__)))


# what an interrupted chapter keeps, said by the notebook and by python -m clorg.book alike
KEPT = "finished results, a run's checkpointed epochs and a chapter's finished parts are kept"
INTERRUPTED = f"interrupted: {KEPT}; run the cell again to resume (with fresh = False: fresh = True starts over)"


def brief(etype: type[BaseException], value: BaseException) -> list[str]:
    """The lines IPython shows for one of clorg's errors: its class and message, then where to find the rest;
    for an interrupt, what is kept and how to resume."""
    if issubclass(etype, KeyboardInterrupt):
        return [f"{RED}{etype.__name__}{RESET}: {INTERRUPTED}", "(%tb shows where it stopped)"]
    return [f"{RED}{etype.__name__}{RESET}: {value}",
            "(clorg's message for something to fix; %tb shows the whole traceback)"]


def close_progress_bars() -> None:
    """Close every tqdm bar still open: after an interrupt, the frames of the traceback keep its bars alive, and
    a new bar would take the next line below each (tqdm's positions) instead of the first."""
    from tqdm import tqdm

    for bar in list(tqdm._instances):
        bar.close()


def _show(shell, etype, value, tb, tb_offset=None) -> list[str]:
    # what IPython's own showtraceback records, so that %tb finds this exception and shows it whole
    sys.last_type, sys.last_value, sys.last_traceback = etype, value, tb
    if issubclass(etype, KeyboardInterrupt):
        close_progress_bars()
    stb = brief(etype, value)
    shell._showtraceback(etype, value, stb)  # the kernel sends these lines as the cell's error output
    return stb


def install() -> None:
    """In IPython (a notebook, papermill's kernel), show clorg's own errors and an interrupt briefly; elsewhere
    nothing."""
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None else None
    if shell is not None:
        shell.set_custom_exc((*own_errors(), KeyboardInterrupt), _show)
