"""Person crops: 4D-Humans geometry (aspect expansion, square region, bilinear warp, zero border), batched."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from models.crops import make_crops, resample_to_crops, square_regions
from models.structures import CropSpec, InputError

SPEC = CropSpec()


def smooth_image(height: int, width: int, seed: int) -> np.ndarray:
    """A frame with structure at several scales but no pixel-level noise (bilinear warps agree to rounding)."""
    rng = np.random.default_rng(seed)
    coarse = rng.uniform(0, 255, size=(height // 8, width // 8, 3)).astype(np.float32)
    return cv2.resize(coarse, (width, height), interpolation=cv2.INTER_CUBIC).clip(0, 255).astype(np.uint8)


def reference_crop(image: np.ndarray, box: np.ndarray) -> np.ndarray:
    """4D-Humans' crop, written out with cv2: expand to 192:256, square on the longer side, warpAffine, zero border."""
    center = (box[:2] + box[2:]) / 2
    width, height = box[2:] - box[:2]
    if height / width < 256 / 192:
        size = max(width, max(width * 256 / 192, height))
    else:
        size = max(max(height * 192 / 256, width), height)
    src = np.float32([center, center + [0, size / 2], center + [size / 2, 0]])
    dst = np.float32([[128, 128], [128, 256], [256, 128]])
    transform = cv2.getAffineTransform(src, dst)
    return cv2.warpAffine(
        image, transform, (256, 256), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0
    )


def to_pixels(crops: torch.Tensor) -> np.ndarray:
    """Normalised RGB crops B×3×S×S back to 0-255 B×S×S×3."""
    mean = torch.tensor(SPEC.mean).reshape(1, 3, 1, 1)
    std = torch.tensor(SPEC.std).reshape(1, 3, 1, 1)
    return ((crops[:, :3] * std + mean) * 255).permute(0, 2, 3, 1).numpy()


def test_square_region_widens_to_192_by_256_and_takes_the_longer_side():
    boxes = torch.tensor([[0.0, 0.0, 30.0, 100.0], [10.0, 20.0, 130.0, 80.0], [0.0, 0.0, 75.0, 100.0]])
    center, size = square_regions(boxes, SPEC)
    assert torch.allclose(center, torch.tensor([[15.0, 50.0], [70.0, 50.0], [37.5, 50.0]]))
    assert torch.allclose(size, torch.tensor([100.0, 160.0, 100.0]))
    _, rescaled = square_regions(boxes, CropSpec(rescale=1.2))
    assert torch.allclose(rescaled, size * 1.2)


def test_crops_match_the_cv2_reference_including_boxes_past_the_frame_edge():
    image = smooth_image(240, 320, seed=0)
    boxes = np.array([[100, 50, 160, 200], [-30, 100, 40, 230], [250, -20, 330, 120], [5, 5, 300, 60]], np.float32)
    batch = make_crops([image], [boxes])
    ours = to_pixels(batch.crops)
    for crop, box in zip(ours, boxes):
        expected = reference_crop(image, box).astype(np.float32)
        assert np.abs(crop - expected).mean() < 0.5
        assert np.abs(crop - expected).max() < 4.0
    assert batch.crops.shape == (4, 3, 256, 256)
    assert (ours[1][:, :20] < 1).all(), "the part of the region left of the frame must be black"


def test_window_batch_equals_each_person_cropped_alone():
    frames = [smooth_image(120, 160, seed) for seed in range(3)]
    boxes = [
        np.array([[10, 10, 50, 100], [80, 20, 150, 110]], np.float32),
        np.zeros((0, 4), np.float32),
        np.array([[0, 0, 20, 40], [40, 30, 90, 60], [100, 10, 159, 119]], np.float32),
    ]
    batch = make_crops(frames, boxes)
    assert batch.frame_ids.tolist() == [0, 0, 2, 2, 2]
    assert batch.det_ids.tolist() == [0, 1, 0, 1, 2]
    assert torch.equal(batch.boxes, torch.from_numpy(np.concatenate(boxes)))
    assert batch.image_size.tolist() == [[160.0, 120.0]] * 5
    row = 0
    for frame, frame_boxes in zip(frames, boxes):
        for box in frame_boxes:
            alone = make_crops([frame], [box[None]])
            assert torch.allclose(batch.crops[row], alone.crops[0], atol=1e-5)
            row += 1


def test_frames_of_different_sizes_crop_as_if_alone():
    small, large = smooth_image(96, 128, 1), smooth_image(160, 200, 2)
    box = np.array([[60, 40, 130, 95]], np.float32)
    batch = make_crops([small, large], [box, box])
    assert batch.image_size.tolist() == [[128.0, 96.0], [200.0, 160.0]]
    # Padding the smaller frame changes only the rounding of sampling coordinates (< 0.01 grey level).
    assert torch.allclose(batch.crops[0], make_crops([small], [box]).crops[0], atol=1e-4)
    assert torch.allclose(batch.crops[1], make_crops([large], [box]).crops[0], atol=1e-4)


def test_mask_channel_follows_the_person():
    image = np.zeros((120, 160, 3), np.uint8)
    mask = np.zeros((120, 160), bool)
    mask[30:90, 60:90] = True
    image[mask] = 255
    other = np.zeros_like(mask)
    other[0:10, 0:10] = True
    boxes = np.array([[60, 30, 90, 90], [0, 0, 10, 10]], np.float32)
    batch = make_crops([image], [boxes], masks=[np.stack([mask, other])])
    assert batch.has_mask and batch.crops.shape == (2, 4, 256, 256)
    person_mask = batch.crops[0, 3]
    assert 0.0 <= float(person_mask.min()) and float(person_mask.max()) <= 1.0
    brightness = torch.from_numpy(to_pixels(batch.crops[:1])[0].mean(-1) / 255)
    assert torch.allclose(brightness, person_mask, atol=1e-4)
    assert float(person_mask.max()) == 1.0
    assert float(batch.crops[1, 3].mean()) > 0.2, "each mask is cut with its own person's region"


def test_uint8_tensor_frames_and_empty_windows():
    frames = torch.from_numpy(np.stack([smooth_image(64, 96, 3)] * 2))
    boxes = [np.array([[10, 10, 40, 60]], np.float32), np.array([[50, 5, 90, 60]], np.float32)]
    from_tensor = make_crops(frames, boxes)
    from_arrays = make_crops(list(frames.numpy()), boxes)
    assert torch.allclose(from_tensor.crops, from_arrays.crops, atol=1e-5)
    empty = make_crops([smooth_image(64, 96, 3)], [np.zeros((0, 4))], masks=[np.zeros((0, 64, 96), bool)])
    assert empty.crops.shape == (0, 4, 256, 256) and len(empty) == 0


def test_bad_input_is_rejected_with_input_error():
    image = smooth_image(64, 96, 4)
    with pytest.raises(InputError, match="H×W×3 uint8"):
        make_crops([image.astype(np.float32)], [np.zeros((0, 4))])
    with pytest.raises(InputError, match="boxes for 2 frames"):
        make_crops([image], [np.zeros((0, 4)), np.zeros((0, 4))])
    with pytest.raises(InputError, match="expected 1 masks"):
        make_crops([image], [np.array([[0, 0, 10, 10]])], masks=[np.zeros((2, 64, 96), bool)])


def test_maps_of_other_square_regions_resample_onto_the_crops():
    people = make_crops([np.zeros((200, 300, 3), np.uint8)], [np.array([[100.0, 40.0, 140.0, 150.0]])], pixels=False)
    size = people.crops.shape[-1]
    center, side, pixels = torch.tensor([[118.0, 97.0]]), torch.tensor([190.0]), 64
    # A map whose value is the frame x coordinate of each of its pixel centres (a ramp bilinear sampling keeps).
    map_x = center[0, 0] + ((torch.arange(pixels) + 0.5) / pixels - 0.5) * side[0]
    maps = map_x.expand(pixels, pixels)[None, None]
    resampled = resample_to_crops(maps, center, side, people)[0, 0]
    crop_x = people.center[0, 0] + (torch.arange(size) - size / 2) * people.size[0] / size + 0.5
    inside = (crop_x > map_x[0]) & (crop_x < map_x[-1])
    torch.testing.assert_close(resampled[size // 2, inside], crop_x[inside], atol=1e-3, rtol=0)
    assert (resampled[:, crop_x < center[0, 0] - side[0] / 2 - 2] == 0).all()  # outside the map: zero
