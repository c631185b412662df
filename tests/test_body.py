"""Body model layer: chumpy-free loading of SMPL pickles, refusal of foreign pickles, and the open default model."""

from __future__ import annotations

import os
import pickle
import sys
import types
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse
import smplx
import torch
from conftest import CONFIGS
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate

from models.body import SMPL_JOINT_NAMES, SMPL_PARENTS, default_body_model_path, load_body_model
from models.body.model_file import load_model_arrays
from models.structures import InputError

BODY_CONFIGS = CONFIGS / "body"


def joint(name: str) -> int:
    return SMPL_JOINT_NAMES.index(name)


def rest_pose(batch: int) -> tuple[torch.Tensor, torch.Tensor]:
    identity = torch.eye(3).expand(batch, 24, 3, 3)
    return identity[:, :1], identity[:, 1:]


def synthetic_smpl_arrays(num_vertices: int = 400, seed: int = 0) -> dict:
    """Random arrays with the keys, shapes and types of an official SMPL file (a small mesh)."""
    rng = np.random.default_rng(seed)
    regressor = np.zeros((24, num_vertices))
    for row in regressor:
        picked = rng.choice(num_vertices, size=10, replace=False)
        row[picked] = rng.dirichlet(np.ones(10))
    template = rng.normal(size=(num_vertices, 3))
    kintree = np.stack([np.array(SMPL_PARENTS), np.arange(24)])
    kintree[0, 0] = 4294967295
    return {
        "v_template": template,
        "f": rng.integers(0, num_vertices, size=(600, 3)).astype(np.uint32),
        "weights": rng.dirichlet(np.ones(24), size=num_vertices),
        "J_regressor": scipy.sparse.csc_matrix(regressor),
        "J": regressor @ template,
        "kintree_table": kintree,
        "shapedirs": 0.01 * rng.normal(size=(num_vertices, 3, 10)),
        "posedirs": 0.001 * rng.normal(size=(num_vertices, 3, 207)),
        "bs_type": "lrotmin",
        "bs_style": "lbs",
    }


def write_chumpy_pickle(arrays: dict, path: Path, protocol: int) -> None:
    """Writes `arrays` the way the official SMPL files are stored: v_template, shapedirs and posedirs as
    `chumpy.ch.Ch` objects whose state holds the array under 'x'. A fake `chumpy` module exists only while writing."""
    chumpy = types.ModuleType("chumpy")
    chumpy_ch = types.ModuleType("chumpy.ch")
    ch_class = type("Ch", (), {"__module__": "chumpy.ch"})
    chumpy_ch.Ch = ch_class
    chumpy.ch = chumpy_ch
    sys.modules.update({"chumpy": chumpy, "chumpy.ch": chumpy_ch})
    try:
        stored = dict(arrays)
        for key in ("v_template", "shapedirs", "posedirs"):
            wrapped = ch_class()
            wrapped.__dict__.update({"x": arrays[key], "_dirty_vars": set(), "_itr": None, "_depends_on_deps": {}})
            stored[key] = wrapped
        with open(path, "wb") as file:
            pickle.dump(stored, file, protocol=protocol)
    finally:
        del sys.modules["chumpy"], sys.modules["chumpy.ch"]


@pytest.mark.parametrize("protocol", [0, 2])
def test_official_style_chumpy_pickle_loads_without_chumpy(tmp_path: Path, protocol: int) -> None:
    arrays = synthetic_smpl_arrays()
    path = tmp_path / "SMPL_NEUTRAL.pkl"
    write_chumpy_pickle(arrays, path, protocol)
    assert b"chumpy.ch" in path.read_bytes()
    assert "chumpy" not in sys.modules

    loaded = load_model_arrays(path)
    for key in ("v_template", "shapedirs", "posedirs", "weights", "f", "J", "kintree_table"):
        assert isinstance(loaded[key], np.ndarray)
        np.testing.assert_array_equal(loaded[key], arrays[key])
    np.testing.assert_array_equal(loaded["J_regressor"].toarray(), arrays["J_regressor"].toarray())

    model = load_body_model(tmp_path, gender="neutral")  # a folder holding SMPL_NEUTRAL.pkl, as smplx expects
    assert (model.num_vertices, model.num_faces) == (400, 600)
    assert model.uv is None
    global_orient, body_pose = rest_pose(1)
    output = model(global_orient, body_pose, torch.zeros(1, 10))
    np.testing.assert_allclose(output.vertices[0].numpy(), arrays["v_template"], atol=1e-5)
    np.testing.assert_allclose(output.joints[0].numpy(), arrays["J"], atol=1e-5)


def test_pickle_with_foreign_globals_is_refused(tmp_path: Path) -> None:
    marker = tmp_path / "ran"

    class Payload:
        def __reduce__(self):
            return os.system, (f"touch {marker}",)

    path = tmp_path / "evil.pkl"
    path.write_bytes(pickle.dumps({"v_template": Payload()}, protocol=2))
    with pytest.raises(InputError, match="refused global"):
        load_model_arrays(path)
    assert not marker.exists()


def test_bad_files_raise_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="does not exist"):
        load_body_model(tmp_path / "missing.pkl")
    arrays = synthetic_smpl_arrays()
    del arrays["weights"]
    path = tmp_path / "no_weights.pkl"
    path.write_bytes(pickle.dumps(arrays))
    with pytest.raises(InputError, match="weights"):
        load_body_model(path)


@pytest.fixture(scope="module")
def open_model():
    return load_body_model(None)


@pytest.fixture(scope="module")
def open_arrays() -> dict:
    return load_model_arrays(default_body_model_path())


def test_open_model_counts_come_from_the_file(open_model, open_arrays) -> None:
    assert open_model.num_vertices == open_arrays["v_template"].shape[0]
    assert open_model.num_faces == open_arrays["f"].shape[0]
    assert open_model.faces.dtype == torch.int64 and open_model.faces.shape == (open_model.num_faces, 3)
    assert int(open_model.faces.max()) < open_model.num_vertices
    assert open_model.num_betas == 10 and open_arrays["shapedirs"].shape[2] >= 10
    assert open_arrays["posedirs"].shape == (open_model.num_vertices, 3, 207)
    assert default_body_model_path().stat().st_size < 8e6


def test_smplx_loads_the_open_file_like_an_official_one(open_arrays) -> None:
    official_style = smplx.SMPL(model_path=str(default_body_model_path()))
    output = official_style()
    assert output.vertices.shape == (1, open_arrays["v_template"].shape[0], 3)
    np.testing.assert_allclose(output.vertices[0].detach().numpy(), open_arrays["v_template"], atol=1e-6)


def test_open_model_rest_pose_is_the_template(open_model, open_arrays) -> None:
    global_orient, body_pose = rest_pose(2)
    output = open_model(global_orient, body_pose, torch.zeros(2, 10))
    assert output.vertices.shape == (2, open_model.num_vertices, 3)
    assert output.joints.shape == (2, 24, 3)
    np.testing.assert_allclose(output.vertices[1].numpy(), open_arrays["v_template"], atol=1e-6)
    regressed = open_arrays["J_regressor"] @ open_arrays["v_template"]
    np.testing.assert_allclose(output.joints[0].numpy(), regressed, atol=1e-5)
    np.testing.assert_allclose(open_arrays["J"], regressed, atol=1e-5)


def test_open_model_follows_smpl_tree_weights_and_regressor(open_model, open_arrays) -> None:
    assert open_model.joint_names == SMPL_JOINT_NAMES
    assert open_model.layer.parents.tolist() == list(SMPL_PARENTS)
    weights = open_arrays["weights"]
    assert weights.shape == (open_model.num_vertices, 24)
    assert weights.min() >= 0
    np.testing.assert_allclose(weights.sum(axis=1), 1.0, atol=1e-5)
    assert (weights.max(axis=0) > 0.3).all() and (weights.sum(axis=0) > 10).all(), "every joint should own skin"
    regressor = open_arrays["J_regressor"].toarray()
    assert regressor.min() >= 0
    np.testing.assert_allclose(regressor.sum(axis=1), 1.0, atol=1e-5)


def test_open_model_has_uvs_for_every_face(open_model) -> None:
    uv = open_model.uv
    assert uv is not None
    assert uv.ft.shape == (open_model.num_faces, 3)
    assert int(uv.ft.min()) >= 0 and int(uv.ft.max()) < uv.vt.shape[0]
    assert float(uv.vt.min()) >= 0.0 and float(uv.vt.max()) <= 1.0
    moved = load_body_model(None, device="meta")
    assert moved.uv.vt.device.type == "meta" and moved.faces.device.type == "meta"
    corners = uv.vt[uv.ft]
    doubled_area = (corners[:, 1, 0] - corners[:, 0, 0]) * (corners[:, 2, 1] - corners[:, 0, 1]) - (
        corners[:, 2, 0] - corners[:, 0, 0]
    ) * (corners[:, 1, 1] - corners[:, 0, 1])
    assert (doubled_area.abs() > 0).float().mean() > 0.99, "faces should map to real UV triangles"


def test_open_model_is_human_shaped(open_model) -> None:
    global_orient, body_pose = rest_pose(1)
    output = open_model(global_orient, body_pose, torch.zeros(1, 10))
    vertices, joints = output.vertices[0], output.joints[0]
    height = float(vertices[:, 1].max() - vertices[:, 1].min())
    span = float(vertices[:, 0].max() - vertices[:, 0].min())
    assert 1.5 < height < 1.95
    assert 0.9 < span / height < 1.15, "T-pose arm span should roughly equal height"
    y = joints[:, 1]
    assert (
        y[joint("head")]
        > y[joint("left_shoulder")]
        > y[joint("pelvis")]
        > y[joint("left_knee")]
        > y[joint("left_ankle")]
    )
    assert float(joints[joint("pelvis")].norm()) < 0.3, "the root joint should be near the origin"
    for name in SMPL_JOINT_NAMES:
        if name.startswith("left_"):
            assert joints[joint(name), 0] > 0.03 and joints[joint(name.replace("left_", "right_")), 0] < -0.03
    assert joints[joint("left_foot"), 2] > joints[joint("left_ankle"), 2] + 0.05, "toes should point to +Z"
    wrists = joints[[joint("left_wrist"), joint("right_wrist")]]
    shoulders = joints[[joint("left_shoulder"), joint("right_shoulder")]]
    assert (wrists[:, 1] - shoulders[:, 1]).abs().max() < 0.05, "arms should be horizontal (T-pose)"


def test_first_shape_direction_changes_height(open_model) -> None:
    global_orient, body_pose = rest_pose(2)
    betas = torch.zeros(2, 10)
    betas[0, 0], betas[1, 0] = -2.0, 2.0
    vertices = open_model(global_orient, body_pose, betas).vertices
    heights = vertices[:, :, 1].max(dim=1).values - vertices[:, :, 1].min(dim=1).values
    assert heights[1] - heights[0] > 0.05


def test_rotation_matrices_and_axis_angle_agree(open_model) -> None:
    axis_angle = torch.zeros(2, 24, 3)
    axis_angle[:, joint("left_elbow")] = torch.tensor([0.0, -1.2, 0.0])
    axis_angle[1, 0] = torch.tensor([0.0, 0.0, 0.3])
    betas = torch.zeros(2, 10)
    transl = torch.tensor([[0.0, 0.0, 0.0], [1.0, 2.0, 3.0]])
    from_axis_angle = open_model(axis_angle[:, 0], axis_angle[:, 1:].reshape(2, 69), betas, transl, pose2rot=True)
    matrices = smplx.lbs.batch_rodrigues(axis_angle.reshape(-1, 3)).reshape(2, 24, 3, 3)
    from_matrices = open_model(matrices[:, :1], matrices[:, 1:], betas, transl)
    torch.testing.assert_close(from_axis_angle.vertices, from_matrices.vertices)
    rest = open_model(*rest_pose(1), torch.zeros(1, 10)).joints[0]
    bent = from_matrices.joints[0]
    assert (bent[joint("left_wrist")] - rest[joint("left_wrist")]).norm() > 0.1
    torch.testing.assert_close(bent[joint("right_wrist")], rest[joint("right_wrist")])
    shifted = open_model(matrices[1:, :1], matrices[1:, 1:], betas[1:]).joints[0] + transl[1]
    torch.testing.assert_close(from_matrices.joints[1], shifted)


@pytest.mark.parametrize("model_file", ["open", "smpl"])
def test_skinning_equals_smplx_lbs(model_file: str, tmp_path: Path) -> None:
    """Our SMPL skinning gives smplx's vertices and joints, with pose correctives (random SMPL-format file) and
    without (the open model, whose correctives are zero and skipped)."""
    if model_file == "smpl":
        write_chumpy_pickle(synthetic_smpl_arrays(), tmp_path / "SMPL_NEUTRAL.pkl", protocol=2)
        model = load_body_model(tmp_path)
    else:
        model = load_body_model(None)
    assert model.has_pose_correctives == (model_file == "smpl")
    generator = torch.Generator().manual_seed(3)
    rotations = smplx.lbs.batch_rodrigues(0.6 * torch.randn(3 * 24, 3, generator=generator)).reshape(3, 24, 3, 3)
    betas = torch.randn(3, 10, generator=generator)
    transl = torch.randn(3, 3, generator=generator)
    ours = model(rotations[:, :1], rotations[:, 1:], betas, transl)
    reference = model.layer(global_orient=rotations[:, :1], body_pose=rotations[:, 1:], betas=betas, transl=transl)
    torch.testing.assert_close(ours.vertices, reference.vertices, atol=1e-5, rtol=0)
    torch.testing.assert_close(ours.joints, reference.joints[:, :24], atol=1e-5, rtol=0)
    assert (ours.vertices - model.layer.v_template).abs().max() > 0.1  # the pose moved the mesh


def test_configs_instantiate_the_open_and_an_smpl_model(tmp_path: Path) -> None:
    path = tmp_path / "SMPL_NEUTRAL.pkl"
    write_chumpy_pickle(synthetic_smpl_arrays(), path, protocol=2)
    with initialize_config_dir(config_dir=str(BODY_CONFIGS.parent), version_base=None):
        open_model = instantiate(compose(config_name="track").body)
        smpl_model = instantiate(compose(config_name="track", overrides=["body=smpl", f"body.path={path}"]).body)
    assert open_model.num_vertices == load_model_arrays(default_body_model_path())["v_template"].shape[0]
    assert smpl_model.num_vertices == 400


def test_smplx_file_gives_smpl_convention_outputs(tmp_path: Path) -> None:
    """A (random, small) SMPL-X file: the first 22 SMPL joints plus the middle-finger bases as SMPL's hand joints."""
    rng = np.random.default_rng(1)
    num_vertices = 400
    hand = [20, 25, 26, 20, 28, 29, 20, 31, 32, 20, 34, 35, 20, 37, 38]
    parents = list(SMPL_PARENTS[:22]) + [15, 15, 15] + hand + [p + 15 if p > 21 else 21 for p in hand]
    regressor = np.zeros((55, num_vertices))
    for row in regressor:
        row[rng.choice(num_vertices, size=10, replace=False)] = rng.dirichlet(np.ones(10))
    kintree = np.stack([np.array(parents), np.arange(55)])
    kintree[0, 0] = 4294967295
    template = rng.normal(size=(num_vertices, 3))
    np.savez(
        tmp_path / "SMPLX_NEUTRAL.npz",
        v_template=template,
        f=rng.integers(0, num_vertices, size=(600, 3)).astype(np.uint32),
        weights=rng.dirichlet(np.ones(55), size=num_vertices),
        J_regressor=regressor,
        kintree_table=kintree,
        shapedirs=0.01 * rng.normal(size=(num_vertices, 3, 20)),
        posedirs=0.001 * rng.normal(size=(num_vertices, 3, 486)),
        hands_componentsl=np.eye(45),
        hands_componentsr=np.eye(45),
        hands_meanl=np.zeros(45),
        hands_meanr=np.zeros(45),
        lmk_faces_idx=np.arange(51),
        lmk_bary_coords=np.full((51, 3), 1 / 3),
        dynamic_lmk_faces_idx=np.zeros((79, 17), dtype=np.int64),
        dynamic_lmk_bary_coords=np.full((79, 17, 3), 1 / 3),
    )
    model = load_body_model(tmp_path)
    assert model.is_smplx and model.num_vertices == num_vertices
    output = model(*rest_pose(2), torch.zeros(2, 10))
    assert output.joints.shape == (2, 24, 3)
    np.testing.assert_allclose(output.vertices[1].numpy(), template, atol=1e-5)
    expected = (regressor @ template)[list(range(22)) + [28, 43]]
    np.testing.assert_allclose(output.joints[0].numpy(), expected, atol=1e-5)
