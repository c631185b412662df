"""Export a finished run: `python tools/export.py RUN --format phalp|amass|csv|rrd [key=value ...]`
(or `phalanx-export`)."""

import sys

from tracker.cli.export import main

if __name__ == "__main__":
    sys.exit(main())
