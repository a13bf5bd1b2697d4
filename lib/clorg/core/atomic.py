"""Atomic writes: a file is either its old content or its new content, never half of either.

Every file the project writes that a later step reads (checkpoints, features, results, caches, run
records, build records) goes through :func:`write_atomic`: the bytes go to a uniquely named temporary
file in the same folder (so two writers never share one), are flushed and synced to disk, and the
temporary file is then renamed over the target. A crash, a kill or a full disk at any moment leaves
the previous file intact; the error is re-raised with the path that could not be written.
"""

from __future__ import annotations

import errno
import json
import os
import re
import tempfile
from pathlib import Path
from typing import Callable, IO


class WriteFailed(OSError):
    """A write that could not complete; the previous file at that path is intact."""


# Errors of the disk itself: only these are looked for behind a library's own error, so that an unrelated
# bug raised while some OSError was being handled is not reported as a failed write.
DISK_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EIO, errno.EFBIG, errno.EROFS}


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


# mkstemp creates owner-only files; a written file gets the mode an ordinary open() would give it
FILE_MODE = 0o666 & ~_umask()


def _os_error(exc: BaseException) -> OSError | None:
    """The OSError behind ``exc``: itself, or a disk error that a library's clean-up replaced by its own
    (torch.save's zip writer raises a RuntimeError on closing a file whose write failed with ENOSPC)."""
    if isinstance(exc, OSError):
        return exc
    seen = {id(exc)}
    exc = exc.__cause__ or exc.__context__
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, OSError) and exc.errno in DISK_ERRNOS:
            return exc
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return None


def failed_write(path: str | Path, cause: OSError, kept: str = "the previous file there, if any, is unchanged"
                 ) -> WriteFailed:
    """The one message of a write the disk refused: what could not be written, why, what is kept, the fix."""
    why = "the disk is full" if cause.errno == errno.ENOSPC else (cause.strerror or str(cause))
    return WriteFailed(cause.errno, f"could not write {path} ({why}); {kept}. Free some space or fix the folder, "
                                    f"then run again")


def write_atomic(path: str | Path, write: Callable[[IO[bytes]], object]) -> Path:
    """Call ``write(fh)`` on a temporary binary file beside ``path``, sync it, then rename it to ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            os.fchmod(fh.fileno(), FILE_MODE)
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except Exception as exc:
        Path(tmp).unlink(missing_ok=True)
        cause = _os_error(exc)
        if cause is None:
            raise
        raise failed_write(path, cause) from exc
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


# write_atomic's temporary names: ".<name>." + mkstemp's eight characters + ".tmp"
_TEMPORARY = re.compile(r"\.(?P<name>.+)\.[a-z0-9_]{8}\.tmp")


def remove_leftovers(folder: str | Path, names=None) -> list[Path]:
    """Remove the temporary files that writes into ``folder`` left when their process was killed (``kill -9``
    runs no clean-up: a half-written checkpoint stays, unread but taking space): those of the files ``names``,
    or of every file when None; returns those removed. Call it only while holding the lock of every writer of
    those files: another writer's temporary file is not a leftover."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    left = sorted(p for p in folder.iterdir()
                  if (m := _TEMPORARY.fullmatch(p.name)) and (names is None or m["name"] in names))
    for tmp in left:
        tmp.unlink(missing_ok=True)
    return left


def write_bytes(path: str | Path, data: bytes) -> Path:
    return write_atomic(path, lambda fh: fh.write(data))


def append_atomic(path: str | Path, data: bytes) -> Path:
    """``data`` added at the end of ``path`` (created when missing), atomically: the file is its old
    content or its old content and all of ``data``, never a half-written line (a log of a few hundred
    lines is rewritten whole; a failed write names the path as :func:`write_atomic` does)."""
    path = Path(path)
    old = path.read_bytes() if path.is_file() else b""
    return write_bytes(path, old + data)


def write_json(path: str | Path, payload, *, indent: int | None = 1) -> Path:
    """``payload`` as JSON (NaN allowed, as Python writes it), atomically."""
    return write_bytes(path, json.dumps(payload, indent=indent, allow_nan=True).encode())
