"""One process per run folder: the run-folder lock refuses a second holder in one sentence and leaves no file."""
from __future__ import annotations

import sys

import pytest

from models.structures import InputError
from tracker.io.run_lock import RunFolderLock
from tracker.schema import LOCK_FILE

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="advisory locks (flock) are POSIX")


def test_a_second_holder_is_refused_until_the_first_lets_go(tmp_path):
    with RunFolderLock(tmp_path):
        assert (tmp_path / LOCK_FILE).exists()
        with pytest.raises(InputError, match="Another phalanx process is writing") as refused:
            RunFolderLock(tmp_path).__enter__()
        assert str(tmp_path) in str(refused.value)
    assert not (tmp_path / LOCK_FILE).exists()
    with RunFolderLock(tmp_path):  # free again
        pass


def test_a_lock_file_left_by_a_killed_run_does_not_block(tmp_path):
    (tmp_path / LOCK_FILE).write_text("")  # a SIGKILLed run cannot remove it, but its lock died with it
    with RunFolderLock(tmp_path):
        pass
