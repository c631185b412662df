"""Tracking evaluation (HOTA, CLEAR MOT, Identity) of MOTChallenge-format results, following TrackEval."""

from tracker.eval.evaluate import COMBINED, COUNT_METRICS, count_sequence, evaluate_sequence, evaluate_sequences
from tracker.eval.mot_file import MotBoxes, load_mot_file, locate_gt_file, locate_results_file, parse_frame_range

__all__ = [
    "COMBINED",
    "COUNT_METRICS",
    "MotBoxes",
    "count_sequence",
    "evaluate_sequence",
    "evaluate_sequences",
    "load_mot_file",
    "locate_gt_file",
    "locate_results_file",
    "parse_frame_range",
]
