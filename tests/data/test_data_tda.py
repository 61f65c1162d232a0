"""Texture-debiased augmentation: the batched device path against torchvision's ops, its
draw frequencies against the reference settings, and the loader's extra view."""

from __future__ import annotations

import pytest
import torch
from torchvision.transforms.v2 import functional as TF

from nofrost.data import make_loader
from nofrost.data.tda import (
    CROP_SCALE,
    DISTORT_P,
    GRAY_P,
    JITTER_P,
    adjust_brightness,
    adjust_contrast,
    adjust_hue,
    adjust_saturation,
    draw_tda_params,
    resized_crops,
    tda_transform,
    texture_debiased_batch,
)


def test_each_batched_op_matches_torchvision_per_image(mini_test):
    x = mini_test.images[:12].float() / 255
    p = draw_tda_params(12, 32, 32, torch.Generator().manual_seed(3))
    ours = {
        "crop": resized_crops(x, p.boxes),
        "brightness": adjust_brightness(x, p.factors[:, 0]),
        "contrast": adjust_contrast(x, p.factors[:, 1]),
        "saturation": adjust_saturation(x, p.factors[:, 2]),
        "hue": adjust_hue(x, p.factors[:, 3]),
    }
    for i in range(12):
        f = p.factors[i].tolist()
        reference = {
            "crop": TF.resized_crop(x[i], *p.boxes[i].tolist(), [32, 32], antialias=True),
            "brightness": TF.adjust_brightness(x[i], f[0]),
            "contrast": TF.adjust_contrast(x[i], f[1]),
            "saturation": TF.adjust_saturation(x[i], f[2]),
            "hue": TF.adjust_hue(x[i], f[3]),
        }
        for name, expected in reference.items():
            torch.testing.assert_close(ours[name][i], expected, atol=2e-6, rtol=0, msg=name)


def test_draws_follow_the_reference_probabilities_and_ranges():
    n = 20000
    p = draw_tda_params(n, 32, 32, torch.Generator().manual_seed(0))
    area = (p.boxes[:, 2] * p.boxes[:, 3]).float() / (32 * 32)
    assert area.min() >= CROP_SCALE[0] - 0.06 and area.max() <= 1.0  # rounding to whole pixels
    assert (p.boxes[:, 0] + p.boxes[:, 2] <= 32).all() and (p.boxes[:, 1] + p.boxes[:, 3] <= 32).all()
    assert p.flip.float().mean() == pytest.approx(0.5, abs=0.015)
    assert p.jitter.float().mean() == pytest.approx(DISTORT_P * JITTER_P, abs=0.015)
    assert p.gray.float().mean() == pytest.approx(DISTORT_P * GRAY_P, abs=0.01)
    assert p.factors[:, :3].min() >= 0.2 and p.factors[:, :3].max() <= 1.8
    assert p.factors[:, 3].abs().max() <= 0.2
    assert (p.order.sort(1).values == torch.arange(4)).all()  # a permutation per image
    assert len({tuple(o) for o in p.order[:200].tolist()}) > 12  # of the 24, many occur


def test_jitter_order_matters_and_is_per_image(mini_test):
    x = mini_test.images[:2].float() / 255
    p = draw_tda_params(2, 32, 32, torch.Generator().manual_seed(1))
    p.boxes[:] = torch.tensor([0, 0, 32, 32])
    p.flip[:], p.jitter[:], p.gray[:] = False, True, False
    p.factors[:] = torch.tensor([1.7, 0.3, 1.6, 0.15])
    p.order[0], p.order[1] = torch.tensor([0, 1, 2, 3]), torch.tensor([3, 2, 1, 0])
    out = texture_debiased_batch(torch.cat([x[:1], x[:1]]), params=p)
    first = TF.adjust_hue(TF.adjust_saturation(TF.adjust_contrast(TF.adjust_brightness(x[0], 1.7), 0.3), 1.6), 0.15)
    second = TF.adjust_brightness(TF.adjust_contrast(TF.adjust_saturation(TF.adjust_hue(x[0], 0.15), 1.6), 0.3), 1.7)
    torch.testing.assert_close(out[0], first, atol=2e-6, rtol=0)
    torch.testing.assert_close(out[1], second, atol=2e-6, rtol=0)
    assert (out[0] - out[1]).abs().max() > 0.05


def test_batch_keeps_shape_and_range_changes_images_and_follows_the_seed(mini_test):
    x = mini_test.images[:64]
    a = texture_debiased_batch(x, torch.Generator().manual_seed(5))
    b = texture_debiased_batch(x, torch.Generator().manual_seed(5))
    c = texture_debiased_batch(x, torch.Generator().manual_seed(6))
    assert a.shape == x.shape and a.dtype == torch.float32
    assert a.min() >= 0 and a.max() <= 1
    assert torch.equal(a, b) and not torch.equal(a, c)
    changed = (a - x.float() / 255).abs().flatten(1).amax(1) > 0.05
    assert changed.float().mean() > 0.9  # crops (area < 1 almost always) move pixels
    assert torch.equal(texture_debiased_batch(x.float() / 255, torch.Generator().manual_seed(5)), a)
    with pytest.raises(ValueError, match=r"\(N, 3, H, W\) RGB"):
        texture_debiased_batch(x[:, :1])


def test_per_image_transform_has_the_same_output_contract(mini_test):
    image = TF.to_pil_image(mini_test.images[0])
    torch.manual_seed(0)
    out = torch.stack([tda_transform(24)(image) for _ in range(8)])
    assert out.shape == (8, 3, 24, 24) and out.dtype == torch.float32
    assert out.min() >= 0 and out.max() <= 1
    assert len({o.sum().item() for o in out}) == 8  # every call draws anew


def test_loader_adds_a_seeded_view_without_changing_the_standard_batches(mini_train):
    plain = list(make_loader(mini_train, 32, shuffle=True, augment=True, seed=2, epoch=1))[:3]
    viewed = list(make_loader(mini_train, 32, shuffle=True, augment=True, seed=2, epoch=1, views=("tda",)))[:3]
    again = list(make_loader(mini_train, 32, shuffle=True, augment=True, seed=2, epoch=1, views=("tda",)))[:3]
    other = next(iter(make_loader(mini_train, 32, shuffle=True, augment=True, seed=2, epoch=2, views=("tda",))))
    for (x, y), (xv, yv, views), (_, _, views_again) in zip(plain, viewed, again):
        assert torch.equal(x, xv) and torch.equal(y, yv)
        assert set(views) == {"tda"} and views["tda"].shape == x.shape
        assert torch.equal(views["tda"], views_again["tda"])
        assert not torch.equal(views["tda"], x)
    assert not torch.equal(other[2]["tda"], viewed[0][2]["tda"])
    with pytest.raises(ValueError, match="unknown image view 'deep'; known views: tda"):
        make_loader(mini_train, 32, shuffle=True, augment=True, views=("deep",))
