"""Saving and loading models: run directories, nofrost checkpoints, official NoFrost weights.

``save_model(model, directory)`` writes ``model.safetensors`` (the weights) and
``model.json`` (the model's ``nofrost_spec``), each atomically (a temporary file in the same
directory, then ``os.replace``).

``load_model(path, device="cpu")`` returns the model in eval mode. ``path`` may be

(a) a run directory with ``model.safetensors`` + ``model.json`` (or, failing those, a
    ``checkpoint.pt``), or a ``.safetensors`` file with a ``model.json`` beside it;
(b) a nofrost training checkpoint: a ``torch.save``d dict with
    ``{"format": "nofrost-checkpoint-v1", "model_spec": spec, "model": state_dict, ...}``;
(c) an official NoFrost release checkpoint (github.com/amazon-research/
    normalizer-free-robust-training): a timm ``nf_resnet50`` / ``nf_resnet26`` / ``resnet50``
    / ``resnet26`` state dict, possibly nested under "state_dict" or "model" and with the
    ``module.`` prefix of (Distributed)DataParallel, trained on ImageNet-normalized inputs.
    The architecture is read from the keys (NF or BN, depth from the number of blocks in
    the third stage) and ``num_classes`` from the classifier's shape; the model gets the
    ImageNet mean/std.

Torch files are read with ``torch.load(weights_only=True)``: no arbitrary object is ever
unpickled. Every failure is a ``ModelLoadError`` (a ``ValueError``) or ``FileNotFoundError``
whose message says what was expected and what to do.
"""

from __future__ import annotations

import json
import os
import pickle
import re
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Union

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file as load_safetensors
from safetensors.torch import save_file as save_safetensors
from torch import nn

from nofrost.files import CHECKPOINT_FORMAT, atomic_write, atomic_write_text
from nofrost.models.factory import create_model, validate_spec
from nofrost.models.normalize import IMAGENET_MEAN, IMAGENET_STD

PathLike = Union[str, os.PathLike]

WEIGHTS_FILE = "model.safetensors"
SPEC_FILE = "model.json"
CHECKPOINT_FILE = "checkpoint.pt"

_TIMM_NF_KEYS = ("stem.conv.weight", "stages.2.0.conv1.weight", "head.fc.weight")
_TIMM_RESNET_KEYS = ("conv1.weight", "layer3.0.conv1.weight", "fc.weight")
_DEPTH_BY_STAGE3_BLOCKS = {2: "26", 6: "50"}


class ModelLoadError(ValueError):
    """A model file exists but cannot be turned into a model."""


# --------------------------------------------------------------------------- saving


def model_spec(model: nn.Module) -> dict[str, Any]:
    """The model's ``nofrost_spec``; models not made by ``create_model`` have none."""
    spec = getattr(model, "nofrost_spec", None)
    if spec is None:
        raise ValueError(
            f"{type(model).__name__} has no nofrost_spec, so it could not be rebuilt from a saved "
            f"file; build models with nofrost.models.create_model(...) (or load_model(...))"
        )
    return validate_spec(spec)


def unwrap_model(model: nn.Module) -> nn.Module:
    """The model inside (Distributed)DataParallel and ``torch.compile`` wrappers."""
    while True:
        if isinstance(model, (nn.DataParallel, nn.parallel.DistributedDataParallel)):
            model = model.module
        elif isinstance(getattr(model, "_orig_mod", None), nn.Module):
            model = model._orig_mod
        else:
            return model


def save_model(model: nn.Module, directory: PathLike) -> Path:
    """Write ``model.safetensors`` and ``model.json`` into ``directory`` (created if needed).

    ``model`` may be wrapped by (Distributed)DataParallel or ``torch.compile``; the weights
    of the model inside are saved. Returns the directory. Both files are written atomically.
    """
    model = unwrap_model(model)
    spec = model_spec(model)
    spec_text = json.dumps(spec, indent=2, sort_keys=True) + "\n"
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().to("cpu").contiguous().clone() for k, v in model.state_dict().items()}
    metadata = {"format": "nofrost-model-v1", "name": spec["name"]}
    atomic_write(directory / WEIGHTS_FILE, lambda tmp: save_safetensors(tensors, tmp, metadata=metadata))

    atomic_write_text(directory / SPEC_FILE, spec_text)
    return directory


# --------------------------------------------------------------------------- reading files


def _first_sentence(err: BaseException) -> str:
    text = str(err).strip().splitlines()[0] if str(err).strip() else ""
    return f"{type(err).__name__}: {text.split('. ')[0]}"


def _read_torch_file(path: Path) -> Any:
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        if "weights only load failed" in str(err).lower():
            found = re.search(r"Unsupported global: GLOBAL ([\w.]+)", str(err))
            what = f" (found {found.group(1)})" if found else ""
            raise ModelLoadError(
                f"refusing to load {str(path)!r}: it contains Python objects other than tensors and "
                f"plain containers{what}, and nofrost never unpickles arbitrary objects. Re-save only "
                f"the weights, e.g. torch.save(model.state_dict(), path)."
            ) from None
        raise _corrupted(path, err) from None
    except (RuntimeError, EOFError, OSError, zipfile.BadZipFile, ValueError, KeyError, IndexError) as err:
        raise _corrupted(path, err) from None


def _corrupted(path: Path, err: BaseException) -> ModelLoadError:
    return ModelLoadError(
        f"could not read {str(path)!r} ({path.stat().st_size} bytes) as a PyTorch checkpoint: the "
        f"file is truncated or corrupted ({_first_sentence(err)}). Copy or download it again, or "
        f"re-save it."
    )


def _read_safetensors(path: Path) -> dict[str, torch.Tensor]:
    try:
        return load_safetensors(str(path), device="cpu")
    except (SafetensorError, OSError, ValueError, RuntimeError) as err:
        size = path.stat().st_size
        raise ModelLoadError(
            f"could not read {str(path)!r} ({size} bytes) as safetensors weights: the file is "
            f"truncated or corrupted ({err}). Re-save the model with nofrost.models.save_model."
        ) from None


def _read_spec(path: Path) -> dict[str, Any]:
    try:
        spec = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ModelLoadError(
            f"{str(path)!r} is not valid JSON ({err}); it should hold the model spec "
            f'{{"name": ..., "num_classes": ..., "kwargs": {{...}}}} written by save_model'
        ) from None
    try:
        return validate_spec(spec, source=str(path))
    except ValueError as err:
        raise ModelLoadError(str(err)) from None


# --------------------------------------------------------------------------- building


def _build(spec: Mapping[str, Any], source: str) -> nn.Module:
    try:
        return create_model(spec["name"], spec["num_classes"], **spec["kwargs"])
    except (ValueError, TypeError) as err:
        raise ModelLoadError(f"cannot rebuild the model described in {source}: {err}") from None


def _load_weights(model: nn.Module, state_dict: Mapping[str, Any], source: str) -> None:
    """Strict load with a message that names the missing/unexpected/mis-shaped keys."""
    expected = model.state_dict()
    non_tensors = [k for k, v in state_dict.items() if not isinstance(v, torch.Tensor)]
    if non_tensors:
        raise ModelLoadError(f"{source}: state dict entries are not tensors: {non_tensors[:5]}")
    missing = [k for k in expected if k not in state_dict]
    unexpected = [k for k in state_dict if k not in expected]
    mismatched = [
        f"{k}: checkpoint {tuple(state_dict[k].shape)} vs model {tuple(v.shape)}"
        for k, v in expected.items()
        if k in state_dict and tuple(state_dict[k].shape) != tuple(v.shape)
    ]
    if missing or unexpected or mismatched:
        name = getattr(model, "nofrost_spec", {}).get("name", type(model).__name__)
        parts = []
        if mismatched:
            parts.append(f"{len(mismatched)} shape mismatch(es), e.g. {'; '.join(mismatched[:3])}")
        if missing:
            parts.append(f"{len(missing)} missing key(s), e.g. {missing[:3]}")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected key(s), e.g. {unexpected[:3]}")
        raise ModelLoadError(
            f"the weights in {source} do not fit a {name!r} model: {'; '.join(parts)}. They were "
            f"probably saved from a different architecture, norm or num_classes than the spec (or, "
            f"for a bare state dict, the keys) say; re-save the model with save_model, or rebuild "
            f"the matching model with create_model(...) and load the weights with load_state_dict."
        )
    model.load_state_dict(state_dict, strict=True)


# --------------------------------------------------------------------------- official checkpoints

_NESTING_KEYS = ("state_dict", "model", "model_state_dict", "net")


def _unwrap_state_dict(obj: Any) -> Any:
    for _ in range(3):
        if isinstance(obj, Mapping) and not any(isinstance(v, torch.Tensor) for v in obj.values()):
            inner = next((obj[k] for k in _NESTING_KEYS if isinstance(obj.get(k), Mapping)), None)
            if inner is None:
                return obj
            obj = inner
    return obj


def _strip_prefixes(state_dict: Mapping[str, Any]) -> dict[str, Any]:
    sd = dict(state_dict)
    for prefix in ("module.", "_orig_mod.", "module."):
        if sd and all(k.startswith(prefix) for k in sd):
            sd = {k[len(prefix):]: v for k, v in sd.items()}
    return sd


def _count_blocks(state_dict: Mapping[str, Any], prefix: str) -> int:
    pattern = re.compile(re.escape(prefix) + r"(\d+)\.")
    return len({m.group(1) for k in state_dict if (m := pattern.match(k))})


def detect_timm_architecture(state_dict: Mapping[str, Any]) -> tuple[str, int]:
    """``(model name, num_classes)`` of a timm (NF-)ResNet-26/50 state dict, from its keys.

    Raises ``ModelLoadError`` naming the keys it looked for when the dict is not one.
    """
    if all(k in state_dict for k in _TIMM_NF_KEYS):
        family, stage3, head = "nf_resnet", "stages.2.", "head.fc.weight"
    elif all(k in state_dict for k in _TIMM_RESNET_KEYS):
        family, stage3, head = "resnet", "layer3.", "fc.weight"
        if "bn1.running_mean" not in state_dict:
            raise ModelLoadError(
                "this timm ResNet state dict has no batch-norm running statistics (bn1.running_mean), "
                "so it uses instance or group norm, which cannot be told apart from the weights; build "
                "the model with nofrost.models.create_model('resnet26' or 'resnet50', num_classes, "
                "norm='in' or 'gn') and call load_state_dict on its .net"
            )
    else:
        shown = ", ".join(list(state_dict)[:8])
        raise ModelLoadError(
            "unrecognised state dict: expected a nofrost checkpoint (a dict with "
            f"'format': '{CHECKPOINT_FORMAT}', 'model_spec' and 'model'), a timm NF-ResNet "
            f"(keys {', '.join(_TIMM_NF_KEYS)}) or a timm ResNet (keys {', '.join(_TIMM_RESNET_KEYS)}), "
            f"optionally under 'state_dict'/'model' and with a 'module.' prefix; found keys: {shown}"
            f"{' ...' if len(state_dict) > 8 else ''}"
        )
    blocks = _count_blocks(state_dict, stage3)
    if blocks not in _DEPTH_BY_STAGE3_BLOCKS:
        raise ModelLoadError(
            f"unsupported {family} depth: its third stage ({stage3}*) has {blocks} blocks; "
            f"supported are 2 ({family}26) and 6 ({family}50)"
        )
    head_weight = state_dict[head]
    if not isinstance(head_weight, torch.Tensor) or head_weight.ndim != 2:
        raise ModelLoadError(f"{head} should be a 2-D classifier weight, got {type(head_weight).__name__}")
    return family + _DEPTH_BY_STAGE3_BLOCKS[blocks], int(head_weight.shape[0])


def _load_official(obj: Any, source: str) -> nn.Module:
    state_dict = _strip_prefixes(_unwrap_state_dict(obj)) if isinstance(obj, Mapping) else None
    if not state_dict:
        raise ModelLoadError(
            f"{source} holds a {type(obj).__name__}, not a state dict; expected a nofrost checkpoint "
            f"or a timm (NF-)ResNet state dict"
        )
    mean, std = IMAGENET_MEAN, IMAGENET_STD
    wrapper = "normalize.mean" in state_dict and any(k.startswith("net.") for k in state_dict)
    if wrapper:
        # a nofrost ImageClassifier state dict saved without its spec
        mean = state_dict["normalize.mean"].flatten().tolist()
        std = state_dict["normalize.std"].flatten().tolist()
        state_dict = {k[4:]: v for k, v in state_dict.items() if k.startswith("net.")}
    try:
        name, num_classes = detect_timm_architecture(state_dict)
    except ModelLoadError as err:
        if not wrapper:
            raise
        raise ModelLoadError(
            f"{source} holds a nofrost model's state_dict without the spec needed to rebuild it "
            f"({err}). Save models with nofrost.models.save_model(model, directory) or put "
            f"'model_spec' into the checkpoint; or rebuild it with create_model(...) and call "
            f"load_state_dict yourself."
        ) from None
    in_chans = int(state_dict["stem.conv.weight" if name.startswith("nf_") else "conv1.weight"].shape[1])
    if in_chans != len(mean):
        raise ModelLoadError(f"{source}: the stem takes {in_chans} channels but the input mean has {len(mean)} values")
    model = create_model(name, num_classes, in_chans=in_chans, mean=list(mean), std=list(std))
    _load_weights(model.net, state_dict, source)
    return model


# --------------------------------------------------------------------------- loading


def _load_checkpoint_dict(obj: Mapping[str, Any], source: str) -> nn.Module:
    fmt = obj.get("format")
    if fmt != CHECKPOINT_FORMAT:
        raise ModelLoadError(
            f"{source} has checkpoint format {fmt!r}; this nofrost version reads {CHECKPOINT_FORMAT!r}"
        )
    for key in ("model_spec", "model"):
        if key not in obj:
            raise ModelLoadError(f"{source} is a nofrost checkpoint without its {key!r} entry; it is incomplete")
    try:
        spec = validate_spec(obj["model_spec"], source=f"{source} model_spec")
    except ValueError as err:
        raise ModelLoadError(str(err)) from None
    if not isinstance(obj["model"], Mapping):
        raise ModelLoadError(f"{source}: its 'model' entry is a {type(obj['model']).__name__}, not a state dict")
    model = _build(spec, source)
    _load_weights(model, _strip_prefixes(obj["model"]), source)
    return model


def _load_file(path: Path) -> nn.Module:
    source = repr(str(path))
    if path.suffix == ".safetensors":
        spec_path = path.with_name(SPEC_FILE)
        state_dict = _read_safetensors(path)
        if spec_path.is_file():
            model = _build(_read_spec(spec_path), repr(str(spec_path)))
            _load_weights(model, _strip_prefixes(state_dict), source)
            return model
        return _load_official(state_dict, source)
    obj = _read_torch_file(path)
    if isinstance(obj, Mapping) and "format" in obj:
        return _load_checkpoint_dict(obj, source)
    return _load_official(obj, source)


def _load_directory(path: Path) -> nn.Module:
    weights, spec = path / WEIGHTS_FILE, path / SPEC_FILE
    if weights.is_file() and spec.is_file():
        model = _build(_read_spec(spec), repr(str(spec)))
        _load_weights(model, _read_safetensors(weights), repr(str(weights)))
        return model
    if (path / CHECKPOINT_FILE).is_file():
        return _load_file(path / CHECKPOINT_FILE)
    present = sorted(p.name for p in path.iterdir())[:10]
    missing = [p.name for p in (weights, spec) if not p.is_file()]
    raise FileNotFoundError(
        f"{str(path)!r} is a directory without a saved model: missing {', '.join(missing)} (and no "
        f"{CHECKPOINT_FILE}); it contains {present or 'nothing'}. Pass a run directory written by "
        f"`nofrost train` / save_model, or the path of a checkpoint file."
    )


def load_model(path: PathLike, device: Union[str, torch.device] = "cpu") -> nn.Module:
    """Load a model saved by nofrost or an official NoFrost checkpoint; eval mode, on ``device``.

    See the module docstring for the accepted kinds of ``path``.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(
            f"no model at {str(path)!r}: expected a run directory (model.safetensors + model.json), "
            f"a nofrost checkpoint.pt, or an official NoFrost .pth state dict"
        )
    model = _load_directory(path) if path.is_dir() else _load_file(path)
    return model.to(device).eval()
