"""The corruption generators on real images: CIFAR-10 test images (32 px, CIFAR-10-C constants)
and the shared ImageNet photos cropped to 224 px (ImageNet-C constants)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from nofrost.data.corruptions import SEVERITIES, corrupt, list_corruptions
from nofrost.data.imagenet import imagenet_transform
from nofrost.data.corruptions.blur import glass_positions, shuffle_pixels
from nofrost.data.corruptions.constants import TABLES
from nofrost.data.corruptions.weather import FROST_DIR_ENV, FROST_TEXTURES, frost_texture_dir


def _center_224(path: Path) -> np.ndarray:
    """Resize to 256 and centre-crop 224, as ImageNet-C's source images were: uint8 (H, W, 3)."""
    image = imagenet_transform(224, augment=False)(Image.open(path).convert("RGB"))
    return image.mul(255).round().to(torch.uint8).permute(1, 2, 0).numpy()


@pytest.fixture(scope="module")
def cifar(mini_test) -> np.ndarray:
    """12 CIFAR-10 test images, uint8 (N, 32, 32, 3), one or two per class."""
    return mini_test.images[::80][:12].permute(0, 2, 3, 1).numpy().copy()


@pytest.fixture(scope="module")
def imagenet(imagenet_samples) -> np.ndarray:
    """Two real photos at 224 px, uint8 (2, 224, 224, 3)."""
    return np.stack([_center_224(p) for p in imagenet_samples[:2]])


@pytest.fixture(scope="module")
def frost_folder(tmp_path_factory, mini_test) -> Path:
    """A folder laid out like the published frost textures (not shipped), made of real CIFAR
    test images enlarged to 448 px: stand-ins large enough for 32 px and 224 px crops."""
    folder = tmp_path_factory.mktemp("frost")
    for k, name in enumerate(FROST_TEXTURES):
        image = Image.fromarray(mini_test.images[100 * k].permute(1, 2, 0).numpy())
        image.resize((448 + 32 * k, 448), Image.BICUBIC).save(folder / name)
    return folder


@pytest.fixture(autouse=True)
def _frost_textures(monkeypatch, frost_folder):
    monkeypatch.setenv(FROST_DIR_ENV, str(frost_folder))


def _clipped_normal_std(sigma: float, mean: float = 0.5) -> float:
    """Standard deviation of clip(mean + sigma * Z, 0, 1) for Z standard normal, mean = 1/2:
    with a = mean / sigma, Var = sigma² (E[Z²; |Z| < a] + a² P(|Z| > a)) and
    E[Z²; |Z| < a] = (1 - 2 Φ(-a)) - 2 a φ(a)."""
    a = mean / sigma
    phi = math.exp(-a * a / 2) / math.sqrt(2 * math.pi)
    tail = 0.5 * math.erfc(a / math.sqrt(2))  # Φ(-a)
    return sigma * math.sqrt((1 - 2 * tail) - 2 * a * phi + 2 * a * a * tail)


@pytest.mark.parametrize("resolution", ["cifar", "imagenet"])
@pytest.mark.parametrize("severity", SEVERITIES)
def test_gaussian_noise_std_on_mid_grey_is_sigma(resolution, severity):
    sigma = TABLES[resolution]["gaussian_noise"][severity - 1][0]
    grey = torch.full((4, 3, 64, 64), 0.5)
    out = corrupt(grey, "gaussian_noise", severity, resolution=resolution, seed=severity)
    expected = _clipped_normal_std(sigma)
    # 49,152 values: the sample std's relative standard error is about 1/sqrt(2n) = 0.3 %;
    # a 2 % tolerance is ~6 standard errors and far below the gap between two severities
    assert float(out.std()) == pytest.approx(expected, rel=0.02)
    if sigma >= 0.2:  # clipping matters there: the unclipped sigma must not fit
        assert abs(float(out.std()) - sigma) > 0.03 * sigma


def test_clipped_normal_std_hand_values():
    # small sigma: no clipping; sigma -> infinity: half the mass at 0 and half at 1, std 1/2
    assert _clipped_normal_std(0.04) == pytest.approx(0.04, rel=1e-9)
    assert _clipped_normal_std(1e6) == pytest.approx(0.5, rel=1e-3)


@pytest.mark.parametrize("corruption", list_corruptions())
def test_cifar_every_corruption_keeps_format_changes_and_is_deterministic(cifar, corruption):
    out = corrupt(cifar, corruption, 3, seed=7)
    assert out.shape == cifar.shape and out.dtype == np.uint8
    assert np.abs(out.astype(int) - cifar).mean() > 0.5  # changes the images
    assert np.array_equal(out, corrupt(cifar, corruption, 3, seed=7))  # deterministic
    # the float tensor path: same shape, dtype and [0, 1] range
    tensor = torch.from_numpy(cifar).permute(0, 3, 1, 2).double() / 255
    out_t = corrupt(tensor, corruption, 3, seed=7)
    assert out_t.shape == tensor.shape and out_t.dtype == torch.float64
    assert 0 <= float(out_t.min()) and float(out_t.max()) <= 1
    assert float((out_t - tensor).abs().mean()) > 0.5 / 255


@pytest.mark.parametrize("corruption", list_corruptions())
def test_batch_equals_one_by_one(cifar, corruption):
    indices = [3, 40, 41, 9000]
    batch = corrupt(cifar[:4], corruption, 5, seed=1, indices=indices)
    singles = [corrupt(cifar[i : i + 1], corruption, 5, seed=1, indices=[j]) for i, j in enumerate(indices)]
    assert np.array_equal(batch, np.concatenate(singles))


RANDOM = [c for c in list_corruptions() if c not in {
    "defocus_blur", "zoom_blur", "brightness", "contrast", "pixelate", "jpeg_compression",
    "gaussian_blur", "saturate"}]


@pytest.mark.parametrize("corruption", RANDOM)
def test_random_corruptions_depend_on_seed_and_index(cifar, corruption):
    one = corrupt(cifar[:2], corruption, 5, seed=0)
    assert not np.array_equal(one, corrupt(cifar[:2], corruption, 5, seed=1))
    same_images = np.stack([cifar[0], cifar[0]])
    pair = corrupt(same_images, corruption, 5, seed=0, indices=[0, 1])
    assert not np.array_equal(pair[0], pair[1])


# The elastic transform is the one published corruption whose pixel change does not grow with
# severity, at both resolutions: CIFAR-10-C's severity 1 is a pure affine warp by up to 2.56 px,
# severity 5 a 0.96 px warp plus a small displacement field; ImageNet-C's severities 1-2 are
# large smooth warps (affine up to 24 px), 3-5 small local ones. Moved pixels change more than
# locally wobbled ones, so this proxy inverts for it.
SEVERITY_PROXY_EXCEPTIONS = {"elastic_transform"}


@pytest.mark.parametrize("corruption", list_corruptions())
def test_cifar_severity_5_changes_images_at_least_as_much_as_severity_1(cifar, corruption):
    change = {s: np.abs(corrupt(cifar, corruption, s).astype(float) - cifar).mean() for s in (1, 5)}
    if corruption in SEVERITY_PROXY_EXCEPTIONS:
        assert change[5] < change[1]  # the fact the exception rests on
    else:
        assert change[5] >= change[1]


@pytest.mark.parametrize("corruption", list_corruptions())
def test_imagenet_224(imagenet, corruption):
    out1 = corrupt(imagenet, corruption, 1, resolution="imagenet", seed=3)
    out5 = corrupt(imagenet, corruption, 5, resolution="imagenet", seed=3)
    assert out5.shape == imagenet.shape and out5.dtype == np.uint8
    change1 = np.abs(out1.astype(float) - imagenet).mean()
    change5 = np.abs(out5.astype(float) - imagenet).mean()
    assert change1 > 0.3
    if corruption in SEVERITY_PROXY_EXCEPTIONS:
        assert change5 < change1
    else:
        assert change5 >= change1


@pytest.mark.parametrize("corruption, severity", [("defocus_blur", 5), ("gaussian_blur", 5), ("elastic_transform", 1)])
def test_imagenet_large_kernels_are_batch_independent(imagenet, corruption, severity):
    # the FFT (defocus) and one-matrix-per-image (wide Gaussians) paths only run at 224 px
    batch = corrupt(imagenet, corruption, severity, resolution="imagenet", seed=5, indices=[8, 9])
    singles = [corrupt(imagenet[i : i + 1], corruption, severity, resolution="imagenet", seed=5, indices=[8 + i])
               for i in range(2)]
    assert np.array_equal(batch, np.concatenate(singles))


def _shuffle_loop(image: np.ndarray, offsets: np.ndarray, max_delta: int) -> np.ndarray:
    """The glass blur shuffle written plainly: one image, one pixel at a time."""
    x = image.copy()
    h, w = x.shape[:2]
    for iteration in range(offsets.shape[0]):
        k = 0
        for row in range(h - max_delta, max_delta, -1):
            for col in range(w - max_delta, max_delta, -1):
                dx, dy = offsets[iteration, k]
                k += 1
                x[row, col] = x[row + dy, col + dx]
    return x


def test_the_published_swap_of_pixel_views_is_a_copy():
    # the published glass blur swaps two pixels of an (H, W, 3) array with a tuple assignment
    # of their channel views: the partner keeps its own value, the visited pixel takes it
    x = np.arange(12).reshape(2, 2, 3)
    a, b = x[0, 0], x[1, 1]  # views, as the tuple's right-hand side holds them
    x[0, 0] = b
    x[1, 1] = a
    assert x[0, 0].tolist() == [9, 10, 11] and x[1, 1].tolist() == [9, 10, 11]


@pytest.mark.parametrize(
    "max_delta, iterations, height, width", [(1, 2, 16, 20), (2, 3, 20, 16), (4, 1, 32, 32), (3, 2, 32, 32)]
)
def test_glass_shuffle_vectorised_equals_loop(cifar, max_delta, iterations, height, width):
    images = cifar[:3, :height, :width]
    count = len(glass_positions(height, width, max_delta))
    offsets = np.random.default_rng(max_delta).integers(-max_delta, max_delta, (3, iterations, count, 2))
    fast = shuffle_pixels(images, offsets, max_delta)
    for image, image_offsets, result in zip(images, offsets, fast):
        assert np.array_equal(result, _shuffle_loop(image, image_offsets, max_delta))
    assert not np.array_equal(fast, images)


def test_frost_mixes_a_texture_crop(cifar, frost_folder):
    out = corrupt(cifar, "frost", 1, seed=0).astype(float)
    # CIFAR-10-C frost severity 1 is 1 * image + 0.2 * texture: never darker than the image
    assert (out >= cifar.astype(float) - 1).all()
    assert (out > cifar + 1).mean() > 0.5


def test_frost_on_images_larger_than_its_textures_is_a_clear_error():
    # the stand-in textures are 448 px high
    with pytest.raises(ValueError, match=r"images up to \d+x\d+ px .* got 600x600"):
        corrupt(np.zeros((1, 600, 600, 3), np.uint8), "frost", 1, resolution="imagenet")


def test_frost_without_textures_says_why_and_how(monkeypatch, tmp_path, cifar):
    monkeypatch.setenv(FROST_DIR_ENV, str(tmp_path))
    monkeypatch.setattr("importlib.util.find_spec", lambda name: None)
    with pytest.raises(FileNotFoundError, match="NOFROST_FROST_DIR.*imagecorruptions-imaug"):
        frost_texture_dir()
    with pytest.raises(FileNotFoundError, match="frost1.png"):
        corrupt(cifar, "frost", 1)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"corruption": "rain"}, "unknown corruption 'rain'; valid: gaussian_noise"),
        ({"severity": 0}, r"severity must be one of \[1, 2, 3, 4, 5\]"),
        ({"severity": 6}, "severity must be one of"),
        ({"resolution": "tiny"}, "valid: cifar, imagenet"),
    ],
)
def test_bad_variant_is_a_clear_error(cifar, kwargs, message):
    args = {"corruption": "fog", "severity": 1, **kwargs}
    with pytest.raises(ValueError, match=message):
        corrupt(cifar, args.pop("corruption"), args.pop("severity"), **args)


def test_bad_images_are_a_clear_error(cifar):
    with pytest.raises(ValueError, match="uint8 array"):
        corrupt(cifar.astype(np.float32), "fog", 1)
    with pytest.raises(ValueError, match=r"float tensor \(N, 3, H, W\)"):
        corrupt(torch.from_numpy(cifar), "fog", 1)
    with pytest.raises(ValueError, match="2 indices for 12 images"):
        corrupt(cifar, "fog", 1, indices=[0, 1])


@pytest.fixture(scope="module")
def test_model():
    import nofrost

    asset = Path(__file__).resolve().parents[1] / "assets" / "cifar_resnet10_nofrost_nf"
    return nofrost.load_model(asset).eval()


@pytest.mark.slow
def test_severity_5_hurts_the_test_model_at_least_as_much_as_severity_1(test_model, mini_test):
    """On 125 real test images, per corruption: accuracy at severity 5 is not above severity 1
    beyond sampling error. The shipped model is adversarially trained (robust to small noise)
    and only ~32 % accurate, so for mild corruptions the two accuracies are close; the bound is
    two standard errors of the paired difference, sqrt(discordant pairs) / n, plus one image."""
    images = mini_test.images[::8].permute(0, 2, 3, 1).numpy()
    labels = mini_test.targets[::8]
    n = len(labels)

    def correct(batch: np.ndarray) -> torch.Tensor:
        with torch.no_grad():
            return test_model(torch.from_numpy(batch).permute(0, 3, 1, 2).float() / 255).argmax(1) == labels

    drops = {}
    for corruption in list_corruptions():
        mild, severe = (correct(corrupt(images, corruption, s)) for s in (1, 5))
        discordant = int((mild != severe).sum())
        excess = (int(severe.sum()) - int(mild.sum())) / n
        assert excess <= 2 * math.sqrt(discordant) / n + 1 / n, corruption
        drops[corruption] = -excess
    # and the strong corruptions hurt it clearly (the test can tell severities apart)
    assert sum(drop > 0.03 for drop in drops.values()) >= 5, drops
