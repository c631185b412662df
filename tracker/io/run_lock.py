"""One process per run folder: a second run (or a second `resume=true`) on a folder still being written stops
with one sentence instead of interleaving its frames with the first one's."""
from __future__ import annotations

import os
from pathlib import Path
from types import TracebackType

from models.structures import InputError
from tracker.schema import LOCK_FILE

try:
    import fcntl
except ImportError:  # Windows: no advisory locks, runs are not guarded
    fcntl = None


class RunFolderLock:
    """An exclusive advisory lock (flock) on `run_dir/run.lock`, held while the run writes; the kernel drops it
    when the process ends, killed or not, so a stopped run never leaves the folder locked."""

    def __init__(self, run_dir: Path) -> None:
        self.path = Path(run_dir) / LOCK_FILE
        self._fd: int | None = None

    def __enter__(self) -> RunFolderLock:
        if fcntl is None:
            return self
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise InputError(
                f"Another phalanx process is writing {self.path.parent}: wait for it to end, or choose another "
                "hydra.run.dir."
            ) from None
        self._fd = fd
        return self

    def __exit__(
        self, error_type: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        if self._fd is None:
            return
        self.path.unlink(missing_ok=True)
        fcntl.flock(self._fd, fcntl.LOCK_UN)
        os.close(self._fd)
        self._fd = None
