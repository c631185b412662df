"""Writes tests/fixtures/hmr2_vith_state_dict.json: every (key, shape) of the 4D-Humans HMR2.0 Lightning checkpoint,
and tests/fixtures/hmr2_tiny_reference_outputs.json: the reference code's outputs for a tiny configuration.

The released checkpoint cannot be downloaded here, so its state dict is rebuilt by running the reference code itself:
the modules that `hmr2/models/hmr2.py` (class HMR2) creates, with the released experiment config
(`hmr2/configs_hydra/experiment/hmr_vit_transformer.yaml` over `default.yaml`); it needs ~3 GB of memory.
SMPL data files are licensed and absent, so stand-ins with the published SMPL shapes are written to a temporary
folder: SMPL_NEUTRAL (6890 vertices, 13776 faces, 10 betas, 207 pose blend shapes), SMPL_to_J19 (19×6890) and
smpl_mean_params (pose 144, shape 10, cam 3).

Run in a throwaway environment that has einops, yacs, omegaconf and smplx==0.1.28 (not timm: its three helpers are
stubbed; they only initialise weights), against a working tree of github.com/shubham-goel/4D-Humans:

    python tools/dev/make_hmr2_key_fixture.py --reference /tmp/4dh --commit <sha> --out tests/fixtures
"""

from __future__ import annotations

import argparse
import json
import pickle
import sys
import tempfile
import types
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from omegaconf import OmegaConf

SMPL_VERTICES = 6890
SMPL_FACES = 13776
SMPL_JOINTS = 24
SMPL_BETAS = 10
SMPL_POSE_BASIS = 207
J19_JOINTS = 19
# A tiny configuration of the same architecture, for pinning the numerics of the reimplementation.
TINY_BACKBONE = {"embed_dim": 32, "depth": 2, "num_heads": 2}
TINY_HEAD = {"dim": 32, "depth": 2, "heads": 2, "dim_head": 16, "mlp_dim": 48, "context_dim": 32}
WEIGHT_FORMULA = "0.5 * sin(0.37 * i + 1.3 * k), i = flat element index, k = index of the key in 'key_order'"
INPUT_FORMULA = "sin(0.01 * i), i = flat element index of a 2×3×256×256 tensor"


def formula_tensor(shape: Sequence[int], phase: float, frequency: float = 0.37, scale: float = 0.5) -> torch.Tensor:
    """Deterministic values that do not depend on any random generator (see WEIGHT_FORMULA)."""
    count = int(np.prod(shape))
    return (scale * torch.sin(frequency * torch.arange(count, dtype=torch.float64) + phase)).float().reshape(shape)


def import_reference_packages(reference: Path) -> None:
    """Makes `hmr2.models.*` importable without running package __init__ files (they pull renderers and Lightning)."""
    for name in ("hmr2", "hmr2.models", "hmr2.utils"):
        package = types.ModuleType(name)
        package.__path__ = [str(reference / name.replace(".", "/"))]
        sys.modules[name] = package
    try:
        import timm.models.layers  # noqa: F401
    except ImportError:
        layers = types.ModuleType("timm.models.layers")
        layers.drop_path = lambda x, p, training: x
        layers.to_2tuple = lambda v: tuple(v) if isinstance(v, (tuple, list)) else (v, v)
        layers.trunc_normal_ = lambda tensor, std=1.0: tensor
        for name in ("timm", "timm.models"):
            sys.modules[name] = types.ModuleType(name)
        sys.modules["timm.models.layers"] = layers


def write_smpl_stand_ins(folder: Path) -> dict[str, str]:
    """SMPL-shaped zero arrays in the file formats the reference code reads."""
    smpl = {
        "v_template": np.zeros((SMPL_VERTICES, 3)),
        "shapedirs": np.zeros((SMPL_VERTICES, 3, SMPL_BETAS)),
        "posedirs": np.zeros((SMPL_VERTICES, 3, SMPL_POSE_BASIS)),
        "J_regressor": np.zeros((SMPL_JOINTS, SMPL_VERTICES)),
        "weights": np.zeros((SMPL_VERTICES, SMPL_JOINTS)),
        "kintree_table": np.zeros((2, SMPL_JOINTS), dtype=np.int64),
        "f": np.zeros((SMPL_FACES, 3), dtype=np.int64),
    }
    (folder / "smpl").mkdir()
    with open(folder / "smpl" / "SMPL_NEUTRAL.pkl", "wb") as f:
        pickle.dump(smpl, f)
    with open(folder / "SMPL_to_J19.pkl", "wb") as f:
        pickle.dump(np.zeros((J19_JOINTS, SMPL_VERTICES)), f)
    np.savez(folder / "smpl_mean_params.npz", pose=np.zeros(144), shape=np.zeros(10), cam=np.zeros(3))
    return {
        "MODEL_PATH": str(folder / "smpl"),
        "JOINT_REGRESSOR_EXTRA": str(folder / "SMPL_to_J19.pkl"),
        "MEAN_PARAMS": str(folder / "smpl_mean_params.npz"),
    }


def released_config(reference: Path, data_paths: dict[str, str]):
    """The experiment config HMR2.0 was trained with, SMPL paths pointed at the stand-ins."""
    hydra_dir = reference / "hmr2" / "configs_hydra" / "experiment"
    cfg = OmegaConf.merge(
        OmegaConf.load(hydra_dir / "default.yaml"),
        OmegaConf.load(hydra_dir / "hmr_vit_transformer.yaml"),
    )
    cfg.pop("defaults", None)
    cfg.SMPL.DATA_DIR = str(Path(data_paths["MODEL_PATH"]).parent)
    for key, value in data_paths.items():
        cfg.SMPL[key] = value
    return cfg


def reference_state_dict_shapes(reference: Path) -> list[tuple[str, list[int]]]:
    """(key, shape) of the state dict that HMR2.__init__ builds, in the order Lightning saves it."""
    sys.path.insert(0, str(reference))
    import_reference_packages(reference)
    from hmr2.models.backbones import create_backbone
    from hmr2.models.discriminator import Discriminator
    from hmr2.models.heads import build_smpl_head
    from hmr2.models.smpl_wrapper import SMPL

    with tempfile.TemporaryDirectory() as tmp:
        cfg = released_config(reference, write_smpl_stand_ins(Path(tmp)))
        model = torch.nn.Module()
        model.backbone = create_backbone(cfg)
        model.smpl_head = build_smpl_head(cfg)
        if cfg.LOSS_WEIGHTS.ADVERSARIAL > 0:
            model.discriminator = Discriminator()
        model.smpl = SMPL(**{k.lower(): v for k, v in cfg.SMPL.items()})
        model.register_buffer("initialized", torch.tensor(False))
        return [(key, list(value.shape)) for key, value in model.state_dict().items()]


def reference_tiny_outputs(reference: Path) -> dict:
    """Outputs of the reference backbone + head (tiny sizes, formula weights) on formula inputs."""
    from hmr2.models.backbones.vit import ViT
    from hmr2.models.heads.smpl_head import SMPLTransformerDecoderHead

    with tempfile.TemporaryDirectory() as tmp:
        cfg = released_config(reference, write_smpl_stand_ins(Path(tmp)))
        cfg.MODEL.SMPL_HEAD.TRANSFORMER_DECODER = {**cfg.MODEL.SMPL_HEAD.TRANSFORMER_DECODER, **TINY_HEAD}
        model = torch.nn.Module()
        model.backbone = ViT(img_size=(256, 192), patch_size=16, ratio=1, mlp_ratio=4, qkv_bias=True, **TINY_BACKBONE)
        model.smpl_head = SMPLTransformerDecoderHead(cfg)
    model.eval()
    key_order = list(model.state_dict())
    model.load_state_dict(
        {key: formula_tensor(value.shape, 1.3 * k) for k, (key, value) in enumerate(model.state_dict().items())}
    )
    images = formula_tensor((2, 3, 256, 256), 0.0, frequency=0.01, scale=1.0)
    with torch.no_grad():
        params, cam, _ = model.smpl_head(model.backbone(images[:, :, :, 32:-32]))
    return {
        "what": "outputs of 4D-Humans' vit.ViT + SMPLTransformerDecoderHead, tiny sizes, to pin numerics",
        "backbone": TINY_BACKBONE,
        "head": TINY_HEAD,
        "weights": WEIGHT_FORMULA,
        "inputs": INPUT_FORMULA,
        "key_order": key_order,
        "global_orient": params["global_orient"].tolist(),
        "body_pose": params["body_pose"].tolist(),
        "betas": params["betas"].tolist(),
        "pred_cam": cam.tolist(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reference", type=Path, required=True, help="working tree of shubham-goel/4D-Humans")
    parser.add_argument("--commit", required=True, help="commit of that working tree, recorded in the fixtures")
    parser.add_argument("--out", type=Path, required=True, help="fixture folder")
    args = parser.parse_args()
    keys = reference_state_dict_shapes(args.reference.resolve())
    fixture = {
        "what": "state_dict (key, shape) of the HMR2.0 Lightning checkpoint epoch=35-step=1000000.ckpt (ViT-H)",
        "derivation": (
            "Built by tools/dev/make_hmr2_key_fixture.py from github.com/shubham-goel/4D-Humans at the commit below: "
            "the modules HMR2.__init__ registers (backbone = vit(), smpl_head = SMPLTransformerDecoderHead, "
            "discriminator = Discriminator since LOSS_WEIGHTS.ADVERSARIAL > 0, smpl = SMPL wrapper over "
            "smplx.SMPLLayer 0.1.28, buffer 'initialized'), config hmr_vit_transformer.yaml over default.yaml, "
            "SMPL stand-ins with the published SMPL shapes (6890 vertices, 13776 faces, 10 betas, J19 regressor "
            "19x6890). Backbone and head keys follow from code alone; smpl.* shapes assume the SMPL 1.0 neutral "
            "model and smplx 0.1.28, as the reference setup.py pins."
        ),
        "reference_commit": args.commit,
    }
    header = json.dumps(fixture, indent=1)[:-2]
    rows = ",\n".join("  " + json.dumps([key, shape]) for key, shape in keys)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "hmr2_vith_state_dict.json").write_text(f'{header},\n "keys": [\n{rows}\n ]\n}}\n')
    outputs = {"reference_commit": args.commit, **reference_tiny_outputs(args.reference.resolve())}
    (args.out / "hmr2_tiny_reference_outputs.json").write_text(json.dumps(outputs) + "\n")
    print(f"wrote {len(keys)} keys and the tiny reference outputs to {args.out}")


if __name__ == "__main__":
    main()
