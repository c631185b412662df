"""Texture sampler: exact colours on analytic planes, occlusion and masks, crops versus full frames, the body model."""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch

from models.body import UVMap, load_body_model
from models.crops import make_crops
from models.regressors.template import template_pose
from models.structures import DEFAULT_CROP_SPEC, InputError
from models.texture import TorchRasterizer, uv_texel_map
from models.texture.sampler import TextureSampler, crop_camera, crops_to_rgb

UV_SIZE = 32


def quads(*squares: tuple[float, float, float, float]) -> SimpleNamespace:
    """A body-model stand-in made of camera-facing squares (x centre, y centre, half side, depth), square k owning
    the k-th vertical strip of the UV square; texel rows follow camera y downwards, columns camera x."""
    vertices, faces, vt = [], [], []
    count = len(squares)
    for k, (x, y, half, _) in enumerate(squares):
        corners = [(-1, -1), (1, -1), (1, 1), (-1, 1)]  # (x, y) signs, y down
        vertices += [(x + sx * half, y + sy * half) for sx, sy in corners]
        vt += [((k + (sx + 1) / 2) / count, 1 - (sy + 1) / 2) for sx, sy in corners]
        faces += [(4 * k, 4 * k + 1, 4 * k + 2), (4 * k, 4 * k + 2, 4 * k + 3)]
    face_tensor = torch.tensor(faces)
    depths = torch.tensor([s[3] for s in squares]).repeat_interleave(4)
    points = torch.cat([torch.tensor(vertices, dtype=torch.float32), depths[:, None]], dim=1)
    model = SimpleNamespace(faces=face_tensor, uv=UVMap(torch.tensor(vt, dtype=torch.float32), face_tensor))
    return SimpleNamespace(model=model, vertices=points)


def linear_image(height: int, width: int) -> torch.Tensor:
    """1×3×H×W image whose colour is linear in the continuous pixel coordinates (exact under bilinear sampling)."""
    v, u = torch.meshgrid(torch.arange(height) + 0.5, torch.arange(width) + 0.5, indexing="ij")
    return torch.stack([u / width, v / height, 0.25 + 0.5 * u / width - 0.25 * v / height])[None]


def texel_centres(size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """u, v in [0, 1] (v up) of every texel centre, S×S each."""
    rows, columns = torch.meshgrid(torch.arange(size) + 0.5, torch.arange(size) + 0.5, indexing="ij")
    return columns / size, 1 - rows / size


def test_camera_facing_square_reproduces_the_image_under_it_exactly() -> None:
    scene = quads((0.1, -0.2, 1.0, 5.0))
    sampler = TextureSampler(scene.model, TorchRasterizer(), uv_size=UV_SIZE)
    image = linear_image(64, 80)
    focal, centre = 100.0, torch.tensor([40.0, 32.0])
    texture = sampler.sample(image, scene.vertices[None], focal, centre)[0]

    assert texture.shape == (4, UV_SIZE, UV_SIZE)
    assert (texture[3] == 1).all()
    u, v = texel_centres(UV_SIZE)
    x, y = 0.1 + (2 * u - 1), -0.2 + (1 - 2 * v)  # square point of each texel, camera frame, depth 5
    pixel_u, pixel_v = focal * x / 5 + centre[0], focal * y / 5 + centre[1]
    expected = torch.stack([pixel_u / 80, pixel_v / 64, 0.25 + 0.5 * pixel_u / 80 - 0.25 * pixel_v / 64])
    torch.testing.assert_close(texture[:3], expected, atol=1e-4, rtol=0)


@pytest.mark.parametrize("depth_map_scale", [1.0, 0.5])
def test_texels_hidden_behind_a_nearer_square_or_outside_the_mask_are_invisible(depth_map_scale: float) -> None:
    scene = quads((0.0, 0.0, 1.0, 5.0), (0.5, 0.0, 0.4, 4.0))  # the small square hides part of the big one
    sampler = TextureSampler(
        scene.model, TorchRasterizer(), uv_size=UV_SIZE, depth_tolerance=0.01, depth_map_scale=depth_map_scale
    )
    image = torch.cat([linear_image(64, 64), torch.ones(1, 1, 64, 64)], dim=1)
    texture = sampler.sample(image, scene.vertices[None], 100.0, torch.tensor([32.0, 32.0]))[0]

    u, v = texel_centres(UV_SIZE)
    back = u < 0.5
    x, y = 4 * u - 1, 1 - 2 * v  # back square point of each left-half texel
    behind = back & ((x * 4 / 5 - 0.5).abs() < 0.4) & ((y * 4 / 5).abs() < 0.4)  # ray meets the front square
    margin = 0.04 / depth_map_scale  # a depth-map pixel spans 0.04 / depth_map_scale on the front square
    distinct = ((x * 4 / 5 - 0.5).abs() - 0.4).abs().gt(margin) & ((y * 4 / 5).abs() - 0.4).abs().gt(margin)
    visible = texture[3] == 1
    assert behind.sum() > 20
    assert torch.equal(visible[back & distinct], ~behind[back & distinct])
    assert visible[~back].all()

    image[:, 3, :, :32] = 0  # mask out the left half of the image
    masked = sampler.sample(image, scene.vertices[None], 100.0, torch.tensor([32.0, 32.0]))[0]
    left_of_centre = back & (x < -0.02)
    assert not masked[3][left_of_centre].any()
    assert torch.equal(masked[3][back & (x > 0.02)], visible[back & (x > 0.02)])
    assert (masked[:3][:, masked[3] == 0] == 0).all()


def test_batch_matches_one_person_at_a_time() -> None:
    scene = quads((0.0, 0.0, 1.0, 5.0))
    sampler = TextureSampler(scene.model, TorchRasterizer(), uv_size=UV_SIZE)
    images = torch.rand(3, 3, 48, 48, generator=torch.Generator().manual_seed(0))
    vertices = scene.vertices[None] + torch.tensor([[[0.0, 0.0, 0.0]], [[0.3, -0.2, 1.0]], [[-0.5, 0.4, 2.0]]])
    centres = torch.tensor([[24.0, 24.0], [20.0, 26.0], [25.0, 23.0]])
    focals = torch.tensor([60.0, 70.0, 80.0])
    batched = sampler.sample(images, vertices, focals, centres)
    for i in range(3):
        alone = sampler.sample(images[i : i + 1], vertices[i : i + 1], focals[i : i + 1], centres[i : i + 1])
        torch.testing.assert_close(batched[i : i + 1], alone)


def test_crop_camera_samples_the_same_texture_as_the_full_frame() -> None:
    scene = quads((0.3, 0.1, 0.5, 6.0))
    sampler = TextureSampler(scene.model, TorchRasterizer(), uv_size=UV_SIZE)
    frame = linear_image(120, 160)
    focal, frame_size = 300.0, torch.tensor([[160.0, 120.0]])
    full = sampler.sample(frame, scene.vertices[None], focal, frame_size / 2)

    pixels = scene.vertices[:, :2] / 6.0 * focal + frame_size / 2
    box = torch.cat([pixels.amin(0), pixels.amax(0)]).numpy()
    frame_uint8 = (frame[0].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
    people = make_crops([frame_uint8], [box[None]], spec=DEFAULT_CROP_SPEC)
    crop_focal, crop_centre = crop_camera(focal, frame_size, people.center, people.size, 256)
    crops = crops_to_rgb(people.crops, DEFAULT_CROP_SPEC)
    cropped = sampler.sample(crops, scene.vertices[None], crop_focal, crop_centre)

    both = (full[0, 3] == 1) & (cropped[0, 3] == 1)
    assert both.float().mean() > 0.9
    torch.testing.assert_close(cropped[0, :3][:, both], full[0, :3][:, both], atol=3 / 255, rtol=0)


def test_bad_images_are_rejected() -> None:
    scene = quads((0.0, 0.0, 1.0, 5.0))
    sampler = TextureSampler(scene.model, TorchRasterizer(), uv_size=UV_SIZE)
    with pytest.raises(InputError, match="B×3×H×W"):
        sampler.sample(torch.zeros(1, 2, 8, 8), scene.vertices[None], 10.0, torch.tensor([4.0, 4.0]))
    with pytest.raises(InputError, match="vertices"):
        sampler.sample(torch.zeros(2, 3, 8, 8), scene.vertices[None], 10.0, torch.tensor([4.0, 4.0]))
    with pytest.raises(InputError, match="UV"):
        TextureSampler(SimpleNamespace(faces=scene.model.faces, uv=None), TorchRasterizer())


def test_body_seen_from_the_front_shows_its_front_texels_and_from_behind_its_back_texels() -> None:
    body_model = load_body_model()
    sampler = TextureSampler(body_model, TorchRasterizer(), uv_size=64)
    pose = template_pose(2)
    half_turn = torch.tensor([[-1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, -1.0]])
    orient = pose["global_orient"].clone()
    orient[1, 0] = half_turn @ orient[1, 0]
    with torch.no_grad():
        rest = body_model(orient, pose["body_pose"], pose["betas"]).vertices
    centre = (rest.amax(1) + rest.amin(1)) / 2
    vertices = rest - centre[:, None] + torch.tensor([0.0, 0.0, 8.0])
    textures = sampler.sample(torch.rand(2, 3, 128, 128), vertices, 120 * 8 / 1.7, torch.tensor([64.0, 64.0]))

    # Texels on faces turned towards the camera in view 0: the template faces the camera, its normals along -z.
    corners = rest[0][body_model.faces]
    normal = torch.linalg.cross(corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0])
    normal = normal / normal.norm(dim=1, keepdim=True).clamp(min=1e-12)
    texels = uv_texel_map(body_model.uv.vt, body_model.uv.ft, 64)
    texel_normal_z = normal[texels.face_index.clamp(min=0), 2].reshape(-1)
    covered = texels.covered.reshape(-1)
    facing, away = covered & (texel_normal_z < -0.5), covered & (texel_normal_z > 0.5)
    front_view, back_view = textures[0, 3].reshape(-1) == 1, textures[1, 3].reshape(-1) == 1
    # A few back-facing faces are truly visible: the face's concave details (eyelids, mouth, nostrils).
    assert front_view[facing].float().mean() > 0.9 and front_view[away].float().mean() < 0.1
    assert back_view[away].float().mean() > 0.9 and back_view[facing].float().mean() < 0.1
    assert 0.3 < front_view[covered].float().mean() < 0.7
