"""torchvision's downloads, made atomic: files land in a temporary folder inside the data root and are
moved into place only once every file arrived and passed its md5; a failure leaves nothing behind."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path


def downloads_allowed(download: bool | None) -> bool:
    if download is not None:
        return download
    return os.environ.get("CLORG_OFFLINE", "").lower() in ("", "0", "false", "no")


def _fetch(url: str, folder: Path, filename: str, md5: str) -> None:
    # the one place that touches the network; tests replace it to simulate failures
    from torchvision.datasets.utils import download_url

    download_url(url, str(folder), filename, md5)


def _files_to_fetch(name: str) -> tuple[list[tuple[str, str, str]], str]:
    """[(url, filename, md5)] of a dataset and the folder under the root they go to."""
    from torchvision.datasets import CIFAR10, FashionMNIST

    if name == "cifar10":
        return [(CIFAR10.url, CIFAR10.filename, CIFAR10.tgz_md5)], ""
    if name == "fashion-mnist":
        mirror = FashionMNIST.mirrors[0]
        return [(mirror + f, f, md5) for f, md5 in FashionMNIST.resources], "fashion-mnist"
    raise ValueError(f"no download for dataset {name!r}")


def download(name: str, root: Path) -> None:
    """Download ``name`` into ``root`` (where :mod:`clorg.data.sources` looks for it first).

    Raises whatever the download raised; the data root is then as it was before the call.
    """
    files, subdir = _files_to_fetch(name)
    created_root = not root.exists()
    root.mkdir(parents=True, exist_ok=True)
    try:
        with tempfile.TemporaryDirectory(dir=root, prefix=".download-") as tmp:
            for url, filename, md5 in files:
                _fetch(url, Path(tmp), filename, md5)
            dest = root / subdir
            dest.mkdir(parents=True, exist_ok=True)
            for _, filename, _ in files:
                os.replace(Path(tmp) / filename, dest / filename)
    except BaseException:
        if created_root:
            shutil.rmtree(root, ignore_errors=True)
        raise
