"""Summarize a sweep: `python tools/summarize.py SWEEP_DIR [--frames 1-400]` (or `phalanx-summarize`)."""

import sys

from tracker.cli.summarize import main

if __name__ == "__main__":
    sys.exit(main())
