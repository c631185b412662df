"""HMR2 regressor: checkpoint layout and loading, batching, autocast, cameras and the template regressor."""

from __future__ import annotations

import json
import logging
import pickle
import sys
import types
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
import smplx
import torch

from models.body.joints import SMPL_PARENTS
from models.camera import cam_crop_to_full, full_frame_focal_length, project
from models.crops import make_crops
from models.regressors import TemplateRegressor
from models.regressors.hmr2 import PRESETS, HMR2Network, HMR2Regressor
from models.regressors.hmr2.checkpoint import IGNORED_GROUPS, LOADED_PREFIXES, check_keys
from models.regressors.hmr2.head import HeadArchitecture, rot6d_to_rotmat
from models.regressors.hmr2.network import HMR2Architecture, pose_to_rotmats
from models.regressors.hmr2.vit import ViTArchitecture
from models.structures import BodyParams, InputError, PersonBatch

FIXTURE = Path(__file__).parent / "fixtures" / "hmr2_vith_state_dict.json"
REFERENCE_OUTPUTS = Path(__file__).parent / "fixtures" / "hmr2_tiny_reference_outputs.json"


class Opaque:
    """An arbitrary Python object, as a foreign checkpoint might carry."""


def fixture_shapes() -> dict[str, tuple[int, ...]]:
    return {key: tuple(shape) for key, shape in json.loads(FIXTURE.read_text())["keys"]}


def model_shapes(network: torch.nn.Module) -> dict[str, tuple[int, ...]]:
    return {key: tuple(value.shape) for key, value in network.state_dict().items()}


def random_batch(n: int, seed: int = 0) -> PersonBatch:
    """n normalised-looking crops with boxes in a 640×480 frame."""
    generator = torch.Generator().manual_seed(seed)
    crops = torch.randn(n, 3, 256, 256, generator=generator)
    x1 = torch.rand(n, generator=generator) * 500
    y1 = torch.rand(n, generator=generator) * 300
    boxes = torch.stack(
        [x1, y1, x1 + 40 + 60 * torch.rand(n, generator=generator), y1 + 100 + 60 * torch.rand(n, generator=generator)],
        1,
    )
    center = (boxes[:, :2] + boxes[:, 2:]) / 2
    size = (boxes[:, 3] - boxes[:, 1]).maximum((boxes[:, 2] - boxes[:, 0]) * 4 / 3)
    return PersonBatch(
        crops,
        boxes,
        center,
        size,
        torch.zeros(n, dtype=torch.long),
        torch.arange(n),
        torch.tensor([[640.0, 480.0]]).expand(n, 2),
    )


@pytest.fixture(scope="module")
def small_regressor() -> HMR2Regressor:
    torch.manual_seed(0)
    return HMR2Regressor(preset="small", random_weights=True, batch_size=4)


@contextmanager
def fake_yacs():
    """A module named yacs.config whose CfgNode pickles like the real one: a dict subclass with attribute state."""
    yacs, config = types.ModuleType("yacs"), types.ModuleType("yacs.config")

    class CfgNode(dict):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.__dict__.update(
                {"__immutable__": True, "__deprecated_keys__": set(), "__renamed_keys__": {}, "__new_allowed__": True}
            )

    CfgNode.__module__, CfgNode.__qualname__ = "yacs.config", "CfgNode"
    config.CfgNode, yacs.config = CfgNode, config
    sys.modules.update({"yacs": yacs, "yacs.config": config})
    try:
        yield CfgNode
    finally:
        del sys.modules["yacs"], sys.modules["yacs.config"]


def lightning_checkpoint(network: HMR2Network, path: Path, extra_hparams: dict | None = None) -> Path:
    """Saves `network` in the 4D-Humans Lightning layout: state_dict with smpl/discriminator/initialized extras
    and a yacs CfgNode in hyper_parameters."""
    state = dict(network.state_dict())
    state.update(
        {
            "initialized": torch.tensor(True),
            "smpl.v_template": torch.zeros(6890, 3),
            "smpl.joint_map": torch.arange(25),
            "discriminator.D_conv1.weight": torch.zeros(32, 9, 1, 1),
        }
    )
    with fake_yacs() as CfgNode:
        cfg = CfgNode(
            {"MODEL": CfgNode({"IMAGE_SIZE": 256, "BBOX_SHAPE": [192, 256]}), "EXTRA": CfgNode({"FOCAL_LENGTH": 5000})}
        )
        torch.save(
            {
                "epoch": 35,
                "global_step": 1000000,
                "pytorch-lightning_version": "1.8.1",
                "state_dict": state,
                "loops": {"fit_loop": {"state_dict": {}, "epoch_progress": {"total": {"ready": 36}}}},
                "callbacks": {"ModelCheckpoint": {"best_model_path": "", "best_model_score": None}},
                "optimizer_states": [],
                "lr_schedulers": [],
                "hparams_name": "kwargs",
                "hyper_parameters": {"cfg": cfg, **(extra_hparams or {})},
            },
            path,
        )
    return path


def test_vit_h_state_dict_matches_the_released_checkpoint_keys_exactly():
    with torch.device("meta"):
        network = HMR2Network(PRESETS["vit_h"])
    ours = model_shapes(network)
    reference = fixture_shapes()
    loaded = {key: shape for key, shape in reference.items() if key.startswith(LOADED_PREFIXES)}
    assert ours == loaded
    assert sum(np.prod(shape) for shape in ours.values()) > 600_000_000
    ignored = check_keys(reference, ours, str(FIXTURE))
    assert {group: len(keys) for group, keys in ignored.items()} == {
        "smpl.": 10,
        "discriminator.": 62,
        "initialized": 1,
    }
    assert len(loaded) + sum(len(keys) for keys in ignored.values()) == len(reference)


def formula_tensor(shape, phase: float, frequency: float = 0.37, scale: float = 0.5) -> torch.Tensor:
    """The fixture's deterministic values: scale · sin(frequency · i + phase) over the flat index i."""
    count = int(np.prod(shape))
    return (scale * torch.sin(frequency * torch.arange(count, dtype=torch.float64) + phase)).float().reshape(shape)


def test_numerics_match_the_4d_humans_reference_code():
    reference = json.loads(REFERENCE_OUTPUTS.read_text())
    arch = HMR2Architecture(ViTArchitecture(**reference["backbone"]), HeadArchitecture(**reference["head"]))
    network = HMR2Network(arch).eval()
    shapes = model_shapes(network)
    assert sorted(shapes) == sorted(reference["key_order"])
    network.load_state_dict({key: formula_tensor(shapes[key], 1.3 * k) for k, key in enumerate(reference["key_order"])})
    with torch.no_grad():
        pose_6d, betas, pred_cam = network(formula_tensor((2, 3, 256, 256), 0.0, frequency=0.01, scale=1.0))
    global_orient, body_pose = pose_to_rotmats(pose_6d)
    for name, ours in (
        ("global_orient", global_orient),
        ("body_pose", body_pose),
        ("betas", betas),
        ("pred_cam", pred_cam),
    ):
        assert torch.allclose(ours, torch.tensor(reference[name]), atol=1e-4), name


def test_key_check_names_missing_unexpected_and_misshaped_keys():
    with torch.device("meta"):
        ours = model_shapes(HMR2Network(PRESETS["vit_h"]))
    reference = fixture_shapes()
    broken = dict(reference)
    del broken["backbone.blocks.31.mlp.fc2.bias"]
    broken["keypoint_3d_loss.weight"] = (1,)
    broken["smpl_head.decshape.weight"] = (11, 1024)
    with pytest.raises(InputError) as error:
        check_keys(broken, ours, "x.ckpt")
    message = str(error.value)
    assert "missing: backbone.blocks.31.mlp.fc2.bias" in message
    assert "unexpected: keypoint_3d_loss.weight" in message
    assert "shape mismatch: smpl_head.decshape.weight (11, 1024) vs model (10, 1024)" in message
    assert set(IGNORED_GROUPS) == {"smpl.", "discriminator.", "initialized"}


def test_lightning_checkpoint_round_trip_gives_identical_outputs(tmp_path, caplog):
    torch.manual_seed(1)
    original = HMR2Network(PRESETS["small"]).eval()
    with torch.no_grad():
        original.smpl_head.init_cam.copy_(torch.tensor([[0.7, 0.1, -0.2]]))
    path = lightning_checkpoint(original, tmp_path / "hmr2.ckpt")
    with caplog.at_level(logging.INFO, logger="models.regressors.hmr2.checkpoint"):
        loaded = HMR2Regressor(str(path), preset="small")
    assert "ignored 2 key(s) of smpl." in caplog.text and "discriminator." in caplog.text
    crops = torch.randn(3, 3, 256, 256)
    with torch.no_grad():
        expected = original(crops)
        got = loaded.network(crops)
    for e, g in zip(expected, got):
        assert torch.equal(e, g)


def test_foreign_objects_need_an_explicit_opt_in(tmp_path):
    path = lightning_checkpoint(HMR2Network(PRESETS["small"]), tmp_path / "odd.ckpt", {"thing": Opaque()})
    with pytest.raises(InputError, match=r"Opaque\).*trust_checkpoint=true"):
        HMR2Regressor(str(path), preset="small")
    with fake_yacs():
        assert HMR2Regressor(str(path), preset="small", trust_checkpoint=True).network is not None


def test_wrong_preset_for_the_checkpoint_is_named(tmp_path):
    path = tmp_path / "bare.pt"
    torch.save({"backbone.pos_embed": torch.zeros(1, 193, 1280)}, path)
    with pytest.raises(InputError, match="missing: .*unexpected: |shape mismatch: backbone.pos_embed"):
        HMR2Regressor(str(path), preset="small")


def test_no_checkpoint_says_where_to_get_it():
    with pytest.raises(InputError, match="hmr2_data.tar.gz.*regressor=template"):
        HMR2Regressor(preset="small")
    with pytest.raises(InputError, match="does not exist"):
        HMR2Regressor("/nonexistent/hmr2.ckpt", preset="small")


def test_batched_outputs_equal_one_by_one(small_regressor):
    batch = random_batch(7)
    together = small_regressor.predict(batch)
    assert len(together) == 7 and together.has_pose
    for i in range(7):
        alone = small_regressor.predict(batch.index(slice(i, i + 1)))
        for name, value in alone.tensors().items():
            assert torch.allclose(value, together.index(i).tensors()[name], atol=1e-5, rtol=1e-5), name


def rotation_angle_deg(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Angle of the rotation between matching rotation matrices, in degrees."""
    cosine = (((a.transpose(-1, -2) @ b).diagonal(dim1=-2, dim2=-1).sum(-1) - 1) / 2).clamp(-1, 1)
    return torch.rad2deg(torch.arccos(cosine))


def test_bf16_autocast_is_close_to_fp32(small_regressor):
    batch = random_batch(4, seed=3)
    fp32 = small_regressor.predict(batch)
    amp = HMR2Regressor(preset="small", random_weights=True, amp_dtype="bfloat16")
    amp.network.load_state_dict(small_regressor.network.state_dict())
    bf16 = amp.predict(batch)
    assert bf16.betas.dtype == torch.float32
    assert not torch.equal(bf16.pred_cam, fp32.pred_cam), "autocast must actually change the arithmetic"
    assert torch.allclose(bf16.pred_cam, fp32.pred_cam, atol=0.02)
    assert torch.allclose(bf16.betas, fp32.betas, atol=0.03)
    assert torch.allclose(bf16.cam_t, fp32.cam_t, rtol=0.03)
    angles = rotation_angle_deg(
        torch.cat([bf16.global_orient, bf16.body_pose], 1), torch.cat([fp32.global_orient, fp32.body_pose], 1)
    )
    assert float(angles.mean()) < 1.0 and float(angles.max()) < 15.0


def test_outputs_are_rotations_and_cameras_follow_4d_humans(small_regressor):
    batch = random_batch(5, seed=5)
    params = small_regressor.predict(batch)
    rotations = torch.cat([params.global_orient, params.body_pose], dim=1)
    assert rotations.shape == (5, 24, 3, 3) and params.betas.shape == (5, 10)
    assert torch.allclose(rotations @ rotations.transpose(-1, -2), torch.eye(3).expand_as(rotations), atol=1e-5)
    assert torch.allclose(torch.linalg.det(rotations), torch.ones(5, 24), atol=1e-5)
    focal = 5000 / 256 * 640
    assert torch.allclose(params.focal_length, torch.full((5,), focal))
    s, tx, ty = params.pred_cam.unbind(-1)
    assert torch.allclose(params.cam_t[:, 2], 2 * focal / (batch.size * s), rtol=1e-4)
    assert torch.allclose(
        params.cam_t[:, 0], tx + 2 * (batch.center[:, 0] - 320) / (batch.size * s), rtol=1e-4, atol=1e-4
    )
    assert torch.allclose(
        params.cam_t[:, 1], ty + 2 * (batch.center[:, 1] - 240) / (batch.size * s), rtol=1e-4, atol=1e-4
    )


def test_rot6d_identity_and_orthonormality():
    assert torch.allclose(rot6d_to_rotmat(torch.tensor([1.0, 0, 0, 0, 1, 0])), torch.eye(3))
    rotations = rot6d_to_rotmat(torch.randn(100, 6))
    assert torch.allclose(rotations @ rotations.transpose(-1, -2), torch.eye(3).expand(100, 3, 3), atol=1e-5)
    assert torch.allclose(torch.linalg.det(rotations), torch.ones(100), atol=1e-5)


def test_full_frame_camera_maps_crop_projection_into_the_box_region():
    """At depth zero the weak-perspective crop projection and the full-frame pinhole projection agree exactly."""
    generator = torch.Generator().manual_seed(0)
    pred_cam = torch.tensor([[0.8, 0.05, -0.1], [1.2, -0.2, 0.3]])
    center, size = torch.tensor([[300.0, 200.0], [50.0, 400.0]]), torch.tensor([150.0, 90.0])
    image_size = torch.tensor([[640.0, 480.0], [640.0, 480.0]])
    points = torch.cat([torch.rand(2, 20, 2, generator=generator) - 0.5, torch.zeros(2, 20, 1)], dim=-1)
    focal = full_frame_focal_length(image_size, 5000.0, 256)
    pixels = project(points, cam_crop_to_full(pred_cam, center, size, image_size, focal), focal, image_size)
    crop_normalised = pred_cam[:, None, :1] * (points[..., :2] + pred_cam[:, None, 1:])
    expected = center[:, None] + crop_normalised * size[:, None, None] / 2
    assert torch.allclose(pixels, expected, atol=1e-3)


def write_tiny_smpl(path: Path, vertices: int = 64, seed: int = 0) -> dict[str, int]:
    """A tiny random SMPL-format model: a 0.5 × 1.75 × 0.2 m box of vertices, SMPL's 24-joint tree, 10 betas."""
    rng = np.random.default_rng(seed)
    template = rng.uniform([-0.25, -1.0, -0.1], [0.25, 0.75, 0.1], size=(vertices, 3))
    template[:2, 1] = [-1.0, 0.75]
    regressor = rng.uniform(0, 1, size=(24, vertices))
    weights = rng.uniform(0, 1, size=(vertices, 24))
    model = {
        "v_template": template,
        "shapedirs": rng.normal(0, 0.01, size=(vertices, 3, 10)),
        "posedirs": rng.normal(0, 0.01, size=(vertices, 3, 207)),
        "J_regressor": regressor / regressor.sum(1, keepdims=True),
        "weights": weights / weights.sum(1, keepdims=True),
        "kintree_table": np.stack([np.array(SMPL_PARENTS), np.arange(24)]),
        "f": rng.integers(0, vertices, size=(40, 3)),
    }
    with open(path, "wb") as f:
        pickle.dump(model, f)
    names = ["nose", "reye", "leye", "rear", "lear", "LBigToe", "LSmallToe", "LHeel", "RBigToe", "RSmallToe", "RHeel"]
    names += [side + tip for side in "lr" for tip in ("thumb", "index", "middle", "ring", "pinky")]
    return {name: i for i, name in enumerate(names)}


def test_template_bodies_project_inside_their_boxes(tmp_path):
    vertex_ids = write_tiny_smpl(tmp_path / "tiny.pkl")
    body = smplx.SMPLLayer(model_path=str(tmp_path / "tiny.pkl"), vertex_ids=vertex_ids)
    template = TemplateRegressor.from_body_model(body)
    assert template.body_height_m == pytest.approx(1.75)
    boxes = [
        np.array([[100, 50, 150, 200], [400, 300, 430, 380]], np.float32),
        np.array([[600, 10, 700, 300]], np.float32),
    ]
    batch = make_crops([np.zeros((480, 720, 3), np.uint8)] * 2, boxes)
    params = template.predict(batch)
    assert not params.has_pose and template.name == "template"
    output = body(global_orient=params.global_orient, body_pose=params.body_pose, betas=params.betas, pose2rot=False)
    joints = project(output.joints, params.cam_t, params.focal_length, params.image_size)
    vertices = project(output.vertices, params.cam_t, params.focal_length, params.image_size)
    box = batch.boxes[:, None, :]
    assert (joints >= box[..., :2] - 0.5).all() and (joints <= box[..., 2:] + 0.5).all()
    assert torch.allclose(vertices[..., 1].min(1).values, batch.boxes[:, 1], atol=0.5), "head at the box top"
    assert torch.allclose(vertices[..., 1].max(1).values, batch.boxes[:, 3], atol=0.5), "feet at the box bottom"
    focal = 5000 / 256 * 720
    assert torch.allclose(params.cam_t[:, 2], focal * 1.75 / (batch.boxes[:, 3] - batch.boxes[:, 1]), rtol=1e-5)


def test_body_params_index_cat_and_to(small_regressor):
    params = small_regressor.predict(random_batch(3))
    assert len(params.index(1)) == 1 and len(params.index(-1)) == 1
    assert torch.equal(params.index(-1).betas, params.betas[2:])
    joined = BodyParams.cat([params.index(0), params.index(slice(1, 3))])
    assert all(torch.equal(a, b) for a, b in zip(joined.tensors().values(), params.tensors().values()))
    assert params.to("cpu").cam_t.device.type == "cpu"
