"""Ghost batch norm: statistics over fixed-size groups of the batch (runtime.bn_group_size)."""

import pytest
import torch
from torch import nn

from nofrost.config import ConfigError, load_config
from nofrost.models import create_model
from nofrost.models.ghost_bn import GhostBatchNorm2d, convert_to_ghost_bn
from nofrost.train import train


def pair(group_size):
    torch.manual_seed(0)
    plain = nn.BatchNorm2d(6)
    with torch.no_grad():
        plain.weight.uniform_(0.5, 1.5)
        plain.bias.uniform_(-0.5, 0.5)
    ghost = convert_to_ghost_bn(nn.Sequential(plain), group_size)[0]
    return plain, ghost  # convert_to_ghost_bn copied plain into ghost


def test_a_group_of_the_whole_batch_is_ordinary_batch_norm():
    plain, ghost = pair(group_size=16)
    assert isinstance(ghost, GhostBatchNorm2d) and ghost.group_size == 16
    x = torch.randn(16, 6, 5, 5) * 3 + 1
    reference = nn.BatchNorm2d(6)
    reference.load_state_dict(plain.state_dict())
    torch.testing.assert_close(ghost(x), reference(x))
    torch.testing.assert_close(ghost.running_mean, reference.running_mean)
    torch.testing.assert_close(ghost.running_var, reference.running_var)


def test_groups_see_only_their_own_examples():
    _, ghost = pair(group_size=4)
    x = torch.randn(12, 6, 5, 5)
    out = ghost(x)
    moved = x.clone()
    moved[5] = moved[5] * 10 + 3  # an example of the second group
    out_moved = ghost(moved)
    assert torch.equal(out[:4], out_moved[:4]) and torch.equal(out[8:], out_moved[8:])
    assert not torch.allclose(out[4:8], out_moved[4:8])
    # each group is normalized by its own statistics, by hand
    for g in range(3):
        chunk = x[4 * g : 4 * g + 4]
        mean, var = chunk.mean((0, 2, 3), keepdim=True), chunk.var((0, 2, 3), unbiased=False, keepdim=True)
        by_hand = (chunk - mean) / torch.sqrt(var + ghost.eps) * ghost.weight.view(1, -1, 1, 1) + ghost.bias.view(1, -1, 1, 1)
        torch.testing.assert_close(out[4 * g : 4 * g + 4], by_hand, rtol=1e-4, atol=1e-5)


def test_running_statistics_move_once_toward_the_mean_of_the_groups():
    _, ghost = pair(group_size=4)
    x = torch.randn(8, 6, 3, 3) + torch.arange(8.0).view(8, 1, 1, 1)  # the two groups differ
    ghost(x)
    groups = x.split(4)
    mean = torch.stack([g.mean((0, 2, 3)) for g in groups]).mean(0)
    var = torch.stack([g.var((0, 2, 3), unbiased=True) for g in groups]).mean(0)
    torch.testing.assert_close(ghost.running_mean, 0.1 * mean)
    torch.testing.assert_close(ghost.running_var, 0.9 + 0.1 * var)
    assert int(ghost.num_batches_tracked) == 1
    ghost.eval()  # eval mode: the running statistics, as ordinary BN
    reference = nn.BatchNorm2d(6).eval()
    reference.load_state_dict(ghost.state_dict())
    torch.testing.assert_close(ghost(x), reference(x))


def test_bad_group_sizes_are_refused():
    with pytest.raises(ValueError, match="at least 2"):
        GhostBatchNorm2d(4, group_size=1)
    with pytest.raises(ConfigError, match="runtime.bn_group_size"):
        load_config("quickstart", overrides=["runtime.bn_group_size=1"])
    with pytest.raises(ConfigError, match="runtime.sync_bn"):
        load_config("quickstart", overrides=["runtime.bn_group_size=32", "runtime.sync_bn=true"])


def test_training_with_ghost_bn_converts_every_bn_layer(tiny_overrides, tmp_path):
    model = create_model("cifar_resnet10", 10, width=8)
    count = sum(type(m) is nn.BatchNorm2d for m in model.modules())
    convert_to_ghost_bn(model, 32)
    assert sum(isinstance(m, GhostBatchNorm2d) for m in model.modules()) == count > 0
    config = load_config("quickstart", overrides=[*tiny_overrides, "runtime.bn_group_size=32", "optim.epochs=1"])
    result = train(config, tmp_path / "run", quiet=True)
    assert sum(isinstance(m, GhostBatchNorm2d) for m in result.model.modules()) == count
    nf = load_config("quickstart", overrides=[*tiny_overrides, "runtime.bn_group_size=32", "model.norm=none"])
    with pytest.raises(ValueError, match="no plain BatchNorm2d layers"):
        train(nf, tmp_path / "nf", quiet=True)
