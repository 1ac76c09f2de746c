"""Progress of a long management command (docs/operations.md, "Long commands").

A line every few seconds — done/total, percent, rate, ETA — on the command's stderr, so its
stdout stays the result a script reads. On by default when stderr is a terminal, off under cron
or a pipe; `--progress` forces it on (a log file), `--no-progress` off. The last line is written
when the work ends, with the elapsed time.
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Protocol


class Stream(Protocol):
    def write(self, text: str, /) -> object: ...
    def isatty(self) -> bool: ...


def add_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_mutually_exclusive_group()
    group.add_argument(
        "--progress",
        dest="progress",
        action="store_true",
        default=None,
        help="print progress lines (rate, ETA) on stderr even when it is not a terminal",
    )
    group.add_argument(
        "--no-progress",
        dest="progress",
        action="store_false",
        help="print no progress lines (the default when stderr is not a terminal, e.g. cron)",
    )


def _clock(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


class Progress:
    def __init__(
        self,
        label: str,
        *,
        total: int | None = None,
        unit: str = "rows",
        enabled: bool | None = None,
        stream: Stream | None = None,
        every: float = 5.0,
    ) -> None:
        self.label, self.total, self.unit, self.every = label, total, unit, every
        self.stream: Stream = stream if stream is not None else sys.stderr
        self.enabled = self.stream.isatty() if enabled is None else enabled
        self.done = 0
        self.started = self._last = time.monotonic()

    def line(self, *, final: bool = False) -> str:
        elapsed = max(time.monotonic() - self.started, 1e-9)
        rate = self.done / elapsed
        text = f"{self.label}: {self.done:,}"
        if self.total:
            text += f" / {self.total:,} {self.unit} ({100 * self.done / self.total:.0f} %)"
        else:
            text += f" {self.unit}"
        text += f", {rate:,.0f} {self.unit}/s" if rate >= 10 else f", {rate:.2g} {self.unit}/s"
        if final:
            return text + f", done in {_clock(elapsed)}"
        if self.total and rate > 0:
            text += f", ETA {_clock(max(self.total - self.done, 0) / rate)}"
        return text

    def advance(self, n: int = 1) -> None:
        self.done += n
        now = time.monotonic()
        if self.enabled and now - self._last >= self.every:
            self._last = now
            self._write(self.line())

    def finish(self) -> None:
        if self.enabled:
            self._write(self.line(final=True))

    def _write(self, text: str) -> None:
        self.stream.write(text + "\n")  # a command's OutputWrapper adds no second line break
        flush = getattr(self.stream, "flush", None)
        if flush is not None:
            flush()
