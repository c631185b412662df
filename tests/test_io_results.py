"""Tests of tracker.io.results: streamed writing, MOT rows, crash safety, validation and the per-frame and per-track
reader."""

from __future__ import annotations

from pathlib import Path

import joblib
import numpy as np
import pytest

from models.structures import InputError
from tracker.io import ResultsWriter, load_results

HEADER = {"video": "/data/clip.mp4", "name": "clip", "fps": 10.0, "width": 64, "height": 48, "num_frames": 12}


def make_records() -> list[dict]:
    """Three frames: track 7 throughout, track 3 in frames 1 and 4, frame 2 empty."""
    return [
        {
            "frame": 1,
            "time": 0.0,
            "track_ids": np.array([7, 3], np.int64),
            "boxes": np.array([[10, 20, 30, 60], [1.5, 2.25, 4.5, 8.0]], np.float32),
            "scores": np.array([0.9, 0.25], np.float32),
            "states": np.array(["confirmed", "tentative"]),
            "pose": np.arange(6, dtype=np.float32).reshape(2, 3),
            "note": "first",
        },
        {
            "frame": 2,
            "time": 0.1,
            "track_ids": np.zeros(0, np.int64),
            "boxes": np.zeros((0, 4), np.float32),
            "scores": np.zeros(0, np.float32),
            "states": np.zeros(0, str),
            "pose": np.zeros((0, 3), np.float32),
        },
        {
            "frame": 4,
            "time": 0.3,
            "track_ids": np.array([3, 7], np.int64),
            "boxes": np.array([[2, 3, 5, 9], [11, 21, 31, 61]], np.float32),
            "scores": np.array([0.5, 0.875], np.float32),
            "states": np.array(["confirmed", "lost"]),
            "pose": np.array([[9, 9, 9], [8, 8, 8]], np.float32),
        },
    ]


def write_run(run_dir: Path, records: list[dict], **options) -> None:
    with ResultsWriter(run_dir, HEADER, per_box_keys=["pose"], **options) as writer:
        for record in records:
            writer.write_frame(record)


def test_round_trip_per_frame(tmp_path: Path) -> None:
    records = make_records()
    write_run(tmp_path, records)
    results = load_results(tmp_path)
    assert results.header == {"schema": "phalanx.results", "version": 1, "per_box_keys": ["pose"], **HEADER}
    assert len(results) == 3
    loaded = list(results.frames())
    assert len(loaded) == 3
    for written, read in zip(records, loaded):
        assert read.keys() == written.keys()
        for key, value in written.items():
            assert np.array_equal(read[key], value), key
        assert read["boxes"].dtype == np.float32 and read["track_ids"].dtype == np.int64


def test_round_trip_per_track(tmp_path: Path) -> None:
    write_run(tmp_path, make_records())
    results = load_results(tmp_path / "results.jbl")
    assert results.track_ids() == [3, 7]
    track = results.track(7)
    assert track["frames"].tolist() == [1, 4]
    assert track["times"].tolist() == [0.0, 0.3]
    assert np.array_equal(track["boxes"], np.array([[10, 20, 30, 60], [11, 21, 31, 61]], np.float32))
    assert track["scores"].tolist() == [0.8999999761581421, 0.875]
    assert track["states"].tolist() == ["confirmed", "lost"]
    assert np.array_equal(track["pose"], np.array([[0, 1, 2], [8, 8, 8]], np.float32))
    assert results.track(3)["states"].tolist() == ["tentative", "confirmed"]
    with pytest.raises(KeyError):
        results.track(99)


def test_mot_file_has_confirmed_boxes_as_xywh(tmp_path: Path) -> None:
    write_run(tmp_path, make_records())
    assert (tmp_path / "tracks.mot.txt").read_text().splitlines() == [
        "1,7,10.00,20.00,20.00,40.00,0.900,-1,-1,-1",
        "4,3,2.00,3.00,3.00,6.00,0.500,-1,-1,-1",
    ]


def test_mot_states_are_configurable(tmp_path: Path) -> None:
    write_run(tmp_path, make_records(), mot_states=("confirmed", "lost", "tentative"))
    rows = (tmp_path / "tracks.mot.txt").read_text().splitlines()
    assert [row.split(",")[:2] for row in rows] == [["1", "7"], ["1", "3"], ["4", "3"], ["4", "7"]]
    assert rows[1] == "1,3,1.50,2.25,3.00,5.75,0.250,-1,-1,-1"


def test_results_file_is_a_plain_stream_of_joblib_records(tmp_path: Path) -> None:
    write_run(tmp_path, make_records())
    with open(tmp_path / "results.jbl", "rb") as handle:
        header = joblib.load(handle)
        frames = [joblib.load(handle)["frame"] for _ in range(3)]
        assert handle.read() == b""
    assert header["schema"] == "phalanx.results" and frames == [1, 2, 4]


def test_files_are_partial_until_the_writer_closes(tmp_path: Path) -> None:
    writer = ResultsWriter(tmp_path, HEADER, per_box_keys=["pose"])
    writer.write_frame(make_records()[0])
    assert sorted(path.name for path in tmp_path.iterdir()) == ["results.jbl.partial", "tracks.mot.txt.partial"]
    writer.close()
    assert sorted(path.name for path in tmp_path.iterdir()) == ["results.jbl", "tracks.mot.txt"]


def test_crash_inside_the_writer_leaves_only_partial_files(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="detector crashed"):
        with ResultsWriter(tmp_path, HEADER, per_box_keys=["pose"]) as writer:
            writer.write_frame(make_records()[0])
            raise RuntimeError("detector crashed")
    assert sorted(path.name for path in tmp_path.iterdir()) == ["results.jbl.partial", "tracks.mot.txt.partial"]
    assert (tmp_path / "tracks.mot.txt.partial").read_text().startswith("1,7,")
    with pytest.raises(ValueError, match="closed"):
        writer.write_frame(make_records()[1])


def good_record() -> dict:
    return make_records()[0]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda record: record.pop("states"), "lacks the keys"),
        (lambda record: record.pop("pose"), "lacks the keys"),
        (lambda record: record.update(boxes=np.zeros((2, 3))), "boxes must have shape"),
        (lambda record: record.update(scores=np.zeros(3)), "scores must have shape"),
        (lambda record: record.update(track_ids=np.array([1.5, 2.5])), "integer"),
        (lambda record: record.update(track_ids=np.array([4, 4])), "repeat"),
        (lambda record: record.update(time=float("nan")), "finite"),
        (lambda record: record.update(frame=0), "after 0"),
        (lambda record: record.update(pose=np.zeros((3, 3))), "pose"),
    ],
)
def test_bad_records_are_rejected(tmp_path: Path, change, message: str) -> None:
    record = good_record()
    change(record)
    with ResultsWriter(tmp_path, HEADER, per_box_keys=["pose"]) as writer, pytest.raises(ValueError, match=message):
        writer.write_frame(record)


def test_frames_must_increase(tmp_path: Path) -> None:
    with ResultsWriter(tmp_path, HEADER, per_box_keys=["pose"]) as writer:
        writer.write_frame(good_record())
        with pytest.raises(ValueError, match="after 1"):
            writer.write_frame(good_record())


def test_reserved_header_keys_are_rejected(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="reserved"):
        ResultsWriter(tmp_path, {"version": 2})


def test_unwritable_output_directory_is_named(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("a file where a folder should be")
    with pytest.raises(InputError, match=str(blocker / "run")):
        ResultsWriter(blocker / "run", HEADER)


def test_missing_results_are_rejected(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="does not exist"):
        load_results(tmp_path)


def test_unknown_schema_or_version_is_rejected(tmp_path: Path) -> None:
    for header in ({"schema": "someone.else", "version": 1}, {"schema": "phalanx.results", "version": 99}):
        path = tmp_path / "results.jbl"
        joblib.dump(header, path)
        with pytest.raises(InputError, match="not a phalanx.results file of version 1"):
            load_results(path)


def test_foreign_or_truncated_files_are_rejected(tmp_path: Path) -> None:
    (tmp_path / "noise.jbl").write_bytes(b"\x00\x01 not a pickle at all")
    with pytest.raises(InputError, match="noise.jbl"):
        load_results(tmp_path / "noise.jbl")
    write_run(tmp_path, make_records())
    data = (tmp_path / "results.jbl").read_bytes()
    (tmp_path / "cut.jbl").write_bytes(data[: len(data) - 20])
    with pytest.raises(InputError, match="truncated"):
        load_results(tmp_path / "cut.jbl")
