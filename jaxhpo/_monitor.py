"""Progress and callbacks of a run: a rich bar on a terminal, ``logging`` lines elsewhere, and
the user's callbacks, called once per generation (``minimize``), round or trial (``tune``).
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from jaxhpo._history import History


def logger():
    """The ``jaxhpo`` logger. As Optuna does, it writes INFO lines to stderr by default (when
    neither it nor the root logger has a handler); configure ``logging`` to change that."""
    import logging

    log = logging.getLogger("jaxhpo")
    if not log.handlers and not logging.getLogger().handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("[jaxhpo %(asctime)s] %(message)s", "%H:%M:%S"))
        log.addHandler(handler)
        log.setLevel(logging.INFO)
        log.propagate = False
    return log


class StopRun(Exception):
    """Raise from a callback to end the run cleanly after the current generation, round or
    trial: everything done is journaled and ``resume=True`` continues from there."""


@dataclass(frozen=True)
class RunEvent:
    """What a callback receives after each generation (``minimize``), round (``tune`` on a
    population) or trial (``tune`` on a Python objective).

    Attributes:
      driver: ``"minimize"`` or ``"tune"``.
      step: the generation, round or trial index just completed (from 0).
      trials: the trials completed in it.
      history: every trial of the run so far.
      elapsed: seconds since the run (this call) started.
      curves: ``tune``: ``{trial number: learning curve}`` of the new trials (values per round,
        or ``[step, value]`` reports); ``{}`` for ``minimize``.

    A callback object may also have a ``close()`` method: the driver calls it when the run
    ends (normally, stopped, or by an exception).
    """

    driver: str
    step: int
    trials: tuple
    history: History
    elapsed: float
    curves: dict = field(default_factory=dict)


def check_callbacks(callbacks) -> tuple:
    """``None`` or a sequence of callables ``cb(event: RunEvent)``."""
    if callbacks is None:
        return ()
    if callable(callbacks):
        callbacks = [callbacks]
    if isinstance(callbacks, (str, bytes)) or not isinstance(callbacks, Sequence) or not all(
            callable(c) for c in callbacks):
        raise TypeError(f"callbacks must be a list of callables cb(event), got {callbacks!r}")
    return tuple(callbacks)


def check_progress(mode) -> None:
    if not isinstance(mode, (bool, str)) or mode not in (True, False, "auto", "bar", "log"):
        raise ValueError(f"progress must be True, False, 'auto', 'bar' or 'log', got {mode!r}")


class Monitor:
    """Progress display and callbacks, called once per generation, round or trial.

    ``progress``: ``True``/``"auto"`` (a rich bar on a TTY outside CI, else one ``logging`` line
    per update on the ``jaxhpo`` logger), ``"bar"``, ``"log"`` or ``False`` (nothing).
    """

    def __init__(self, mode, total: int, start: int, unit: str = "generation",
                 callbacks=(), driver: str = "minimize"):
        check_progress(mode)
        self.bar, self.log, self.unit, self.total = None, None, unit, total
        self.callbacks, self.driver = tuple(callbacks), driver
        self.t0, self.done, self.stopped, self.best = time.perf_counter(), start, False, None
        tty = sys.stderr.isatty() and not os.environ.get("CI")
        if mode == "bar" or (mode in (True, "auto") and tty):
            from rich.progress import (BarColumn, MofNCompleteColumn, Progress as Bar,
                                       TextColumn, TimeElapsedColumn)
            self.bar = Bar(TextColumn("[bold]jaxhpo"), BarColumn(), MofNCompleteColumn(),
                           TextColumn("best {task.fields[best]}"), TimeElapsedColumn())
            self.task = self.bar.add_task(unit, total=total, completed=start, best="-")
            self.bar.start()
        elif mode in (True, "auto", "log"):
            self.log = logger()

    def elapsed(self) -> float:
        return time.perf_counter() - self.t0

    def update(self, history: History, new=(), advance: int = 1, failed: int = 0,
               curves: dict | None = None) -> bool:
        """Show progress, run the callbacks; ``True`` once a callback asked to stop."""
        self.done += advance
        if self.bar is not None or self.log is not None:
            if len(history.objectives) == 1:  # the running best, from the new trials only
                sign = 1.0 if history.directions[0] == "minimize" else -1.0
                if self.best is None and len(history) > len(new):  # resumed: once
                    new = list(history)
                for t in new:
                    if t.status == "ok" and t.values is not None and t.feasible and (
                            self.best is None or sign * t.values[0] < sign * self.best):
                        self.best = t.values[0]
            best = "-" if self.best is None else f"{self.best:.6g}"
            if self.bar is not None:
                self.bar.update(self.task, advance=advance, best=best)
            else:
                rate = len(history) / max(self.elapsed(), 1e-9)
                self.log.info("%s %d/%d: best %s, %d trials (%d failed), %.3g trials/s",
                              self.unit, self.done, self.total, best, len(history), failed,
                              rate)
        if self.callbacks:
            event = RunEvent(self.driver, self.done - 1, tuple(new), history, self.elapsed(),
                             {t.number: curves[t.number] for t in new
                              if curves and t.number in curves})
            for cb in self.callbacks:
                try:
                    cb(event)
                except StopRun:
                    self.stopped = True
        return self.stopped

    def close(self):
        if self.bar is not None:
            self.bar.stop()
        for cb in self.callbacks:
            if callable(getattr(cb, "close", None)):
                cb.close()
