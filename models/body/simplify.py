"""Simplified body meshes for drawing: vertex clustering on the rest pose, one body part at a time.

Vertices of the rest mesh that fall into the same cube of side `cell` (metres) and belong to the same body part
(the joint that skins them most) merge into one of them, the one nearest their mean; faces then connect the merged
vertices, and those that collapse to a line or repeat another face go. Faces keep the original vertex numbers, so a
mesh posed with the full body model draws with the simplified faces as is. Parts never merge with each other, so
that a hand resting on a thigh in the rest pose does not tie the two together once posed.
"""
from __future__ import annotations

import numpy as np
import torch


def cluster_faces(rest_vertices: torch.Tensor, faces: torch.Tensor, parts: torch.Tensor, cell: float) -> torch.Tensor:
    """Faces (F'×3, int64, original vertex numbers, same orientation) of the mesh simplified at cubes of `cell`
    metres; rest_vertices V×3, faces F×3, parts V (the body part of each vertex)."""
    if not cell > 0:
        raise ValueError(f"The simplification cell must be positive, got {cell}.")
    rest = rest_vertices.detach().cpu().double().numpy()
    cubes = np.floor((rest - rest.min(axis=0)) / cell).astype(np.int64)
    keys = np.concatenate([cubes, parts.detach().cpu().numpy().astype(np.int64)[:, None]], axis=1)
    _, cluster = np.unique(keys, axis=0, return_inverse=True)
    cluster = cluster.reshape(-1)
    count = int(cluster.max()) + 1
    means = np.zeros((count, 3))
    np.add.at(means, cluster, rest)
    means /= np.bincount(cluster, minlength=count)[:, None]
    distance = np.linalg.norm(rest - means[cluster], axis=1)
    by_cluster = np.lexsort((distance, cluster))  # each cluster's vertices, nearest to its mean first
    first = np.ones(len(by_cluster), dtype=bool)
    first[1:] = cluster[by_cluster[1:]] != cluster[by_cluster[:-1]]
    representative = np.empty(count, dtype=np.int64)
    representative[cluster[by_cluster[first]]] = by_cluster[first]
    merged = representative[cluster[faces.detach().cpu().numpy()]]
    distinct = (merged[:, 0] != merged[:, 1]) & (merged[:, 1] != merged[:, 2]) & (merged[:, 0] != merged[:, 2])
    merged = merged[distinct]
    _, kept = np.unique(np.sort(merged, axis=1), axis=0, return_index=True)
    return torch.from_numpy(merged[np.sort(kept)]).to(faces.device)
