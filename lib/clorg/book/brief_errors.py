"""clorg's own errors shown in a notebook as their message, not as a traceback through the package.

Each error class of the package (:func:`own_errors`) is raised with a message that says what is wrong and
how to fix it: a parameter or profile that does not fit, a dataset that is missing, a damaged file, a run
that diverged. IPython shows an exception with its whole traceback, some 40 lines through clorg's internals
above the one line a reader needs, and papermill repeats them in its own error. :func:`install`, called by
every chapter's setup, has IPython show these errors (those of the modules loaded by then, which a chapter
uses) as their message, with a line saying that ``%tb`` shows the whole traceback; any other exception is a
bug, and keeps its traceback. Outside IPython (``python -m clorg.book``, the tests, a script) it does nothing.
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


def brief(etype: type[BaseException], value: BaseException) -> list[str]:
    """The lines IPython shows for one of clorg's errors: its class and message, then where to find the rest."""
    return [f"{RED}{etype.__name__}{RESET}: {value}",
            "(clorg's message for something to fix; %tb shows the whole traceback)"]


def _show(shell, etype, value, tb, tb_offset=None) -> list[str]:
    # what IPython's own showtraceback records, so that %tb finds this exception and shows it whole
    sys.last_type, sys.last_value, sys.last_traceback = etype, value, tb
    stb = brief(etype, value)
    shell._showtraceback(etype, value, stb)  # the kernel sends these lines as the cell's error output
    return stb


def install() -> None:
    """In IPython (a notebook, papermill's kernel), show clorg's own errors briefly; elsewhere nothing."""
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None else None
    if shell is not None:
        shell.set_custom_exc(own_errors(), _show)
