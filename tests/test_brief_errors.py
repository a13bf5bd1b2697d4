"""clorg's own errors in a notebook: their message, not 40 lines of traceback through the package; any other
exception keeps its traceback, and %tb shows the whole one of ours."""

from __future__ import annotations

import importlib
import re

import nbformat
from nbclient import NotebookClient

from clorg.book import brief_errors
from clorg.core.code import module_files

ANSI = re.compile(r"\x1b\[[0-9;]*m")


def test_every_error_class_the_package_defines_is_shown_briefly():
    """Found, not listed: every error class of the package once its module is loaded, and only those."""
    for module in module_files():
        importlib.import_module(module)
    found = brief_errors.own_errors()
    assert {c.__name__ for c in found} >= {"ConfigError", "DatasetError", "DatasetNotFoundError", "UnreadableCheckpoint",
                                           "TrainingDiverged", "UnreadableResult", "NeedsGpu", "UnusableSummary", "RunNotFound"}
    assert all(c.__module__.startswith("clorg.") and issubclass(c, Exception) for c in found)
    assert ValueError not in found and KeyError not in found


def _outputs(cell) -> str:
    return ANSI.sub("", "\n".join("\n".join(o.get("traceback", [])) + o.get("text", "") for o in cell.outputs))


def test_a_notebook_shows_our_error_as_its_message_and_tb_shows_the_whole_traceback(tmp_path):
    """In a real kernel: a chapter's setup with an unknown profile fails the cell (papermill stops there)
    with two lines; %tb then shows the whole traceback."""
    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell("from clorg.book import chapters\nchapters.setup('no-such-profile')"),
        nbformat.v4.new_code_cell("%tb"),
    ])
    NotebookClient(nb, kernel_name="python3", allow_errors=True, timeout=300, resources={
        "metadata": {"path": str(tmp_path)}}).execute()
    ours, tb = nb.cells
    (error,) = [o for o in ours.outputs if o.output_type == "error"]
    assert error.ename == "ConfigError"  # the kernel reports the cell failed, with our exception
    assert _outputs(ours).splitlines() == [
        f"ConfigError: {error.evalue}", "(clorg's message for something to fix; %tb shows the whole traceback)"]
    assert error.evalue.startswith("unknown profile 'no-such-profile': valid profiles are [")
    assert "Traceback" in _outputs(tb) and "_profile_path" in _outputs(tb) and error.evalue in _outputs(tb)


def test_a_bug_keeps_its_traceback_in_a_notebook(tmp_path):
    """An exception raised inside clorg that is not one of its errors (a bug) is shown whole, after setup."""
    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell("from clorg.book import brief_errors\nbrief_errors.install()"),
        nbformat.v4.new_code_cell("from clorg.core.code import closure\nclosure(['clorg.no_such_module'])"),
    ])
    NotebookClient(nb, kernel_name="python3", allow_errors=True, timeout=300, resources={
        "metadata": {"path": str(tmp_path)}}).execute()
    shown = _outputs(nb.cells[1])
    assert "KeyError" in shown and "Traceback" in shown and "closure" in shown and "%tb shows" not in shown


def _run(kc, code: str, timeout: float = 120) -> list[dict]:
    """Execute ``code`` in the kernel of ``kc``; its iopub messages until the kernel is idle again."""
    msg_id = kc.execute(code)
    out = []
    while True:
        msg = kc.get_iopub_msg(timeout=timeout)
        if msg["parent_header"].get("msg_id") != msg_id:
            continue
        if msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
            return out
        out.append(msg)


def test_an_interrupted_cell_says_what_is_kept_and_closes_its_progress_bars():
    """Kernel > Interrupt (SIGINT to a real kernel) during a clorg progress bar: the cell fails with two lines,
    what is kept and how to resume, not a traceback through the package; the bar it cut off is closed, so the
    cell run again draws one bar, not one below the stale one (the traceback kept for %tb held it open)."""
    import time

    from jupyter_client.manager import start_new_kernel

    km, kc = start_new_kernel(kernel_name="python3")
    try:
        _run(kc, "from clorg.book import brief_errors\nbrief_errors.install()")
        # a bar as clorg.train.loop draws one: updated by hand, held by the frame of the function that works
        msg_id = kc.execute("from tqdm import tqdm\nimport time\n"
                            "def work():\n    bar = tqdm(total=10_000, desc='slow', mininterval=0.1)\n"
                            "    for _ in range(10_000):\n        time.sleep(0.01)\n        bar.update()\n"
                            "work()")
        for _ in range(200):  # the bar has started drawing
            msg = kc.get_iopub_msg(timeout=60)
            if msg["parent_header"].get("msg_id") == msg_id and msg["msg_type"] == "stream":
                break
        time.sleep(0.5)
        km.interrupt_kernel()
        reply = kc.get_shell_msg(timeout=60)
        while reply["parent_header"].get("msg_id") != msg_id:
            reply = kc.get_shell_msg(timeout=60)
        assert reply["content"]["status"] == "error" and reply["content"]["ename"] == "KeyboardInterrupt"
        shown = [ANSI.sub("", line) for line in reply["content"]["traceback"]]
        assert shown == [f"KeyboardInterrupt: {brief_errors.INTERRUPTED}", "(%tb shows where it stopped)"]
        left = _run(kc, "from tqdm import tqdm\nprint(len(tqdm._instances))")
        assert [m["content"]["text"] for m in left if m["msg_type"] == "stream"] == ["0\n"]
        tb = "".join(m["content"].get("text", "") + "\n".join(m["content"].get("traceback", [])) for m in _run(kc, "%tb"))
        assert "KeyboardInterrupt" in ANSI.sub("", tb) and "time.sleep" in ANSI.sub("", tb)
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)
