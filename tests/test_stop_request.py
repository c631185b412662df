"""Ctrl-C during a run: the first one asks the run to stop after its window and says so; once the last window is
done it says the run is finishing instead; a second one interrupts at once."""
import logging
import os
import signal

import pytest

from tracker.resume import StopRequest


def ctrl_c() -> None:
    os.kill(os.getpid(), signal.SIGINT)


def test_the_first_ctrl_c_asks_to_stop_after_the_window_and_the_second_interrupts(caplog):
    with caplog.at_level(logging.WARNING), StopRequest() as stop:
        ctrl_c()
        assert stop.requested
        assert "stopping after this window" in caplog.text
        with pytest.raises(KeyboardInterrupt):
            ctrl_c()
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_a_ctrl_c_while_the_last_frames_are_written_says_the_run_is_finishing(caplog):
    with caplog.at_level(logging.WARNING), StopRequest() as stop:
        stop.finishing()
        ctrl_c()
        assert "the run ends once its last frames are written" in caplog.text
        assert "stopping after this window" not in caplog.text
        with pytest.raises(KeyboardInterrupt):
            ctrl_c()
