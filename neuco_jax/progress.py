"""Progress of the host-side stages on stderr (rich). Never inside compiled code: the one
compiled pass shows as a single step."""

from __future__ import annotations

import contextlib
import sys


class Progress:
    """Stage bars on stderr when it is a terminal; `quiet` (or a log file, a pipe) shows nothing.

    Use `with progress.stage("load", total=n) as advance: ... advance()`.
    """

    def __init__(self, quiet: bool = False):
        self.quiet = quiet
        self._bar = None

    def __enter__(self) -> Progress:
        if not self.quiet and sys.stderr.isatty():
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, SpinnerColumn, TextColumn, TimeElapsedColumn
            from rich.progress import Progress as RichProgress

            self._bar = RichProgress(SpinnerColumn(), TextColumn("{task.description:<10}"), BarColumn(),
                                     MofNCompleteColumn(), TimeElapsedColumn(), console=Console(stderr=True),
                                     transient=True)  # bars vanish; the CLI prints stage times at the end
            self._bar.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        if self._bar is not None:
            self._bar.__exit__(*exc)
            self._bar = None

    @contextlib.contextmanager
    def stage(self, name: str, total: int = 1):
        """A stage of `total` steps; yields a function that advances it by one."""
        if self._bar is None:
            yield lambda: None
            return
        task = self._bar.add_task(name, total=total)
        yield lambda: self._bar.advance(task)
        self._bar.update(task, completed=total)
