"""Evaluate tracks against MOT ground truth: `python tools/evaluate.py --gt GT --results RUN` (or
`phalanx-evaluate`)."""

import sys

from tracker.cli.evaluate import main

if __name__ == "__main__":
    sys.exit(main())
