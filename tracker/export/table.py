"""A run as one CSV table for spreadsheets: a row per track per frame with its box, state and score, its pelvis in the
camera frame (metres; empty without a body) and, when the run gives a ground plane, where it stands on the ground."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from tracker.export.run import ExportRun
from tracker.ground import box_feet_and_heads, matched_rows

COLUMNS = (
    "frame", "time", "track_id", "state", "matched", "x", "y", "w", "h", "score",
    "pelvis_x", "pelvis_y", "pelvis_z", "ground_x", "ground_y",
)  # fmt: skip
PELVIS = 0


def write_csv(run: ExportRun, output: Path) -> Path:
    """Write the table to `output`: boxes as x, y, w, h pixels (top-left corner and size); the pelvis in the run's
    camera frame (x right, y down, z forward); ground_x, ground_y in the ground frame (tracker.ground)."""
    ground = run.ground
    output.parent.mkdir(parents=True, exist_ok=True)
    with open(output, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(COLUMNS)
        for record in run.records():
            boxes = np.asarray(record["boxes"], dtype=np.float64)
            matched = matched_rows(record)
            pelvis = (
                np.asarray(record["joints_3d"], dtype=np.float64)[:, PELVIS]
                if "joints_3d" in record
                else np.full((len(boxes), 3), np.nan)
            )
            standing = ground.ground_points(box_feet_and_heads(boxes)[0]) if ground is not None else None
            for row, track_id in enumerate(record["track_ids"].tolist()):
                x1, y1, x2, y2 = boxes[row]
                on_ground = standing[row] if standing is not None else (np.nan, np.nan)
                writer.writerow([
                    record["frame"], f"{record['time']:.4f}", track_id, record["states"][row], int(matched[row]),
                    f"{x1:.2f}", f"{y1:.2f}", f"{x2 - x1:.2f}", f"{y2 - y1:.2f}", f"{record['scores'][row]:.3f}",
                    *(_number(value) for value in (*pelvis[row], *on_ground)),
                ])  # fmt: skip
    return output


def _number(value: float) -> str:
    """Metres with millimetre precision; an empty cell for a missing value."""
    return "" if not np.isfinite(value) else f"{value:.3f}"
