"""A real video with one damaged frame, made by the tests that check a run survives it."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np


def write_mjpeg(path: Path, num_frames: int = 30) -> list[np.ndarray]:
    """An MJPEG AVI of a square moving over a changing background (each frame its own JPEG); returns the decoded
    frames."""
    with av.open(str(path), "w") as container:
        stream = container.add_stream("mjpeg", rate=10)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuvj420p"
        for index in range(num_frames):
            image = np.empty((48, 64, 3), np.uint8)
            image[:] = (index * 8, 255 - index * 8, 100)
            image[10:20, index : index + 10] = 255
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    with av.open(str(path)) as container:
        return [frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)]


def damage_frame(path: Path, frame: int) -> None:
    """Zero the image size in one frame's JPEG start-of-frame header, in place: that packet no longer decodes."""
    with av.open(str(path)) as container:
        position = [packet.pos for packet in container.demux(video=0) if packet.size][frame - 1]
    data = bytearray(path.read_bytes())
    marker = data.index(b"\xff\xc0", position)
    data[marker + 5 : marker + 9] = bytes(4)
    path.write_bytes(data)
