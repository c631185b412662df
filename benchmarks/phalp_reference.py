"""PHALP 0.1.3's own association (deep_sort tracker, nearest-neighbour metric, cost, per-track predictors) on CPU.

For benchmarks only: phalp is not a phalanx dependency. Install it beside phalanx, e.g.
`pip install -c constraints.txt --no-deps --target /tmp/phalp_pkgs phalp==0.1.3 scikit-learn==1.6.1 threadpoolctl`
(newer scikit-learn needs narwhals too),
and pass that folder as `phalp_path`. What cannot run here is substituted minimally, the rest is PHALP's code:

- `phalp/__init__.py` and `phalp/trackers/PHALP.py` import detectron2, pytube, gdown, pycocotools, ... at module
  level. The package is registered without running its `__init__`; PHALP's `forward_for_tracking` and
  `get_uv_distance` (and `HMAR.autoencoder_hmar`, `utils.get_prediction_interval`) are compiled from the installed
  source files, unchanged, onto a stand-in holding only the networks they call.
- HMAR needs SMPL files and downloaded weights: its texture autoencoder (`EncodingHead`, used by `get_uv_distance`)
  and pose predictor (`Pose_transformer`, used for 'P') are PHALP's own classes with random weights. Timing does not
  depend on the weights; the appearance and pose predictions they make are meaningless.
- `sklearn.utils.linear_assignment_` (removed from scikit-learn) is scipy's `linear_sum_assignment`, returned as
  (row, col) pairs: the same optimal assignment.
- `.cuda()` returns the tensor itself while PHALP code runs (CPU run); numpy warnings are silenced as PHALP does.
- phalp 0.1.3's `_pdist` knows only `distance_type='EQ_010'` (with 'EQ_019' its betas are never set and it fails),
  so EQ_010 is used: the same product of appearance, pose, location and depth factors, older betas, pose cap 1.2.
"""
from __future__ import annotations

import ast
import contextlib
import importlib
import importlib.metadata
import importlib.util
import sys
import types
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf
from scipy import stats
from scipy.optimize import linear_sum_assignment

PHALP_VERSION = "0.1.3"
UV_SIZE = 256  # PHALP's UV maps are 4×256×256: RGB, then visibility −1/1
POSE_SIZE = 2048  # HMAR pose embedding; PHALP stores it twice (4096 values) and compares the second copy
APPEARANCE_SIZE = 4096  # autoencoder embedding of a UV map (16×16×16)
JOINTS_2D = 45  # PHALP's location vector: 45 2D joints (joint 44 is the one compared), then 3×3 camera values


class PhalpUnavailable(RuntimeError):
    """phalp (or a package its tracker needs) cannot be imported here; the message says which and how to fix it."""


def phalp_config(n_init: int, max_age: int) -> DictConfig:
    """PHALP's tracking settings (predict 'TPL', one past sample per track, 7 history frames) with the given
    lifecycle, and the sizes of its pose transformer."""
    return OmegaConf.create(
        {
            "verbose": False,
            "use_gt": False,
            "phalp": {
                "predict": "TPL",
                "distance_type": "EQ_010",
                "encode_type": "4c",
                "alpha": 0.1,
                "hungarian_th": 100.0,
                "track_history": 7,
                "past_lookback": 1,
                "n_init": n_init,
                "max_age_track": max_age,
                "shot": 0,
            },
            "MODEL": {
                "TRANSFORMER": {"HEADS": 1, "LAYERS": 1, "BOX_FEATS": 6},
                "SMPL_HEAD": {"IN_CHANNELS": POSE_SIZE},
            },
        }
    )


def detection_data(
    box_xyxy: np.ndarray,
    score: float,
    point: np.ndarray,
    depth: float,
    pose: np.ndarray,
    uv: np.ndarray,
    frame: int,
    person: int,
    image_size: tuple[int, int],
) -> dict[str, Any]:
    """One detection in the form PHALP's `get_human_features` returns, from phalanx-style cues: `point` (2D
    position / longer image side) as joint 44, camera depth as the 'nearness' value, the pose vector zero-padded to
    HMAR's 2048, `uv` a 4×256×256 PHALP UV map; `image_size` is (width, height). The whole-texture embedding
    'appe' is zeros: with predict='TPL' PHALP compares textures through `get_uv_distance` and never reads it."""
    width, height = image_size
    joints = np.repeat(np.asarray(point, dtype=np.float32)[None], JOINTS_2D, axis=0)
    camera = np.array([0.0, 0.0, depth], dtype=np.float32)
    pose_embedding = np.zeros(POSE_SIZE, dtype=np.float32)
    pose_embedding[: len(pose)] = pose
    x0, y0, x1, y1 = (float(v) for v in box_xyxy)
    return {
        "bbox": np.array([x0, y0, x1 - x0, y1 - y0]),
        "conf": score,
        "appe": np.zeros(APPEARANCE_SIZE, dtype=np.float32),
        "pose": np.concatenate([pose_embedding, pose_embedding]),
        "loca": np.concatenate([joints.reshape(-1), camera, camera, camera]),
        "uv": uv,
        "center": np.array([(x0 + x1) / 2, (y0 + y1) / 2]),
        "scale": np.array([x1 - x0, y1 - y0]),
        "size": [height, width],
        "img_path": f"{frame:06d}.jpg",
        "img_name": f"{frame:06d}.jpg",
        "mask_name": person,
        "ground_truth": person,
        "time": frame,
    }


class PhalpAssociation:
    """PHALP's `Tracker.predict()` + `Tracker.update(...)` with its `NearestNeighborDistanceMetric`, per frame."""

    def __init__(self, phalp_path: str | None, n_init: int, max_age: int) -> None:
        modules = _load_modules(phalp_path)
        self.cfg = phalp_config(n_init, max_age)
        stand_in = _stand_in(self.cfg, modules)
        metric = modules["nn_matching"].NearestNeighborDistanceMetric(
            self.cfg, self.cfg.phalp.hungarian_th, self.cfg.phalp.past_lookback
        )
        dims = [APPEARANCE_SIZE, 2 * POSE_SIZE, 2 * JOINTS_2D + 9]
        self.tracker = modules["tracker"].Tracker(
            self.cfg, metric, max_age=max_age, n_init=n_init, phalp_tracker=stand_in, dims=dims
        )
        self._detection = modules["detection"].Detection

    def detections(self, data: Sequence[dict[str, Any]]) -> list[Any]:
        """PHALP `Detection`s of one frame's detection dicts (built outside the timed step, as PHALP does)."""
        return [self._detection(d) for d in data]

    def step(self, detections: list[Any], frame: int) -> list[tuple[int, int]]:
        """One frame of PHALP's tracking loop: predict, then update; returns its (track row, detection) matches."""
        with _cuda_is_cpu(), np.errstate(all="ignore"):
            self.tracker.predict()
            return self.tracker.update(detections, frame, f"{frame:06d}.jpg", 0)

    @property
    def live_tracks(self) -> int:
        return len(self.tracker.tracks)


def _load_modules(phalp_path: str | None) -> dict[str, Any]:
    """PHALP's deep_sort modules and network classes, and the source folder; raises PhalpUnavailable."""
    if phalp_path is not None and phalp_path not in sys.path:
        sys.path.insert(0, phalp_path)
    spec = importlib.util.find_spec("phalp")
    if spec is None or not spec.submodule_search_locations:
        raise PhalpUnavailable(
            "phalp is not importable: install it for the benchmark only, e.g. `pip install -c constraints.txt "
            "--no-deps --target /tmp/phalp_pkgs phalp==0.1.3 scikit-learn==1.6.1 threadpoolctl`, and pass --phalp-path."
        )
    version = importlib.metadata.version("phalp")
    if version != PHALP_VERSION:
        raise PhalpUnavailable(f"phalp {version} is installed; this benchmark drives phalp {PHALP_VERSION}.")
    if not _importable("sklearn.linear_model"):
        raise PhalpUnavailable("scikit-learn is not importable (PHALP's location forecast uses its Ridge).")
    root = Path(next(iter(spec.submodule_search_locations)))
    if "phalp" not in sys.modules:
        package = types.ModuleType("phalp")
        package.__path__ = [str(root)]
        package.__spec__ = spec
        sys.modules["phalp"] = package
    if "sklearn.utils.linear_assignment_" not in sys.modules and not _importable("sklearn.utils.linear_assignment_"):
        shim = types.ModuleType("sklearn.utils.linear_assignment_")
        shim.linear_assignment = _linear_assignment
        sys.modules["sklearn.utils.linear_assignment_"] = shim
    names = {
        "tracker": "phalp.deep_sort_.tracker",
        "nn_matching": "phalp.deep_sort_.nn_matching",
        "detection": "phalp.deep_sort_.detection",
        "encoding_head": "phalp.models.heads.encoding_head",
        "pose_transformer": "phalp.models.pose_transformer",
    }
    modules: dict[str, Any] = {key: importlib.import_module(name) for key, name in names.items()}
    modules["root"] = root
    return modules


def _importable(name: str) -> bool:
    try:
        importlib.import_module(name)
    except ImportError:
        return False
    return True


def _linear_assignment(cost: np.ndarray) -> np.ndarray:
    """The removed `sklearn.utils.linear_assignment_.linear_assignment`: optimal (row, col) pairs, K×2."""
    rows, cols = linear_sum_assignment(cost)
    return np.stack([rows, cols], axis=1)


def _stand_in(cfg: DictConfig, modules: dict[str, Any]) -> types.SimpleNamespace:
    """The `phalp_tracker` the deep_sort tracker calls: PHALP's own methods over PHALP's own network classes."""
    from sklearn.linear_model import Ridge

    root = modules["root"]
    utils = _compile(root / "utils" / "utils.py", None, ["get_prediction_interval"], {"np": np, "stats": stats})
    hmar_methods = _compile(root / "models" / "hmar.py", "HMAR", ["autoencoder_hmar"], {})
    namespace = {"np": np, "torch": torch, "Ridge": Ridge, **utils}
    methods = ["forward_for_tracking", "get_uv_distance"]
    phalp_methods = _compile(root / "trackers" / "PHALP.py", "PHALP", methods, namespace)

    hmar = torch.nn.Module()
    hmar.cfg = cfg
    hmar.encoding_head = modules["encoding_head"].EncodingHead(cfg, img_H=UV_SIZE, img_W=UV_SIZE)
    hmar.pose_transformer = modules["pose_transformer"].Pose_transformer(cfg)
    hmar.eval()
    hmar.autoencoder_hmar = types.MethodType(hmar_methods["autoencoder_hmar"], hmar)
    stand_in = types.SimpleNamespace(cfg=cfg, HMAR=hmar)
    for name, function in phalp_methods.items():
        setattr(stand_in, name, types.MethodType(function, stand_in))
    return stand_in


def _compile(path: Path, owner: str | None, names: list[str], namespace: dict[str, Any]) -> dict[str, Any]:
    """The functions `names` of a source file (methods of class `owner`, or module level), compiled unchanged with
    `namespace` as their globals; the rest of the file (its imports included) is not run."""
    tree = ast.parse(path.read_text(), filename=str(path))
    body = tree.body
    if owner is not None:
        body = next(node.body for node in tree.body if isinstance(node, ast.ClassDef) and node.name == owner)
    found = [node for node in body if isinstance(node, ast.FunctionDef) and node.name in names]
    if len(found) != len(names):
        raise PhalpUnavailable(f"{path} lacks one of {names}: not the phalp {PHALP_VERSION} source.")
    exec(compile(ast.Module(body=found, type_ignores=[]), str(path), "exec"), namespace)
    return {name: namespace[name] for name in names}


@contextlib.contextmanager
def _cuda_is_cpu() -> Iterator[None]:
    """PHALP calls `.cuda()` on tensors; on a CPU run that is the tensor itself."""
    original = torch.Tensor.cuda
    torch.Tensor.cuda = lambda self, *args, **kwargs: self
    try:
        yield
    finally:
        torch.Tensor.cuda = original
