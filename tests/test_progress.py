"""The progress line, the per-stage timings and the quiet console of a run."""
import io
import logging

from tracker.progress import ALWAYS, Progress, StageTimer, configure_console_logging, format_stage_table


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_line_counts_frames_rate_and_people():
    stream = Terminal()
    with Progress(10, "clip", stream=stream, interval=0.0) as progress:
        for _ in range(4):
            progress.update(1, people=3)
        assert progress.line().startswith("clip  4/10 [")
        assert "3.0 people/frame" in progress.line() and "frames/s" in progress.line() and "left" in progress.line()
    assert stream.getvalue().count("\r") == 5 and stream.getvalue().endswith("\n")
    quiet = Terminal()
    with Progress(10, stream=quiet, enabled=False) as progress:
        progress.update(5)
    assert quiet.getvalue() == ""


def test_stage_timer_charges_every_second_to_a_stage():
    timer = StageTimer()
    for _ in range(3):
        sum(range(20000))
        timer.lap("detector")
        timer.lap("association")
    assert set(timer.seconds) == {"detector", "association"}
    assert 0 < sum(timer.seconds.values()) <= timer.total
    table = format_stage_table({"detector": 3.0, "writing": 1.0}, 4.0)
    lines = table.splitlines()
    assert lines[1].split() == ["detector", "3.00", "75.0%"] and lines[-1].split() == ["total", "4.00", "100.0%"]


def test_quiet_console_shows_warnings_and_summary_only():
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        configure_console_logging(verbose=False)
        logger = logging.getLogger("phalanx.test")
        logger.info("detail")
        logger.info("summary", extra=ALWAYS)
        logger.warning("careful")
        assert stream.getvalue().split() == ["summary", "careful"]
    finally:
        root.removeHandler(handler)
