"""What a rollup build reports while it runs: its phases, and each group of provinces built.

`manage.py rebuild_rollups` prints them on stderr (docs/operations.md, "Long commands"); the
beat tasks, the demo and the tests pass nothing and build silently.
"""

from __future__ import annotations


class BuildProgress:
    """Reports nothing; a caller that shows progress overrides the methods."""

    def phase(self, text: str) -> None:
        """A phase of the build starts (`text` says which)."""

    def groups(self, total: int) -> None:
        """The build takes `total` groups of provinces (settings.ROLLUP_BUILD_CHUNK)."""

    def group_built(self) -> None:
        """One more group of provinces is built. In a parallel build this is called from the
        build's worker threads, one call at a time (under the build's lock)."""


SILENT = BuildProgress()
