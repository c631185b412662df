"""Constant-velocity Kalman filter on box centre and size, batched over tracks.

State per track: (cx, cy, w, h, vcx, vcy, vw, vh). All noise is a fraction of the box height, so small and large
people are filtered alike; measurement noise (the detector's box jitter) is set apart from process noise (how
much people change course). A Kalman filter is used rather than PHALP's per-coordinate
regression because it needs no history window, gives the uncertainty the gating needs, and costs one batched
matrix product per frame.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats

from models.structures import xyxy_to_cxcywh

_DIM = 4


@dataclass(frozen=True)
class BoxKalmanFilter:
    """Batched predict/update of N box states; noise standard deviations are fractions of the box height."""

    measurement_noise: float = 0.05
    position_noise: float = 0.05
    velocity_noise: float = 1 / 160

    @property
    def transition(self) -> np.ndarray:
        f = np.eye(2 * _DIM)
        f[:_DIM, _DIM:] = np.eye(_DIM)
        return f

    def _scale(self, sizes: np.ndarray) -> np.ndarray:
        """Per-coordinate scale (N×4): the box height for every coordinate."""
        return np.repeat(sizes[:, 1:2], 4, axis=1)

    def initiate(self, boxes_xyxy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """New states (N×8 means, N×8×8 covariances) from detected boxes, velocity zero and uncertain."""
        z = xyxy_to_cxcywh(boxes_xyxy.astype(np.float64))
        mean = np.concatenate([z, np.zeros_like(z)], axis=1)
        scale = self._scale(z[:, 2:])
        std = np.concatenate([2 * self.measurement_noise * scale, 10 * self.velocity_noise * scale], axis=1)
        return mean, _diag(std**2)

    def predict(self, mean: np.ndarray, cov: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """States one frame ahead."""
        scale = self._scale(mean[:, 2:4])
        std = np.concatenate([self.position_noise * scale, self.velocity_noise * scale], axis=1)
        f = self.transition
        mean = mean @ f.T
        cov = f @ cov @ f.T + _diag(std**2)
        return mean, cov

    def update(self, mean: np.ndarray, cov: np.ndarray, boxes_xyxy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """States corrected by one measured box each (rows aligned)."""
        z = xyxy_to_cxcywh(boxes_xyxy.astype(np.float64))
        measurement_var = (self.measurement_noise * self._scale(mean[:, 2:4])) ** 2
        innovation_cov = cov[:, :_DIM, :_DIM] + _diag(measurement_var)
        gain = np.linalg.solve(innovation_cov, cov[:, :_DIM, :]).transpose(0, 2, 1)
        mean = mean + np.einsum("nij,nj->ni", gain, z - mean[:, :_DIM])
        cov = cov - gain @ cov[:, :_DIM, :]
        return mean, cov


def _diag(values: np.ndarray) -> np.ndarray:
    """N×K values → N×K×K diagonal matrices."""
    out = np.zeros(values.shape + (values.shape[-1],))
    idx = np.arange(values.shape[-1])
    out[:, idx, idx] = values
    return out


def linear_forecast(
    times: np.ndarray, values: np.ndarray, valid: np.ndarray, target: np.ndarray, ridge: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """PHALP's location forecast, for T tracks at once: a ridge-regularised line through each track's recent
    observations (times T×H, values T×H×C, valid T×H) evaluated at `target` (T,), with its 95% prediction interval.

    `ridge` (C,) penalises each coordinate's slope (as scikit-learn's Ridge with an intercept does). Tracks with
    fewer than three distinct observations get an infinite interval: their uncertainty is unknown.
    """
    weight = valid.astype(np.float64)
    count = weight.sum(axis=1)
    safe = np.maximum(count, 1)
    t_mean = (weight * times).sum(axis=1) / safe
    dt = np.where(valid, times - t_mean[:, None], 0.0)
    v_mean = (weight[..., None] * values).sum(axis=1) / safe[:, None]
    dv = np.where(valid[..., None], values - v_mean[:, None, :], 0.0)
    spread = (dt**2).sum(axis=1)
    slope = (dt[..., None] * dv).sum(axis=1) / (spread[:, None] + ridge[None, :])
    step = (target - t_mean)[:, None]
    prediction = v_mean + slope * step
    residual = np.where(valid[..., None], dv - slope[:, None, :] * dt[..., None], 0.0)
    dof = count - 2
    known = (dof > 0) & (spread > 0)
    s_err = np.sqrt((residual**2).sum(axis=1) / np.maximum(dof, 1)[:, None])
    quantile = stats.t.ppf(0.975, np.maximum(dof, 1))[:, None]
    leverage = np.sqrt(1 + 1 / safe[:, None] + step**2 / np.where(spread > 0, spread, 1.0)[:, None])
    interval = np.where(known[:, None], quantile * s_err * leverage, np.inf)
    return prediction, interval
