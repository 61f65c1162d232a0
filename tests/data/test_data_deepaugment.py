"""DeepAugment: every variant keeps shape and range, changes the images, follows the seed;
weight files round-trip and a file of the wrong architecture is refused."""

from __future__ import annotations

import collections

import pytest
import torch
from safetensors.torch import save_file

from nofrost.data.deepaugment import CAE, EDSR, DeepAugment, resolve_variant
from nofrost.data.deepaugment.cae import distort_cae_weights
from nofrost.data.deepaugment.edsr import distort_edsr_weights


@pytest.fixture(scope="module")
def weight_files(tmp_path_factory):
    """CAE weights as a torch state dict (with DataParallel's prefix), EDSR as safetensors."""
    folder = tmp_path_factory.mktemp("deepaugment")
    torch.manual_seed(0)
    cae, edsr = CAE().state_dict(), EDSR().state_dict()
    torch.save({f"module.{k}": v for k, v in cae.items()}, folder / "cae.pt")
    save_file(edsr, str(folder / "edsr.safetensors"))
    return {"cae": (folder / "cae.pt", cae), "edsr": (folder / "edsr.safetensors", edsr), "folder": folder}


@pytest.fixture(scope="module")
def images(mini_test):
    return mini_test.images[:4].float() / 255


def _augmenter(variant, weight_files):
    paths = {f"{name}_weights": str(weight_files[name][0]) for name in variant.split("+") if name in ("cae", "edsr")}
    return DeepAugment(variant, **paths)


@pytest.mark.parametrize("variant", ["noise2net", "cae", "edsr", "cae+edsr"])
def test_variants_keep_shape_and_range_change_images_and_follow_the_seed(variant, weight_files, images):
    augment = _augmenter(variant, weight_files)
    outputs = []
    for seed in (1, 1, 2):
        torch.manual_seed(seed)
        outputs.append(augment(images))
    a, b, c = outputs
    assert a.shape == images.shape and a.dtype == images.dtype
    assert a.min() >= 0 and a.max() <= 1
    assert (a - images).abs().mean() > 0.01
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_noise2net_draws_a_network_per_example(images):
    same = images[:1].expand(3, -1, -1, -1).contiguous()
    torch.manual_seed(0)
    out = DeepAugment("noise2net")(same)
    assert (out[0] - out[1]).abs().max() > 0.05 and (out[1] - out[2]).abs().max() > 0.05


def test_weight_files_round_trip(weight_files):
    for name, field in (("cae", "cae_weights"), ("edsr", "edsr_weights")):
        path, state = weight_files[name]
        augment = DeepAugment(**{field: str(path)})
        assert augment.variant == name == resolve_variant(**{"cae_weights": None, "edsr_weights": None, field: path})
        loaded = augment.networks[0].state
        assert loaded.keys() == state.keys()
        assert all(torch.equal(loaded[k], state[k]) for k in state)


def test_weight_distortions_change_a_copy_and_cover_their_options(weight_files):
    for distort, (_, state) in ((distort_cae_weights, weight_files["cae"]), (distort_edsr_weights, weight_files["edsr"])):
        before = {k: v.clone() for k, v in state.items()}
        changed = collections.Counter()
        for seed in range(12):
            torch.manual_seed(seed)
            distorted = distort(state)
            changed[sum(not torch.equal(distorted[k], state[k]) for k in state) > 0] += 1
        assert all(torch.equal(before[k], state[k]) for k in state)  # the loaded weights stay
        assert changed[True] >= 10  # almost every draw changes some weight


class Opaque:
    """An arbitrary pickled object."""


def test_wrong_architecture_and_unreadable_files_are_refused(weight_files, tmp_path):
    edsr_path, _ = weight_files["edsr"]
    with pytest.raises(ValueError, match=r"does not hold CAE weights \(\d+ missing, \d+ unexpected"):
        DeepAugment(cae_weights=str(edsr_path))
    resized = {k: v[..., :1] if v.dim() == 4 else v for k, v in CAE().state_dict().items()}
    torch.save(resized, tmp_path / "thin.pt")
    with pytest.raises(ValueError, match=r"21 mis-shaped keys; d_block_1.1.weight has shape \(128, 128, 3, 1\), expected \(128, 128, 3, 3\)"):
        DeepAugment(cae_weights=str(tmp_path / "thin.pt"))
    torch.save({"net": Opaque()}, tmp_path / "pickled.pt")  # refused by weights_only=True
    with pytest.raises(ValueError, match="cannot read DeepAugment CAE weights"):
        DeepAugment(cae_weights=str(tmp_path / "pickled.pt"))
    torch.save({"epoch": 3}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="does not hold a state dict of tensors"):
        DeepAugment(cae_weights=str(tmp_path / "other.pt"))
    with pytest.raises(FileNotFoundError, match="EDSR-baseline x4 weight file .* does not exist"):
        DeepAugment(edsr_weights=str(tmp_path / "absent.pt"))


def test_variant_and_options_must_agree(weight_files):
    cae_path = str(weight_files["cae"][0])
    with pytest.raises(ValueError, match="variant 'edsr' needs method.edsr_weights"):
        DeepAugment("edsr")
    with pytest.raises(ValueError, match="method.cae_weights is set but DeepAugment variant 'noise2net' does not use it"):
        DeepAugment("noise2net", cae_weights=cae_path)
    with pytest.raises(ValueError, match="noise2net_eps applies to the 'noise2net' variant only"):
        DeepAugment(cae_weights=cae_path, noise2net_eps=0.5)
    with pytest.raises(ValueError, match="unknown DeepAugment variant 'vqvae'"):
        DeepAugment("vqvae")


@pytest.mark.parametrize("variant", ["noise2net", "cae"])
def test_runs_under_the_training_precision(variant, weight_files, images):
    augment = _augmenter(variant, weight_files)
    torch.manual_seed(0)
    full = augment(images)
    torch.manual_seed(0)
    with torch.autocast("cpu", dtype=torch.bfloat16):  # as a bf16 step's autocast would
        low = augment(images)
    assert low.dtype == images.dtype and low.min() >= 0 and low.max() <= 1
    # the same draws computed in bf16: nearer the fp32 result than the input is
    assert (low - full).abs().mean() < (full - images).abs().mean()
