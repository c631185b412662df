"""Track people in a video: `python tools/track.py video=PATH [key=value ...]` (or `phalanx-track`)."""

from tracker.cli.track import main

if __name__ == "__main__":
    main()
