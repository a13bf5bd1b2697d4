"""The hardware facts the code decides by: the device work runs on when the caller does not say (this
process's GPU when there is one), and whether the CPU has native bfloat16 arithmetic."""

from __future__ import annotations

import os
from functools import lru_cache

import torch


def default_device() -> torch.device:
    """cuda:<LOCAL_RANK> (one GPU per torchrun process) when CUDA is available, else the CPU."""
    if torch.cuda.is_available():
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
    return torch.device("cpu")


def gpu_policy_allows(cfg: dict, *, gpu: bool | None = None, allow_cpu: bool | None = None) -> bool:
    """The one GPU policy: a profile trains and analyses here unless it needs a GPU (``profile.needs_gpu``),
    this machine has none (``gpu``; default: what torch sees) and running on the CPU was not asked for
    (``allow_cpu``; default: $CLORG_ALLOW_CPU=1, which --allow-cpu and make ALLOW_CPU=1 set)."""
    gpu = torch.cuda.is_available() if gpu is None else gpu
    allow_cpu = os.environ.get("CLORG_ALLOW_CPU") == "1" if allow_cpu is None else allow_cpu
    return not cfg["profile"]["needs_gpu"] or gpu or allow_cpu


@lru_cache(maxsize=1)
def cpu_has_bf16() -> bool:
    """Whether this CPU has native bfloat16 arithmetic (AVX-512 BF16 or AMX), where bf16 matrix products are
    fast (bench/train.py: 1.5x the float32 training step; bench/heads.py: 4.7x the dense GCN); elsewhere torch
    emulates bf16, slower than float32."""
    try:
        with open("/proc/cpuinfo") as fh:
            flags = next((line for line in fh if line.startswith("flags")), "")
    except OSError:
        return False
    return any(f in flags.split() for f in ("avx512_bf16", "amx_bf16"))


def dense_dtype(setting: str, device) -> str:
    """The dtype a dense graph is held in for ``heads.dense_dtype``: "auto" is bfloat16 on a CPU with native
    bf16 (same accuracy, bench/heads.py) and float32 elsewhere (a GPU reads the float32 graph fast enough)."""
    if setting != "auto":
        return setting
    return "bfloat16" if torch.device(device).type == "cpu" and cpu_has_bf16() else "float32"
