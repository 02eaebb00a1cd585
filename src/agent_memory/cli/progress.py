"""A one-line progress bar on stderr (stdout stays clean for the command's result)."""

from __future__ import annotations

import sys
from types import TracebackType
from typing import TextIO


class ProgressBar:
    width = 30

    def __init__(self, out: TextIO | None = None) -> None:
        self.out = out or sys.stderr
        self.drawn = False

    def update(self, done: int, total: int, label: str) -> None:
        filled = int(self.width * done / total) if total else self.width
        self.out.write(f"\r[{'#' * filled}{'.' * (self.width - filled)}] {done}/{total} {label[:40]:<40}")
        self.out.flush()
        self.drawn = True

    def __enter__(self) -> ProgressBar:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self.drawn:
            self.out.write("\n")
            self.out.flush()
