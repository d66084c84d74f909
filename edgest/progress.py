"""What ``edgest compile`` and ``edgest bench`` show while they work, on stderr.

The pipeline reports each stage's start and end (``on_stage(name, "start" | "end", seconds)``,
:mod:`edgest.pipeline`); code inside a stage may add a detail (which pass runs) or a warning with
:func:`detail` and :func:`warn`, which reach the display active in this context and do nothing
without one (the Python API prints nothing). Three displays, picked by :func:`display`:

* on a terminal, a live rich view: one row per stage with its elapsed time, ticking ten times a
  second, so no step goes without a sign of life; details update the running row;
* anywhere else (CI, a log file, a pipe), plain timestamped lines, one per stage start and end
  (``12:00:01 compile squeezetime_tiny → onnx: lower …``, ``… lower done in 3.2 s``), and a
  "still running" line every :data:`HEARTBEAT_S` seconds of one stage, so a log never goes silent
  for long and a CI runner that kills silent jobs does not;
* ``quiet``: warnings only. ``verbose`` adds the details as lines of their own.

Bad input stays one line: a compile's log holds its stage lines back until the artifact is made
(bad weights, shapes, calibration files and ``--quant-skip`` names are found by then), or until a
heartbeat is due, and drops them if the command fails before; a live view removes its rows then.

A bench shows the same per cell (:class:`BenchProgress`): cells done, the current cell and its
stage, and an ETA from each cell's past timings (:func:`cell_estimate`, its last ``report.json``).
"""

from __future__ import annotations

import json
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import datetime
from pathlib import Path
from typing import Any, Literal, TextIO

Verbosity = Literal["quiet", "normal", "verbose"]
#: seconds of one stage after which a log gets a "still running" line (and again after as many more)
HEARTBEAT_S = 30.0

_active: ContextVar[Display | None] = ContextVar("edgest_progress", default=None)


def detail(text: str) -> None:
    """Say what the running stage is doing now (e.g. ``pass quantize``); a no-op without a display."""
    shown = _active.get()
    if shown is not None:
        shown.detail(text)


def warn(text: str) -> None:
    """A one-line warning, shown at once (``edgest: warning: …``) even with ``--quiet``; a no-op without a display."""
    shown = _active.get()
    if shown is not None:
        shown.warn(text)


def is_terminal(stream: TextIO) -> bool:
    """Whether ``stream`` is an interactive terminal a live view can redraw (rich's judgement: TERM=dumb is not)."""
    from rich.console import Console

    return Console(file=stream).is_terminal


class Display:
    """The quiet display, and the base of the others: stage events are ignored, warnings are printed.

    ``hold`` names a stage (compile: ``quantize``, the last before the checks) until whose end nothing
    but warnings is kept on screen if the command fails: bad input stays one line.
    """

    def __init__(self, label: str, verbosity: Verbosity = "normal", stream: TextIO | None = None,
                 hold: str | None = None) -> None:
        self.label, self.verbosity, self.hold = label, verbosity, hold
        self.stream = stream or sys.stderr
        self.current: str | None = None
        self.started = 0.0
        self._lock = threading.RLock()  # the heartbeat thread writes too

    def stage(self, name: str, event: str, seconds: float) -> None:
        """A stage listener for :func:`edgest.pipeline.run`: ``event`` is ``"start"`` or ``"end"``."""
        self.current, self.started = (name, time.perf_counter()) if event == "start" else (None, 0.0)
        if event == "end" and name == self.hold:
            self.hold = None

    @contextmanager
    def step(self, name: str) -> Iterator[None]:
        """Show a step of the command's own (e.g. a bench's pre-flight) like a pipeline stage."""
        t0 = time.perf_counter()
        self.stage(name, "start", 0.0)
        yield
        self.stage(name, "end", round(time.perf_counter() - t0, 3))

    def detail(self, text: str) -> None:
        """What the running stage does now."""

    def warn(self, text: str) -> None:
        """Print ``edgest: warning: text`` on a line of its own."""
        self._write(f"edgest: warning: {text}")

    def line(self, text: str) -> None:
        """A line shown unless quiet (a bench cell's outcome, a note)."""
        if self.verbosity != "quiet":
            self._write(text)

    def unit(self, label: str) -> None:
        """A new unit of work begins (a bench cell): its stages are shown under ``label``."""
        self.label = label

    def unit_done(self, text: str) -> None:
        """The unit ended: its stage rows go, ``text`` (its outcome) stays."""
        self.line(text)

    def headline(self, text: str) -> None:
        """The overall state (cells done, ETA): the top row of a live view; logs carry it on outcome lines instead."""

    def start(self) -> None:
        """Begin showing (a live view starts drawing)."""

    def stop(self, failed: bool = False) -> None:
        """Stop showing; ``failed`` when the command ended with an error in the running stage."""

    def _write(self, text: str) -> None:
        with self._lock:
            print(text, file=self.stream, flush=True)


class LogDisplay(Display):
    """Timestamped lines, one per stage start and end, plus heartbeats (see the module docstring).

    Lines up to the end of the ``hold`` stage are kept back until then (or a heartbeat) and dropped if
    the command fails before: a weights file that does not fit stays a one-line error.
    """

    def __init__(self, label: str, verbosity: Verbosity = "normal", stream: TextIO | None = None,
                 hold: str | None = None, heartbeat_s: float = HEARTBEAT_S) -> None:
        super().__init__(label, verbosity, stream, hold)
        self.heartbeat_s, self._stop = heartbeat_s, threading.Event()
        self._held: list[str] = []
        self._thread = threading.Thread(target=self._beat, name="edgest-progress", daemon=True)

    def stage(self, name: str, event: str, seconds: float) -> None:
        super().stage(name, event, seconds)
        self.stamped(f"{name} …" if event == "start" else f"{name} done in {seconds:.1f} s")

    def detail(self, text: str) -> None:
        if self.verbosity == "verbose" and self.current:
            self.stamped(f"{self.current}: {text}")

    def warn(self, text: str) -> None:
        self._emit(f"edgest: warning: {text}")  # in order with the held stage lines

    def stamped(self, text: str) -> None:
        """``HH:MM:SS label: text``."""
        self._emit(f"{datetime.now():%H:%M:%S} {self.label}: {text}")

    def line(self, text: str) -> None:
        if self.verbosity != "quiet":
            self._emit(f"{datetime.now():%H:%M:%S} {text}")

    def _emit(self, text: str) -> None:
        with self._lock:
            if self.hold is not None:
                self._held.append(text)
                return
            self._release()
            self._write(text)

    def _release(self) -> None:
        with self._lock:
            held, self._held = self._held, []
            for text in held:
                self._write(text)

    def start(self) -> None:
        self._thread.start()

    def stop(self, failed: bool = False) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=1.0)
        with self._lock:
            if failed and self.hold is not None:
                self._held.clear()  # failed before the held stage ended: the error line says it all
                return
        self._release()
        if failed and self.current:
            self.stamped(f"{self.current} stopped after {time.perf_counter() - self.started:.1f} s")

    def _beat(self) -> None:
        """Every ``heartbeat_s`` seconds of one stage, say it is still running."""
        last: tuple[str | None, float] = (None, 0.0)  # the stage and when it last had a line
        while not self._stop.wait(min(1.0, self.heartbeat_s)):
            current, started, now = self.current, self.started, time.perf_counter()
            if current is None:
                continue
            since = max(started, last[1]) if last[0] == current else started
            if now - since >= self.heartbeat_s:
                with self._lock:
                    self.hold = None  # a long hold is worse than an extra line before an error
                self.stamped(f"{current} still running ({now - started:.0f} s)")
                last = (current, now)


class TerminalDisplay(Display):
    """A live rich view on the terminal: the label with the total time, a row per stage, spinner and elapsed seconds."""

    def __init__(self, label: str, verbosity: Verbosity = "normal", stream: TextIO | None = None,
                 hold: str | None = None) -> None:
        from rich.console import Console
        from rich.progress import Progress, SpinnerColumn, TextColumn

        super().__init__(label, verbosity, stream, hold)
        console = Console(file=self.stream, highlight=False)
        self.view = Progress(SpinnerColumn(finished_text="[green]✓[/]"), TextColumn("{task.description}"), _seconds_column(),
                             console=console, transient=False)
        self.tasks: dict[str, Any] = {}
        self.head: Any = None

    def stage(self, name: str, event: str, seconds: float) -> None:
        super().stage(name, event, seconds)
        if event == "start":
            self.tasks[name] = self.view.add_task(f"  {name}", total=1)
        elif name in self.tasks:
            self.view.update(self.tasks[name], description=f"  {name}", completed=1)

    def detail(self, text: str) -> None:
        from rich.markup import escape

        if self.current in self.tasks:
            self.view.update(self.tasks[self.current], description=f"  {self.current} · {escape(text)}")
        if self.verbosity == "verbose":
            self.view.console.print(f"    {escape(text)}", style="dim")

    def warn(self, text: str) -> None:
        from rich.markup import escape

        self.view.console.print(f"[yellow]edgest: warning:[/] {escape(text)}", soft_wrap=True)

    def line(self, text: str) -> None:
        from rich.markup import escape

        self.view.console.print(escape(text), soft_wrap=True)

    def unit(self, label: str) -> None:
        super().unit(label)
        self._clear()

    def unit_done(self, text: str) -> None:
        self._clear()
        self.line(text)

    def headline(self, text: str) -> None:
        from rich.markup import escape

        if self.head is None:
            self.head = self.view.add_task(escape(text), total=None)
        else:
            self.view.update(self.head, description=escape(text))

    def _clear(self) -> None:
        for task in self.tasks.values():
            self.view.remove_task(task)
        self.tasks.clear()

    def start(self) -> None:
        self.headline(self.label)
        self.view.start()

    def stop(self, failed: bool = False) -> None:
        if failed and self.hold is not None:  # failed before the held stage ended: leave only the error line
            self._clear()
            if self.head is not None:
                self.view.remove_task(self.head)
            self.view.live.transient = True  # and erase the view itself
        elif failed and self.current in self.tasks:
            task = self.tasks[self.current]
            self.view.update(task, description=f"  [red]✗[/] {self.current} (stopped)")
            self.view.stop_task(task)
        if self.head is not None and self.head in self.view.task_ids:
            self.view.update(self.head, total=1, completed=1)
        self.view.stop()


def _seconds_column() -> Any:
    """A rich column: the task's elapsed seconds, frozen when it finishes (``3.2 s``)."""
    from rich.progress import ProgressColumn
    from rich.text import Text

    class Seconds(ProgressColumn):
        def render(self, task: Any) -> Text:
            elapsed = task.finished_time if task.finished else task.elapsed
            return Text(f"{elapsed or 0.0:.1f} s", style="progress.elapsed")

    return Seconds()


def display(label: str, verbosity: Verbosity = "normal", stream: TextIO | None = None, hold: str | None = None) -> Display:
    """The display for ``stream`` (stderr by default): quiet, live on a terminal, else timestamped lines.

    ``hold``: see :class:`Display`.
    """
    stream = stream or sys.stderr
    if verbosity == "quiet":
        return Display(label, verbosity, stream, hold)
    kind = TerminalDisplay if is_terminal(stream) else LogDisplay
    return kind(label, verbosity, stream, hold)


@contextmanager
def showing(shown: Display) -> Iterator[Display]:
    """Make ``shown`` the active display (for :func:`detail` and :func:`warn`) while the block runs."""
    token = _active.set(shown)
    shown.start()
    failed = True
    try:
        yield shown
        failed = False
    finally:
        shown.stop(failed)
        _active.reset(token)


def cell_estimate(run_dir: Path, cache_looks_valid: bool) -> float | None:
    """Seconds a bench cell in ``run_dir`` is expected to take: next to nothing when its cache entry looks
    valid, else what its last compile took (``stage_seconds`` of its ``report.json``), else None (unknown)."""
    if cache_looks_valid and (run_dir / "cell.key").is_file() and (run_dir / "report.json").is_file():
        return 0.5
    try:
        stages = json.loads((run_dir / "report.json").read_text()).get("stage_seconds") or {}
        total = sum(float(v) for v in stages.values())
    except (OSError, ValueError, TypeError, AttributeError):
        return None
    return total if total > 0 else None


class Eta:
    """Seconds left in a bench: each cell's estimate (:func:`cell_estimate`), unknown ones at the mean of the
    known estimates and of the cells compiled so far; None while nothing is known."""

    def __init__(self, estimates: list[float | None]) -> None:
        self.estimates: list[float | None] = list(estimates)
        self.actual: dict[int, float] = {}

    def finish(self, index: int, seconds: float) -> None:
        """Cell ``index`` took ``seconds``."""
        self.actual[index] = seconds

    def left(self, current: int | None = None, elapsed: float = 0.0) -> float | None:
        """Seconds left, with cell ``current`` running for ``elapsed`` seconds."""
        known = [e for e in self.estimates if e is not None and e > 1] + [s for s in self.actual.values() if s > 1]
        typical = sum(known) / len(known) if known else None
        total = 0.0
        for i, estimate in enumerate(self.estimates):
            if i in self.actual:
                continue
            estimate = estimate if estimate is not None else typical
            if estimate is None:
                return None
            total += max(estimate - elapsed, 0.0) if i == current else estimate
        return total


def duration(seconds: float) -> str:
    """``45 s``, ``3 min``, ``1 h 05 min``."""
    if seconds < 60:
        return f"{seconds:.0f} s"
    if seconds < 3600:
        return f"{seconds / 60:.0f} min"
    return f"{seconds // 3600:.0f} h {seconds % 3600 / 60:02.0f} min"


class BenchProgress:
    """A bench on a :class:`Display`: ``on_cell`` and ``stage`` are :func:`edgest.bench.run_bench`'s listeners."""

    _MARKS = {"passed": "✓", "cached": "✓", "failed": "✗", "error": "✗", "incomplete": "…", "not_run": "–"}

    def __init__(self, shown: Display, estimates: list[float | None]) -> None:
        self.shown, self.eta = shown, Eta(estimates)
        self.total, self.done, self.running, self.t0, self.cell = len(estimates), 0, None, 0.0, ""

    def stage(self, name: str, event: str, seconds: float) -> None:
        """A stage of the running cell (or the bench's own pre-flight) starts or ends."""
        self.shown.stage(name, event, seconds)
        self._headline()

    def on_cell(self, cell: Any, state: str, done: int, total: int) -> None:
        """``state`` is ``running`` (cell ``done`` begins), else the outcome of the cell just finished."""
        self.total = total
        if state == "running":
            self.running, self.t0, self.cell = done, time.perf_counter(), cell.label
            self.shown.unit(f"bench [{done + 1}/{total}] {cell.label}")
            self._headline()
            return
        index = done - 1
        seconds = time.perf_counter() - self.t0 if self.running == index else 0.0
        self.eta.finish(index, seconds)
        self.running, self.done, self.cell = None, done, ""
        left = self.eta.left()
        eta = f"; ETA {duration(left)}" if left is not None and done < total else ""
        took = f" in {seconds:.1f} s" if seconds else ""
        self.shown.unit_done(f"{self._MARKS.get(state, '·')} [{done}/{total}] {cell.label}: {state.replace('_', ' ')}{took}{eta}")
        self._headline()

    def _headline(self) -> None:
        elapsed = time.perf_counter() - self.t0 if self.running is not None else 0.0
        left = self.eta.left(self.running, elapsed)
        parts = [f"bench: {self.done}/{self.total} cells done"] + ([self.cell] if self.cell else [])
        eta = [f"ETA {duration(left)}"] if left is not None and self.done < self.total else []
        self.shown.headline(" · ".join(parts + eta))
