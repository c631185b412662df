"""Renders a body model in its zero pose from the front and the side into one PNG (flat shading, painter's
algorithm with OpenCV), with the 24 SMPL joints and the kinematic tree drawn on top.

    python tools/dev/render_body.py --output body.png [--path SMPL_NEUTRAL.pkl] [--betas 2 0 0]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np
import torch

from models.body import BodyModel, load_body_model

IMAGE_SIZE = 800  # pixels, per view
MARGIN = 0.05  # metres around the body
SKIN_RGB = np.array([225, 180, 150], dtype=np.float64)
LIGHT = np.array([0.3, 0.4, 1.0]) / np.linalg.norm([0.3, 0.4, 1.0])  # in view coordinates, towards the viewer
LEFT_RGB, RIGHT_RGB, CENTRE_RGB = (40, 90, 220), (220, 60, 40), (30, 160, 60)


def view(
    vertices: np.ndarray,
    faces: np.ndarray,
    joints: np.ndarray,
    parents: tuple[int, ...],
    names: tuple[str, ...],
    yaw_degrees: float,
) -> np.ndarray:
    """One RGB view of the mesh seen from +Z after turning it by `yaw_degrees` about the vertical axis."""
    yaw = np.radians(yaw_degrees)
    turn = np.array([[np.cos(yaw), 0, np.sin(yaw)], [0, 1, 0], [-np.sin(yaw), 0, np.cos(yaw)]])
    points, joint_points = vertices @ turn.T, joints @ turn.T
    low, high = points[:, :2].min(axis=0) - MARGIN, points[:, :2].max(axis=0) + MARGIN
    scale = IMAGE_SIZE / (high - low).max()
    centre = (low + high) / 2

    def pixels(p: np.ndarray) -> np.ndarray:
        xy = (p[:, :2] - centre) * scale
        return np.stack([IMAGE_SIZE / 2 + xy[:, 0], IMAGE_SIZE / 2 - xy[:, 1]], axis=1)

    image = np.full((IMAGE_SIZE, IMAGE_SIZE, 3), 255, dtype=np.uint8)
    triangles = points[faces]
    normals = np.cross(triangles[:, 1] - triangles[:, 0], triangles[:, 2] - triangles[:, 0])
    normals /= np.linalg.norm(normals, axis=1, keepdims=True) + 1e-12
    shade = 0.25 + 0.75 * np.abs(normals @ LIGHT)
    corners = np.round(pixels(triangles.reshape(-1, 3)) * 16).astype(np.int32).reshape(-1, 3, 2)
    for face in np.argsort(triangles[:, :, 2].mean(axis=1)):  # far to near
        colour = tuple(int(c) for c in SKIN_RGB * shade[face])
        cv2.fillConvexPoly(image, corners[face], colour, lineType=cv2.LINE_AA, shift=4)
    joint_pixels = np.round(pixels(joint_points)).astype(int)
    for joint, parent in enumerate(parents):
        colour = (
            LEFT_RGB
            if names[joint].startswith("left")
            else RIGHT_RGB
            if names[joint].startswith("right")
            else CENTRE_RGB
        )
        if parent >= 0:
            cv2.line(image, tuple(joint_pixels[parent]), tuple(joint_pixels[joint]), colour, 2, cv2.LINE_AA)
        cv2.circle(image, tuple(joint_pixels[joint]), 5, colour, -1, cv2.LINE_AA)
    return image


def render(model: BodyModel, betas: torch.Tensor) -> np.ndarray:
    """Front and side (the body's left side) views side by side, RGB uint8."""
    identity = torch.eye(3).expand(1, 24, 3, 3)
    with torch.no_grad():
        output = model(global_orient=identity[:, :1], body_pose=identity[:, 1:], betas=betas)
    vertices, joints = output.vertices[0].cpu().numpy(), output.joints[0].cpu().numpy()
    faces = model.faces.cpu().numpy()
    views = [view(vertices, faces, joints, model.parents, model.joint_names, yaw) for yaw in (0.0, -90.0)]
    return np.concatenate(views, axis=1)


def main() -> None:
    parser = argparse.ArgumentParser(description="Render a body model from the front and the side.")
    parser.add_argument("--output", type=Path, required=True)
    parser.add_argument("--path", type=Path, default=None, help="model file; the open default when omitted")
    parser.add_argument("--betas", type=float, nargs="*", default=[])
    args = parser.parse_args()
    model = load_body_model(args.path)
    betas = torch.tensor([args.betas or [0.0]], dtype=torch.float32)
    image = render(model, betas)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(args.output), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))


if __name__ == "__main__":
    main()
