"""save_model / load_model for run directories, nofrost checkpoints and official weights."""

from __future__ import annotations

import json
from collections import OrderedDict
from pathlib import Path

import pytest
import timm
import torch
from torch import nn

from nofrost.models import ModelLoadError, create_model, load_model, save_model
from nofrost.models.io import CHECKPOINT_FORMAT, detect_timm_architecture


def _same_logits(a: nn.Module, b: nn.Module, size: int = 32) -> None:
    x = torch.rand(2, 3, size, size)
    with torch.no_grad():
        torch.testing.assert_close(a.eval()(x), b.eval()(x))


def _perturb_state(model: nn.Module) -> nn.Module:
    """Give every parameter and buffer a non-default value so a round trip is meaningful."""
    with torch.no_grad():
        for name, t in model.state_dict().items():
            if t.is_floating_point() and not name.startswith("normalize."):
                t.add_(0.01 * torch.randn_like(t))
    return model


@pytest.mark.parametrize("name, kwargs", [("cifar_resnet10", {"norm": "none"}), ("cifar_resnet10", {"norm": "bn", "width": 8})])
def test_run_directory_round_trip(tmp_path: Path, name: str, kwargs: dict) -> None:
    model = _perturb_state(create_model(name, 10, mean=[0.5, 0.4, 0.3], std=[0.2, 0.3, 0.4], **kwargs))
    out = save_model(model, tmp_path / "run")
    assert sorted(p.name for p in out.iterdir()) == ["model.json", "model.safetensors"]  # no temp files left
    assert json.loads((out / "model.json").read_text()) == model.nofrost_spec
    loaded = load_model(out)
    assert not loaded.training
    assert loaded.nofrost_spec == model.nofrost_spec
    assert loaded.normalize.mean.flatten().tolist() == pytest.approx([0.5, 0.4, 0.3])
    _same_logits(model, loaded)
    # the weights file alone (with model.json beside it) loads too
    _same_logits(model, load_model(out / "model.safetensors"))


def test_save_overwrites_atomically(tmp_path: Path) -> None:
    a = create_model("cifar_resnet10", 10, width=8)
    b = create_model("cifar_resnet10", 10, width=8)
    save_model(a, tmp_path)
    save_model(b, tmp_path)
    _same_logits(b, load_model(tmp_path))
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_save_model_needs_spec(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="nofrost_spec"):
        save_model(nn.Linear(2, 2), tmp_path)


def test_nofrost_checkpoint_round_trip(tmp_path: Path) -> None:
    model = _perturb_state(create_model("cifar_resnet10", 10, norm="gn", width=8))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    model(torch.rand(2, 3, 32, 32)).sum().backward()
    optimizer.step()
    checkpoint = {
        "format": CHECKPOINT_FORMAT,
        "model_spec": model.nofrost_spec,
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "epoch": 3,
        "metrics": {"clean": 0.5},
    }
    path = tmp_path / "checkpoint.pt"
    torch.save(checkpoint, path)
    loaded = load_model(path)
    assert loaded.nofrost_spec == model.nofrost_spec
    _same_logits(model, loaded)
    # a run directory holding only checkpoint.pt (e.g. training still running) loads too
    _same_logits(model, load_model(tmp_path))


@pytest.mark.parametrize("nesting", ["plain", "state_dict"])
def test_official_nf_resnet26_with_module_prefix(tmp_path: Path, nesting: str) -> None:
    net = timm.create_model("nf_resnet26", pretrained=False, num_classes=7)
    _perturb_state(net)
    state = nn.DataParallel(net).state_dict()  # keys "module.stem.conv.weight", ...
    assert all(k.startswith("module.") for k in state)
    path = tmp_path / "best_RA.pth"
    torch.save(state if nesting == "plain" else {"state_dict": state, "epoch": 89}, path)
    loaded = load_model(path)
    assert loaded.nofrost_spec["name"] == "nf_resnet26" and loaded.nofrost_spec["num_classes"] == 7
    assert loaded.normalize.mean.flatten().tolist() == pytest.approx([0.485, 0.456, 0.406])
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    x = torch.rand(2, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), net.eval()((x - mean) / std))


def test_official_bn_resnet26(tmp_path: Path) -> None:
    net = timm.create_model("resnet26", pretrained=False, num_classes=5)
    _perturb_state(net)
    path = tmp_path / "best_SA.pth"
    torch.save(OrderedDict(("module." + k, v) for k, v in net.state_dict().items()), path)
    loaded = load_model(path)
    assert loaded.nofrost_spec["name"] == "resnet26" and loaded.nofrost_spec["kwargs"]["norm"] == "bn"
    x = torch.rand(2, 3, 64, 64)
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), net.eval()((x - mean) / std))


def test_detect_depth_from_stage3_block_count() -> None:
    # only the keys matter: fake the block structure of a ResNet-50 / NF-ResNet-50
    t = torch.zeros(1)
    resnet50 = {"conv1.weight": torch.zeros(64, 3, 7, 7), "bn1.running_mean": t, "fc.weight": torch.zeros(1000, 2048)}
    resnet50.update({f"layer3.{i}.conv1.weight": t for i in range(6)})
    assert detect_timm_architecture(resnet50) == ("resnet50", 1000)
    nf50 = {"stem.conv.weight": t, "head.fc.weight": torch.zeros(200, 2048)}
    nf50.update({f"stages.2.{i}.conv1.weight": t for i in range(6)})
    assert detect_timm_architecture(nf50) == ("nf_resnet50", 200)
    nf_odd = {"stem.conv.weight": t, "head.fc.weight": torch.zeros(2, 8), "stages.2.0.conv1.weight": t}
    with pytest.raises(ModelLoadError, match="third stage .* has 1 blocks"):
        detect_timm_architecture(nf_odd)


# ----------------------------------------------------------------------------- errors


def test_missing_path(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="no model at .*run directory"):
        load_model(tmp_path / "does-not-exist")


def test_directory_without_files(tmp_path: Path) -> None:
    (tmp_path / "config.yaml").write_text("x: 1\n")
    with pytest.raises(FileNotFoundError, match="missing model.safetensors, model.json.*config.yaml"):
        load_model(tmp_path)


def test_truncated_torch_file(tmp_path: Path) -> None:
    model = create_model("cifar_resnet10", 10, width=8)
    path = tmp_path / "checkpoint.pt"
    torch.save({"format": CHECKPOINT_FORMAT, "model_spec": model.nofrost_spec, "model": model.state_dict()}, path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelLoadError, match="truncated or corrupted.*again"):
        load_model(path)


def test_truncated_safetensors(tmp_path: Path) -> None:
    save_model(create_model("cifar_resnet10", 10, width=8), tmp_path)
    weights = tmp_path / "model.safetensors"
    data = weights.read_bytes()
    weights.write_bytes(data[: len(data) - 100])
    with pytest.raises(ModelLoadError, match="truncated or corrupted"):
        load_model(tmp_path)


def test_corrupted_json(tmp_path: Path) -> None:
    save_model(create_model("cifar_resnet10", 10, width=8), tmp_path)
    (tmp_path / "model.json").write_text('{"name": "cifar_resnet10", ')
    with pytest.raises(ModelLoadError, match="not valid JSON"):
        load_model(tmp_path)


def test_spec_with_unknown_model(tmp_path: Path) -> None:
    save_model(create_model("cifar_resnet10", 10, width=8), tmp_path)
    spec = json.loads((tmp_path / "model.json").read_text())
    spec["name"] = "cifar_resnet9000"
    (tmp_path / "model.json").write_text(json.dumps(spec))
    with pytest.raises(ModelLoadError, match="cannot rebuild.*unknown model 'cifar_resnet9000'"):
        load_model(tmp_path)


def test_unrecognised_state_dict(tmp_path: Path) -> None:
    path = tmp_path / "weights.pth"
    torch.save({"encoder.weight": torch.zeros(3, 3), "decoder.bias": torch.zeros(3)}, path)
    with pytest.raises(ModelLoadError, match="unrecognised state dict.*stem.conv.weight.*conv1.weight.*found keys: encoder.weight"):
        load_model(path)


def test_shape_mismatch(tmp_path: Path) -> None:
    model = create_model("cifar_resnet10", 10, width=8)
    spec = dict(model.nofrost_spec, num_classes=100)
    path = tmp_path / "checkpoint.pt"
    torch.save({"format": CHECKPOINT_FORMAT, "model_spec": spec, "model": model.state_dict()}, path)
    with pytest.raises(ModelLoadError, match=r"do not fit.*shape mismatch.*net\.fc\.weight: checkpoint \(10, 64\) vs model \(100, 64\)"):
        load_model(path)


def test_official_missing_keys(tmp_path: Path) -> None:
    net = timm.create_model("nf_resnet26", pretrained=False, num_classes=3)
    state = net.state_dict()
    del state["stages.3.1.conv3.weight"]
    path = tmp_path / "w.pth"
    torch.save(state, path)
    with pytest.raises(ModelLoadError, match="1 missing key.*stages.3.1.conv3.weight"):
        load_model(path)


class _Payload:
    ran = False

    def __reduce__(self):  # would run on unpickling if arbitrary objects were loaded
        return (_Payload._boom, ())

    @staticmethod
    def _boom():
        _Payload.ran = True
        return None


def test_never_unpickles_arbitrary_objects(tmp_path: Path) -> None:
    path = tmp_path / "evil.pt"
    torch.save({"format": CHECKPOINT_FORMAT, "payload": _Payload()}, path)
    with pytest.raises(ModelLoadError, match="never unpickles arbitrary objects"):
        load_model(path)
    assert not _Payload.ran


def test_wrong_checkpoint_format(tmp_path: Path) -> None:
    path = tmp_path / "checkpoint.pt"
    torch.save({"format": "nofrost-checkpoint-v9", "model": {}}, path)
    with pytest.raises(ModelLoadError, match="format 'nofrost-checkpoint-v9'.*nofrost-checkpoint-v1"):
        load_model(path)


def test_bn_less_timm_resnet_is_ambiguous(tmp_path: Path) -> None:
    model = create_model("resnet26", 10, norm="in")
    path = tmp_path / "w.pth"
    torch.save(model.net.state_dict(), path)
    with pytest.raises(ModelLoadError, match="instance or group norm.*norm='in'"):
        load_model(path)


def test_load_to_device_and_eval(tmp_path: Path) -> None:
    save_model(create_model("cifar_resnet10", 10, width=8, dropout=0.5), tmp_path)
    model = load_model(tmp_path, device=torch.device("cpu"))
    assert not model.training
    assert next(model.parameters()).device.type == "cpu"


def test_state_dict_without_spec_is_explained(tmp_path: Path) -> None:
    model = create_model("cifar_resnet10", 10, width=8)
    path = tmp_path / "sd.pt"
    torch.save(model.state_dict(), path)
    with pytest.raises(ModelLoadError, match="without the spec.*save_model"):
        load_model(path)


def test_save_unwraps_dataparallel(tmp_path: Path) -> None:
    model = create_model("cifar_resnet10", 10, width=8)
    save_model(nn.DataParallel(model), tmp_path)
    _same_logits(model, load_model(tmp_path))


def test_wrapper_state_dict_of_timm_model_keeps_its_mean_std(tmp_path: Path) -> None:
    model = _perturb_state(create_model("nf_resnet26", 4, mean=[0.5, 0.5, 0.5], std=[0.5, 0.5, 0.5]))
    path = tmp_path / "sd.pth"
    torch.save({"model": model.state_dict()}, path)
    loaded = load_model(path)
    assert loaded.nofrost_spec["name"] == "nf_resnet26"
    assert loaded.nofrost_spec["kwargs"]["mean"] == [0.5, 0.5, 0.5]
    _same_logits(model, loaded, size=64)
