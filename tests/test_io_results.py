"""Tests of tracker.io.results: streamed writing, MOT rows, crash safety, validation and the per-frame and per-track
reader."""

from __future__ import annotations

import errno
import json
import pickle
import struct
from pathlib import Path

import joblib
import numpy as np
import pytest

from models.structures import InputError
from tracker.io import ResultsWriter, load_results
from tracker.io.records import MAGIC, encode

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
    assert results.header == {"schema": "phalanx.results", "version": 2, "per_box_keys": ["pose"], **HEADER}
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
    results = load_results(tmp_path / "results.phx")
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


def read_without_phalanx(path: Path) -> list[tuple[str, dict]]:
    """README's reader of results.phx in plain numpy."""
    out = []
    with open(path, "rb") as f:
        assert f.read(8) == b"PHALANX\n"
        while size := f.read(4):
            meta = json.loads(f.read(struct.unpack("<I", size)[0]))  # {"kind", "values", "arrays"}
            record = meta["values"] | {key: np.frombuffer(f.read(np.dtype(dtype).itemsize * int(np.prod(shape))),
                                                          dtype).reshape(shape) for key, dtype, shape in meta["arrays"]}
            out.append((meta["kind"], record))
    return out


def test_results_file_reads_in_plain_numpy(tmp_path: Path) -> None:
    records = make_records()
    write_run(tmp_path, records)
    read = read_without_phalanx(tmp_path / "results.phx")
    assert [kind for kind, _ in read] == ["header", "frame", "frame", "frame"]
    assert read[0][1]["schema"] == "phalanx.results" and read[0][1]["per_box_keys"] == ["pose"]
    assert [record["frame"] for _, record in read[1:]] == [1, 2, 4]
    assert np.array_equal(read[1][1]["pose"], records[0]["pose"]) and read[1][1]["states"].tolist() == ["confirmed",
                                                                                                    "tentative"]


def test_every_value_type_round_trips(tmp_path: Path) -> None:
    dtypes = [np.bool_, np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16, np.uint32, np.uint64, np.float16,
              np.float32, np.float64]
    arrays = {f"a_{np.dtype(dtype).name}": (np.arange(6) % 3).astype(dtype).reshape(2, 3) for dtype in dtypes}
    arrays["a_big_endian"] = np.array([[1.5, -2], [3, 4]], ">f8")
    arrays["a_text"] = np.array(["ünïcode", ""])
    arrays["a_bytes"] = np.array([b"ab", b"c"])
    arrays["a_empty"] = np.zeros((2, 0, 5), np.float32)
    arrays["a_strided"] = np.arange(12, dtype=np.int32).reshape(2, 6)[:, ::2]
    arrays["a_nan"] = np.array([np.nan, np.inf], np.float32)
    record = {**good_record(), **arrays, "scalar32": np.float32(0.1), "scalar_bool": np.bool_(True), "none": None,
              "text": "é", "integer": 3, "number": 0.1, "flag": False, "list": [1, [2.5, "x"]], "dict": {"a": {"b": 1}}}
    header = {**HEADER, "config": {"tracker": {"max_age": 30, "gate": None, "weights": [0.5, 1.0]}}}
    with ResultsWriter(tmp_path, header, per_box_keys=["pose", *arrays]) as writer:
        writer.write_frame(record)
    results = load_results(tmp_path)
    assert results.header["config"] == header["config"]
    (read,) = results.frames()
    assert read.keys() == record.keys()
    for key, value in record.items():
        if isinstance(value, (np.ndarray, np.generic)):
            expected = np.asarray(value)
            assert read[key].dtype == expected.dtype.newbyteorder("<") and read[key].shape == expected.shape, key
            assert np.array_equal(read[key], expected, equal_nan=expected.dtype.kind == "f"), key
        else:
            assert read[key] == value and type(read[key]) is type(value), key
    assert isinstance(read["scalar32"], np.float32) and read["a_float32"].flags.writeable
    assert results.track(7)["a_text"].tolist() == ["ünïcode"]


@pytest.mark.parametrize("value", [np.array([object()], dtype=object), np.array([1 + 2j]), {"a": np.zeros(2)}, {1, 2}])
def test_values_the_format_cannot_hold_are_refused_when_written(tmp_path: Path, value) -> None:
    with ResultsWriter(tmp_path, HEADER, per_box_keys=["pose"]) as writer, pytest.raises(ValueError, match="cannot"):
        writer.write_frame({**good_record(), "extra": value})


def test_missing_frames_are_recorded(tmp_path: Path) -> None:
    records = make_records()
    with ResultsWriter(tmp_path, HEADER, per_box_keys=["pose"]) as writer:
        writer.write_frame(records[0])
        writer.write_missing(3)
        writer.write_frame(records[2])
    results = load_results(tmp_path)
    assert results.missing_frames == [3] and [record["frame"] for record in results.frames()] == [1, 4]
    assert results.track(7)["frames"].tolist() == [1, 4]


def test_files_are_partial_until_the_writer_closes(tmp_path: Path) -> None:
    writer = ResultsWriter(tmp_path, HEADER, per_box_keys=["pose"])
    writer.write_frame(make_records()[0])
    assert sorted(path.name for path in tmp_path.iterdir()) == ["results.phx.partial", "tracks.mot.txt.partial"]
    assert [record["frame"] for record in load_results(tmp_path).frames()] == [1]  # a run still going, or killed
    writer.close()
    assert sorted(path.name for path in tmp_path.iterdir()) == ["results.phx", "tracks.mot.txt"]


def test_crash_inside_the_writer_leaves_only_partial_files(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="detector crashed"):
        with ResultsWriter(tmp_path, HEADER, per_box_keys=["pose"]) as writer:
            writer.write_frame(make_records()[0])
            raise RuntimeError("detector crashed")
    assert sorted(path.name for path in tmp_path.iterdir()) == ["results.phx.partial", "tracks.mot.txt.partial"]
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
    for header in ({"schema": "someone.else", "version": 2}, {"schema": "phalanx.results", "version": 99}):
        path = tmp_path / "results.phx"
        path.write_bytes(MAGIC + encode("header", header))
        with pytest.raises(InputError, match="not a phalanx.results file of version 2"):
            load_results(path)
    (tmp_path / "frame_first.phx").write_bytes(MAGIC + encode("frame", good_record()))
    with pytest.raises(InputError, match="not a phalanx.results file of version 2"):
        load_results(tmp_path / "frame_first.phx")


def test_foreign_files_are_rejected(tmp_path: Path) -> None:
    (tmp_path / "noise.phx").write_bytes(b"\x00\x01 not a results file at all")
    with pytest.raises(InputError, match="noise.phx is not a phalanx.results file"):
        load_results(tmp_path / "noise.phx")
    (tmp_path / "header_cut.phx").write_bytes((MAGIC + encode("header", {"schema": "phalanx.results"}))[:-3])
    with pytest.raises(InputError, match="ends before its header"):
        load_results(tmp_path / "header_cut.phx")


@pytest.mark.parametrize("cut", [1, 3, 4, 20, 60])
def test_truncated_file_loads_its_complete_frames(tmp_path: Path, cut: int) -> None:
    write_run(tmp_path / "run", make_records())
    data = (tmp_path / "run" / "results.phx").read_bytes()
    (tmp_path / "cut.phx").write_bytes(data[: len(data) - cut])
    results = load_results(tmp_path / "cut.phx")
    assert not results.complete and [record["frame"] for record in results.frames()] == [1, 2]
    assert results.track_ids() == [3, 7] and results.track(7)["frames"].tolist() == [1]
    assert load_results(tmp_path / "run").complete


class Payload:
    """A pickle that, when loaded, creates `marker` (stands for any code an attacker wants run)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def test_legacy_pickle_is_not_run_without_trust(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    run = tmp_path / "run"
    run.mkdir()
    joblib.dump({"schema": "phalanx.results", "version": 1, "per_box_keys": [], "x": Payload(marker)},
                run / "results.jbl")
    for path in (run, run / "results.jbl"):
        with pytest.raises(InputError, match="joblib pickle, which can run any code.*trust=True"):
            load_results(path)
    (tmp_path / "renamed.phx").write_bytes((run / "results.jbl").read_bytes())
    with pytest.raises(InputError):
        load_results(tmp_path / "renamed.phx")
    assert not marker.exists()
    load_results(run, trust=True)
    assert marker.exists()  # the payload runs: this is what trust=True lets through


def test_legacy_results_load_with_trust(tmp_path: Path) -> None:
    records = make_records()
    with open(tmp_path / "results.jbl", "wb") as handle:
        joblib.dump({"schema": "phalanx.results", "version": 1, "per_box_keys": ["pose"], **HEADER}, handle)
        for record in records:
            joblib.dump(record, handle)
    results = load_results(tmp_path, trust=True)
    assert results.header["version"] == 1 and [record["frame"] for record in results.frames()] == [1, 2, 4]
    assert np.array_equal(results.track(7)["pose"], np.array([[0, 1, 2], [8, 8, 8]], np.float32))
    (tmp_path / "noise.jbl").write_bytes(b"\x00\x01 not a pickle at all")
    with pytest.raises(InputError, match="noise.jbl is truncated or not a joblib record stream"):
        load_results(tmp_path / "noise.jbl", trust=True)


def forged(meta: object, payload: bytes = b"") -> bytes:
    """A results file whose one frame record has the JSON header `meta` and the array bytes `payload`."""
    header = MAGIC + encode("header", {"schema": "phalanx.results", "version": 2, "per_box_keys": []})
    text = json.dumps(meta).encode() if not isinstance(meta, bytes) else meta
    return header + struct.pack("<I", len(text)) + text + payload


def frame_meta(arrays: list) -> dict:
    return {"kind": "frame", "values": {"frame": 1, "time": 0.0}, "arrays": arrays}


MALICIOUS = {
    "object dtype": forged(frame_meta([["track_ids", "|O", [1]]]), pickle.dumps(Payload(Path("x")))),
    "pickle protocol dtype": forged(frame_meta([["track_ids", "O", [1]]]), b"\x80" * 8),
    "structured dtype": forged(frame_meta([["track_ids", [["a", "|O"]], [1]]]), b"\x00" * 8),
    "dtype string with code": forged(frame_meta([["track_ids", "__import__('os').system('touch x')", [1]]])),
    "shape that is not a list": forged(frame_meta([["track_ids", "<i8", "1; import os"]])),
    "negative shape": forged(frame_meta([["track_ids", "<i8", [-1]]])),
    "pickle as header": forged(pickle.dumps(Payload(Path("x")))),
    "json that is not an object": forged(["frame"]),
    "deeply nested json": forged(b"[" * 100_000 + b"]" * 100_000),
    "frame without arrays": forged(frame_meta([])),
    "float track ids": forged(frame_meta([["track_ids", "<f8", [1]]]), b"\x00" * 8),
    "track ids as a list": forged(
        {"kind": "frame", "arrays": [], "values": {
            "frame": 1, "time": 0.0, "track_ids": [1], "boxes": [[0, 0, 1, 1]], "scores": [1], "states": ["x"]}}
    ),
}


@pytest.mark.parametrize("name", MALICIOUS)
def test_crafted_records_are_refused_without_running_anything(tmp_path: Path, monkeypatch, name: str) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(pickle, "loads", lambda *args, **kwargs: pytest.fail("pickle.loads was called"))
    monkeypatch.setattr(pickle, "load", lambda *args, **kwargs: pytest.fail("pickle.load was called"))
    (tmp_path / "evil.phx").write_bytes(MALICIOUS[name])
    with pytest.raises(InputError, match="evil.phx is damaged"):
        load_results(tmp_path / "evil.phx")
    assert not (tmp_path / "x").exists()


def test_forged_sizes_allocate_nothing(tmp_path: Path) -> None:
    (tmp_path / "huge.phx").write_bytes(forged(frame_meta([["track_ids", "<i8", [10**15, 10**15]]])))
    results = load_results(tmp_path / "huge.phx")  # reads as a file cut short: no frames
    assert len(results) == 0 and not results.complete
    (tmp_path / "meta.phx").write_bytes(forged(b"")[:-4] + struct.pack("<I", 2**32 - 1))
    with pytest.raises(InputError, match="damaged"):
        load_results(tmp_path / "meta.phx")


def test_full_disk_ends_the_run_with_one_sentence(tmp_path: Path, monkeypatch) -> None:
    writer = ResultsWriter(tmp_path, HEADER, per_box_keys=["pose"])
    writer.write_frame(make_records()[0])

    def full(*args) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(writer._results, "write", full)
    with pytest.raises(InputError) as raised:
        with writer:
            writer.write_frame(make_records()[1])
    message = str(raised.value)
    assert message.startswith(f"The disk holding {tmp_path} is full") and message.count(". ") == 0
    assert "\n" not in message and raised.value.__cause__ is None and raised.value.__suppress_context__
    assert [record["frame"] for record in load_results(tmp_path).frames()] == [1]
    with pytest.raises(ValueError, match="closed"):
        writer.write_frame(make_records()[2])


def test_a_results_header_cannot_name_code_to_run(tmp_path: Path) -> None:
    from tracker.export.run import ExportRun

    marker = tmp_path / "pwned"
    header = {**HEADER, "config": {"body": {"_target_": "os.makedirs", "name": str(marker)}}}
    with ResultsWriter(tmp_path / "run", header) as writer:
        writer.write_frame(make_records()[1])
    with pytest.raises(InputError, match="'os.makedirs', but a results file may name only models.body.load_body_model"):
        ExportRun(tmp_path / "run").body_model
    assert not marker.exists()
