"""Normalization-layer registry, group counts, and the instance-norm 1x1 error."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from nofrost.models import FeatureMapTooSmallError, create_model, make_norm, register_norm
from nofrost.models.norms import NORM_LAYERS, GroupNorm, InstanceNorm2d, group_count, is_normalization_layer


def test_make_norm_kinds() -> None:
    assert isinstance(make_norm("bn", 8), nn.BatchNorm2d)
    assert isinstance(make_norm("in", 8), InstanceNorm2d)
    assert isinstance(make_norm("gn", 8), nn.GroupNorm)
    assert isinstance(make_norm("none", 8), nn.Identity)
    with pytest.raises(ValueError, match="unknown normalization layer 'mbnx'.*bn, gn, in, mbn, none"):
        make_norm("mbnx", 8)


@pytest.mark.parametrize("channels, groups", [(64, 32), (512, 32), (16, 16), (48, 24), (24, 24), (36, 18), (7, 7)])
def test_group_count(channels: int, groups: int) -> None:
    assert group_count(channels) == groups
    assert GroupNorm(channels).num_groups == groups


def test_instance_norm_is_affine_without_running_stats() -> None:
    layer = make_norm("in", 4)
    assert layer.affine and not layer.track_running_stats
    assert set(layer.state_dict()) == {"weight", "bias"}


def test_new_norm_kind_is_one_registration(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(NORM_LAYERS, "_entries", dict(NORM_LAYERS._entries))

    @register_norm("test_bn_twin")
    def twin(num_channels: int, device=None, dtype=None) -> nn.Module:
        return nn.BatchNorm2d(num_channels, device=device, dtype=dtype)

    model = create_model("cifar_resnet10", 10, norm="test_bn_twin")
    assert model(torch.rand(2, 3, 32, 32)).shape == (2, 10)
    assert create_model("resnet26", 10, norm="test_bn_twin")(torch.rand(2, 3, 64, 64)).shape == (2, 10)


def test_is_normalization_layer() -> None:
    from nofrost.models import Normalize

    assert not is_normalization_layer(Normalize([0.5], [0.5]))
    assert is_normalization_layer(nn.LayerNorm(4))
    assert is_normalization_layer(nn.LocalResponseNorm(2))
    assert not is_normalization_layer(nn.Conv2d(1, 1, 1))


@pytest.mark.parametrize("train", [True, False])
def test_instance_norm_at_1x1_names_layer_and_size(train: bool) -> None:
    model = create_model("cifar_resnet10", 10, norm="in").train(train)
    # 8x8 inputs reach 1x1 in the last stage of a CIFAR ResNet (strides 1, 2, 2, 2)
    with pytest.raises(FeatureMapTooSmallError) as info:
        model(torch.rand(2, 3, 8, 8))
    message = str(info.value)
    assert "'net.stages.3.0.norm2'" in message
    assert "(1, 1)" in message and "(2, 128, 1, 1)" in message
    assert "larger input" in message and "'gn'" in message
    assert isinstance(info.value, ValueError)
    # 32x32 is fine
    assert model(torch.rand(2, 3, 32, 32)).shape == (2, 10)


def test_instance_norm_at_1x1_timm_resnet() -> None:
    model = create_model("resnet26", 10, norm="in")
    with pytest.raises(ValueError, match=r"instance norm layer 'net\.layer4\.\d\.bn\d'.*\(1, 1\)"):
        model(torch.rand(1, 3, 32, 32))


def test_norm_kinds_carry_their_traits():
    from nofrost.models.ghost_bn import GhostBatchNorm2d
    from nofrost.models.norms import NormTraits, has_routed_layers, layer_traits, mixes_examples, norm_traits

    assert norm_traits("bn") == NormTraits(batch_stats=True)
    assert norm_traits("in") == norm_traits("gn") == NormTraits(per_image=True)
    assert norm_traits("mbn") == NormTraits(batch_stats=True, routed=True)
    assert norm_traits("none") == NormTraits()
    with pytest.raises(ValueError, match="unknown normalization layer 'xn'"):
        norm_traits("xn")
    # Layers declare them (a custom norm by a class attribute); torch's and timm's BN/GN/IN by type.
    assert layer_traits(GhostBatchNorm2d(4, group_size=2)).batch_stats
    assert layer_traits(torch.nn.SyncBatchNorm(4)).batch_stats
    assert layer_traits(make_norm("mbn", 4)).routed
    assert not layer_traits(torch.nn.Identity()).batch_stats
    for norm, mixes, routed in (("bn", True, False), ("mbn", True, True), ("gn", False, False), ("none", False, False)):
        model = create_model("resnet26", 10, norm=norm) if norm != "none" else create_model("nf_resnet26", 10)
        assert (mixes_examples(model), has_routed_layers(model)) == (mixes, routed), norm


def test_a_registered_norm_declares_its_traits(monkeypatch):
    from nofrost.models.norms import NORM_TRAITS, norm_traits

    monkeypatch.setattr(NORM_LAYERS, "_entries", dict(NORM_LAYERS._entries))
    monkeypatch.setattr("nofrost.models.norms.NORM_TRAITS", dict(NORM_TRAITS))

    @register_norm("test_per_image", per_image=True)
    def _factory(num_channels, device=None, dtype=None):
        return torch.nn.GroupNorm(1, num_channels)

    assert norm_traits("test_per_image").per_image and not norm_traits("test_per_image").batch_stats
    # the CIFAR nets ask the traits, not the name: no final norm before pooling for per-image norms
    assert isinstance(create_model("cifar_resnet10", 10, norm="test_per_image").net.final_norm, torch.nn.Identity)
