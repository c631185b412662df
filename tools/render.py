"""Draw a finished run's overlay video: `python tools/render.py RUN [key=value ...]` (or `phalanx-render`)."""

import sys

from tracker.cli.render import main

if __name__ == "__main__":
    sys.exit(main())
