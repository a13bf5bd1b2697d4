"""One writer at a time for a run folder or a stored result, across processes.

Two builds of one profile at once (two terminals, or a notebook open in Jupyter while ``make book``
runs) would otherwise train the same run or write the same result together. :func:`exclusive` holds an
advisory ``flock`` on a lock file beside the thing being written. A second process **waits** for the
first to finish, saying once who holds the lock, and then finds the finished run or result and reuses
it rather than computing it again. The lock is released when its holder exits, even on a crash or a
kill, since the operating system drops it with the process.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import socket
import time
from pathlib import Path
from typing import Iterator

from . import atomic


def _holder(path: Path) -> str:
    try:
        text = path.read_text().strip()
    except OSError:
        return "another process"
    return text or "another process"


def _refused(path: Path, what: str, exc: OSError) -> OSError:
    """A lock file the disk refused, reported as the atomic writers report a write (other errors as they are)."""
    if exc.errno not in atomic.DISK_ERRNOS:
        return exc
    return atomic.failed_write(path, exc, f"nothing was written under this lock ({what})")


@contextlib.contextmanager
def exclusive(path: str | Path, what: str) -> Iterator[None]:
    """Hold the lock ``path`` while the block runs; ``what`` names the guarded thing in the wait message."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fh = open(path, "a+")
    except OSError as exc:
        raise _refused(path, what, exc) from exc
    with fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
            busy = False
        except BlockingIOError:
            busy = True
        if busy:  # the wait outside the except block: an interrupt while waiting is not "during handling of" it
            print(f"waiting: {what} is being written by {_holder(path)} (lock {path}); this process goes on "
                  f"when that one is done", flush=True)
            t0 = time.time()
            fcntl.flock(fh, fcntl.LOCK_EX)
            print(f"lock on {what} acquired after {time.time() - t0:.0f} s", flush=True)
        try:  # who holds it, for a waiting process's message; unbuffered, so a refused write leaves nothing behind
            os.ftruncate(fh.fileno(), 0)
            os.pwrite(fh.fileno(), f"pid {os.getpid()} on {socket.gethostname()} since "
                                   f"{time.strftime('%H:%M:%S')}\n".encode(), 0)
        except OSError as exc:
            raise _refused(path, what, exc) from exc
        try:
            yield
        finally:
            fh.seek(0)
            fh.truncate()
            fcntl.flock(fh, fcntl.LOCK_UN)
