"""Video sources: a video file, a folder of frame images or a MOT sequence folder, read as a stream of Frames.

Frame numbers are 1-based everywhere (frame i of a video is the i-th frame it decodes to, which is MOT frame i).
A source holds only metadata; each iteration opens the file again and keeps at most one decoded frame in memory.
A frame that cannot be decoded (a damaged packet, an unreadable image) is skipped with one warning and listed in
`missing_frames`; the frames around it keep their numbers.
"""

from __future__ import annotations

import configparser
import contextlib
import itertools
import logging
import os
import re
from abc import ABC, abstractmethod
from collections.abc import Iterator
from pathlib import Path

import av
import cv2
import numpy as np

from models.structures import Frame, InputError

log = logging.getLogger(__name__)

VIDEO_SUFFIXES = (".avi", ".mp4", ".mov", ".mkv")
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
FOLDER_FPS = 30.0
SEQINFO_FILE = "seqinfo.ini"

# Containers whose header frame count is the exact sample count (the mp4/mov sample table).
_EXACT_COUNT_FORMATS = ("mov", "mp4")
# Packets demuxed past the wanted frame so that decoding reorder (B-frames) cannot hide its timestamp.
_REORDER_MARGIN = 64
# How many frames before the wanted one to try seeking to, in turn, when a seek lands past it.
_SEEK_BACKOFFS = (0, 16, 128, 1024)


class VideoSource(ABC):
    """Metadata of a source plus the selected frame range; iterate it for Frames, or call `windows` for batches."""

    def __init__(
        self,
        path: Path,
        name: str,
        fps: float,
        width: int,
        height: int,
        num_frames: int,
        start: int,
        end: int | None,
        stride: int,
    ) -> None:
        self._path = path
        self._name = name
        self._fps = fps
        self._width = width
        self._height = height
        self._num_frames = num_frames
        self._frame_numbers = _select_frames(path, num_frames, start, end, stride)
        self._missing: list[int] = []

    @property
    def path(self) -> Path:
        """The path this source was opened from."""
        return self._path

    @property
    def name(self) -> str:
        """Sequence name: the seqinfo.ini name, else the file stem or folder name."""
        return self._name

    @property
    def fps(self) -> float:
        """Frames per second used for frame times."""
        return self._fps

    @property
    def width(self) -> int:
        """Frame width in pixels."""
        return self._width

    @property
    def height(self) -> int:
        """Frame height in pixels."""
        return self._height

    @property
    def num_frames(self) -> int:
        """Exact number of frames in the whole source, whatever range is selected."""
        return self._num_frames

    @property
    def frame_numbers(self) -> range:
        """The selected 1-based frame numbers (after start, end and stride)."""
        return self._frame_numbers

    @property
    def missing_frames(self) -> list[int]:
        """Selected frames the current (or last) iteration skipped because they could not be decoded, in order."""
        return list(self._missing)

    def __len__(self) -> int:
        return len(self._frame_numbers)

    def __iter__(self) -> Iterator[Frame]:
        return self._frames(self._frame_numbers)

    def _frames(self, frame_numbers: range) -> Iterator[Frame]:
        self._missing = []
        if len(frame_numbers) == 0:
            return
        for index, image in self._read(frame_numbers):
            if image is None:
                self._missing.append(index)
                continue
            yield Frame(index=index, time=(index - 1) / self._fps, image=image)

    def windows(self, size: int, after: int | None = None) -> Iterator[list[Frame]]:
        """Yield the selected frames in order, as lists of up to `size` consecutive frames (for batching); with
        `after` (a selected frame number) only the frames after it (a resumed run)."""
        if isinstance(size, bool) or not isinstance(size, int) or size < 1:
            raise ValueError(f"Window size must be a positive integer, got {size!r}.")
        numbers = self._frame_numbers
        frames = self._frames(numbers if after is None else numbers[numbers.index(after) + 1 :])
        while window := list(itertools.islice(frames, size)):
            yield window

    @abstractmethod
    def _read(self, frame_numbers: range) -> Iterator[tuple[int, np.ndarray | None]]:
        """Yield (frame number, RGB uint8 image) for each of `frame_numbers`, in order; None for a frame that cannot
        be decoded, after logging one warning that names it."""


class VideoFileSource(VideoSource):
    """A video file decoded with PyAV, streaming, seeking near the first selected frame."""

    def __init__(
        self,
        file: Path,
        start: int = 1,
        end: int | None = None,
        stride: int = 1,
        fps: float | None = None,
        name: str | None = None,
        path: Path | None = None,
    ) -> None:
        self._file = file
        with _open_container(file) as container:
            stream = _video_stream(container, file)
            _check_decodes(container, stream, file)
            rate = fps or stream.average_rate or stream.guessed_rate
            width, height = stream.codec_context.width, stream.codec_context.height
            header_count = stream.frames if _has_exact_count(container) else 0
        if not rate:
            raise InputError(f"Video {file} does not state its frame rate; pass fps explicitly.")
        self._timestamps: list[int] | None = None
        if header_count > 0:
            num_frames = header_count
        else:
            num_frames, self._timestamps = _scan_packets(file)
        if num_frames == 0:
            raise InputError(f"Video {file} contains no video frames.")
        super().__init__(
            path=path or file,
            name=name or file.stem,
            fps=float(rate),
            width=width,
            height=height,
            num_frames=num_frames,
            start=start,
            end=end,
            stride=stride,
        )

    def _read(self, frame_numbers: range) -> Iterator[tuple[int, np.ndarray | None]]:
        last = frame_numbers[-1]
        index = frame_numbers.start - 1
        try:
            for index, frame in self._decode_from(frame_numbers.start):
                if index > last:
                    break
                if (index - frame_numbers.start) % frame_numbers.step == 0:
                    if frame is None:
                        log.warning("Video %s: frame %d cannot be decoded; skipped.", self._file, index)
                    yield index, None if frame is None else frame.to_ndarray(format="rgb24")
        except av.FFmpegError as error:
            raise InputError(f"Video {self._file} failed to decode after frame {index}: {error}.") from None
        if index < last:
            raise InputError(f"Video {self._file} ended at frame {index}, before frame {last}.")

    def _decode_from(self, first: int) -> Iterator[tuple[int, av.VideoFrame | None]]:
        """Yield (frame number, decoded frame or None where a packet fails to decode) from frame `first` on."""
        target = self._timestamp_of(first) if first > 1 else None
        if target is not None:
            with _open_container(self._file) as container:
                stream = _video_stream(container, self._file)
                stream.thread_type = "AUTO"
                for seek_point in self._seek_points(first):
                    container.seek(seek_point, stream=stream, backward=True)
                    frames = _skip_to(_decode_packets(container, stream), target)
                    if frames is not None:
                        yield from enumerate(frames, start=first)
                        return
        with _open_container(self._file) as container:
            stream = _video_stream(container, self._file)
            stream.thread_type = "AUTO"
            for index, frame in enumerate(_decode_packets(container, stream), start=1):
                if index >= first:
                    yield index, frame

    def _timestamp_of(self, frame_number: int) -> int | None:
        """Presentation timestamp of a frame (from demuxed packets, no decoding), None if the video lacks them."""
        if self._timestamps is None or len(self._timestamps) < min(frame_number + _REORDER_MARGIN, self.num_frames):
            _, self._timestamps = _scan_packets(self._file, limit=frame_number + _REORDER_MARGIN)
        if self._timestamps is None or frame_number > len(self._timestamps):
            return None
        return self._timestamps[frame_number - 1]

    def _seek_points(self, frame_number: int) -> list[int]:
        """Timestamps to seek to, latest first, each at or before the frame (a seek may land past its target)."""
        positions = sorted({max(0, frame_number - 1 - back) for back in _SEEK_BACKOFFS}, reverse=True)
        return [self._timestamps[position] for position in positions]


class ImageFolderSource(VideoSource):
    """A folder of .jpg/.jpeg/.png frames in natural order (frame2 before frame10), read with OpenCV."""

    def __init__(
        self,
        folder: Path,
        start: int = 1,
        end: int | None = None,
        stride: int = 1,
        fps: float | None = None,
        name: str | None = None,
        expected_count: int | None = None,
    ) -> None:
        self._files = sorted(
            (entry for entry in folder.iterdir() if entry.is_file() and entry.suffix.lower() in IMAGE_SUFFIXES),
            key=lambda entry: _natural_key(entry.name),
        )
        if not self._files:
            raise InputError(f"Frame folder {folder} contains no {'/'.join(IMAGE_SUFFIXES)} images.")
        if expected_count is not None and expected_count != len(self._files):
            raise InputError(
                f"Frame folder {folder} holds {len(self._files)} images but {SEQINFO_FILE} says {expected_count}."
            )
        height, width = _first_image(self._files).shape[:2]
        super().__init__(
            path=folder,
            name=name or folder.name,
            fps=fps or FOLDER_FPS,
            width=width,
            height=height,
            num_frames=len(self._files),
            start=start,
            end=end,
            stride=stride,
        )

    def _read(self, frame_numbers: range) -> Iterator[tuple[int, np.ndarray | None]]:
        for index in frame_numbers:
            try:
                image = _read_image(self._files[index - 1])
            except InputError as error:
                log.warning("%s Frame %d skipped.", error, index)
                yield index, None
                continue
            if image.shape[:2] != (self.height, self.width):
                raise InputError(
                    f"Frame image {self._files[index - 1]} is {image.shape[1]}x{image.shape[0]}, "
                    f"expected {self.width}x{self.height} like the first frame."
                )
            yield index, image


def open_source(
    path: str | os.PathLike,
    start: int = 1,
    end: int | None = None,
    stride: int = 1,
    fps: float | None = None,
) -> VideoSource:
    """Open a video file, a frame folder or a MOT sequence folder; `fps` overrides the source's own frame rate.

    `end` past the last frame means "to the last frame"; a MOT folder with seqinfo.ini but no image folder is
    read from the single video file inside it.
    """
    path = Path(path)
    if fps is not None and not fps > 0:
        raise InputError(f"Frame rate for {path} must be positive, got {fps}.")
    if not path.exists():
        raise InputError(f"Input {path} does not exist.")
    if path.is_file():
        if path.suffix.lower() not in VIDEO_SUFFIXES:
            raise InputError(f"Input {path} is not a supported video file ({', '.join(VIDEO_SUFFIXES)}).")
        return VideoFileSource(path, start, end, stride, fps)
    if (path / SEQINFO_FILE).is_file():
        return _open_mot_sequence(path, start, end, stride, fps)
    return ImageFolderSource(path, start, end, stride, fps)


def _open_mot_sequence(folder: Path, start: int, end: int | None, stride: int, fps: float | None) -> VideoSource:
    """Open a MOT sequence folder from its image folder, or else from its one video file."""
    seqinfo = _read_seqinfo(folder / SEQINFO_FILE)
    name = seqinfo.get("name", folder.name)
    rate = fps or _seqinfo_number(seqinfo, "framerate", folder / SEQINFO_FILE, float)
    length = _seqinfo_number(seqinfo, "seqlength", folder / SEQINFO_FILE, int)
    image_folder = folder / seqinfo.get("imdir", "img1")
    if image_folder.is_dir():
        return ImageFolderSource(image_folder, start, end, stride, rate, name=name, expected_count=length)
    videos = [entry for entry in folder.iterdir() if entry.is_file() and entry.suffix.lower() in VIDEO_SUFFIXES]
    if len(videos) != 1:
        raise InputError(
            f"MOT sequence folder {folder} has no {image_folder.name}/ folder and {len(videos)} video files; "
            "expected exactly one."
        )
    source = VideoFileSource(videos[0], start, end, stride, rate, name=name, path=folder)
    if source.num_frames != length:
        raise InputError(f"Video {videos[0]} has {source.num_frames} frames but {SEQINFO_FILE} says {length}.")
    return source


def _read_seqinfo(file: Path) -> configparser.SectionProxy:
    parser = configparser.ConfigParser(interpolation=None)
    try:
        parser.read(file, encoding="utf-8")
    except (configparser.Error, UnicodeDecodeError):
        raise InputError(f"Sequence info {file} is not a valid INI file.") from None
    if not parser.has_section("Sequence"):
        raise InputError(f"Sequence info {file} has no [Sequence] section.")
    return parser["Sequence"]


def _seqinfo_number(seqinfo: configparser.SectionProxy, key: str, file: Path, kind: type) -> float | int:
    try:
        value = kind(seqinfo[key])
    except (KeyError, ValueError):
        raise InputError(f"Sequence info {file} needs a positive number for {key}.") from None
    if not value > 0:
        raise InputError(f"Sequence info {file} needs a positive number for {key}.")
    return value


def _select_frames(path: Path, num_frames: int, start: int, end: int | None, stride: int) -> range:
    """Validate start/end/stride against the source length; `end` beyond the last frame is clipped to it."""
    for label, value in {"start": start, "end": 1 if end is None else end, "stride": stride}.items():
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
            raise InputError(f"Frame {label} for {path} must be a whole number, got {value!r}.")
    if start < 1:
        raise InputError(f"Start frame for {path} must be at least 1, got {start}.")
    if stride < 1:
        raise InputError(f"Frame stride for {path} must be at least 1, got {stride}.")
    if end is not None and end < start:
        raise InputError(f"End frame {end} for {path} comes before start frame {start}.")
    if start > num_frames:
        raise InputError(f"Start frame {start} is beyond the last frame ({num_frames}) of {path}.")
    last = num_frames if end is None else min(int(end), num_frames)
    return range(int(start), last + 1, int(stride))


def _natural_key(name: str) -> tuple:
    """Sort key that orders digit runs by value: frame2 before frame10."""
    return tuple((0, int(part), "") if part.isdigit() else (1, 0, part.lower()) for part in re.split(r"(\d+)", name))


def _first_image(files: list[Path]) -> np.ndarray:
    """The first of the images that can be read (a damaged first frame is skipped later, not fatal here)."""
    for file in files:
        with contextlib.suppress(InputError):
            return _read_image(file)
    raise InputError(f"None of the {len(files)} images in {files[0].parent} can be read as an image.")


def _read_image(file: Path) -> np.ndarray:
    image = cv2.imread(str(file), cv2.IMREAD_COLOR)
    if image is None:
        raise InputError(f"Frame image {file} could not be read as an image.")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def _open_container(file: Path) -> av.container.InputContainer:
    try:
        return av.open(str(file), mode="r", metadata_errors="ignore")
    except (av.FFmpegError, OSError) as error:
        raise InputError(f"Video {file} cannot be opened: {getattr(error, 'strerror', None) or error}.") from None


def _video_stream(container: av.container.InputContainer, file: Path) -> av.VideoStream:
    if not container.streams.video:
        raise InputError(f"File {file} has no video stream.")
    return container.streams.video[0]


def _check_decodes(container: av.container.InputContainer, stream: av.VideoStream, file: Path) -> None:
    """Decode the first frame (past damaged ones, among the first few) so that an unreadable video is rejected at
    open, not halfway through."""
    try:
        frames = itertools.islice(_decode_packets(container, stream), _REORDER_MARGIN)
        first = next((frame for frame in frames if frame is not None), None)
    except av.FFmpegError as error:
        raise InputError(f"Video {file} cannot be decoded: {error}.") from None
    if first is None:
        raise InputError(f"Video {file} contains no decodable frames.")


def _has_exact_count(container: av.container.InputContainer) -> bool:
    return any(name in _EXACT_COUNT_FORMATS for name in container.format.name.split(","))


def _scan_packets(file: Path, limit: int | None = None) -> tuple[int, list[int] | None]:
    """Demux (without decoding) up to `limit` video packets: their count and sorted timestamps (None if missing)."""
    count = 0
    timestamps: list[int] | None = []
    with _open_container(file) as container:
        stream = _video_stream(container, file)
        try:
            for packet in container.demux(stream):
                if packet.size == 0 or packet.is_discard:
                    continue
                count += 1
                if packet.pts is None:
                    timestamps = None
                elif timestamps is not None:
                    timestamps.append(packet.pts)
                if limit is not None and count >= limit:
                    break
        except av.FFmpegError as error:
            raise InputError(f"Video {file} is corrupt after {count} frames: {error}.") from None
    return count, None if timestamps is None else sorted(timestamps)


def _decode_packets(container: av.container.InputContainer, stream: av.VideoStream) -> Iterator[av.VideoFrame | None]:
    """The stream's frames in order, with None in place of each packet the decoder rejects (a damaged frame).

    Packets are decoded one by one so that one bad packet does not end decoding. Counting a rejected packet as one
    frame keeps the numbers of the frames after it exact for intra-only codecs (MJPEG); a codec that reorders
    frames (B-frames) may shift the frames within its reorder depth of the damage by one.
    """
    for packet in container.demux(stream):
        try:
            frames = packet.decode()
        except av.FFmpegError:
            if packet.size:
                yield None
            continue
        yield from frames


def _skip_to(frames: Iterator[av.VideoFrame | None], target: int) -> Iterator[av.VideoFrame | None] | None:
    """Advance decoded frames to the one with timestamp `target`; None if the seek landed past it (or into damage)."""
    for frame in frames:
        if frame is None or frame.pts is None or frame.pts > target:
            return None
        if frame.pts == target:
            return itertools.chain([frame], frames)
    return None
