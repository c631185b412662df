"""Appearance cue: CIELAB conversion, body-part texels, the colour descriptor and texture memory blending."""
from __future__ import annotations

import pytest
import torch
from conftest import CONFIGS
from hydra.utils import instantiate
from omegaconf import OmegaConf

from models.appearance import AppearanceEncoder, ColourDescriptor, blend_textures, rgb_to_lab, texel_part_labels
from models.body import load_body_model
from models.regressors.template import template_pose
from models.structures import InputError
from models.texture import TorchRasterizer, uv_texel_map
from models.texture.sampler import TextureSampler

CONFIG = CONFIGS / "appearance" / "colour.yaml"
SIZE = 8  # synthetic texel maps: 8×8 texels, four parts of 16 texels (quadrants)
RED, GREEN, BLUE, GREY = (0.8, 0.1, 0.1), (0.1, 0.7, 0.2), (0.1, 0.2, 0.8), (0.5, 0.5, 0.5)


@pytest.fixture(scope="module")
def body_model():
    return load_body_model()


def quadrant_descriptor(**kwargs) -> ColourDescriptor:
    """A descriptor over a synthetic 8×8 texel map of four quadrant parts."""
    rows, columns = torch.meshgrid(torch.arange(SIZE), torch.arange(SIZE), indexing="ij")
    labels = (rows >= SIZE // 2).long() * 2 + (columns >= SIZE // 2).long()
    return ColourDescriptor(labels, ["a", "b", "c", "d"], **kwargs)


def quadrant_texture(colours: list[tuple[float, float, float]], visible: torch.Tensor | None = None) -> torch.Tensor:
    """1×4×8×8 texture painting quadrant k with colours[k]; visibility everywhere unless given (8×8 bool)."""
    texture = torch.zeros(1, 4, SIZE, SIZE)
    half = SIZE // 2
    for k, colour in enumerate(colours):
        rows, columns = slice((k // 2) * half, (k // 2 + 1) * half), slice((k % 2) * half, (k % 2 + 1) * half)
        texture[0, :3, rows, columns] = torch.tensor(colour)[:, None, None]
    texture[0, 3] = 1.0 if visible is None else visible.float()
    texture[0, :3] *= texture[0, 3]
    return texture


def test_rgb_to_lab_matches_reference_colours() -> None:
    rgb = torch.tensor([[1.0, 1.0, 1.0], [0.0, 0.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]]).t()[None]
    expected = torch.tensor([[100.0, 0.0, 0.0], [0.0, 0.0, 0.0], [53.24, 80.09, 67.20], [32.30, 79.19, -107.86]]).t()
    torch.testing.assert_close(rgb_to_lab(rgb)[0], expected, atol=0.05, rtol=0)


def test_body_parts_sit_where_the_body_has_them(body_model) -> None:
    parts = OmegaConf.to_container(OmegaConf.load(CONFIG).encoder.parts)
    labels = texel_part_labels(body_model, 128, parts)
    assert set(labels.unique().tolist()) == {-1, *range(len(parts))}
    # Mean height (rest pose, y up) of the texels' 3D points per part: head above torso above ... above feet.
    texels = uv_texel_map(body_model.uv.vt, body_model.uv.ft, 128)
    corners = body_model.layer.v_template[body_model.faces[texels.face_index.clamp(min=0)]]
    height = (corners[..., 1] * texels.bary).sum(-1)
    order = ["head", "torso", "hips_thighs", "lower_legs", "feet"]
    means = [float(height[labels == list(parts).index(name)].mean()) for name in order]
    assert means == sorted(means, reverse=True)
    reach = (corners[..., 0] * texels.bary).sum(-1).abs()  # arms stretch sideways along ±x in the rest pose
    lower_arms, upper_arms = (labels == list(parts).index(name) for name in ("lower_arms", "upper_arms"))
    assert reach[lower_arms].mean() > reach[upper_arms].mean() > reach[labels == list(parts).index("torso")].mean()


def test_encoding_holds_each_parts_mean_colour_and_visible_share() -> None:
    descriptor = quadrant_descriptor()
    visible = torch.ones(SIZE, SIZE, dtype=torch.bool)
    visible[:2, :] = False  # half of parts a and b unseen
    visible[4:, 4:] = False  # part d unseen
    embedding = descriptor.encode(quadrant_texture([RED, GREEN, BLUE, GREY], visible))
    assert embedding.shape == (1, descriptor.embedding_size) == (1, 16)
    per_part = embedding.reshape(4, 4)
    lab = rgb_to_lab(torch.tensor([RED, GREEN, BLUE]).t()[None])[0].t()
    torch.testing.assert_close(per_part[:3, :3], lab, atol=1e-3, rtol=0)
    torch.testing.assert_close(per_part[:, 3], torch.tensor([0.5, 0.5, 1.0, 0.0]))
    assert (per_part[3, :3] == 0).all()


def test_distance_compares_the_same_person_across_viewpoints_and_tells_people_apart() -> None:
    descriptor = quadrant_descriptor()
    front, side = torch.zeros(SIZE, SIZE, dtype=torch.bool), torch.zeros(SIZE, SIZE, dtype=torch.bool)
    front[:, :5] = True  # parts a, c and a column of b, d
    side[:, 3:] = True  # parts b, d and a column of a, c
    person = [RED, GREEN, BLUE, GREY]
    other = [(0.9, 0.9, 0.2), (0.2, 0.2, 0.2), (0.9, 0.5, 0.1), (0.3, 0.6, 0.9)]
    tracks = descriptor.encode(torch.cat([quadrant_texture(person, front), quadrant_texture(other, front)]))
    detections = descriptor.encode(torch.cat([quadrant_texture(person, side), quadrant_texture(other, side)]))
    distance = descriptor.distance(tracks, detections)
    assert distance.shape == (2, 2)
    assert distance[0, 0] < 1e-4 and distance[1, 1] < 1e-4
    assert distance[0, 1] > 0.5 and distance[1, 0] > 0.5
    assert ((distance >= 0) & (distance < 1)).all()


def test_distance_grows_with_colour_difference_and_is_nan_without_shared_parts() -> None:
    descriptor = quadrant_descriptor(min_visible_fraction=0.2)
    base = descriptor.encode(quadrant_texture([GREY] * 4))
    shades = descriptor.encode(torch.cat([quadrant_texture([(g, g, g)] * 4) for g in (0.5, 0.55, 0.7, 0.95)]))
    distances = descriptor.distance(base, shades)[0]
    assert distances[0] == 0 and (distances.diff() > 0).all()

    top, bottom = torch.zeros(SIZE, SIZE, dtype=torch.bool), torch.zeros(SIZE, SIZE, dtype=torch.bool)
    top[:4], bottom[4:] = True, True
    sliver = torch.zeros(SIZE, SIZE, dtype=torch.bool)
    sliver[4, :2] = True  # 2 of the 16 texels of part c: under min_visible_fraction
    a = descriptor.encode(torch.cat([quadrant_texture([GREY] * 4, top), quadrant_texture([GREY] * 4, sliver)]))
    b = descriptor.encode(quadrant_texture([RED] * 4, bottom))
    assert torch.isnan(descriptor.distance(a, b)).all()
    with pytest.raises(InputError, match="N×16"):
        descriptor.distance(a, b[:, :8])


def test_colours_painted_on_the_image_land_on_the_matching_body_parts(body_model) -> None:
    parts = OmegaConf.to_container(OmegaConf.load(CONFIG).encoder.parts)
    descriptor = ColourDescriptor.from_body_model(body_model, 128, parts)
    sampler = TextureSampler(body_model, TorchRasterizer(), uv_size=128)
    pose = template_pose(1)
    with torch.no_grad():
        rest = body_model(pose["global_orient"], pose["body_pose"], pose["betas"]).vertices
    centre = (rest.amax(1) + rest.amin(1)) / 2
    vertices = rest - centre[:, None] + torch.tensor([0.0, 0.0, 8.0])
    image = torch.zeros(1, 3, 128, 128)
    image[:, :, :64] = torch.tensor(RED)[:, None, None]  # upper half of the picture red, lower half blue
    image[:, :, 64:] = torch.tensor(BLUE)[:, None, None]
    texture = sampler.sample(image, vertices, 120 * 8 / 1.7, torch.tensor([64.0, 64.0]))
    per_part = descriptor.encode(texture).reshape(len(parts), 4)
    red_lab, blue_lab = rgb_to_lab(torch.tensor([RED, BLUE]).t()[None])[0].t()
    for name, lab in (("head", red_lab), ("upper_arms", red_lab), ("lower_legs", blue_lab), ("feet", blue_lab)):
        row = per_part[list(parts).index(name)]
        assert row[3] > 0.2
        assert (row[:3] - lab).norm() < 1.0


def test_config_builds_a_colour_descriptor(body_model) -> None:
    config = OmegaConf.load(CONFIG)
    descriptor = instantiate(config.encoder)(body_model=body_model)
    assert isinstance(descriptor, AppearanceEncoder) and isinstance(descriptor, ColourDescriptor)
    assert descriptor.part_names == tuple(config.encoder.parts)
    assert 0 < config.memory_rate <= 1 and config.memory == "texture" and config.distance_scale > 0
    with pytest.raises(InputError, match="not an SMPL joint"):
        ColourDescriptor.from_body_model(body_model, 64, {"torso": ["spine1", "tail"]})


def test_blending_follows_visibility() -> None:
    memory, new = torch.zeros(1, 4, 2, 2), torch.zeros(1, 4, 2, 2)
    memory[0, :3], new[0, :3] = 0.2, 0.8
    memory[0, 3] = torch.tensor([[1.0, 1.0], [0.0, 0.0]])  # texels: both seen, memory only, new only, neither
    new[0, 3] = torch.tensor([[1.0, 0.0], [1.0, 0.0]])
    blended = blend_textures(memory, new, 0.25)
    torch.testing.assert_close(blended[0, :3, 0, 0], torch.full((3,), 0.35))
    torch.testing.assert_close(blended[0, :3, 0, 1], torch.full((3,), 0.2))
    torch.testing.assert_close(blended[0, :3, 1, 0], torch.full((3,), 0.8))
    torch.testing.assert_close(blended[0, :3, 1, 1], torch.full((3,), 0.2))
    assert blended[0, 3].tolist() == [[1.0, 1.0], [1.0, 0.0]]
    with pytest.raises(InputError, match="rate"):
        blend_textures(memory, new, 1.5)
    with pytest.raises(InputError, match="B×4×S×S"):
        blend_textures(memory, new[:, :3], 0.5)
