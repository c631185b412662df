"""Overlay video of a run: boxes, track ids, 2D joints and shaded body meshes drawn over each frame and encoded as
H.264 mp4 while the run goes, one frame in memory at a time.

Meshes go through the project's rasterizer (`models.texture`, plain torch): no OpenGL, no EGL, no pyrender.
The overlay reads the tracker's typed per-frame record (`TrackedFrame`): its tracks, their bodies and the meshes
the run posed once per window; a frame read back from a results file has no meshes, so they are posed from its SMPL
parameters. Per-track rows holding any non-finite value mean "nothing to draw for that track".
"""
from __future__ import annotations

import colorsys
import os
from dataclasses import dataclass, replace
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import torch

from models.body import SMPL_PARENTS, BodyModel
from models.body.simplify import cluster_faces
from models.camera import project_to_pixels
from models.structures import InputError
from models.texture.rasterizer import Rasterizer
from models.texture.torch_rasterizer import TorchRasterizer
from models.torch_threads import torch_threads
from tracker.build import build_run_body_model
from tracker.io import load_results, open_source
from tracker.schema import MESH_KEYS, PARTIAL_SUFFIX
from tracker.sweep import run_input_path
from tracker.tracker import TrackedFrame

GOLDEN_RATIO_CONJUGATE = 0.618033988749895
LIGHT_DIRECTION = torch.tensor([0.0, -0.4, -1.0]) / float(np.sqrt(1.16))  # towards a light beside the camera, above
SIMPLIFICATION_CELLS = (0.01, 0.02, 0.04, 0.08)  # metres: the overlay's levels of detail, finest first
AMBIENT = 0.35  # share of a mesh's colour that unlit surfaces keep


@dataclass(frozen=True)
class OverlayOptions:
    """What the overlay draws and how it is encoded (the `render` config group, configs/render/*.yaml).

    `enabled`: "auto" (on for a single run, off in a multirun sweep), true or false. `states`: the track states
    drawn. `size`: output (width, height) in pixels, null for the input size; `fps`: null for the input rate.
    """

    enabled: str | bool = "auto"
    file: str = "overlay.mp4"
    states: tuple[str, ...] = ("confirmed", "interpolated")
    boxes: bool = True
    ids: bool = True
    meshes: bool = True
    joints: bool = False
    mesh_alpha: float = 0.8
    mesh_cell: float = 2.0
    line_width: int = 2
    size: tuple[int, int] | None = None
    fps: float | None = None
    crf: int = 23
    preset: str = "superfast"
    threads: int | None = None

    def __post_init__(self) -> None:
        if not (self.enabled == "auto" or isinstance(self.enabled, bool)):
            raise InputError(f"render.enabled must be auto, true or false, got {self.enabled!r}.")
        if not 0.0 <= self.mesh_alpha <= 1.0:
            raise InputError(f"render.mesh_alpha must be within [0, 1], got {self.mesh_alpha}.")
        if not self.mesh_cell >= 0:
            raise InputError(f"render.mesh_cell must be at least 0 (pixels; 0: full meshes), got {self.mesh_cell}.")
        if self.size is not None and (len(self.size) != 2 or min(self.size) < 2):
            raise InputError(f"render.size must be null or [width, height] of at least 2 pixels, got {self.size}.")
        if self.fps is not None and not self.fps > 0:
            raise InputError(f"render.fps must be null or positive, got {self.fps}.")
        if not 0 <= self.crf <= 51:
            raise InputError(f"render.crf must be an H.264 quality within [0, 51], got {self.crf}.")
        if self.threads is not None and self.threads < 1:
            raise InputError(f"render.threads must be null or a positive number of CPU threads, got {self.threads}.")
        object.__setattr__(self, "states", tuple(self.states))

    def active(self, multirun: bool) -> bool:
        """Whether a run draws its overlay: "auto" means yes for a single run and no inside a sweep."""
        return (not multirun) if self.enabled == "auto" else bool(self.enabled)


@dataclass(frozen=True)
class BodyMeshes:
    """Posed body meshes of one frame in the full-frame camera (x right, y down, z forward, metres).

    `vertices` K×V×3 (one row per record track id; a non-finite row has no body), `faces` F×3, `focal` in pixels
    (a scalar shared by all, or K or K×2 per row) and `principal_point` in pixels of the input frame (2 shared, or
    K×2 per row).
    """

    vertices: torch.Tensor
    faces: torch.Tensor
    focal: float | torch.Tensor
    principal_point: torch.Tensor


@torch.inference_mode()
def track_meshes(tracked: TrackedFrame, rows: np.ndarray, body_model: BodyModel) -> BodyMeshes | None:
    """The meshes of the tracks picked by `rows` (bool mask, others NaN) in the full-frame camera (principal point at
    the frame's centre): those the run posed, or, for a frame read back from results (no meshes), posed here from
    the tracks' SMPL parameters. None when the frame has no bodies."""
    bodies = tracked.bodies
    if bodies is None:
        return None
    device = body_model.faces.device
    count = len(tracked)
    picked = torch.as_tensor(np.asarray(rows, dtype=bool), device=device)
    focal = torch.as_tensor(bodies.focal_length, dtype=torch.float32, device=device).reshape(count)
    centre = torch.tensor([tracked.frame.width / 2, tracked.frame.height / 2], device=device)
    if tracked.vertices is not None:
        vertices = tracked.vertices.to(device, torch.float32).clone()
        vertices[~picked] = float("nan")
        return BodyMeshes(vertices, body_model.faces, focal, centre)
    values = {key: torch.as_tensor(getattr(bodies, key), dtype=torch.float32, device=device) for key in MESH_KEYS}
    posed = picked.clone()
    for value in values.values():
        posed &= torch.isfinite(value.reshape(count, -1)).all(dim=1)
    vertices = torch.full((count, body_model.num_vertices, 3), float("nan"), device=device)
    if bool(posed.any()):
        output = body_model(
            values["smpl_global_orient"][posed],
            values["smpl_body_pose"][posed],
            values["smpl_betas"][posed],
            transl=values["cam_t"][posed],
        )
        vertices[posed] = output.vertices.float()
    return BodyMeshes(vertices, body_model.faces, focal, centre)


def track_colour(track_id: int) -> tuple[int, int, int]:
    """A stable RGB colour per track id: hues stepped by the golden ratio, so consecutive ids look far apart."""
    hue = (int(track_id) * GOLDEN_RATIO_CONJUGATE) % 1.0
    red, green, blue = colorsys.hsv_to_rgb(hue, 0.75, 0.95)
    return round(255 * red), round(255 * green), round(255 * blue)


@dataclass(frozen=True)
class MeshLevel:
    """A mesh drawn from some of a body's vertices: `vertex_ids` (K, into the full mesh) and `faces` F×3 (into
    `vertex_ids`); `cell` in metres is the simplification's (0 for the full mesh)."""

    cell: float
    vertex_ids: torch.Tensor
    faces: torch.Tensor

    @classmethod
    def of_faces(cls, cell: float, faces: torch.Tensor) -> MeshLevel:
        vertex_ids, compact = torch.unique(faces, return_inverse=True)
        return cls(cell, vertex_ids, compact.reshape(faces.shape))


@dataclass(frozen=True)
class MeshLevels:
    """A body model's mesh and its simplifications (models.body.simplify), coarser and coarser."""

    full_faces: torch.Tensor
    levels: tuple[MeshLevel, ...]  # the full mesh first, then cells of SIMPLIFICATION_CELLS

    @classmethod
    def of(cls, body_model: BodyModel, cells: tuple[float, ...] = SIMPLIFICATION_CELLS) -> MeshLevels:
        layer, faces = body_model.layer, body_model.faces
        parts = layer.lbs_weights.argmax(dim=1)
        simplified = [MeshLevel.of_faces(cell, cluster_faces(layer.v_template, faces, parts, cell)) for cell in cells]
        return cls(faces, (MeshLevel.of_faces(0.0, faces), *simplified))

    def level_for(self, pixels_per_metre: float, max_cell_pixels: float) -> MeshLevel:
        """The coarsest level whose cells span at most `max_cell_pixels` on screen (the full mesh when none does)."""
        chosen = self.levels[0]
        for level in self.levels[1:]:
            if level.cell * pixels_per_metre <= max_cell_pixels:
                chosen = level
        return chosen


class MeshPainter:
    """Shades body meshes (Lambertian, lit from beside the camera; one colour per track) and blends them onto a
    frame, through any `Rasterizer` (by default the built-in torch one, culling faces seen from behind: closed
    bodies show only their front faces, and half the faces skip the z-test).

    Each pixel takes the normal of the face it sees. A person at video scale spans several faces per pixel, so
    this looks as smooth as interpolated vertex normals, and costs per covered pixel rather than per face. With
    `levels`, each body is drawn with the coarsest simplified mesh whose cells span at most `max_cell_pixels` at
    its distance (a picture, not a measurement: far people need a fraction of the faces).
    """

    def __init__(
        self, rasterizer: Rasterizer | None = None, levels: MeshLevels | None = None, max_cell_pixels: float = 0.0
    ) -> None:
        self.rasterizer = rasterizer if rasterizer is not None else TorchRasterizer(cull_backfaces=True)
        self.levels = levels
        self.max_cell_pixels = max_cell_pixels

    def levels_of(self, faces: torch.Tensor, vertices: torch.Tensor, focal: torch.Tensor) -> list[MeshLevel]:
        """The mesh each body is drawn with (vertices K×V×3 of the mesh `faces`, focal shared or K or K×2)."""
        levels = self.levels
        known = levels is not None and (faces is levels.full_faces or torch.equal(faces, levels.full_faces.to(faces)))
        if not known or self.max_cell_pixels <= 0:  # no levels, or another mesh than theirs: drawn whole
            full = MeshLevel(0.0, torch.arange(vertices.shape[1], device=faces.device), faces)
            return [full] * len(vertices)
        focal = focal.mean(dim=1) if focal.ndim == 2 else focal.expand(len(vertices))
        depth = vertices[..., 2].mean(dim=1).clamp(min=1e-3)
        return [levels.level_for(scale, self.max_cell_pixels) for scale in (focal / depth).tolist()]

    def paint(self, image: np.ndarray, meshes: BodyMeshes, colours: list[tuple[int, int, int]], alpha: float) -> None:
        """Blend the meshes whose vertices are finite into `image` (H×W×3 uint8 RGB, in place); the nearest
        surface wins where people overlap."""
        vertices = meshes.vertices.detach().float()
        rows = torch.isfinite(vertices).flatten(1).all(dim=1).nonzero().squeeze(1).tolist()
        if not rows:
            return
        height, width = image.shape[:2]
        faces = meshes.faces.to(vertices.device).long()
        focal = _rows_of(meshes.focal, rows, vertices, shared_ndim=0)
        centre = _rows_of(meshes.principal_point, rows, vertices, shared_ndim=1)
        vertices = vertices[rows]
        pixels = project_to_pixels(vertices, focal, centre)
        drawn = self.levels_of(faces, vertices, focal)
        # One mesh holding every person (each with the vertices its level uses), so that one z-buffer settles who
        # hides whom.
        used = [level.vertex_ids.to(vertices.device) for level in drawn]
        vertices = torch.cat([body[ids] for body, ids in zip(vertices, used)])
        pixels = torch.cat([body[ids] for body, ids in zip(pixels, used)])
        counts = torch.tensor([len(ids) for ids in used])
        firsts = (torch.cumsum(counts, 0) - counts).tolist()
        all_faces = torch.cat([level.faces.to(faces.device) + first for level, first in zip(drawn, firsts)])
        owner = torch.repeat_interleave(torch.tensor([len(level.faces) for level in drawn], device=faces.device))
        window = _screen_window(pixels, (height, width))
        if window is None:
            return
        left, top, right, bottom = window
        shifted = pixels - torch.tensor([left, top, 0.0], dtype=pixels.dtype, device=pixels.device)
        fragments = self.rasterizer.rasterize_screen(
            shifted[None], all_faces, (bottom - top, right - left), perspective_correct=True
        )
        covered = fragments.covered[0]
        if not bool(covered.any()):
            return
        face = fragments.face_index[0][covered]
        first, second, third = vertices[all_faces[face]].unbind(dim=1)
        normal = torch.nn.functional.normalize(torch.linalg.cross(second - first, third - first), dim=1)
        shade = AMBIENT + (1 - AMBIENT) * (normal @ LIGHT_DIRECTION.to(normal)).abs()
        palette = torch.tensor([colours[row] for row in rows], dtype=torch.float32, device=normal.device)
        colour = palette[owner[face]] * shade[:, None]
        region = image[top:bottom, left:right]
        mask = covered.cpu().numpy()
        blended = (1 - alpha) * region[mask].astype(np.float32) + alpha * colour.cpu().numpy()
        region[mask] = np.clip(blended + 0.5, 0, 255).astype(np.uint8)


def draw_overlay(
    tracked: TrackedFrame,
    options: OverlayOptions,
    painter: MeshPainter | None = None,
    meshes: BodyMeshes | None = None,
) -> np.ndarray:
    """A copy of the frame's image (H×W×3 uint8 RGB) with its tracks drawn as `options` asks: meshes first, then
    joints (the bodies' 2D joints), boxes and id labels on top, for the tracks whose state is shown."""
    canvas = np.ascontiguousarray(tracked.frame.image).copy()
    track_ids = tracked.track_ids.tolist()
    shown = [row for row, state in enumerate(tracked.states.tolist()) if state in options.states]
    colours = [track_colour(track_id) for track_id in track_ids]
    if options.meshes and meshes is not None:
        _check_rows(meshes.vertices.shape[0], len(track_ids), "body meshes")
        hidden = [row for row in range(len(track_ids)) if row not in shown]
        vertices = meshes.vertices.detach().clone()
        vertices[hidden] = float("nan")
        (painter or MeshPainter()).paint(canvas, replace(meshes, vertices=vertices), colours, options.mesh_alpha)
    if options.joints and tracked.bodies is not None:
        joints = tracked.bodies.joints_2d
        for row in shown:
            _draw_joints(canvas, np.asarray(joints[row], dtype=np.float64), colours[row], options.line_width)
    boxes = np.asarray(tracked.boxes, dtype=np.float64)
    for row in shown:
        if options.boxes:
            _draw_box(canvas, boxes[row], colours[row], options.line_width)
        if options.ids:
            _draw_label(canvas, str(track_ids[row]), boxes[row], colours[row])
    return canvas


class H264Writer:
    """Appends RGB frames to an H.264 mp4 (yuv420p) through PyAV, written as `*.partial` and renamed on close."""

    def __init__(self, path: str | os.PathLike, fps: float, size: tuple[int, int], crf: int, preset: str) -> None:
        """`size` is (width, height), both even (yuv420p halves the chroma planes)."""
        width, height = size
        if width % 2 or height % 2:
            raise ValueError(f"H.264 yuv420p needs an even frame size, got {width}x{height}.")
        self.path = Path(path)
        self.frames_written = 0
        self._partial = self.path.with_name(self.path.name + PARTIAL_SUFFIX)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._container = av.open(str(self._partial), mode="w", format="mp4")
        except OSError as error:
            raise InputError(f"Overlay video {self.path} cannot be written ({error.strerror}).") from None
        rate = Fraction(fps).limit_denominator(1001)
        self._stream = self._container.add_stream("libx264", rate=rate, options={"crf": str(crf), "preset": preset})
        self._stream.width, self._stream.height = width, height
        self._stream.pix_fmt = "yuv420p"
        self._stream.codec_context.time_base = 1 / rate
        self._closed = False

    def write(self, image: np.ndarray) -> None:
        """Encode one H×W×3 uint8 RGB frame of the writer's size."""
        # OpenCV's RGB → YUV 4:2:0 (BT.601, as swscale's default) is several times faster than PyAV's.
        frame = av.VideoFrame.from_ndarray(cv2.cvtColor(image, cv2.COLOR_RGB2YUV_I420), format="yuv420p")
        frame.pts = self.frames_written
        self._container.mux(self._stream.encode(frame))
        self.frames_written += 1

    def close(self) -> None:
        """Flush the encoder, finish the file and give it its final name (a writer given no frame leaves no file)."""
        if self._closed:
            return
        self._container.mux(self._stream.encode(None))
        self._container.close()
        self._closed = True
        if self.frames_written:
            os.replace(self._partial, self.path)

    def abandon(self) -> None:
        """Close without finishing: the `*.partial` file stays, so a failed run never looks complete."""
        if not self._closed:
            self._container.close()
            self._closed = True


class OverlayWriter:
    """Draws each tracked frame's overlay and appends it to an H.264 mp4 as the run goes (bounded memory)."""

    def __init__(
        self,
        path: str | os.PathLike,
        fps: float,
        frame_size: tuple[int, int],
        options: OverlayOptions,
        body_model: BodyModel | None = None,
        rasterizer: Rasterizer | None = None,
    ) -> None:
        """`frame_size` is the input (width, height); the video gets `options.size` (or the input size) rounded
        down to even numbers, and `options.fps` (or `fps`). Meshes need the `body_model` the run posed."""
        width, height = options.size if options.size is not None else frame_size
        self.size = (int(width) // 2 * 2, int(height) // 2 * 2)
        self.frame_size = (int(frame_size[0]), int(frame_size[1]))
        self.options = options
        self.body_model = body_model
        levels = MeshLevels.of(body_model) if body_model is not None and options.mesh_cell > 0 else None
        self._painter = MeshPainter(rasterizer, levels, options.mesh_cell)
        self._video = H264Writer(path, options.fps or fps, self.size, options.crf, options.preset)

    @property
    def path(self) -> Path:
        return self._video.path

    @property
    def frames_written(self) -> int:
        return self._video.frames_written

    def __enter__(self) -> OverlayWriter:
        return self

    def __exit__(self, error_type, error, traceback) -> None:
        if error_type is None:
            self.close()
        else:
            self._video.abandon()

    def write(self, tracked: TrackedFrame) -> None:
        """Draw a tracked frame (its tracks and, when the run has them, their bodies) and encode it."""
        frame = tracked.frame
        if (frame.width, frame.height) != self.frame_size:
            raise ValueError(f"Frame {frame.index} is {frame.width}x{frame.height}, expected {self.frame_size}.")
        with torch_threads(self.options.threads):
            meshes = None
            if self.options.meshes and self.body_model is not None:
                meshes = track_meshes(tracked, np.isin(tracked.states, self.options.states), self.body_model)
            image = draw_overlay(tracked, self.options, self._painter, meshes)
        if (frame.width, frame.height) != self.size:
            image = cv2.resize(image, self.size, interpolation=cv2.INTER_AREA)
        self._video.write(image)

    def close(self) -> None:
        """Finish the video file."""
        self._video.close()


def open_overlay(
    options: OverlayOptions,
    run_dir: str | os.PathLike,
    fps: float,
    frame_size: tuple[int, int],
    multirun: bool,
    body_model: BodyModel | None = None,
) -> OverlayWriter | None:
    """The run's overlay writer (`run_dir / options.file`), or None when the overlay is off for this run."""
    if not options.active(multirun):
        return None
    return OverlayWriter(Path(run_dir) / options.file, fps, frame_size, options, body_model)


def render_run(
    run: Path, video: Path | None, output: Path | None, options: OverlayOptions, trust: bool = False
) -> Path:
    """Write the overlay of the run's results over its video; returns the video's path (`trust`: see load_results)."""
    results = load_results(run, trust)
    run_dir = results.path.parent
    first, last, stride = results.header["frame_numbers"]
    video = video or run_input_path(run_dir, results.header["video"])
    source = open_source(video, start=first, end=last, stride=stride)
    output = output or run_dir / options.file
    has_bodies = set(MESH_KEYS) <= set(results.header["per_box_keys"])
    body_model = build_run_body_model(results.header["config"]["body"]) if options.meshes and has_bodies else None
    frame_size = (source.width, source.height)
    with OverlayWriter(output, results.header["fps"], frame_size, options, body_model) as overlay:
        for frame, record in zip(source, results.frames(), strict=True):
            if record["frame"] != frame.index:
                found = record["frame"]
                raise InputError(f"Results {results.path} have frame {found} where {video} has frame {frame.index}.")
            overlay.write(TrackedFrame.from_record(record, frame))
    return output


def _draw_box(image: np.ndarray, box: np.ndarray, colour: tuple[int, int, int], width: int) -> None:
    x1, y1, x2, y2 = (int(round(v)) for v in box)
    cv2.rectangle(image, (x1, y1), (x2, y2), colour, width, lineType=cv2.LINE_AA)


def _draw_label(image: np.ndarray, text: str, box: np.ndarray, colour: tuple[int, int, int]) -> None:
    """The track id on a filled tag of the track's colour, above the box's top-left corner (inside if no room)."""
    font, scale, thickness = cv2.FONT_HERSHEY_SIMPLEX, 0.5, 1
    (text_width, text_height), baseline = cv2.getTextSize(text, font, scale, thickness)
    x, y = int(round(box[0])), int(round(box[1]))
    top = y - text_height - baseline - 2 if y - text_height - baseline - 2 >= 0 else y
    cv2.rectangle(image, (x, top), (x + text_width + 4, top + text_height + baseline + 2), colour, cv2.FILLED)
    ink = (0, 0, 0) if sum(colour) > 380 else (255, 255, 255)
    cv2.putText(image, text, (x + 2, top + text_height + 1), font, scale, ink, thickness, cv2.LINE_AA)


def _draw_joints(image: np.ndarray, points: np.ndarray, colour: tuple[int, int, int], width: int) -> None:
    """Joints as dots of the track's colour, joined by bones when they are the 24 SMPL joints; a row with a
    non-finite value is skipped."""
    if not np.isfinite(points).all():
        return
    pixels = [tuple(point) for point in np.round(points).astype(int).tolist()]
    if len(pixels) == len(SMPL_PARENTS):
        for joint, parent in enumerate(SMPL_PARENTS):
            if parent >= 0:
                cv2.line(image, pixels[joint], pixels[parent], colour, max(1, width // 2), cv2.LINE_AA)
    for pixel in pixels:
        cv2.circle(image, pixel, width, (20, 20, 20), cv2.FILLED, cv2.LINE_AA)
        cv2.circle(image, pixel, max(1, width - 1), colour, cv2.FILLED, cv2.LINE_AA)


def _check_rows(rows: int, track_count: int, name: str) -> None:
    if rows != track_count:
        raise ValueError(f"Overlay {name} have {rows} rows for {track_count} tracks; expected one row per track.")


def _rows_of(value: float | torch.Tensor, rows: list[int], like: torch.Tensor, shared_ndim: int) -> torch.Tensor:
    """A camera parameter cut to the meshes in `rows`: one with `shared_ndim` dimensions is shared by all meshes,
    one with more has a leading dimension of one entry per mesh."""
    tensor = torch.as_tensor(value, dtype=like.dtype, device=like.device)
    return tensor if tensor.ndim <= shared_ndim else tensor[rows]


def _screen_window(pixels: torch.Tensor, image_size: tuple[int, int]) -> tuple[int, int, int, int] | None:
    """(left, top, right, bottom) pixel bounds of the projected meshes in front of the camera, inside the image."""
    height, width = image_size
    in_front = pixels[..., 2] > 0
    if not bool(in_front.any()):
        return None
    uv = pixels[..., :2][in_front]
    left = max(int(torch.floor(uv[:, 0].min())), 0)
    top = max(int(torch.floor(uv[:, 1].min())), 0)
    right = min(int(torch.ceil(uv[:, 0].max())) + 1, width)
    bottom = min(int(torch.ceil(uv[:, 1].max())) + 1, height)
    if right <= left or bottom <= top:
        return None
    return left, top, right, bottom
