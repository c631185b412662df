"""Evaluate tracker results against ground truth: HOTA, CLEAR and Identity metrics per sequence and combined."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import reduce
from operator import add
from pathlib import Path

from models.structures import InputError
from tracker.eval.clear import ClearCounts, clear_counts
from tracker.eval.counts import AdditiveCounts
from tracker.eval.hota import HotaCounts, hota_counts
from tracker.eval.identity import IdentityCounts, identity_counts
from tracker.eval.mot_file import load_mot_file
from tracker.eval.sequence import build_sequence_data

COMBINED = "COMBINED"
COUNT_METRICS = ("TP", "FP", "FN", "IDSW", "Frag", "MT", "PT", "ML", "GT_IDs", "Pred_IDs")


@dataclass(frozen=True)
class SequenceCounts(AdditiveCounts):
    """Everything needed to compute the metrics of one or more sequences; sequences combine with `+`."""

    hota: HotaCounts
    clear: ClearCounts
    identity: IdentityCounts
    gt_ids: int
    pred_ids: int

    def metrics(self) -> dict[str, float]:
        """All metric values: fractions in [0, 1] and counts (the names in COUNT_METRICS) as ints."""
        return {
            **self.hota.metrics(),
            **self.clear.metrics(),
            **self.identity.metrics(),
            "GT_IDs": self.gt_ids,
            "Pred_IDs": self.pred_ids,
        }


def count_sequence(
    gt_path: str | Path, results_path: str | Path, frames: tuple[int, int] | None = None
) -> SequenceCounts:
    """Load one ground-truth/results pair (restricted to `frames`, inclusive) and count matches and errors."""
    gt = load_mot_file(gt_path, frames, is_gt=True)
    if len(gt) == 0:
        where = f" in frames {frames[0]}-{frames[1]}" if frames is not None else ""
        raise InputError(f"Ground-truth file {gt_path} has no boxes to evaluate{where}.")
    data = build_sequence_data(gt, load_mot_file(results_path, frames, is_gt=False))
    return SequenceCounts(
        hota=hota_counts(data),
        clear=clear_counts(data),
        identity=identity_counts(data),
        gt_ids=data.num_gt_ids,
        pred_ids=data.num_pred_ids,
    )


def evaluate_sequence(
    gt_path: str | Path, results_path: str | Path, frames: tuple[int, int] | None = None
) -> dict[str, float]:
    """Metrics of one results file against its ground truth, optionally restricted to a frame range."""
    return count_sequence(gt_path, results_path, frames).metrics()


def evaluate_sequences(
    pairs: Sequence[tuple[str, str | Path, str | Path]], frames: tuple[int, int] | None = None
) -> dict[str, dict[str, float]]:
    """Metrics of each (name, gt, results) pair plus COMBINED, where counts are summed before computing metrics."""
    names = [name for name, _, _ in pairs]
    if not pairs:
        raise InputError("No sequences were given to evaluate.")
    if len(set(names)) != len(names) or COMBINED in names:
        raise InputError(f"Sequence names must be distinct and not '{COMBINED}', got {names}.")
    counts = {name: count_sequence(gt_path, results_path, frames) for name, gt_path, results_path in pairs}
    results = {name: sequence_counts.metrics() for name, sequence_counts in counts.items()}
    results[COMBINED] = reduce(add, counts.values()).metrics()
    return results
