"""One frame's detections with everything the model stages derived from them: what the tracker, the results
writer and the overlay read, rows in detection order."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from models.structures.bodies import Bodies, BodyArrays
from models.structures.detections import Detections
from models.structures.frame import Frame


@dataclass
class Observations:
    """N detections of one frame and, per detection, its body (numpy rows), its posed mesh (N×V×3, camera frame,
    metres), its UV texture (N×4×S×S) and its appearance embedding (N×E); a stage that did not run leaves None.
    `cut` is True when the frame starts a new shot (positions before it say nothing about positions after)."""

    frame: Frame
    detections: Detections
    bodies: BodyArrays | None = None
    vertices: torch.Tensor | None = None
    textures: torch.Tensor | None = None
    embeddings: torch.Tensor | None = None
    cut: bool = False

    def __len__(self) -> int:
        return len(self.detections)


def window_observations(
    frames: Sequence[Frame],
    detections: Sequence[Detections],
    bodies: Bodies | None = None,
    textures: torch.Tensor | None = None,
    embeddings: torch.Tensor | None = None,
    cuts: Sequence[bool] | None = None,
) -> list[Observations]:
    """Splits a window's batched stage outputs (rows in the bodies' crop order) into one record per frame; the
    bodies are converted to numpy once for the whole window. `cuts` flags the frames that start a new shot."""
    cuts = [False] * len(frames) if cuts is None else list(cuts)
    if bodies is None:
        return [Observations(frame, found, cut=cut) for frame, found, cut in zip(frames, detections, cuts)]
    arrays = BodyArrays.from_tensors(bodies.params, bodies.joints_3d, bodies.joints_2d)
    records = []
    for frame, found, rows, cut in zip(frames, detections, bodies.frame_rows(len(frames)), cuts):
        if len(rows) != len(found):
            raise ValueError(f"Frame {frame.index} has {len(found)} detections but {len(rows)} bodies.")
        index = torch.as_tensor(rows, dtype=torch.long)
        records.append(
            Observations(
                frame,
                found,
                arrays.take(rows),
                None if bodies.vertices is None else bodies.vertices[index.to(bodies.vertices.device)],
                None if textures is None else textures[index.to(textures.device)],
                None if embeddings is None else embeddings[index.to(embeddings.device)],
                cut,
            )
        )
    return records
