"""The device work runs on when the caller does not say: this process's GPU when there is one."""

from __future__ import annotations

import os

import torch


def default_device() -> torch.device:
    """cuda:<LOCAL_RANK> (one GPU per torchrun process) when CUDA is available, else the CPU."""
    if torch.cuda.is_available():
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
    return torch.device("cpu")
