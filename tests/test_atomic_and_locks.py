"""Atomic writes under a full disk (the previous file survives, no temporary file is left) and the
cross-process lock that keeps two builds from writing one run or result together."""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from factories import write_image_tree

from clorg.core import atomic, locks
from clorg.core.atomic import WriteFailed, write_atomic, write_bytes, write_json
from clorg.data import cache, load_dataset, sources
from clorg.train import checkpoint

ROOT = Path(__file__).resolve().parents[1]


class _FillingFile:
    """A binary file whose writes fail with ENOSPC once ``room`` bytes have been written."""

    def __init__(self, real, room: int):
        self._real, self._room = real, room
        self.written = 0

    def write(self, data) -> int:
        data = bytes(data)
        if self.written + len(data) > self._room:
            take = self._room - self.written
            self._real.write(data[:take])  # part of the bytes reach the temporary file
            self.written += take
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        self.written += len(data)
        return self._real.write(data)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self._real.close()
        return False

    def __getattr__(self, name):  # flush, fileno, tell, seek, close...
        return getattr(self._real, name)


class _OsWithFullDisk:
    """``os`` as clorg.core.atomic sees it, except that files it opens fill up after ``room`` bytes."""

    def __init__(self, room: int):
        self.room, self.files = room, []

    def fdopen(self, fd, *args, **kwargs):
        f = _FillingFile(os.fdopen(fd, *args, **kwargs), self.room)
        self.files.append(f)
        return f

    def __getattr__(self, name):
        return getattr(os, name)


@pytest.fixture
def full_disk(monkeypatch):
    """After this fixture, every atomic write fails part way, as on a disk that fills up."""
    fake = _OsWithFullDisk(room=100)
    monkeypatch.setattr(atomic, "os", fake)
    return fake


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp"))


# ------------------------------------------------------------------------------------------------
# write_atomic
# ------------------------------------------------------------------------------------------------

def test_write_atomic_replaces_the_file_whole(tmp_path):
    target = tmp_path / "sub" / "a.bin"
    assert write_bytes(target, b"first") == target and target.read_bytes() == b"first"
    write_atomic(target, lambda fh: (fh.write(b"sec"), fh.write(b"ond")))
    assert target.read_bytes() == b"second" and leftovers(target.parent) == []
    write_json(tmp_path / "x.json", {"a": float("nan"), "b": [1, 2]})
    assert (tmp_path / "x.json").read_text().replace(" ", "").replace("\n", "") == '{"a":NaN,"b":[1,2]}'


def test_full_disk_leaves_the_previous_file_intact(tmp_path, full_disk):
    target = tmp_path / "results.json"
    target.write_bytes(b"the previous content\n")
    with pytest.raises(WriteFailed) as err:
        write_bytes(target, b"x" * 1000)
    assert full_disk.files and full_disk.files[0].written == 100  # it failed part way, not at once
    assert isinstance(err.value, OSError) and err.value.errno == errno.ENOSPC
    message = str(err.value)
    assert str(target) in message and "disk is full" in message and "unchanged" in message
    assert target.read_bytes() == b"the previous content\n"
    assert leftovers(tmp_path) == [] and sorted(p.name for p in tmp_path.iterdir()) == ["results.json"]
    # a new file: nothing is left where it would have been
    with pytest.raises(WriteFailed, match="disk is full"):
        write_json(tmp_path / "new.json", {"x": "y" * 500})
    assert not (tmp_path / "new.json").exists() and leftovers(tmp_path) == []


def test_other_failures_also_leave_no_temporary_file(tmp_path):
    target = tmp_path / "a.bin"
    target.write_bytes(b"old")

    def half_then_crash(fh):
        fh.write(b"new bytes")
        raise KeyboardInterrupt  # an interrupt in the middle of a write

    with pytest.raises(KeyboardInterrupt):
        write_atomic(target, half_then_crash)
    assert target.read_bytes() == b"old" and leftovers(tmp_path) == []

    def permission(fh):
        raise OSError(errno.EACCES, "Permission denied")

    with pytest.raises(WriteFailed, match=r"could not write .*a.bin \(Permission denied\)"):
        write_atomic(target, permission)
    assert target.read_bytes() == b"old" and leftovers(tmp_path) == []


def test_checkpoint_save_on_a_full_disk_keeps_the_last_checkpoint(tmp_path, monkeypatch):
    path = tmp_path / "checkpoints" / "last.pt"
    good = {"epoch": 3, "method": {"w": torch.arange(10.0)}}
    checkpoint.save(good, path)
    before = path.read_bytes()
    with monkeypatch.context() as m:
        m.setattr(atomic, "os", _OsWithFullDisk(room=300))
        with pytest.raises(WriteFailed, match=r"last.pt \(the disk is full\)"):
            checkpoint.save({"epoch": 4, "method": {"w": torch.zeros(10_000)}}, path)
    assert path.read_bytes() == before and leftovers(path.parent) == []
    state = checkpoint.load(path)
    assert state["epoch"] == 3 and torch.equal(state["method"]["w"], torch.arange(10.0))


def test_cache_write_on_a_full_disk_corrupts_nothing(tmp_path, monkeypatch, capsys):
    expected = write_image_tree(tmp_path / "t", ["a", "b"])
    name = f"imagefolder:{tmp_path / 't'}"
    cache_dir = tmp_path / "cache"
    load_dataset(name, "train")
    (images_npy,) = cache_dir.rglob("images.npy")
    entry = images_npy.parent
    before = {p.name: p.read_bytes() for p in entry.iterdir()}

    source, _ = sources.locate(name, "train", tmp_path)
    other = np.zeros_like(expected["train"][0])
    with monkeypatch.context() as m:  # undone at the end of the block only (conftest's env stays)
        m.setattr(atomic, "os", _OsWithFullDisk(room=100))
        with pytest.raises(WriteFailed, match="disk is full"):
            cache.write_entry(cache_dir, name, "train", source, other, expected["train"][1], ("a", "b"), "0" * 64)
        # the arrays that were there are untouched, and no half-written file or manifest is left to be served
        assert images_npy.read_bytes() == before["images.npy"]
        assert (entry / "labels.npy").read_bytes() == before["labels.npy"]
        assert not (entry / "manifest.json").exists() and leftovers(entry) == []

        # a load on the full disk still returns the data; only the cache is not written
        capsys.readouterr()
        ds = load_dataset(name, "train")
        np.testing.assert_array_equal(ds.images, expected["train"][0])
        assert "data cache: not written" in capsys.readouterr().out
        assert not (entry / "manifest.json").exists() and leftovers(entry) == []
    np.testing.assert_array_equal(load_dataset(name, "train").images, expected["train"][0])
    assert (entry / "manifest.json").exists() and entry.is_relative_to(tmp_path)


# ------------------------------------------------------------------------------------------------
# locks.exclusive across processes
# ------------------------------------------------------------------------------------------------

def _python(code: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen([sys.executable, "-c", textwrap.dedent(code)], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _holder(lock: Path, go: Path) -> subprocess.Popen:
    """A process that takes the lock, says so, and keeps it until the file ``go`` appears."""
    proc = _python(f"""
        import os, time
        from clorg.core.locks import exclusive
        with exclusive({str(lock)!r}, "the result x"):
            print("held", flush=True)
            while not os.path.exists({str(go)!r}):
                time.sleep(0.02)
        print("released", flush=True)
    """)
    assert proc.stdout.readline().strip() == "held"
    return proc


def _waiter(lock: Path) -> subprocess.Popen:
    return _python(f"""
        from clorg.core.locks import exclusive
        with exclusive({str(lock)!r}, "the result x"):
            print("got it", flush=True)
    """)


def test_second_process_waits_for_the_first_and_names_it(tmp_path):
    lock, go = tmp_path / "locks" / ".x.lock", tmp_path / "go"
    first = _holder(lock, go)
    second = _waiter(lock)
    waiting = second.stdout.readline()
    assert waiting.startswith("waiting: the result x is being written by pid "), waiting
    assert f"pid {first.pid} on " in waiting and str(lock) in waiting
    time.sleep(1.0)
    assert second.poll() is None  # still waiting while the first holds the lock
    go.touch()
    out, _ = second.communicate(timeout=60)
    assert second.returncode == 0 and "lock on the result x acquired after" in out and "got it" in out
    assert first.communicate(timeout=60)[0].strip() == "released" and first.returncode == 0


def test_lock_is_released_when_its_holder_is_killed(tmp_path, capsys):
    lock = tmp_path / ".run.lock"
    holder = _holder(lock, tmp_path / "never")
    waiter = _waiter(lock)
    assert waiter.stdout.readline().startswith("waiting:")
    holder.send_signal(signal.SIGKILL)
    holder.wait(timeout=60)
    out, _ = waiter.communicate(timeout=60)
    assert waiter.returncode == 0 and "got it" in out
    # and this process takes it at once, without waiting
    with locks.exclusive(lock, "the result x"):
        assert f"pid {os.getpid()} " in lock.read_text()
    assert "waiting" not in capsys.readouterr().out
    assert lock.read_text() == ""  # released: no holder named
