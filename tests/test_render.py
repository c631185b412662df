"""Overlay drawing (boxes, ids, meshes through the torch rasterizer, joints), the streamed H.264 writer, and rendering
a finished run with tools/render.py."""
import subprocess
import sys
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
import torch
from conftest import ROOT

from models.structures import BodyArrays, Frame, InputError
from tracker.io import ResultsWriter
from tracker.render import (
    AMBIENT,
    LIGHT_DIRECTION,
    BodyMeshes,
    MeshLevels,
    MeshPainter,
    OverlayOptions,
    OverlayWriter,
    draw_overlay,
    open_overlay,
    track_colour,
    track_meshes,
)
from tracker.tracker import TrackedFrame

GREY = 60
FOCAL, CENTRE = 500.0, (160.0, 120.0)  # a 320×240 camera
CUBE_VERTICES = torch.tensor([[x, y, z] for x in (-0.5, 0.5) for y in (-0.5, 0.5) for z in (-0.5, 0.5)])
CUBE_FACES = torch.tensor(
    [[0, 1, 3], [0, 3, 2], [4, 6, 7], [4, 7, 5], [0, 4, 5], [0, 5, 1],
     [2, 3, 7], [2, 7, 6], [0, 2, 6], [0, 6, 4], [1, 5, 7], [1, 7, 3]]
)  # fmt: skip


def blank(height: int = 240, width: int = 320) -> np.ndarray:
    return np.full((height, width, 3), GREY, dtype=np.uint8)


def tracked(ids, boxes, states, image: np.ndarray | None = None, bodies: BodyArrays | None = None) -> TrackedFrame:
    """Tracks of frame 1 over `image` (default: a grey 320×240 frame), matched to no detection."""
    image = blank() if image is None else image
    return TrackedFrame(
        frame=Frame(1, 0.0, image),
        track_ids=np.asarray(ids, dtype=np.int64),
        boxes=np.asarray(boxes, dtype=np.float32),
        scores=np.ones(len(ids), dtype=np.float32),
        states=np.asarray(states),
        det_index=np.full(len(ids), -1),
        bodies=bodies,
    )


def record(ids, boxes, states) -> dict:
    """A results record of frame 1 with these tracks."""
    return tracked(ids, boxes, states).record()


def square_facing_camera(depth: float, front: bool = True) -> BodyMeshes:
    """A 1 m square at `depth`, centred on the optical axis, its normal (0, 0, -1): counter-clockwise as the camera
    sees it (its front), or clockwise (its back) when not `front`."""
    vertices = torch.tensor([[[-0.5, -0.5, depth], [0.5, -0.5, depth], [0.5, 0.5, depth], [-0.5, 0.5, depth]]])
    faces = torch.tensor([[0, 2, 1], [0, 3, 2]]) if front else torch.tensor([[0, 1, 2], [0, 2, 3]])
    return BodyMeshes(vertices, faces, FOCAL, torch.tensor(CENTRE))


def cubes(*centres) -> BodyMeshes:
    vertices = torch.stack([CUBE_VERTICES + torch.tensor(centre, dtype=torch.float32) for centre in centres])
    return BodyMeshes(vertices, CUBE_FACES, FOCAL, torch.tensor(CENTRE))


EMPTY = (np.zeros(0, np.int64), np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros(0, str), np.zeros(0))


def changed(image: np.ndarray) -> np.ndarray:
    return (image != GREY).any(axis=2)


def test_track_colours_are_stable_and_far_apart():
    colours = np.array([track_colour(i) for i in range(1, 13)], dtype=float)
    assert track_colour(7) == tuple(colours[6].astype(int))
    distances = np.linalg.norm(colours[:, None] - colours[None], axis=2)[~np.eye(len(colours), dtype=bool)]
    assert distances.min() > 15
    assert np.linalg.norm(colours[1] - colours[0]) > 100  # consecutive ids never look alike


def test_boxes_and_ids_drawn_in_track_colour_for_shown_states_only():
    image = draw_overlay(
        tracked([3, 4], [[40, 60, 100, 200], [200, 60, 260, 200]], ["confirmed", "lost"]), OverlayOptions()
    )
    assert tuple(image[130, 40]) == track_colour(3)  # left edge of the confirmed box
    assert tuple(image[60, 70]) == track_colour(3)  # top edge
    assert not changed(image[:, 180:]).any()  # the lost track is not drawn by default
    label = changed(image[40:60, 40:70])
    assert label.mean() > 0.3  # the id tag sits above the box
    with_lost = draw_overlay(
        tracked([3, 4], [[40, 60, 100, 200], [200, 60, 260, 200]], ["confirmed", "lost"]),
        OverlayOptions(states=("confirmed", "lost"), ids=False),
    )  # fmt: skip
    assert tuple(with_lost[130, 200]) == track_colour(4)
    assert not changed(with_lost[40:58, 40:70]).any()


def test_mesh_covers_its_projection_with_lambertian_shade():
    image = draw_overlay(tracked([5], [[0, 0, 1, 1]], ["confirmed"]), OverlayOptions(boxes=False, ids=False,
                         mesh_alpha=1.0), MeshPainter(), square_facing_camera(3.5))  # fmt: skip
    rows, columns = np.nonzero(changed(image))
    # The square spans ±0.5 m at z = 3.5: pixel centres j + 0.5 within 160 ± 500 * 0.5 / 3.5.
    half = FOCAL * 0.5 / 3.5
    first, last = np.ceil(np.array(CENTRE) - half - 0.5), np.floor(np.array(CENTRE) + half - 0.5)
    assert (columns.min(), rows.min()) == tuple(first.astype(int))
    assert (columns.max(), rows.max()) == tuple(last.astype(int))
    # The normal faces the camera: colour × (ambient + diffuse · |n·light|) everywhere on the square.
    shade = AMBIENT + (1 - AMBIENT) * float(LIGHT_DIRECTION[2].abs())
    expected = np.array(track_colour(5)) * shade
    assert np.abs(image[rows, columns].astype(float) - expected).max() <= 1
    half_opaque = draw_overlay(tracked([5], [[0, 0, 1, 1]], ["confirmed"]), OverlayOptions(boxes=False,
                               ids=False, mesh_alpha=0.5), MeshPainter(), square_facing_camera(3.5))  # fmt: skip
    assert np.abs(half_opaque[120, 160].astype(float) - (expected + GREY) / 2).max() <= 1
    seen_from_behind = draw_overlay(tracked([5], [[0, 0, 1, 1]], ["confirmed"]), OverlayOptions(boxes=False,
                                    ids=False), MeshPainter(), square_facing_camera(3.5, front=False))  # fmt: skip
    assert not changed(seen_from_behind).any()  # back faces are culled


def test_nearer_mesh_hides_farther_and_rows_without_body_are_skipped():
    meshes = cubes((-0.3, 0.0, 4.0), (0.3, 0.0, 6.0), (1.5, 0.0, 4.0))
    meshes.vertices[2] = float("nan")  # track 9 has no body this frame
    options = OverlayOptions(boxes=False, ids=False, mesh_alpha=1.0)
    tracks = tracked([1, 2, 9], np.zeros((3, 4)), ["confirmed"] * 3)
    image = draw_overlay(tracks, options, MeshPainter(), meshes)
    def hue(pixel):
        return cv2.cvtColor(np.uint8([[pixel]]), cv2.COLOR_RGB2HSV)[0, 0, 0]

    overlap = image[120, 170]  # inside both cubes' projections; the first one is nearer
    assert abs(int(hue(overlap)) - int(hue(track_colour(1)))) <= 2
    far_only = image[120, 215]  # right of the near cube, inside the far one
    assert abs(int(hue(far_only)) - int(hue(track_colour(2)))) <= 2
    assert changed(image[:, :240]).any() and not changed(image[:, 240:]).any()  # the nan body drew nothing


def test_far_bodies_are_drawn_with_simplified_meshes_that_look_the_same():
    """With levels of detail, a body's mesh is the coarsest whose cells span at most mesh_cell pixels at its
    distance: a far body gets a fraction of the faces, a near one the full mesh, and the picture barely changes."""
    from models.body import load_body_model

    body_model = load_body_model()
    rest = body_model.layer.v_template
    levels = MeshLevels.of(body_model)
    painter = MeshPainter(levels=levels, max_cell_pixels=2.0)
    far, near = rest + torch.tensor([0.0, 0.0, 12.0]), rest + torch.tensor([0.0, 0.0, 1.0])
    chosen = painter.levels_of(body_model.faces, torch.stack([far, near]), torch.tensor(FOCAL))
    assert chosen[0].cell == 0.04 and len(chosen[0].faces) < 0.2 * body_model.num_faces  # 500/12 px/m: 1.7 px
    assert chosen[1].cell == 0 and torch.equal(chosen[1].faces, body_model.faces)  # 500 px/m: 5 px even at 1 cm
    meshes = BodyMeshes(far[None], body_model.faces, FOCAL, torch.tensor(CENTRE))
    simplified, full = blank(), blank()
    painter.paint(simplified, meshes, [(255, 0, 0)], 1.0)
    MeshPainter().paint(full, meshes, [(255, 0, 0)], 1.0)
    union = changed(simplified) | changed(full)
    assert union.sum() > 500  # a body about 70 px tall
    assert (changed(simplified) != changed(full)).sum() < 0.06 * union.sum()  # the silhouette, within its edge
    shade = np.abs(simplified.astype(int) - full).max(axis=2)[changed(simplified) & changed(full)]
    assert np.median(shade) <= 8


def test_simplified_meshes_keep_orientation_and_never_join_body_parts():
    from models.body.simplify import cluster_faces

    side = 11  # a flat 1 m grid of 11×11 vertices, two triangles per square, normals towards -z
    xs, ys = torch.meshgrid(torch.linspace(0, 1, side), torch.linspace(0, 1, side), indexing="xy")
    grid = torch.stack([xs.flatten(), ys.flatten(), torch.zeros(side * side)], dim=1)
    corner = torch.arange(side * side).reshape(side, side)[:-1, :-1].flatten()
    faces = torch.cat([torch.stack([corner, corner + side + 1, corner + 1], 1),
                       torch.stack([corner, corner + side, corner + side + 1], 1)])  # fmt: skip

    def normals(f: torch.Tensor) -> torch.Tensor:
        a, b, c = grid[f].unbind(1)
        return torch.linalg.cross(b - a, c - a)[:, 2]

    assert (normals(faces) < 0).all()
    one_part = torch.zeros(side * side, dtype=torch.long)
    assert torch.equal(cluster_faces(grid, faces, one_part, 1e-3), faces)  # every vertex its own cell
    coarse = cluster_faces(grid, faces, one_part, 0.25)
    assert 0 < len(coarse) < len(faces) / 4 and (normals(coarse) < 0).all()
    assert len(torch.unique(torch.sort(coarse, dim=1).values, dim=0)) == len(coarse)  # no repeated face
    # Two parts split at x = 0.55: the cell [0.5, 0.75) holds the column x = 0.5 of one part and x = 0.6, 0.7 of
    # the other. In one part the column merges into x = 0.6; as a part of its own it stays.
    halves = (grid[:, 0] > 0.55).long()
    column = torch.isclose(grid[:, 0], torch.tensor(0.5))
    assert not column[torch.unique(coarse)].any()
    kept = torch.unique(cluster_faces(grid, faces, halves, 0.25))
    assert column[kept].any() and len(kept) > len(torch.unique(coarse))
    with pytest.raises(ValueError, match="cell"):
        cluster_faces(grid, faces, one_part, 0.0)


def body_arrays(count: int, **values: np.ndarray) -> BodyArrays:
    """Bodies of `count` people: identity rotations, zero shape, the given arrays, NaN elsewhere."""
    eye = np.eye(3, dtype=np.float32)
    arrays = {
        "smpl_global_orient": np.tile(eye, (count, 1, 1, 1)),
        "smpl_body_pose": np.tile(eye, (count, 23, 1, 1)),
        "smpl_betas": np.zeros((count, 10), np.float32),
        "cam_t": np.full((count, 3), np.nan, np.float32),
        "focal_length": np.full(count, np.nan, np.float32),
        "joints_3d": np.full((count, 24, 3), np.nan, np.float32),
        "joints_2d": np.full((count, 24, 2), np.nan, np.float32),
        "has_pose": np.zeros(count, bool),
    }
    return BodyArrays(**{**arrays, **values})


def test_joints_drawn_per_track_and_nan_rows_skipped():
    joints = np.full((2, 24, 2), np.nan, np.float32)
    joints[0, 0], joints[0, 1:] = (50.0, 50.0), (80.0, 90.0)
    joints[1, 1:] = 200.0  # the first joint is NaN: nothing is drawn for track 2
    bodies = body_arrays(2, joints_2d=joints)
    image = draw_overlay(tracked([1, 2], np.zeros((2, 4)), ["confirmed"] * 2, bodies=bodies),
                         OverlayOptions(boxes=False, ids=False, joints=True))  # fmt: skip
    assert tuple(image[50, 50]) == track_colour(1) and tuple(image[90, 80]) == track_colour(1)
    assert not changed(image[180:220, 180:220]).any()


def test_bodies_posed_from_the_smpl_parameters_of_a_record():
    from models.body import load_body_model

    body_model = load_body_model()
    bodies = body_arrays(
        3,
        cam_t=np.array([[0.0, 0.0, 20.0], [np.nan] * 3, [1.0, 0.0, 20.0]], np.float32),  # track 7: not matched
        focal_length=np.array([1000.0, np.nan, 1000.0], np.float32),
    )
    record = tracked([4, 7, 9], np.zeros((3, 4)), ["confirmed", "confirmed", "lost"], bodies=bodies).record()
    tracks = TrackedFrame.from_record(record, Frame(1, 0.0, blank()))  # as tools/render.py reads a results file
    shown = tracks.states == "confirmed"
    meshes = track_meshes(tracks, shown, body_model)
    assert torch.isfinite(meshes.vertices[0]).all() and torch.isnan(meshes.vertices[1:]).all()  # 9 is not shown
    options = OverlayOptions(boxes=False, ids=False, mesh_alpha=1.0)
    image = draw_overlay(tracks, options, MeshPainter(), meshes)
    rows, columns = np.nonzero(changed(image))
    height = float(meshes.vertices[0, :, 1].max() - meshes.vertices[0, :, 1].min())
    assert abs((rows.max() - rows.min()) - 1000 * height / 20) < 0.1 * 1000 * height / 20  # pinhole size at 20 m
    assert abs(np.median(columns) - 160) < 10  # cam_t x = 0: on the principal point, the frame's centre
    hue = cv2.cvtColor(image[rows, columns][None], cv2.COLOR_RGB2HSV)[0, :, 0]
    assert abs(int(np.median(hue)) - int(cv2.cvtColor(np.uint8([[track_colour(4)]]), cv2.COLOR_RGB2HSV)[0, 0, 0])) <= 2
    assert track_meshes(tracked([1], np.zeros((1, 4)), ["confirmed"]), np.ones(1, bool), body_model) is None
    # A live run's meshes are the ones it posed: only the shown tracks are kept.
    live = tracked([4, 9], np.zeros((2, 4)), ["confirmed", "lost"], bodies=body_arrays(2, focal_length=np.ones(2)))
    live.vertices = torch.ones(2, body_model.num_vertices, 3)
    kept = track_meshes(live, live.states == "confirmed", body_model).vertices
    assert torch.equal(kept[0], live.vertices[0]) and torch.isnan(kept[1]).all()


def read_video(path: Path) -> tuple[list[np.ndarray], int, int, float]:
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        frames = [frame.to_ndarray(format="rgb24") for frame in container.decode(stream)]
        return frames, stream.width, stream.height, float(stream.average_rate)


def test_overlay_video_keeps_every_frame_size_rate_and_colour(tmp_path):
    path = tmp_path / "run" / "overlay.mp4"
    colours = [(200, 30, 30), (30, 200, 30), (30, 30, 200)] * 4
    with OverlayWriter(path, 7.0, (64, 48), OverlayOptions()) as overlay:
        for index, colour in enumerate(colours, start=1):
            image = np.empty((48, 64, 3), dtype=np.uint8)
            image[:] = colour
            overlay.write(TrackedFrame(Frame(index, (index - 1) / 7, image), *EMPTY))
    frames, width, height, rate = read_video(path)
    assert (len(frames), width, height, rate) == (12, 64, 48, 7.0)
    for decoded, colour in zip(frames, colours):
        assert np.abs(decoded[24, 32].astype(int) - colour).max() <= 8
    assert not (tmp_path / "run" / "overlay.mp4.partial").exists()


def test_overlay_size_and_fps_options_and_odd_input(tmp_path):
    options = OverlayOptions(size=(32, 24), fps=25.0)
    with OverlayWriter(tmp_path / "small.mp4", 7.0, (65, 49), options) as overlay:
        for index in range(1, 4):
            overlay.write(TrackedFrame(Frame(index, 0.0, np.zeros((49, 65, 3), np.uint8)), *EMPTY))
    frames, width, height, rate = read_video(tmp_path / "small.mp4")
    assert (len(frames), width, height, rate) == (3, 32, 24, 25.0)
    with OverlayWriter(tmp_path / "odd.mp4", 7.0, (65, 49), OverlayOptions()) as overlay:
        overlay.write(TrackedFrame(Frame(1, 0.0, np.zeros((49, 65, 3), np.uint8)), *EMPTY))
    assert read_video(tmp_path / "odd.mp4")[1:3] == (64, 48)  # yuv420p needs even sizes


def test_failed_run_leaves_no_complete_looking_video(tmp_path):
    with pytest.raises(RuntimeError):
        with OverlayWriter(tmp_path / "overlay.mp4", 7.0, (64, 48), OverlayOptions()) as overlay:
            overlay.write(TrackedFrame(Frame(1, 0.0, blank(48, 64)), *EMPTY))
            raise RuntimeError("the run broke")
    assert not (tmp_path / "overlay.mp4").exists()


def test_overlay_is_on_for_single_runs_and_off_in_sweeps_by_default(tmp_path):
    assert OverlayOptions().active(multirun=False) and not OverlayOptions().active(multirun=True)
    assert OverlayOptions(enabled=True).active(multirun=True)
    assert open_overlay(OverlayOptions(enabled=False), tmp_path, 7.0, (64, 48), multirun=False) is None
    writer = open_overlay(OverlayOptions(file="o.mp4"), tmp_path, 7.0, (64, 48), multirun=False)
    writer.write(TrackedFrame(Frame(1, 0.0, blank(48, 64)), *EMPTY))
    writer.close()
    assert writer.path == tmp_path / "o.mp4" and writer.path.is_file()


@pytest.mark.parametrize(
    "bad, word",
    [({"enabled": "maybe"}, "enabled"), ({"mesh_alpha": 1.5}, "mesh_alpha"), ({"size": (0, 10)}, "size"),
     ({"fps": 0}, "fps"), ({"crf": 60}, "crf"), ({"threads": 0}, "threads"), ({"mesh_cell": -1}, "mesh_cell")],
)  # fmt: skip
def test_bad_options_are_one_sentence_input_errors(bad, word):
    with pytest.raises(InputError, match=word):
        OverlayOptions(**bad)


@pytest.mark.slow
def test_tools_render_draws_a_finished_run(tmp_path):
    folder = tmp_path / "frames"
    folder.mkdir()
    for index in range(1, 6):
        cv2.imwrite(str(folder / f"{index:06d}.png"), np.full((48, 64, 3), 40 * index, np.uint8))
    header = {"video": str(folder), "name": "frames", "fps": 5.0, "width": 64, "height": 48, "num_frames": 5,
              "frame_numbers": [2, 5, 1], "config": {}}  # fmt: skip
    run = tmp_path / "run"
    with ResultsWriter(run, header) as writer:
        for index in range(2, 6):
            writer.write_frame({**record([1], [[10, 10, 30, 40]], ["confirmed"]), "frame": index})
    result = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "render.py"), str(run), "size=[32,24]"],
        capture_output=True, text=True, cwd=ROOT, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    frames, width, height, rate = read_video(run / "overlay.mp4")
    assert (len(frames), width, height, rate) == (4, 32, 24, 5.0)
    bad = subprocess.run([sys.executable, str(ROOT / "tools" / "render.py"), str(run), "colour=red"],
                         capture_output=True, text=True, cwd=ROOT, timeout=120)  # fmt: skip
    assert bad.returncode == 2 and "colour" in bad.stderr and "Traceback" not in bad.stderr
