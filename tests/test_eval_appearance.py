"""The rank-based ROC AUC of benchmarks/eval_appearance.py: separation, reversal, ties and bad input."""
from __future__ import annotations

import numpy as np
import pytest

from benchmarks.eval_appearance import rank_auc
from models.structures import InputError


def test_perfectly_separated_scores_give_one_and_reversed_give_zero() -> None:
    assert rank_auc([0.7, 0.9, 0.8], [0.1, 0.3]) == 1.0
    assert rank_auc([0.1, 0.3], [0.7, 0.9, 0.8]) == 0.0


def test_ties_count_half() -> None:
    assert rank_auc([0.5, 0.5], [0.5, 0.5, 0.5]) == 0.5
    # pairs (positive > negative): 1 vs 0 wins, 1 vs 1 ties, 0 vs 0 ties, 0 vs 1 loses -> (1 + 0.5 + 0.5) / 4
    assert rank_auc([1.0, 0.0], [0.0, 1.0]) == 0.5
    assert rank_auc([2.0, 1.0], [1.0, 0.0]) == pytest.approx(7 / 8)


def test_matches_counting_every_pair() -> None:
    rng = np.random.default_rng(0)
    positive, negative = rng.integers(0, 6, 40).astype(float), rng.integers(0, 5, 30).astype(float)
    difference = positive[:, None] - negative[None, :]
    expected = ((difference > 0).sum() + 0.5 * (difference == 0).sum()) / difference.size
    assert rank_auc(positive, negative) == pytest.approx(expected)


def test_rejects_empty_or_non_finite_scores() -> None:
    with pytest.raises(InputError, match="positive and negative"):
        rank_auc([], [0.1])
    with pytest.raises(InputError, match="finite"):
        rank_auc([np.nan], [0.1])
