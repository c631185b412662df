"""Reading the 4D-Humans HMR2.0 Lightning checkpoint safely and loading it with every key accounted for.

Key policy (strict): `backbone.*` and `smpl_head.*` are the network and must match the model exactly (names and
shapes). Three groups are known and deliberately not loaded, each logged: `smpl.*` (the SMPL layer's buffers, a copy
of the licensed body model; phalanx takes its body model from models/body), `discriminator.*` (the adversarial pose
prior, used only in training) and `initialized` (a training-time flag). Any other key is an error.

Unpickling policy: `torch.load(weights_only=True)` always. The released checkpoint stores its yacs config in
`hyper_parameters`, which that loader refuses; a yacs CfgNode is a plain dict subclass whose state is a dict, so
it is read into an OrderedDict through an allow-listed stand-in (no yacs import, no code from the file runs). Any
other Python object in the file stops the load with a sentence naming it, unless the user opts in with
`trust_checkpoint=True` (full pickle: runs code from the file).
"""

from __future__ import annotations

import logging
import pickle
import re
import zipfile
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from pathlib import Path

import torch
from torch import nn

from models.structures import InputError

log = logging.getLogger(__name__)

LOADED_PREFIXES = ("backbone.", "smpl_head.")
IGNORED_GROUPS = {
    "smpl.": "SMPL layer buffers (the body model comes from models/body)",
    "discriminator.": "adversarial discriminator (training only)",
    "initialized": "training-time initialisation flag",
}
CHECKPOINT_SOURCE = (
    "the HMR2.0 checkpoint is logs/train/multiruns/hmr2/0/checkpoints/epoch=35-step=1000000.ckpt inside "
    "https://people.eecs.berkeley.edu/~jathushan/projects/4dhumans/hmr2_data.tar.gz (4D-Humans)"
)


class PickledConfig:
    """Inert stand-in for yacs.config.CfgNode while unpickling: builds an OrderedDict (the one mapping type whose
    items and attribute state the safe loader may set), so the config's keys and values survive and nothing runs."""

    def __new__(cls, *args: object) -> OrderedDict:
        return OrderedDict()


def _ignored_group(key: str) -> str | None:
    for group in IGNORED_GROUPS:
        if key == group or (group.endswith(".") and key.startswith(group)):
            return group
    return None


def read_state_dict(path: str | Path, trust_checkpoint: bool = False) -> dict[str, torch.Tensor]:
    """The `state_dict` of a Lightning checkpoint (or a bare state dict file), tensors on CPU."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"regressor.checkpoint {path} does not exist; {CHECKPOINT_SOURCE}.")
    try:
        with torch.serialization.safe_globals([(PickledConfig, "yacs.config.CfgNode")]):
            checkpoint = torch.load(path, map_location="cpu", weights_only=True, mmap=zipfile.is_zipfile(path))
    except pickle.UnpicklingError as error:
        if not trust_checkpoint:
            found = re.search(r"GLOBAL (\S+)", str(error))
            what = found.group(1) if found else "an object"
            raise InputError(
                f"regressor.checkpoint {path} contains a Python object ({what}) that the safe loader refuses; "
                "set regressor.trust_checkpoint=true only if you trust where the file came from."
            ) from error
        log.warning("Loading %s with full pickle (regressor.trust_checkpoint=true).", path)
        checkpoint = torch.load(path, map_location="cpu", weights_only=False)
    except RuntimeError as error:
        raise InputError(f"regressor.checkpoint {path} is not a readable torch checkpoint ({error}).") from error
    state = checkpoint.get("state_dict", checkpoint) if isinstance(checkpoint, Mapping) else None
    if not isinstance(state, Mapping) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise InputError(f"regressor.checkpoint {path} has no 'state_dict' mapping of tensors.")
    return dict(state)


def check_keys(
    checkpoint_shapes: Mapping[str, Sequence[int]], model_shapes: Mapping[str, Sequence[int]], source: str
) -> dict[str, list[str]]:
    """Accounts for every checkpoint key against the model; returns the ignored keys by group.

    Raises InputError naming missing, unexpected and wrongly shaped keys.
    """
    ignored: dict[str, list[str]] = {group: [] for group in IGNORED_GROUPS}
    unexpected, wrong_shape = [], []
    for key, shape in checkpoint_shapes.items():
        group = _ignored_group(key)
        if group is not None:
            ignored[group].append(key)
        elif key not in model_shapes:
            unexpected.append(key)
        elif tuple(shape) != tuple(model_shapes[key]):
            wrong_shape.append(f"{key} {tuple(shape)} vs model {tuple(model_shapes[key])}")
    missing = [key for key in model_shapes if key not in checkpoint_shapes]
    problems = [
        f"{label}: {', '.join(names[:8])}{' …' if len(names) > 8 else ''} ({len(names)})"
        for label, names in (("missing", missing), ("unexpected", unexpected), ("shape mismatch", wrong_shape))
        if names
    ]
    if problems:
        raise InputError(f"regressor.checkpoint {source} does not match the HMR2 model ({'; '.join(problems)}).")
    return ignored


def load_checkpoint(network: nn.Module, path: str | Path, trust_checkpoint: bool = False) -> None:
    """Loads HMR2.0 weights into `network` (an HMR2Network) with the strict key policy above."""
    state = read_state_dict(path, trust_checkpoint)
    model_shapes = {key: tuple(value.shape) for key, value in network.state_dict().items()}
    ignored = check_keys({key: tuple(value.shape) for key, value in state.items()}, model_shapes, str(path))
    for group, keys in ignored.items():
        if keys:
            log.info("HMR2 checkpoint: ignored %d key(s) of %s: %s", len(keys), group, IGNORED_GROUPS[group])
    network.load_state_dict({key: state[key] for key in model_shapes}, strict=True)
