"""File systems for the fault tests: a small tmpfs, read-only mounts. Each skips the test, saying
why, where it cannot be mounted (mounting needs root or CAP_SYS_ADMIN)."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest


def _mount(*args: str) -> None:
    done = subprocess.run(["mount", *args], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        pytest.skip(f"cannot mount here (needs root or CAP_SYS_ADMIN): {done.stderr.strip()}")


@contextmanager
def small_tmpfs(path: Path, size_kb: int) -> Iterator[Path]:
    """A tmpfs of ``size_kb`` KB mounted at ``path``."""
    path.mkdir()
    _mount("-t", "tmpfs", "-o", f"size={size_kb}k,mode=0700", "tmpfs", str(path))
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


@contextmanager
def remounted_read_only(mount_point: Path) -> Iterator[None]:
    """The file system mounted at ``mount_point`` read-only for the block (no file may be open
    for writing on it: the kernel refuses), then read-write again."""
    _mount("-o", "remount,ro", str(mount_point))
    try:
        yield
    finally:
        subprocess.run(["mount", "-o", "remount,rw", str(mount_point)], check=True)


@contextmanager
def read_only_file(path: Path) -> Iterator[None]:
    """``path`` read-only for the block, its directory still writable: a read-only bind mount of
    the file over itself (as root, file permissions would not stop a write)."""
    _mount("--bind", str(path), str(path))
    try:
        _mount("-o", "remount,bind,ro", str(path))
        yield
    finally:
        subprocess.run(["umount", str(path)], check=True)
