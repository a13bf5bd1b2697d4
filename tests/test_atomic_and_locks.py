"""Atomic writes under a full disk (the previous file survives, no temporary file is left) and the
cross-process lock that keeps two builds from writing one run or result together. (A full disk during a
checkpoint, a cache write or a results write is a fault of the catalogue: tests/test_faults.py.)"""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from factories import OsWithFullDisk

from clorg.core import atomic, locks
from clorg.core.atomic import WriteFailed, write_atomic, write_bytes, write_json

from clorg.core.paths import ROOT  # the project root, defined once


@pytest.fixture
def full_disk(monkeypatch):
    """After this fixture, every atomic write fails part way, as on a disk that fills up."""
    fake = OsWithFullDisk(room=100)
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


def test_a_write_killed_midway_leaves_a_temporary_file_that_remove_leftovers_clears(tmp_path):
    """kill -9 runs no clean-up: a process killed while writing leaves its temporary file beside the target
    (the target keeps its old content). remove_leftovers clears those of the files named (not those of a longer
    name that starts alike), or of every file."""
    target = tmp_path / "run" / "last.pt"
    write_bytes(target, b"old")
    child = textwrap.dedent(f"""
        import os, signal
        from clorg.core.atomic import write_atomic
        write_atomic({str(target)!r}, lambda fh: (fh.write(b"half"), fh.flush(), os.kill(os.getpid(), signal.SIGKILL)))
    """)
    done = subprocess.run([sys.executable, "-c", child], capture_output=True)
    assert done.returncode == -signal.SIGKILL and target.read_bytes() == b"old"
    (left,) = leftovers(target.parent)
    assert left.startswith(".last.pt.")
    others = [target.parent / n for n in (".last.pt.lock", ".last.pt.json.abcd1234.tmp", ".log.jsonl.abcd1234.tmp")]
    for other in others:
        other.write_bytes(b"")
    assert [p.name for p in atomic.remove_leftovers(target.parent, {"last.pt"})] == [left]
    assert leftovers(target.parent) == [".last.pt.json.abcd1234.tmp", ".log.jsonl.abcd1234.tmp"]  # others' only
    assert (target.parent / ".last.pt.lock").exists() and target.read_bytes() == b"old"
    assert len(atomic.remove_leftovers(target.parent)) == 2 and leftovers(target.parent) == []  # every file's
    assert atomic.remove_leftovers(tmp_path / "none") == []


def test_the_data_reaches_the_disk_before_the_rename(tmp_path, monkeypatch):
    """fsync of the temporary file, then os.replace: a crash after the rename must find the whole new content,
    not a renamed empty file whose data was still in the page cache."""
    calls = []
    fsync, replace = os.fsync, os.replace
    monkeypatch.setattr(atomic.os, "fsync", lambda fd: (calls.append(("fsync", os.fstat(fd).st_size)), fsync(fd))[1])
    monkeypatch.setattr(atomic.os, "replace", lambda a, b: (calls.append(("replace", Path(b).name)), replace(a, b))[1])
    write_bytes(tmp_path / "f.bin", b"12345")
    assert calls == [("fsync", 5), ("replace", "f.bin")]


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


def test_a_full_disk_hidden_behind_a_writers_own_error_is_still_reported(tmp_path, full_disk):
    """A writer that replaces the OSError with its own error while cleaning up (as torch.save's zip writer
    does) still gives WriteFailed saying the disk is full; other errors pass through unchanged."""
    target = tmp_path / "a.bin"
    target.write_bytes(b"old")

    def writer_with_clean_up(fh):
        try:
            fh.write(b"x" * 1000)
        finally:
            raise RuntimeError("unexpected pos 86336 vs 86232")  # what torch raises on closing its zip

    with pytest.raises(WriteFailed, match=r"could not write .*a.bin \(the disk is full\)") as err:
        write_atomic(target, writer_with_clean_up)
    assert err.value.errno == errno.ENOSPC and isinstance(err.value.__cause__, RuntimeError)
    assert target.read_bytes() == b"old" and leftovers(tmp_path) == []

    def bug(fh):
        raise ValueError("not a disk problem")

    with pytest.raises(ValueError, match="not a disk problem"):
        write_atomic(target, bug)
    assert target.read_bytes() == b"old" and leftovers(tmp_path) == []


def test_a_bug_raised_while_handling_an_unrelated_os_error_is_not_called_a_failed_write(tmp_path):
    """Only a disk's own errors are looked for behind another error: a KeyError raised while a missing
    file was being handled is a bug, and passes through as it is."""
    target = tmp_path / "a.bin"

    def bug_after_a_missing_file(fh):
        try:
            open(tmp_path / "absent")
        except FileNotFoundError:
            raise KeyError("a bug")

    with pytest.raises(KeyError, match="a bug"):
        write_atomic(target, bug_after_a_missing_file)
    assert not target.exists() and leftovers(tmp_path) == []


def test_a_written_file_has_the_mode_an_ordinary_write_gives_it(tmp_path):
    """The temporary file is owner-only (mkstemp); the written file is readable as the umask allows."""
    plain = tmp_path / "plain.txt"
    plain.write_text("x")
    written = write_bytes(tmp_path / "atomic.txt", b"x")
    assert written.stat().st_mode & 0o777 == plain.stat().st_mode & 0o777


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


def test_an_interrupt_while_waiting_is_a_plain_keyboard_interrupt(tmp_path):
    """Ctrl-C (Kernel > Interrupt) while waiting for a lock: a KeyboardInterrupt alone, not one "during handling
    of" a BlockingIOError (the wait ran inside the except block that caught it: a chained traceback)."""
    lock, go = tmp_path / ".x.lock", tmp_path / "go"
    first = _holder(lock, go)
    second = _python(f"""
        import signal
        signal.signal(signal.SIGINT, signal.default_int_handler)  # as a terminal's or a kernel's process has it
        from clorg.core.locks import exclusive
        with exclusive({str(lock)!r}, "the result x"):
            print("got it", flush=True)
    """)
    assert second.stdout.readline().startswith("waiting:")
    time.sleep(0.5)
    second.send_signal(signal.SIGINT)
    out, _ = second.communicate(timeout=60)
    go.touch()
    first.communicate(timeout=60)
    assert out.rstrip().endswith("KeyboardInterrupt") and "got it" not in out, out
    assert "BlockingIOError" not in out and "During handling" not in out, out


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


# ------------------------------------------ a real full filesystem ------------------------------------------

@pytest.fixture
def small_fs(tmp_path):
    """A 256 KiB tmpfs: a disk that really fills up (root only; skipped elsewhere, saying why)."""
    where = tmp_path / "fs"
    where.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(where)], capture_output=True,
                          text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here ({done.stderr.strip() or 'mount failed'}): the full-disk "
                    f"behaviour is checked with a simulated disk in the tests above")
    try:
        yield where
    finally:
        subprocess.run(["umount", str(where)], check=False)


def _fill(folder: Path) -> None:
    """Write zeros until the filesystem refuses more."""
    fd = os.open(folder / "filler", os.O_WRONLY | os.O_CREAT)
    try:
        while True:
            os.write(fd, b"\0" * 4096)
    except OSError as exc:
        assert exc.errno == errno.ENOSPC
    finally:
        os.close(fd)


def test_a_really_full_disk_keeps_each_kind_of_file_and_says_so(small_fs):
    """A result, a checkpoint, a log line and a lock on a filesystem that is really full: each write fails
    with the message of the atomic writers (the disk is full, the path), and what was there stays."""
    import torch

    from clorg.train import checkpoint

    result, ckpt, log = small_fs / "geometry.json", small_fs / "encoder.pt", small_fs / "log.jsonl"
    write_json(result, {"records": [1, 2]})
    checkpoint.save({"encoder": {"w": torch.ones(4)}}, ckpt)
    atomic.append_atomic(log, b'{"epoch": 1}\n')
    _fill(small_fs)
    with pytest.raises(WriteFailed, match=f"could not write {result} \\(the disk is full\\)"):
        write_json(result, {"records": list(range(50_000))})
    with pytest.raises(WriteFailed, match="the disk is full"):
        checkpoint.save({"encoder": {"w": torch.zeros(100_000)}}, ckpt)
    with pytest.raises(WriteFailed, match=f"could not write {log} \\(the disk is full\\)"):
        atomic.append_atomic(log, b'{"epoch": 2, "loss": 1.0}\n' * 200)
    with pytest.raises(WriteFailed, match="the disk is full.*nothing was written under this lock \\(run x\\)"):
        with locks.exclusive(small_fs / ".run.lock", "run x"):
            raise AssertionError("the block must not run")
    # everything written before is intact, and no temporary file is left behind
    assert json_of(result) == {"records": [1, 2]}
    assert torch.equal(checkpoint.load(ckpt)["encoder"]["w"], torch.ones(4))
    assert log.read_bytes() == b'{"epoch": 1}\n'
    assert not list(small_fs.glob(".*.tmp"))


def json_of(path: Path):
    import json

    return json.loads(path.read_text())
