"""The bird's-eye plot: tracks on the ground from above in the overlay's colours, a PNG and an MP4, and
tools/render.py --birdseye writing them."""
import av
import cv2
import numpy as np
import pytest
from synthetic_runs import FRAMES, TRUE_CAMERA, write_synthetic_run

from models.body import load_body_model
from tracker.birdseye import GroundMap, draw_trajectories, ground_tracks, write_birdseye
from tracker.cli.render import main as render_main
from tracker.io import load_results
from tracker.render import track_colour


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    return write_synthetic_run(tmp_path_factory.mktemp("run"), load_body_model())


def test_ground_tracks_are_the_confirmed_tracks_where_they_stood(run):
    tracks = ground_tracks(load_results(run.folder), TRUE_CAMERA)
    assert [track.track_id for track in tracks] == [1, 2]
    for track in tracks:
        for frame, position in zip(track.frames, track.positions):
            assert position == pytest.approx(run.positions[(int(frame), track.track_id)], abs=1e-6)


def test_the_plot_draws_each_track_in_its_overlay_colour_where_it_was(run):
    tracks = ground_tracks(load_results(run.folder), TRUE_CAMERA)
    ground_map = GroundMap(tracks, TRUE_CAMERA, (320, 240), size=600)
    image = draw_trajectories(ground_map, tracks)
    assert image.shape[:2] == (ground_map.size[1], ground_map.size[0]) and max(ground_map.size) <= 600
    for track in tracks:
        x, y = ground_map.pixels(track.positions[len(track.positions) // 2 : len(track.positions) // 2 + 1])[0]
        patch = image[y - 2 : y + 3, x - 2 : x + 3].reshape(-1, 3)
        assert (np.abs(patch.astype(int) - track_colour(track.track_id)).sum(axis=1) < 30).any()
    background = ground_map.background
    assert not (np.abs(background.reshape(-1, 3).astype(int) - track_colour(1)).sum(axis=1) < 30).any()
    halfway = draw_trajectories(ground_map, tracks, until=6)
    last = ground_map.pixels(tracks[0].positions[-1:])[0]
    assert not np.array_equal(halfway[last[1], last[0]], image[last[1], last[0]])  # not there yet


def test_png_and_video_are_written_frame_for_frame(run, tmp_path):
    png, mp4 = write_birdseye(load_results(run.folder), TRUE_CAMERA, tmp_path / "top.png", tmp_path / "top.mp4")
    assert cv2.imread(str(png)) is not None
    with av.open(str(mp4)) as container:
        assert sum(1 for _ in container.decode(video=0)) == FRAMES


def test_render_command_draws_the_birdseye_on_request(run, tmp_path, capsys):
    assert render_main([str(run.folder), "--birdseye", "--output", str(tmp_path / "view.png")]) == 0
    assert (tmp_path / "view.png").is_file() and (tmp_path / "view.mp4").is_file()
    assert render_main([str(tmp_path / "missing"), "--birdseye"]) == 2
    assert "error:" in capsys.readouterr().err
