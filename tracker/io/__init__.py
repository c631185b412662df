"""Input and output: video sources that yield Frames, and the streamed results writer and reader."""

from models.structures import Frame
from tracker.io.results import Results, ResultsWriter, load_results
from tracker.io.sources import VideoSource, open_source

__all__ = ["Frame", "Results", "ResultsWriter", "VideoSource", "load_results", "open_source"]
