"""Every registered model: forward/backward, input normalization inside, no hidden norms."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from nofrost.models import ImageClassifier, create_model, find_normalization_layers, list_models
from nofrost.models.nf_layers import RELU_GAMMA

CIFAR_MODELS = ["cifar_resnet10", "cifar_resnet18"]
IMAGENET_MODELS = ["resnet26", "resnet50", "nf_resnet26", "nf_resnet50"]


def _natural_size(name: str) -> int:
    return 32 if name.startswith("cifar_") else 64


def _forward_backward(model: nn.Module, size: int, num_classes: int, batch: int = 2) -> None:
    model.train()
    x = torch.rand(batch, 3, size, size, requires_grad=True)
    logits = model(x)
    assert logits.shape == (batch, num_classes)
    assert torch.isfinite(logits).all()
    logits.square().mean().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)


def test_all_registered_models_are_covered() -> None:
    assert set(CIFAR_MODELS + IMAGENET_MODELS) == {n for n in list_models() if not n.startswith("_")}


@pytest.mark.parametrize("name", CIFAR_MODELS + IMAGENET_MODELS)
def test_forward_backward_default(name: str) -> None:
    model = create_model(name, 10)
    assert isinstance(model, ImageClassifier)
    _forward_backward(model, _natural_size(name), 10)


@pytest.mark.parametrize("norm", ["bn", "in", "gn", "none"])
def test_cifar_resnet10_every_norm(norm: str) -> None:
    model = create_model("cifar_resnet10", 10, norm=norm, dropout=0.1, drop_path=0.1)
    _forward_backward(model, 32, 10, batch=4)


@pytest.mark.parametrize("norm", ["in", "gn"])
def test_resnet26_other_norms(norm: str) -> None:
    model = create_model("resnet26", 10, norm=norm)
    _forward_backward(model, 64, 10)
    expected = nn.InstanceNorm2d if norm == "in" else nn.GroupNorm
    assert any(isinstance(m, expected) for m in model.modules())
    assert not any(isinstance(m, nn.BatchNorm2d) for m in model.modules())


def test_nf_resnet26_at_224() -> None:
    model = create_model("nf_resnet26", 1000).eval()
    with torch.no_grad():
        logits = model(torch.rand(1, 3, 224, 224))
    assert logits.shape == (1, 1000) and torch.isfinite(logits).all()


@pytest.mark.parametrize("name, kwargs", [("cifar_resnet10", {"norm": "bn"}), ("cifar_resnet10", {"norm": "none"}), ("nf_resnet26", {})])
def test_normalization_is_inside(name: str, kwargs: dict) -> None:
    model = create_model(name, 10, **kwargs).eval()
    mean = torch.tensor(model.nofrost_spec["kwargs"]["mean"]).view(1, 3, 1, 1)
    std = torch.tensor(model.nofrost_spec["kwargs"]["std"]).view(1, 3, 1, 1)
    size = _natural_size(name)
    x = torch.rand(2, 3, size, size)
    with torch.no_grad():
        torch.testing.assert_close(model(x), model.net((x - mean) / std))
    # the statistics are buffers in the state dict, so checkpoints carry them
    sd = model.state_dict()
    torch.testing.assert_close(sd["normalize.mean"].flatten(), mean.flatten())
    torch.testing.assert_close(sd["normalize.std"].flatten(), std.flatten())
    assert all(k.startswith(("normalize.", "net.")) for k in sd)


def test_wrong_input_shape_is_clear() -> None:
    model = create_model("cifar_resnet10", 10)
    with pytest.raises(ValueError, match=r"expected images of shape \(N, 3, H, W\)"):
        model(torch.rand(2, 1, 32, 32))


def test_timm_keys_are_kept_under_net_prefix() -> None:
    import timm

    model = create_model("nf_resnet26", 10)
    reference = timm.create_model("nf_resnet26", pretrained=False, num_classes=10)
    assert [k[len("net."):] for k in model.state_dict() if k.startswith("net.")] == list(reference.state_dict())


@pytest.mark.parametrize(
    "name, kwargs",
    [("cifar_resnet10", {"norm": "none"}), ("cifar_resnet18", {"norm": "none"}), ("nf_resnet26", {}), ("nf_resnet50", {})],
)
def test_normalizer_free_models_have_no_normalization_layer(name: str, kwargs: dict) -> None:
    model = create_model(name, 10, **kwargs)
    forbidden = (
        nn.modules.batchnorm._NormBase,  # every BatchNorm*/SyncBatchNorm/InstanceNorm*
        nn.GroupNorm,
        nn.LayerNorm,
        nn.LocalResponseNorm,
        nn.CrossMapLRN2d,
    )
    offenders = [n for n, m in model.named_modules() if isinstance(m, forbidden)]
    # also catch custom norm classes by name (Normalize and timm's NormFree* are not norms)
    offenders += [
        n
        for n, m in model.named_modules()
        if "norm" in type(m).__name__.lower() and type(m).__name__ != "Normalize" and not type(m).__name__.startswith("NormFree")
    ]
    assert offenders == []
    assert find_normalization_layers(model) == []


@pytest.mark.parametrize("norm", ["bn", "in", "gn"])
def test_normalized_models_do_have_normalization_layers(norm: str) -> None:
    # 4 blocks x 2 norms, plus the final norm before pooling for BN only (a per-image norm
    # there would erase what global average pooling reads).
    expected = 9 if norm == "bn" else 8
    assert len(find_normalization_layers(create_model("cifar_resnet10", 10, norm=norm))) == expected
    assert find_normalization_layers(create_model("resnet26", 10, norm=norm))


def test_same_topology_across_norms() -> None:
    """norm='none' is the normalized network with its normalizers replaced; the transition
    shortcut alone differs, as between timm's resnet* (strided 1x1 conv) and nf_resnet* (2x2
    average pooling, then a 1x1 conv)."""
    convs = {}
    for norm in ["bn", "none"]:
        net = create_model("cifar_resnet18", 10, norm=norm).net
        convs[norm] = [
            (n.removesuffix(".conv"), tuple(m.weight.shape), m.padding, m.stride if "shortcut" not in n else None)
            for n, m in net.named_modules() if isinstance(m, nn.Conv2d)
        ]  # fmt: skip
    assert convs["bn"] == convs["none"]
    bn, nf = (create_model("cifar_resnet18", 10, norm=norm).net.stages[1][0].shortcut for norm in ("bn", "none"))
    assert bn.stride == (2, 2)
    assert nf.conv.stride == (1, 1) and isinstance(nf.pool, nn.AvgPool2d) and nf.pool.stride == 2


def test_nf_head_and_agc_friendly_names() -> None:
    model = create_model("cifar_resnet18", 10, norm="none")
    names = [n for n, _ in model.named_parameters()]
    assert names[-2:] == ["net.fc.weight", "net.fc.bias"]
    assert model.net.final_act.gamma == pytest.approx(RELU_GAMMA)
    assert RELU_GAMMA == pytest.approx(1.7139588594436646)
    assert "net.head.fc.weight" in dict(create_model("nf_resnet26", 10).named_parameters())


def test_nf_block_constants() -> None:
    net = create_model("cifar_resnet18", 10, norm="none", alpha=0.3, skipinit=True).net
    blocks = list(net.blocks())
    assert [b.is_transition for b in blocks] == [False, False, True, False, True, False, True, False]
    assert all(b.alpha == 0.3 for b in blocks)
    # beta_i = 1 / sqrt(Var(h_i)): 1, 1 + a^2 within stage 1; after a transition 1 + a^2
    a2 = 0.09
    expected_in = [1.0, 1 + a2, 1 + 2 * a2, 1 + a2, 1 + 2 * a2, 1 + a2, 1 + 2 * a2, 1 + a2]
    assert [b.beta for b in blocks] == pytest.approx([v**-0.5 for v in expected_in])
    assert net.expected_variances() == pytest.approx([1 + a2, 1 + 2 * a2] * 4)
    # SkipInit: one learnable scalar per block, zero at initialization
    assert all(b.skip_gain.item() == 0.0 for b in blocks)
    assert all(b.skip_gain is None for b in create_model("cifar_resnet10", 10, norm="none").net.blocks())
