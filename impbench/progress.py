"""Progress of long work: one callback type, one no-op, one rich adapter.

Long-running code (ingest, simulation, imputers) reports through a ``ProgressFn``:
``progress(stage, completed, total)``, where ``total`` is None when unknown (e.g. VCF records
read so far). It never depends on how the progress is shown. ``RichProgress`` shows every stage
as a rich bar; ``impbench prepare`` and ``impbench run`` both use it.
"""

from __future__ import annotations

from typing import Any, Callable

ProgressFn = Callable[[str, float, "float | None"], None]


def no_progress(stage: str, completed: float, total: float | None) -> None:
    """A ``ProgressFn`` that shows nothing."""
    return None


class RichProgress:
    """Rich progress bars, one per stage; a context manager, disabled when ``enabled`` is False.

    A stage text ``"biunet train · epoch 3/12 · loss 0.21"`` keeps one bar per text before the
    first ``" · "``, whose description shows the live details after it. ``callback(prefix)``
    gives a ``ProgressFn`` whose stages are prefixed (``"prepare sim-1kgp read"``).
    """

    def __init__(self, console: Any = None, enabled: bool = True) -> None:
        self.enabled = enabled
        self._tasks: dict[str, Any] = {}
        self._bar = None
        if enabled:
            from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn
            from rich.progress import Progress

            self._bar = Progress(
                TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                console=console, transient=False,
            )

    def __enter__(self) -> "RichProgress":
        if self._bar is not None:
            self._bar.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.stop()

    def update(self, stage: str, completed: float, total: float | None) -> None:
        if self._bar is None:
            return
        key = stage.split(" · ", 1)[0]
        if total is not None:
            total = max(total, 1)
        if key not in self._tasks:
            self._tasks[key] = self._bar.add_task(stage, total=total)
        self._bar.update(self._tasks[key], completed=completed, total=total, description=stage)

    __call__ = update

    def remove(self, stage: str) -> None:
        """Take the bar of ``stage`` (its text before the first ``" · "``) off the display."""
        key = stage.split(" · ", 1)[0]
        task = self._tasks.pop(key, None)
        if self._bar is not None and task is not None:
            self._bar.remove_task(task)

    def callback(self, prefix: str = "") -> ProgressFn:
        def report(stage: str, completed: float, total: float | None) -> None:
            self.update(f"{prefix} {stage}".strip(), completed, total)

        return report

    def print(self, message: str) -> None:
        if self._bar is not None:
            self._bar.console.print(message, markup=False, highlight=False)
