"""Hungarian assignment with a gate: pairs whose cost exceeds `max_cost` (or is infinite) are never matched."""
from __future__ import annotations

import numpy as np
from scipy.optimize import linear_sum_assignment


def assign(cost: np.ndarray, max_cost: float = np.inf) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Minimum-cost matching of rows to columns; returns (matches K×2, unmatched rows, unmatched cols)."""
    rows, cols = cost.shape
    feasible = np.isfinite(cost) & (cost <= max_cost)
    if not feasible.any():
        return np.zeros((0, 2), np.int64), np.arange(rows), np.arange(cols)
    blocked = 2 * np.abs(cost[feasible]).max() + 1.0
    r, c = linear_sum_assignment(np.where(feasible, cost, blocked))
    ok = feasible[r, c]
    matches = np.stack([r[ok], c[ok]], axis=1).astype(np.int64)
    return (
        matches,
        np.setdiff1d(np.arange(rows), matches[:, 0]),
        np.setdiff1d(np.arange(cols), matches[:, 1]),
    )
