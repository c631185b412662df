"""What a run tells its user while and after it works: a progress line, the time spent per stage, quiet logging."""
from __future__ import annotations

import logging
import sys
import time
from typing import TextIO

log = logging.getLogger(__name__)

ALWAYS = {"always": True}  # `log.info(..., extra=ALWAYS)`: shown on the console even when it is quiet
_BAR_WIDTH = 24


class StageTimer:
    """Splits a run's wall time into named stages: `lap(name)` charges the time since the previous lap to `name`,
    so that the stages add up to the whole run with no gaps."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self._started = self._clock = time.perf_counter()

    def lap(self, stage: str) -> None:
        """Charge the time since the previous lap (or since the timer started) to `stage`."""
        now = time.perf_counter()
        self.seconds[stage] = self.seconds.get(stage, 0.0) + now - self._clock
        self._clock = now

    @property
    def total(self) -> float:
        """Seconds since the timer started."""
        return time.perf_counter() - self._started

    def table(self) -> str:
        """The stages as an aligned table of seconds and share of the run so far."""
        return format_stage_table(self.seconds, self.total)


def format_stage_table(seconds: dict[str, float], total: float) -> str:
    """Aligned `stage  seconds  share` rows, longest stage first, and a total row (e.g. from summary.json)."""
    rows = [("stage", "seconds", "share")]
    for stage, value in sorted(seconds.items(), key=lambda item: -item[1]):
        rows.append((stage, f"{value:.2f}", f"{100 * value / total:.1f}%" if total > 0 else "-"))
    rows.append(("total", f"{total:.2f}", "100.0%"))
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    return "\n".join(
        f"{row[0].ljust(widths[0])}  {row[1].rjust(widths[1])}  {row[2].rjust(widths[2])}" for row in rows
    )


class Progress:
    """Frames done, frames/s, people/frame and time left, on one line redrawn in place on a terminal (at most every
    `interval` s), or as a log record every `log_interval` s when the stream is not a terminal (batch jobs)."""

    def __init__(
        self,
        total: int | None,
        name: str = "",
        enabled: bool = True,
        stream: TextIO | None = None,
        interval: float = 0.5,
        log_interval: float = 30.0,
    ) -> None:
        self.total = total
        self.name = name
        self.enabled = enabled
        self.frames = 0
        self.people = 0
        self._stream = stream if stream is not None else sys.stderr
        self._on_terminal = bool(getattr(self._stream, "isatty", lambda: False)())
        self._interval = interval if self._on_terminal else log_interval
        self._started = time.perf_counter()
        self._shown_at = self._started
        self._drawn = False

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def update(self, frames: int = 1, people: int = 0) -> None:
        """Count `frames` more frames holding `people` people in all; redraw when the interval has passed."""
        self.frames += frames
        self.people += people
        now = time.perf_counter()
        if self.enabled and now - self._shown_at >= self._interval:
            self._shown_at = now
            self._show(self.line())

    def line(self) -> str:
        """The progress line as it is shown now."""
        elapsed = time.perf_counter() - self._started
        rate = self.frames / elapsed if elapsed > 0 else 0.0
        people = self.people / self.frames if self.frames else 0.0
        parts = [self.name] if self.name else []
        if self.total:
            done = min(self.frames / self.total, 1.0)
            filled = round(done * _BAR_WIDTH)
            parts.append(f"{self.frames}/{self.total} [{'#' * filled}{'.' * (_BAR_WIDTH - filled)}] {100 * done:3.0f}%")
        else:
            parts.append(f"{self.frames} frames")
        parts.append(f"{rate:.1f} frames/s  {people:.1f} people/frame")
        if self.total and rate > 0:
            parts.append(f"{_clock_time(max(self.total - self.frames, 0) / rate)} left")
        return "  ".join(parts)

    def close(self) -> None:
        """Show the final line and end it, if anything was drawn or the run was long enough to want it."""
        if not self.enabled:
            return
        if self._on_terminal:
            self._stream.write("\r" + self.line() + "\n")
            self._stream.flush()
        elif self._drawn:
            log.info("%s", self.line())
        self.enabled = False

    def _show(self, line: str) -> None:
        self._drawn = True
        if self._on_terminal:
            self._stream.write("\r" + line + "\x1b[K")
            self._stream.flush()
        else:
            log.info("%s", line)


def configure_console_logging(verbose: bool) -> None:
    """Quiet console by default (warnings, errors and records logged with `extra=ALWAYS`); with `verbose`, every
    INFO record on the console and DEBUG records in the log file too."""
    root = logging.getLogger()
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    for handler in root.handlers:
        if type(handler) is logging.StreamHandler:  # the console; file handlers are subclasses and keep everything
            handler.setLevel(logging.DEBUG if verbose else logging.INFO)
            if not verbose:
                handler.addFilter(_quiet_filter)


def _quiet_filter(record: logging.LogRecord) -> bool:
    return record.levelno >= logging.WARNING or getattr(record, "always", False)


def _clock_time(seconds: float) -> str:
    minutes, secs = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"
