"""What produced a result: the code's commit, the machine, the library versions."""

from __future__ import annotations

import os
import platform
import subprocess
from importlib import metadata
from pathlib import Path

from .paths import ROOT
_LIBRARIES = ("torch", "torchvision", "numpy", "scikit-learn", "openTSNE", "jupyter-book", "papermill")


# What the project computes, not what computes it: a changed stored result or weights file beside the code
# does not make the code "dirty" (a chapter that stores two results would otherwise mark its second one).
OUTPUTS = ("results", "weights")


def git_commit(repo: Path = ROOT) -> str:
    """The commit hash, with ``+dirty`` when tracked files other than the stored outputs (:data:`OUTPUTS`)
    differ from it, or ``unknown`` outside git. On a GPU machine, the commit ``$CLORG_COMMIT`` names
    (ci/device_run.sh sets it from the commit the tree was sent from: the copy there has no .git, or a stale
    one)."""
    import os

    if os.environ.get("CLORG_COMMIT"):  # the copy on a GPU machine may hold a stale .git, or none
        return os.environ["CLORG_COMMIT"]
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True,
                              check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--", ".",
                                *(f":(exclude){d}" for d in OUTPUTS)], cwd=repo,
                               capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + ("+dirty" if dirty else "")


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _memory_gib() -> float | None:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    except (ValueError, OSError, AttributeError):
        return None


def hardware() -> dict:
    """CPU model and usable cores, memory, and the GPU's name when torch sees one."""
    info = {"cpu": _cpu_name(), "cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
            else os.cpu_count(), "memory_gib": _memory_gib(), "gpu": None}
    try:
        import torch

        if torch.cuda.is_available():
            info["gpu"] = f"{torch.cuda.device_count()} x {torch.cuda.get_device_name(0)}"
    except ImportError:
        pass
    return info


def describe_hardware(hw: dict | None = None) -> str:
    hw = hw or hardware()
    mem = f", {hw['memory_gib']:.0f} GiB RAM" if hw.get("memory_gib") else ""
    return f"{hw['cpu']} ({hw['cores']} cores{mem}); GPU: {hw['gpu'] or 'none'}"


def library_versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for lib in _LIBRARIES:
        try:
            out[lib] = metadata.version(lib)
        except metadata.PackageNotFoundError:
            out[lib] = "not installed"
    return out
