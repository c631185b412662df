"""The exports of a finished run, each loaded back: PHALP's pickle (key for key and shape for shape against the layout
read from PHALP's source, and PHALP's conventions), AMASS-style npz (poses reproduce the run's joints through the body
model), the CSV table, the Rerun recording (read back with rerun's own reader), and the command line."""
import csv
import importlib.util
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import joblib
import numpy as np
import pytest
import torch
from conftest import FIXTURES, PETS, ROOT, needs_pets
from synthetic_runs import CUT, FPS, FRAMES, HEIGHT, LOST, UNPOSED, WIDTH, write_synthetic_run

from models.body import load_body_model
from models.structures import InputError
from tracker.cli.export import main as export_main
from tracker.export import ExportRun, write_amass, write_csv, write_phalp, write_rrd
from tracker.export.phalp import OPENPOSE_FROM_SMPL, box_rle
from tracker.ground import ANKLES, FEET, FOOT_JOINT_HEIGHT, LEVEL_CAMERA, estimate_ground
from tracker.io import ResultsWriter, load_results
from tracker.smoothing import Gaussian

LAYOUT = json.loads((FIXTURES / "phalp" / "layout.json").read_text())
PHALP_FOCAL, PHALP_SIZE = 5000.0, 256
SIDE = max(WIDTH, HEIGHT)
PADDING = np.array([(SIDE - WIDTH) // 2, (SIDE - HEIGHT) // 2])
# Keys phalanx cannot fill, as documented in README "Exports": what they hold instead.
EMPTY = {"appe": ("ndarray", [0], "float32"), "extra_data": ("NoneType", None, None)}


@pytest.fixture(scope="module")
def body_model():
    return load_body_model()


@pytest.fixture(scope="module")
def run(tmp_path_factory, body_model):
    return write_synthetic_run(tmp_path_factory.mktemp("run"), body_model)


@pytest.fixture(scope="module")
def phalp_file(run, tmp_path_factory):
    output = tmp_path_factory.mktemp("phalp") / "synthetic.pkl"
    return write_phalp(ExportRun(run.folder), output, write_frames=True)


def element_kind(value) -> tuple[str, list | None, str | None]:
    if isinstance(value, np.ndarray):
        return "ndarray", list(value.shape), str(value.dtype)
    if isinstance(value, np.generic):
        return type(value).__name__, list(np.shape(value)), str(value.dtype)
    return type(value).__name__, [len(value)] if isinstance(value, list) and value else None, None


def test_phalp_pickle_has_phalps_layout_key_for_key_and_shape_for_shape(phalp_file):
    assert phalp_file.read_bytes()[:1] == b"\x78"  # a zlib stream: joblib's compress=3, as PHALP dumps it
    frames = joblib.load(phalp_file)
    assert len(frames) == FRAMES
    for key, frame in frames.items():
        assert list(frame) == LAYOUT["frame_keys"]
        assert isinstance(frame["time"], int) and frame["shot"] in (0, 1) and frame["frame_path"] == key
        for name in LAYOUT["per_track"] + LAYOUT["per_detection"]:
            assert isinstance(frame[name], list)
            aligned = frame["tid"] if name in LAYOUT["per_track"] else frame["tracked_ids"]
            assert len(frame[name]) == len(aligned), name
            kind, shape, dtype, _ = LAYOUT["elements"][name]
            for value in frame[name]:
                found = element_kind(value)
                expected = EMPTY.get(name, (kind, shape, dtype))
                if name in ("size", "mask"):
                    expected = (kind, shape, None)
                assert found == tuple(expected), (name, found, expected)
        for smpl in frame["smpl"]:
            assert {key: [list(value.shape), str(value.dtype)] for key, value in smpl.items()} == LAYOUT["smpl"]
        for mask in frame["mask"]:
            assert mask[0]["size"] == [HEIGHT, WIDTH] and isinstance(mask[0]["counts"], str)
        assert set(frame["tracked_ids"]) <= set(frame["tid"])


def test_phalp_pickle_follows_phalps_conventions(run, phalp_file):
    frames = list(joblib.load(phalp_file).values())
    records = list(load_results(run.folder).frames())
    assert [frame["time"] for frame in frames] == list(range(FRAMES))
    assert [frame["shot"] for frame in frames] == [int(number == CUT) for number in range(1, FRAMES + 1)]
    assert all(3 not in frame["tid"] for frame in frames)  # never confirmed: never listed
    assert frames[0]["tid"] == [1] and frames[0]["tracked_time"] == [0]  # its tentative frames, as PHALP back-fills
    lost_first, lost_last = LOST[1]
    before = frames[lost_first - 2]
    for frame_number in range(lost_first, lost_last + 1):
        frame = frames[frame_number - 1]
        row = frame["tid"].index(1)
        assert frame["tracked_time"][row] == frame_number - lost_first + 1 and 1 not in frame["tracked_ids"]
        ghost = before["smpl"][before["tid"].index(1)]
        assert all(np.array_equal(frame["smpl"][row][key], ghost[key]) for key in ghost)  # repeats its last match
    for frame, record in zip(frames, records):
        for row, track_id in enumerate(frame["tid"]):
            if frame["tracked_time"][row]:
                continue
            source = int(np.flatnonzero(record["track_ids"] == track_id)[0])
            x1, y1, x2, y2 = record["boxes"][source]
            assert np.allclose(frame["bbox"][row], [x1, y1, x2 - x1, y2 - y1])
            camera, crop = frame["camera"][row].astype(np.float64), frame["camera_bbox"][row].astype(np.float64)
            # PHALP's HMAR.get_3d_parameters: the crop camera, the box centre and size in its 256-pixel image
            centre = (frame["center"][row] + PADDING) * PHALP_SIZE / SIDE
            size = frame["scale"][row] * PHALP_SIZE
            depth = 2 * PHALP_FOCAL / (crop[0] * size)
            shift = (centre - PHALP_SIZE / 2) * depth / PHALP_FOCAL
            rebuilt = np.array([crop[1] + shift[0], crop[2] + shift[1], depth])
            assert np.allclose(rebuilt, camera, rtol=1e-4)
            # the body origin, projected by PHALP's virtual camera into the padded square, is 2d_joints row 44
            origin = PHALP_FOCAL / PHALP_SIZE * camera[:2] / camera[2] + 0.5
            assert np.allclose(frame["2d_joints"][row].reshape(45, 2)[44], origin, atol=1e-5)
            joints = frame["3d_joints"][row]
            body = record["joints_3d"][source] - record["cam_t"][source]
            for openpose, smpl in OPENPOSE_FROM_SMPL.items():
                assert np.allclose(joints[openpose], body[smpl], atol=1e-4)
                pixel = frame["2d_joints"][row].reshape(45, 2)[openpose] * SIDE - PADDING
                assert np.allclose(pixel, record["joints_2d"][source, smpl], atol=1e-3)
            assert not joints[44].any()


def test_phalp_frames_are_written_where_the_keys_point(phalp_file):
    for key in joblib.load(phalp_file):
        assert Path(key).is_file() and Path(key).name == f"{int(Path(key).stem):06d}.jpg"


@pytest.mark.skipif(
    not os.environ.get("PHALP_SOURCE"),
    reason="set PHALP_SOURCE to a checkout of github.com/brjathu/PHALP to read the export with PHALP's own code",
)
def test_phalps_own_reader_takes_the_export(phalp_file):
    path = Path(os.environ["PHALP_SOURCE"]) / "phalp" / "utils" / "utils_tracks.py"
    spec = importlib.util.spec_from_file_location("phalp_utils_tracks", path)
    utils_tracks = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(utils_tracks)  # numpy only: get_tracks and create_fast_tracklets
    tracks = utils_tracks.get_tracks(joblib.load(phalp_file))
    assert sorted(tracks) == [1, 2]
    for track in tracks.values():
        tracklet = utils_tracks.create_fast_tracklets(track)
        count = len(track)
        assert tracklet["pose_shape"].shape == (count, 1, 229) and tracklet["3d_joints"].shape == (count, 1, 45, 3)
        assert tracklet["has_detection"].sum() == sum(frame["has_detection"] for frame in track.values())


def test_box_masks_are_coco_rles_pycocotools_decodes():
    mask_utils = pytest.importorskip("pycocotools.mask", reason="pycocotools checks the RLE strings when installed")
    rng = np.random.default_rng(0)
    for box in [(10.2, 5.7, 30.4, 40.1), (0, 0, 60, 50), (-5, -5, 3, 3), (55, 45, 70, 70)] + list(
        rng.uniform(-10, 70, (50, 4))
    ):
        x1, y1, x2, y2 = (min(max(int(round(v)), 0), limit) for v, limit in zip(box, (60, 50, 60, 50)))
        expected = np.zeros((50, 60), np.uint8)
        expected[y1:y2, x1:x2] = 1
        rle = box_rle(tuple(box), 50, 60)
        assert np.array_equal(mask_utils.decode(rle), expected)
        assert rle["counts"] == mask_utils.encode(np.asfortranarray(expected))["counts"].decode()


def expected_camera_joints(run_folder: Path, stretch: np.lib.npyio.NpzFile) -> np.ndarray:
    """The run's joints at the file's observed frames, posed again from the run's parameters in float64."""
    body = load_body_model().double()
    track = load_results(run_folder).track(int(stretch["track_id"]))
    rows = [int(np.flatnonzero(track["frames"] == frame)[0]) for frame in stretch["frames"][stretch["observed"]]]
    rotations = torch.as_tensor(np.concatenate([track["smpl_global_orient"], track["smpl_body_pose"]], 1)[rows],
                                dtype=torch.float64)  # fmt: skip
    joints = body.joints(rotations[:, :1], rotations[:, 1:], torch.as_tensor(track["smpl_betas"][rows]).double(),
                         transl=torch.as_tensor(track["cam_t"][rows]).double())  # fmt: skip
    assert np.allclose(joints.numpy(), track["joints_3d"][rows], rtol=1e-6, atol=2e-5)  # what the run stored
    return joints.numpy() @ LEVEL_CAMERA.T


def npz_joints(stretch, body_model) -> np.ndarray:
    """The file's joints through the body model: root and 21 body joints from `poses` (SMPL's two hand joints, which
    the SMPL-X layout lacks, move no joint), per-frame betas, `trans`."""
    poses = torch.as_tensor(stretch["poses"], dtype=body_model.skeleton.template.dtype)
    count = len(poses)
    body = torch.cat([poses[:, 3:66], poses.new_zeros(count, 6)], dim=1)
    betas = torch.as_tensor(stretch["frame_betas"], dtype=poses.dtype)
    trans = torch.as_tensor(stretch["trans"], dtype=poses.dtype)
    return body_model.joints(poses[:, :3], body, betas, transl=trans, pose2rot=True).numpy()


def test_amass_files_reproduce_the_runs_joints_in_the_camera_frame(run, tmp_path):
    files = write_amass(ExportRun(run.folder), tmp_path, frame="camera")
    assert sorted(path.name for path in files) == ["synthetic_track0001_000001-000024.npz",
                                                   "synthetic_track0002_000005-000024.npz"]  # fmt: skip
    body64 = load_body_model().double()
    for path in files:
        with np.load(path) as stretch:  # no allow_pickle: the add-on reads it so
            assert str(stretch["gender"]) == "neutral" and float(stretch["mocap_framerate"]) == FPS
            assert float(stretch["mocap_frame_rate"]) == FPS and stretch["betas"].shape == (10,)
            assert stretch["poses"].shape == (len(stretch["frames"]), 165) and not stretch["poses"][:, 66:].any()
            joints = npz_joints(stretch, body64)
            assert np.abs(joints - stretch["joints"]).max() < 1e-5
            observed = stretch["observed"]
            assert np.abs(joints[observed] - expected_camera_joints(run.folder, stretch)).max() < 1e-5
    with np.load(files[0]) as track_one:
        gaps = [*range(LOST[1][0], LOST[1][1] + 1), UNPOSED[1]]
        assert track_one["frames"][~track_one["observed"]].tolist() == gaps  # bridged, and marked


def test_amass_files_in_the_ground_frame_stand_on_the_ground(run, tmp_path, body_model):
    files = write_amass(ExportRun(run.folder), tmp_path, frame="ground")
    for path in files:
        with np.load(path) as stretch:
            joints = npz_joints(stretch, body_model)  # float32, as the body model runs
            assert np.abs(joints - stretch["joints"]).max() < 1e-5
            assert np.allclose(joints[:, list(ANKLES + FEET), 2].min(axis=1), FOOT_JOINT_HEIGHT, atol=1e-5)
            track_id = int(stretch["track_id"])
            for frame, ankles in zip(stretch["frames"][stretch["observed"]], joints[stretch["observed"]]):
                where = run.positions[(int(frame), track_id)]
                assert np.linalg.norm(ankles[list(ANKLES), :2].mean(axis=0) - where) < 2e-2
            up = joints[:, 15, 2] - joints[:, 0, 2]
            assert (up > 0.4).all()  # heads above pelvises: the bodies stand upright in the Z-up world


def test_amass_cuts_tracks_at_gaps_longer_than_the_bridge(run, tmp_path):
    names = sorted(path.name for path in write_amass(ExportRun(run.folder), tmp_path, bridge=0))
    assert names == ["synthetic_track0001_000001-000011.npz", "synthetic_track0001_000014-000015.npz",
                     "synthetic_track0001_000017-000024.npz", "synthetic_track0002_000005-000024.npz"]  # fmt: skip


def test_amass_rejects_an_unknown_frame(run, tmp_path):
    with pytest.raises(InputError, match="camera, ground"):
        write_amass(ExportRun(run.folder), tmp_path, frame="sideways")


def test_csv_holds_every_row_with_boxes_pelvis_and_ground_position(run, tmp_path):
    output = write_csv(ExportRun(run.folder), tmp_path / "run.csv")
    with open(output, newline="") as handle:
        rows = list(csv.DictReader(handle))
    records = list(load_results(run.folder).frames())
    assert len(rows) == sum(len(record["track_ids"]) for record in records)
    by_key = {(int(row["frame"]), int(row["track_id"])): row for row in rows}
    for record in records:
        for index, track_id in enumerate(record["track_ids"].tolist()):
            row = by_key[(record["frame"], track_id)]
            x1, y1, x2, y2 = record["boxes"][index]
            assert float(row["w"]) == pytest.approx(x2 - x1, abs=0.01) and row["state"] == record["states"][index]
            pelvis = record["joints_3d"][index, 0]
            if np.isfinite(pelvis).all():
                assert [float(row[f"pelvis_{axis}"]) for axis in "xyz"] == pytest.approx(pelvis, abs=1e-3)
                where = run.positions[(record["frame"], track_id)]
                assert [float(row["ground_x"]), float(row["ground_y"])] == pytest.approx(where, abs=2e-2)
            else:
                assert row["pelvis_x"] == "" and row["matched"] == "0"


def test_rerun_recording_reads_back_with_rerun(run, tmp_path):
    chunk = pytest.importorskip("rerun.chunk", reason="rerun-sdk is an optional extra: pip install 'phalanx[rerun]'")
    output = write_rrd(ExportRun(run.folder, frames=(1, 20)), tmp_path / "run.rrd")
    frames: dict[str, set[int]] = {}
    static: set[str] = set()
    for piece in chunk.RrdReader(str(output)).stream():
        batch = piece.to_record_batch()
        frames.setdefault(piece.entity_path, set())
        if piece.is_static:
            static.add(piece.entity_path)
        if "frame" in batch.schema.names:
            frames[piece.entity_path].update(batch.column("frame").to_pylist())
    assert frames["/world/camera/image"] == set(range(1, 21))
    assert frames["/world/camera/image/tracks"] == set(range(1, 21))
    assert {"/world", "/world/camera", "/world/trajectories"} <= static
    records = [record for record in load_results(run.folder).frames() if record["frame"] <= 20]
    for track_id in (1, 2):
        shown = {
            record["frame"]
            for record in records
            if track_id in record["track_ids"][(record["states"] == "confirmed") & record["has_pose"]]
        }
        assert frames[f"/world/people/{track_id}/mesh"] == shown
        assert frames[f"/world/people/{track_id}/skeleton"] == shown
    cleared = frames["/world/people/1"]
    assert LOST[1][0] in cleared  # the mesh goes when the track loses its body
    assert not any(path.startswith("/world/people/3") for path in frames)  # never confirmed


def test_export_command_writes_and_refuses_bad_options(run, tmp_path, capsys):
    smooth = tmp_path / "smooth.csv"
    raw = tmp_path / "raw.csv"
    assert export_main([str(run.folder), "--format", "csv", "--output", str(smooth)]) == 0
    assert export_main([str(run.folder), "--format", "csv", "--output", str(raw), "smooth=none"]) == 0
    assert smooth.read_text() != raw.read_text()  # the export smooths by default
    assert export_main([str(run.folder), "--format", "csv", "smooth=median"]) == 2
    assert "error:" in capsys.readouterr().err
    assert export_main([str(run.folder), "--format", "amass", "frame=sideways", "--output", str(tmp_path)]) == 2
    assert export_main([str(run.folder), "--format", "csv", "--frames", "9-3"]) == 2
    assert export_main([str(tmp_path / "missing"), "--format", "csv"]) == 2


def test_smoothing_changes_only_the_filtered_keys_and_keeps_the_rest(run):
    raw = list(ExportRun(run.folder).records())
    smoothed = list(ExportRun(run.folder, smoothing=Gaussian()).records())
    for before, after in zip(raw, smoothed):
        assert np.array_equal(before["boxes"], after["boxes"])
        assert np.array_equal(before["track_ids"], after["track_ids"])
        assert np.array_equal(before["landmarks_2d"], after["landmarks_2d"], equal_nan=True)
        assert np.array_equal(np.isfinite(before["cam_t"]), np.isfinite(after["cam_t"]))
    assert any(not np.allclose(b["cam_t"], a["cam_t"], equal_nan=True) for b, a in zip(raw, smoothed))


@pytest.mark.slow
@needs_pets
def test_pets09_run_exports_load_back(tmp_path):
    run_dir = tmp_path / "run"
    track = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "track.py"), f"video={PETS}", "end=40", "render=off",
         f"hydra.run.dir={run_dir}"],
        capture_output=True, text=True, cwd=ROOT, timeout=900,
    )  # fmt: skip
    assert track.returncode == 0, track.stderr[-2000:]

    def export(format_name: str, output: str, *options: str) -> subprocess.CompletedProcess:
        command = [sys.executable, str(ROOT / "tools" / "export.py"), str(run_dir), "--format", format_name,
                   "--output", str(tmp_path / output), *options]  # fmt: skip
        return subprocess.run(command, capture_output=True, text=True, cwd=ROOT, timeout=600)

    for format_name, output in (("phalp", "pets.pkl"), ("amass", "amass"), ("csv", "pets.csv")):
        done = export(format_name, output, "smooth=none")  # as the run wrote them, to compare with its joints
        assert done.returncode == 0, done.stderr[-2000:]
    frames = joblib.load(tmp_path / "pets.pkl")
    assert len(frames) == 40 and all(list(frame) == LAYOUT["frame_keys"] for frame in frames.values())
    assert sum(len(frame["tracked_ids"]) for frame in frames.values()) > 100
    body64 = load_body_model().double()
    files = sorted((tmp_path / "amass").glob("*.npz"))
    assert files
    for path in files:
        with np.load(path) as stretch:
            assert np.abs(npz_joints(stretch, body64) - stretch["joints"]).max() < 1e-5
            observed = stretch["observed"]
            reproduced = npz_joints(stretch, body64)[observed]
            assert np.abs(reproduced - expected_camera_joints(run_dir, stretch)).max() < 1e-5
            assert math.isclose(float(stretch["mocap_framerate"]), 7)
    lines = (tmp_path / "pets.csv").read_text().splitlines()
    assert len(lines) - 1 == sum(len(record["track_ids"]) for record in load_results(run_dir).frames())
    # 40 frames of a few people do not determine the camera: the ground frame is refused in one sentence
    refused = export("amass", "ground", "frame=ground")
    assert refused.returncode == 2 and "pin the camera down" in refused.stderr and "Traceback" not in refused.stderr


def test_gap_filled_rows_and_unknown_keys_are_taken_as_unmatched(run, tmp_path):
    # Another stage may fill a lost track's rows (flagged `interpolated`) and add keys: the exports read them as
    # unmatched rows with values, and ignore what they do not know.
    results = load_results(run.folder)
    header = {key: value for key, value in results.header.items() if key not in ("schema", "version", "per_box_keys")}
    keys = [*results.header["per_box_keys"], "interpolated", "future_key"]
    previous = None
    with ResultsWriter(tmp_path / "filled", header, ["confirmed"], keys) as writer:
        for record in results.frames():
            record = dict(record)
            record["interpolated"] = np.zeros(len(record["track_ids"]), bool)
            record["future_key"] = np.arange(len(record["track_ids"]))
            lost = np.flatnonzero(~np.isfinite(record["cam_t"]).all(axis=1))
            for row in lost.tolist():
                source = int(np.flatnonzero(previous["track_ids"] == record["track_ids"][row])[0])
                for key in results.header["per_box_keys"]:
                    record[key] = np.array(record[key], copy=True)
                    record[key][row] = previous[key][source]
                record["interpolated"][row] = True
            writer.write_frame(record)
            previous = record
    frames = list(joblib.load(write_phalp(ExportRun(tmp_path / "filled"), tmp_path / "filled.pkl")).values())
    for frame_number in range(LOST[1][0], LOST[1][1] + 1):
        frame = frames[frame_number - 1]
        assert frame["tracked_time"][frame["tid"].index(1)] == frame_number - LOST[1][0] + 1
        assert 1 not in frame["tracked_ids"]
    assert estimate_ground(load_results(tmp_path / "filled")).observations == estimate_ground(results).observations
    with open(write_csv(ExportRun(tmp_path / "filled"), tmp_path / "filled.csv"), newline="") as handle:
        filled = [row for row in csv.DictReader(handle) if row["state"] == "lost" and row["track_id"] == "1"]
    assert len(filled) == LOST[1][1] - LOST[1][0] + 1
    assert all(row["matched"] == "0" and row["pelvis_x"] != "" for row in filled)


def test_version_1_runs_export_only_with_trust(run, tmp_path, capsys):
    legacy = tmp_path / "legacy"
    legacy.mkdir()
    results = load_results(run.folder)
    with open(legacy / "results.jbl", "wb") as handle:
        joblib.dump({**results.header, "version": 1}, handle)
        for record in results.frames():
            joblib.dump(record, handle)
    assert export_main([str(legacy), "--format", "csv"]) == 2
    assert "--trust option" in capsys.readouterr().err
    assert export_main([str(legacy), "--format", "csv", "--trust", "--output", str(tmp_path / "old.csv")]) == 0
    assert export_main([str(run.folder), "--format", "csv", "--output", str(tmp_path / "new.csv")]) == 0
    assert (tmp_path / "old.csv").read_text() == (tmp_path / "new.csv").read_text()
