"""Tests of tracker.io.sources: video files, frame folders and MOT folders, frame selection, seeking and errors."""

from __future__ import annotations

import logging
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
from conftest import PETS, PETS_VIDEO, needs_pets_video
from damaged_video import damage_frame, write_mjpeg

from models.structures import InputError
from tracker.io import Frame, open_source

# Twelve well separated RGB colours: frame i of a generated clip is filled with COLOURS[i - 1].
COLOURS = np.array(
    [(r, g, b) for r in (16, 128, 240) for g in (16, 240) for b in (16, 240)][:12],
    dtype=np.uint8,
)


def write_clip(path: Path, num_frames: int = 12, rate: int = 12) -> None:
    """Encode a clip whose frame i is a solid COLOURS[i - 1], with short GOPs and B-frames so seeking matters."""
    codec = "libx264" if "libx264" in av.codecs_available else "mpeg4"
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=rate)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        stream.options = {"g": "4", "bf": "2"}
        for index in range(num_frames):
            image = np.empty((48, 64, 3), np.uint8)
            image[:] = COLOURS[index % len(COLOURS)]
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def colour_index(image: np.ndarray) -> int:
    """1-based frame number of a generated solid-colour frame, from its nearest palette colour."""
    distances = np.abs(COLOURS.astype(float) - image.reshape(-1, 3).mean(axis=0)).sum(axis=1)
    return int(np.argmin(distances)) + 1


def decode_reference(path: Path, wanted: set[int]) -> dict[int, np.ndarray]:
    """Decode a video from its first frame with PyAV directly, keeping the RGB images of the wanted frames."""
    images = {}
    with av.open(str(path)) as container:
        for index, frame in enumerate(container.decode(video=0), start=1):
            if index in wanted:
                images[index] = frame.to_ndarray(format="rgb24")
            if index >= max(wanted):
                break
    return images


def write_png(path: Path, rgb: tuple[int, int, int], size: tuple[int, int] = (6, 4)) -> None:
    image = np.empty((size[1], size[0], 3), np.uint8)
    image[:] = rgb
    assert cv2.imwrite(str(path), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))


@pytest.fixture
def clip(tmp_path: Path) -> Path:
    path = tmp_path / "clip.mp4"
    write_clip(path)
    return path


@needs_pets_video
def test_pets_video_metadata_is_exact() -> None:
    source = open_source(PETS_VIDEO)
    assert (source.num_frames, len(source), source.fps) == (795, 795, 10.0)
    assert (source.width, source.height, source.name) == (768, 576, "vtest")


@needs_pets_video
@pytest.mark.parametrize(("start", "end", "stride"), [(100, 130, 5), (300, 310, 3), (790, None, 2)])
def test_pets_seeked_frames_equal_decoding_from_the_start(start: int, end: int | None, stride: int) -> None:
    source = open_source(PETS_VIDEO, start=start, end=end, stride=stride)
    frames = list(source)
    assert [frame.index for frame in frames] == list(source.frame_numbers)
    assert frames[0].index == start
    reference = decode_reference(PETS_VIDEO, set(source.frame_numbers))
    for frame in frames:
        assert frame.time == pytest.approx((frame.index - 1) / 10.0)
        assert frame.image.shape == (576, 768, 3) and frame.image.dtype == np.uint8
        assert np.array_equal(frame.image, reference[frame.index]), f"frame {frame.index} differs"


@needs_pets_video
def test_pets_mot_folder_without_img1_reads_its_video() -> None:
    source = open_source(PETS, start=5, end=6)
    assert (source.name, source.fps, source.num_frames, source.path) == ("PETS09-S2L1", 7.0, 795, PETS)
    frames = list(source)
    assert [frame.index for frame in frames] == [5, 6]
    assert frames[1].time == pytest.approx(5 / 7.0)
    assert np.array_equal(frames[0].image, decode_reference(PETS_VIDEO, {5})[5])


def test_generated_clip_yields_every_frame_in_order(clip: Path) -> None:
    source = open_source(clip)
    assert (source.num_frames, source.fps, source.width, source.height, source.name) == (12, 12.0, 64, 48, "clip")
    frames = list(source)
    assert all(isinstance(frame, Frame) for frame in frames)
    assert [frame.index for frame in frames] == list(range(1, 13))
    assert [colour_index(frame.image) for frame in frames] == list(range(1, 13))
    assert [frame.time for frame in frames] == pytest.approx([i / 12.0 for i in range(12)])


def test_every_start_and_stride_matches_decoding_from_the_start(clip: Path) -> None:
    reference = decode_reference(clip, set(range(1, 13)))
    for start in range(1, 13):
        for stride in (1, 3):
            source = open_source(clip, start=start, stride=stride)
            frames = list(source)
            assert [frame.index for frame in frames] == list(range(start, 13, stride))
            assert len(source) == len(frames)
            for frame in frames:
                assert np.array_equal(frame.image, reference[frame.index]), (start, stride, frame.index)


def test_frame_range_selection_and_clipping(clip: Path) -> None:
    source = open_source(clip, start=3, end=9, stride=2)
    assert list(source.frame_numbers) == [3, 5, 7, 9]
    assert [colour_index(frame.image) for frame in source] == [3, 5, 7, 9]
    assert source.num_frames == 12
    assert list(open_source(clip, start=10, end=1000).frame_numbers) == [10, 11, 12]


def test_windows_are_consecutive_batches(clip: Path) -> None:
    windows = list(open_source(clip, start=2).windows(5))
    assert [[frame.index for frame in window] for window in windows] == [[2, 3, 4, 5, 6], [7, 8, 9, 10, 11], [12]]
    with pytest.raises(ValueError):
        next(open_source(clip).windows(0))


def test_source_can_be_iterated_twice(clip: Path) -> None:
    source = open_source(clip, start=4, end=6)
    assert [frame.index for frame in source] == [frame.index for frame in source] == [4, 5, 6]


@pytest.mark.parametrize("suffix", [".mkv", ".avi", ".MOV"])
def test_other_containers_count_and_seek_exactly(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"clip{suffix}"
    write_clip(path, num_frames=30)
    source = open_source(path, start=17, stride=4)
    assert source.num_frames == 30
    assert [colour_index(frame.image) for frame in source] == [(i - 1) % 12 + 1 for i in (17, 21, 25, 29)]


def test_frame_folder_natural_order_and_rgb(tmp_path: Path) -> None:
    for number, colour in ((10, (200, 0, 0)), (2, (0, 200, 0)), (1, (0, 0, 200))):
        write_png(tmp_path / f"{number}.png", colour)
    (tmp_path / "notes.txt").write_text("not a frame")
    source = open_source(tmp_path)
    assert (source.num_frames, source.fps, source.width, source.height) == (3, 30.0, 6, 4)
    assert source.name == tmp_path.name
    colours = [tuple(frame.image[0, 0]) for frame in source]
    assert colours == [(0, 0, 200), (0, 200, 0), (200, 0, 0)]
    frames = list(open_source(tmp_path, start=2, fps=5.0))
    assert [(frame.index, frame.time) for frame in frames] == [(2, 0.2), (3, 0.4)]


def test_mot_folder_with_img1(tmp_path: Path) -> None:
    (tmp_path / "img1").mkdir()
    for number in range(1, 4):
        write_png(tmp_path / "img1" / f"{number:06d}.png", (number * 50, 0, 0))
    (tmp_path / "seqinfo.ini").write_text(
        "[Sequence]\nname=TOY-01\nimDir=img1\nframeRate=25\nseqLength=3\nimWidth=6\nimHeight=4\nimExt=.png\n"
    )
    source = open_source(tmp_path, start=2)
    assert (source.name, source.fps, source.num_frames) == ("TOY-01", 25.0, 3)
    assert [(frame.index, frame.image[0, 0, 0]) for frame in source] == [(2, 100), (3, 150)]


def test_mot_folder_length_must_match_seqinfo(tmp_path: Path) -> None:
    (tmp_path / "img1").mkdir()
    write_png(tmp_path / "img1" / "000001.png", (0, 0, 0))
    (tmp_path / "seqinfo.ini").write_text("[Sequence]\nname=TOY\nframeRate=25\nseqLength=2\n")
    with pytest.raises(InputError, match="seqinfo.ini says 2"):
        open_source(tmp_path)


def test_mot_folder_without_frames_needs_exactly_one_video(tmp_path: Path) -> None:
    (tmp_path / "seqinfo.ini").write_text("[Sequence]\nname=TOY\nframeRate=25\nseqLength=12\n")
    write_clip(tmp_path / "clip.mp4")
    write_clip(tmp_path / "other.avi")
    with pytest.raises(InputError, match="2 video files"):
        open_source(tmp_path)
    (tmp_path / "other.avi").unlink()
    source = open_source(tmp_path, start=12)
    assert (source.name, source.fps, [frame.index for frame in source]) == ("TOY", 25.0, [12])


def test_missing_path_is_rejected(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="does not exist"):
        open_source(tmp_path / "nowhere.mp4")


def test_unsupported_file_type_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "clip.gif"
    path.write_bytes(b"GIF89a")
    with pytest.raises(InputError, match="not a supported video file"):
        open_source(path)


def test_corrupt_video_is_rejected_at_open(tmp_path: Path) -> None:
    path = tmp_path / "x.mp4"
    path.write_bytes(np.random.default_rng(0).integers(0, 256, 50_000, dtype=np.uint8).tobytes())
    with pytest.raises(InputError, match="x.mp4"):
        open_source(path)


def test_empty_frame_folder_is_rejected(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="contains no"):
        open_source(tmp_path)


def test_unreadable_first_image_is_skipped_too(tmp_path: Path) -> None:
    (tmp_path / "1.png").write_bytes(b"this is not a png")
    write_png(tmp_path / "2.png", (1, 2, 3))
    source = open_source(tmp_path)
    assert (source.width, source.height) == (6, 4)
    assert [frame.index for frame in source] == [2] and source.missing_frames == [1]
    (tmp_path / "2.png").write_bytes(b"nor is this")
    with pytest.raises(InputError, match="None of the 2 images"):
        open_source(tmp_path)


def test_unreadable_frame_image_is_skipped_with_a_warning(tmp_path: Path, caplog) -> None:
    for index in (1, 3):
        write_png(tmp_path / f"{index}.png", (index, 2, 3))
    (tmp_path / "2.png").write_bytes(b"this is not a png")
    source = open_source(tmp_path)
    with caplog.at_level(logging.WARNING, logger="tracker.io.sources"):
        frames = list(source)
    assert [frame.index for frame in frames] == [1, 3] and frames[1].image[0, 0].tolist() == [3, 2, 3]
    assert source.missing_frames == [2]
    assert [record.getMessage() for record in caplog.records] == [
        f"Frame image {tmp_path / '2.png'} could not be read as an image. Frame 2 skipped."
    ]


def test_video_with_a_damaged_frame_skips_it_with_one_warning(tmp_path: Path, caplog) -> None:
    path = tmp_path / "damaged.avi"
    reference = write_mjpeg(path)
    damage_frame(path, 15)
    with av.open(str(path)) as container, pytest.raises(av.InvalidDataError):
        list(container.decode(video=0))  # plain decoding stops at the damage: the failure path is exercised
    for start, stride in ((1, 1), (12, 1), (15, 1), (14, 2), (20, 1)):
        source = open_source(path, start=start, stride=stride)
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="tracker.io.sources"):
            frames = list(source)
        wanted = [index for index in range(start, 31, stride) if index != 15]
        assert [frame.index for frame in frames] == wanted, (start, stride)
        for frame in frames:
            assert np.array_equal(frame.image, reference[frame.index - 1]), frame.index
        damaged = 15 in range(start, 31, stride)
        assert source.missing_frames == ([15] if damaged else [])
        assert [record.getMessage() for record in caplog.records] == (
            [f"Video {path}: frame 15 cannot be decoded; skipped."] if damaged else []
        )


def test_video_with_a_damaged_first_frame_opens_and_skips_it(tmp_path: Path) -> None:
    path = tmp_path / "damaged.avi"
    reference = write_mjpeg(path, num_frames=5)
    damage_frame(path, 1)
    source = open_source(path)
    frames = list(source)
    assert [frame.index for frame in frames] == [2, 3, 4, 5] and source.missing_frames == [1]
    assert np.array_equal(frames[0].image, reference[1])


@pytest.mark.parametrize(
    ("start", "end", "stride", "message"),
    [(0, None, 1, "at least 1"), (5, 4, 1, "comes before"), (13, None, 1, "beyond the last"), (1, None, 0, "stride")],
)
def test_invalid_frame_range_is_rejected(clip: Path, start: int, end: int | None, stride: int, message: str) -> None:
    with pytest.raises(InputError, match=message):
        open_source(clip, start=start, end=end, stride=stride)


def test_decoding_from_the_start_when_no_seek_lands_before_the_frame(clip: Path, monkeypatch) -> None:
    monkeypatch.setattr("tracker.io.sources._skip_to", lambda frames, target: None)
    assert [colour_index(frame.image) for frame in open_source(clip, start=7, stride=2)] == [7, 9, 11]
