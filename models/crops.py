"""Person crops for the regressor, cut as 4D-Humans cuts them, for all people of a window of frames at once.

4D-Humans (ViTDetDataset + generate_image_patch_cv2, and PHALP's process_image) takes the box centre, widens the
box to the 192:256 (w:h) aspect, uses the longer side (times a rescale factor of 1.0) as a square region, and warps
it to 256×256 with bilinear sampling and zero (black) outside the frame; then normalises RGB with ImageNet
statistics. Here that warp is one `grid_sample` over the whole window instead of a cv2.warpAffine per person.
Not reproduced: the Gaussian anti-alias blur 4D-Humans' image demo applies when the region is over 2.2× the crop
(people taller than ~560 px); PHALP's tracking path does not blur either.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from models.structures import DEFAULT_CROP_SPEC, CropSpec, InputError, PersonBatch


def square_regions(boxes: torch.Tensor, spec: CropSpec) -> tuple[torch.Tensor, torch.Tensor]:
    """Centre B×2 and side B of the square crop region of each xyxy box (4D-Humans' expand_to_aspect_ratio, max)."""
    center = (boxes[:, :2] + boxes[:, 2:]) / 2
    width, height = (boxes[:, 2:] - boxes[:, :2]).clamp(min=1.0).unbind(-1)
    target_w, target_h = spec.aspect_wh
    too_wide = height / width < target_h / target_w
    new_height = torch.where(too_wide, torch.maximum(width * target_h / target_w, height), height)
    new_width = torch.where(too_wide, width, torch.maximum(height * target_w / target_h, width))
    return center, torch.maximum(new_width, new_height) * spec.rescale


def sampling_grid(center: torch.Tensor, size: torch.Tensor, out_size: int, frame_hw: tuple[int, int]) -> torch.Tensor:
    """grid_sample grid B×S×S×2 (align_corners=False) that maps crop pixel (i, j) to frame pixel
    center + ((j, i) - S/2) · size / S, the inverse of 4D-Humans' affine crop transform."""
    steps = torch.arange(out_size, device=center.device, dtype=torch.float32) - out_size / 2
    offsets = steps[None, :] * (size[:, None] / out_size)
    xs = center[:, 0:1] + offsets
    ys = center[:, 1:2] + offsets
    height, width = frame_hw
    gx = (2 * xs + 1) / width - 1
    gy = (2 * ys + 1) / height - 1
    return torch.stack(torch.broadcast_tensors(gx[:, None, :], gy[:, :, None]), dim=-1)


def _check_frames(images: Sequence[np.ndarray] | torch.Tensor) -> None:
    """InputError unless the frames are H×W×3 uint8 (numpy arrays, or one F×H×W×3 tensor)."""
    if isinstance(images, torch.Tensor):
        if images.ndim != 4 or images.shape[-1] != 3 or images.dtype != torch.uint8:
            raise InputError(
                f"make_crops expected frames as an F×H×W×3 uint8 tensor, got {tuple(images.shape)} {images.dtype}."
            )
        return
    for image in images:
        if not (isinstance(image, np.ndarray) and image.ndim == 3 and image.shape[2] == 3 and image.dtype == np.uint8):
            raise InputError("make_crops expected every frame to be an H×W×3 uint8 RGB numpy array.")


def _frames_tensor(
    images: Sequence[np.ndarray] | torch.Tensor, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor]:
    """Frames as F×3×H×W float32 on device (zero-padded to the largest frame) and their sizes F×2 (w, h)."""
    if isinstance(images, torch.Tensor):
        frames = images.to(device).permute(0, 3, 1, 2).float()
        sizes = torch.tensor([[images.shape[2], images.shape[1]]] * len(images), dtype=torch.float32)
        return frames, sizes.to(device)
    height = max(image.shape[0] for image in images)
    width = max(image.shape[1] for image in images)
    frames = torch.zeros((len(images), 3, height, width), dtype=torch.float32, device=device)
    for i, image in enumerate(images):
        frames[i, :, : image.shape[0], : image.shape[1]] = torch.from_numpy(image).to(device).permute(2, 0, 1)
    sizes = torch.tensor([[image.shape[1], image.shape[0]] for image in images], dtype=torch.float32, device=device)
    return frames, sizes


def make_crops(
    images: Sequence[np.ndarray] | torch.Tensor,
    boxes: Sequence[np.ndarray | torch.Tensor],
    masks: Sequence[np.ndarray | torch.Tensor] | None = None,
    spec: CropSpec = DEFAULT_CROP_SPEC,
    device: torch.device | str = "cpu",
    pixels: bool = True,
) -> PersonBatch:
    """Crops every person of a window: images (F frames, H×W×3 uint8 RGB), boxes (per frame N_f×4 xyxy pixels),
    masks (optional, per frame N_f×H×W bool), as one batched bilinear warp on `device`.

    With `pixels=False` only the crop geometry is computed (crops is B×0×S×S), for consumers that need no image.
    """
    device = torch.device(device)
    if len(boxes) != len(images):
        raise InputError(f"make_crops got {len(images)} frames but boxes for {len(boxes)} frames.")
    if masks is not None and len(masks) != len(images):
        raise InputError(f"make_crops got {len(images)} frames but masks for {len(masks)} frames.")
    _check_frames(images)
    per_frame = [torch.as_tensor(np.asarray(b, dtype=np.float32)).reshape(-1, 4) for b in boxes]
    counts = torch.tensor([len(b) for b in per_frame])
    occupied = torch.nonzero(counts).flatten()
    channels = 3 if masks is None else 4
    total = int(counts.sum())

    box_tensor = torch.cat(per_frame).to(device) if total else torch.zeros((0, 4), device=device)
    frame_ids = torch.repeat_interleave(torch.arange(len(images)), counts).to(device)
    slot_frames = torch.repeat_interleave(torch.arange(len(occupied)), counts[occupied]).to(device)
    det_ids = torch.cat([torch.arange(int(n)) for n in counts]).to(device)
    center, size = square_regions(box_tensor, spec)
    if not pixels:
        sizes = torch.tensor([[image.shape[1], image.shape[0]] for image in images], dtype=torch.float32)
        crops = torch.zeros((total, 0, spec.size, spec.size), device=device)
        return PersonBatch(crops, box_tensor, center, size, frame_ids, det_ids, sizes.to(device)[frame_ids])
    if total == 0:
        crops = torch.zeros((0, channels, spec.size, spec.size), device=device)
        return PersonBatch(crops, box_tensor, center, size, frame_ids, det_ids, torch.zeros((0, 2), device=device))

    frames, frame_sizes = _frames_tensor(_select(images, occupied.tolist()), device)
    num_frames, _, height, width = frames.shape
    grid = sampling_grid(center, size, spec.size, (height, width))
    slots = int(counts.max())
    slot_grid = torch.full((num_frames, slots, spec.size, spec.size, 2), -2.0, device=device)
    slot_grid[slot_frames, det_ids] = grid
    sampled = F.grid_sample(
        frames,
        slot_grid.reshape(num_frames, slots * spec.size, spec.size, 2),
        mode="bilinear",
        padding_mode="zeros",
        align_corners=False,
    )
    sampled = sampled.reshape(num_frames, 3, slots, spec.size, spec.size).permute(0, 2, 1, 3, 4)[slot_frames, det_ids]
    mean = torch.tensor(spec.mean, device=device).reshape(1, 3, 1, 1)
    std = torch.tensor(spec.std, device=device).reshape(1, 3, 1, 1)
    crops = (sampled / 255.0 - mean) / std

    if masks is not None:
        crops = torch.cat([crops, _mask_crops(masks, counts, (height, width), grid, device)], dim=1)
    return PersonBatch(crops, box_tensor, center, size, frame_ids, det_ids, frame_sizes[slot_frames])


def _select(images: Sequence[np.ndarray] | torch.Tensor, keep: list[int]) -> Sequence[np.ndarray] | torch.Tensor:
    """The frames at positions `keep` (only frames with people are converted and warped)."""
    return images[keep] if isinstance(images, torch.Tensor) else [images[i] for i in keep]


def _mask_crops(
    masks: Sequence[np.ndarray | torch.Tensor],
    counts: torch.Tensor,
    frame_hw: tuple[int, int],
    grid: torch.Tensor,
    device: torch.device,
) -> torch.Tensor:
    """Each person's mask warped with that person's grid: B×1×S×S in [0, 1]."""
    height, width = frame_hw
    padded = torch.zeros((int(counts.sum()), 1, height, width), dtype=torch.float32, device=device)
    start = 0
    for frame, (frame_masks, count) in enumerate(zip(masks, counts.tolist())):
        frame_masks = (
            torch.as_tensor(np.asarray(frame_masks)) if not isinstance(frame_masks, torch.Tensor) else frame_masks
        )
        if frame_masks.ndim != 3 or len(frame_masks) != count:
            raise InputError(
                f"make_crops expected {count} masks (N×H×W) for frame {frame}, got shape {tuple(frame_masks.shape)}."
            )
        h, w = frame_masks.shape[1:]
        padded[start : start + count, 0, :h, :w] = frame_masks.to(device=device, dtype=torch.float32)
        start += count
    return F.grid_sample(padded, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def resample_to_crops(
    maps: torch.Tensor, map_center: torch.Tensor, map_side: torch.Tensor, people: PersonBatch
) -> torch.Tensor:
    """Per-person maps over square frame regions (B×C×M×M; map pixel (i, j) covers the frame point
    map_center + ((j, i) + 0.5) / M − 0.5) · map_side) resampled onto the people's crops: B×C×S×S, bilinear, zero
    outside the map. Used to give the crops a person mask computed on another region (BlazePose's)."""
    size = people.crops.shape[-1]
    device = people.crops.device
    # Crop pixel j samples frame point center + (j − S/2)·side/S (pixel indices), i.e. + 0.5 in continuous terms.
    steps = torch.arange(size, device=device, dtype=torch.float32) - size / 2
    offsets = steps[None, :] * (people.size.to(device, torch.float32)[:, None] / size) + 0.5
    center, side = map_center.to(device, torch.float32), map_side.to(device, torch.float32)[:, None]
    xs = 2 * (people.center[:, 0:1].to(device) + offsets - center[:, 0:1]) / side
    ys = 2 * (people.center[:, 1:2].to(device) + offsets - center[:, 1:2]) / side
    grid = torch.stack(torch.broadcast_tensors(xs[:, None, :], ys[:, :, None]), dim=-1)
    maps = maps.to(device, torch.float32)
    return F.grid_sample(maps, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
