"""Behavioural tests of PGD / PGD^T on real CIFAR-10 images and a small CNN trained here.

The CNN is defined and trained in this file (a few seconds on 2 CPU cores, a few thousand
real training images) so these tests do not depend on ``nofrost.models``.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from nofrost.attacks import get, pgd_attack, random_targets

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "cifar10_jpeg.npz"
TRAIN_PER_CLASS = 400
TEST_PER_CLASS = 20
EPOCHS = 6


def _decode(npz, split: str, indices: np.ndarray) -> torch.Tensor:
    from PIL import Image

    blob, offsets = npz[f"{split}_jpeg"], npz[f"{split}_offsets"]
    images = [
        np.asarray(Image.open(io.BytesIO(blob[offsets[i] : offsets[i + 1]].tobytes())).convert("RGB"))
        for i in indices
    ]
    return torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).float().div(255)


def _stratified(labels: np.ndarray, per_class: int, rng: np.random.Generator) -> np.ndarray:
    # The file is sorted by class: sample the same number of images from every class.
    return np.concatenate(
        [rng.choice(np.flatnonzero(labels == c), per_class, replace=False) for c in range(10)]
    )


class SmallCNN(nn.Module):
    """Three conv blocks; normalisation inside the model, so it takes [0, 1] images."""

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("mean", torch.tensor([0.491, 0.482, 0.447]).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor([0.247, 0.243, 0.262]).view(1, 3, 1, 1))
        self.features = nn.Sequential(
            nn.Conv2d(3, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        )  # fmt: skip
        self.head = nn.Linear(64 * 4 * 4, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features((x - self.mean) / self.std).flatten(1))


@pytest.fixture(scope="module")
def cifar():
    """(model, x_test, y_test, clean_accuracy): a small CNN trained on real CIFAR-10."""
    if not DATA.is_file():
        pytest.skip(f"real CIFAR-10 data not found at {DATA}")
    npz = np.load(DATA)
    rng = np.random.default_rng(0)
    train_idx = _stratified(npz["y_train"], TRAIN_PER_CLASS, rng)
    test_idx = _stratified(npz["y_test"], TEST_PER_CLASS, rng)
    x_train = _decode(npz, "train", train_idx)
    y_train = torch.from_numpy(npz["y_train"][train_idx])
    x_test = _decode(npz, "test", test_idx)
    y_test = torch.from_numpy(npz["y_test"][test_idx])

    with torch.random.fork_rng():
        torch.manual_seed(0)
        model = SmallCNN()
        opt = torch.optim.Adam(model.parameters(), lr=2e-3)
        g = torch.Generator().manual_seed(0)
        model.train()
        for _ in range(EPOCHS):  # a fixed number of epochs (not wall time): deterministic
            perm = torch.randperm(len(x_train), generator=g)
            for i in range(0, len(perm), 64):
                batch = perm[i : i + 64]
                loss = F.cross_entropy(model(x_train[batch]), y_train[batch])
                opt.zero_grad()
                loss.backward()
                opt.step()
    model.eval()
    clean = accuracy(model, x_test, y_test)
    return model, x_test, y_test, clean


def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    with torch.no_grad():
        return float((model(x).argmax(1) == y).float().mean())


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_small_cnn_learned_something(cifar):
    _, _, _, clean = cifar
    print(f"clean accuracy of the test CNN: {clean:.3f}")
    assert clean > 0.40


def test_pgd_lowers_accuracy_a_lot(cifar):
    model, x, y, clean = cifar
    x_adv = pgd_attack(model, x, y, 8 / 255, generator=gen(0))
    robust = accuracy(model, x_adv, y)
    print(f"clean {clean:.3f} -> PGD-10 (eps 8/255) {robust:.3f}")
    assert robust <= 0.10
    assert clean - robust >= 0.30


def test_more_steps_never_helps_the_model(cifar):
    model, x, y, clean = cifar
    accs = [
        accuracy(model, pgd_attack(model, x, y, 8 / 255, steps=s, generator=gen(1)), y)
        for s in (1, 3, 10)
    ]
    print(f"eps 8/255, steps 1/3/10: {accs} (clean {clean:.3f})")
    assert accs[0] < clean
    assert accs[0] >= accs[1] >= accs[2]


@pytest.mark.parametrize("name", ["pgd", "pgd-t"])
def test_eps_zero_is_the_identity(cifar, name):
    model, x, y, clean = cifar
    x_adv = get(name)(model, x, y, 0.0, generator=gen(2))
    assert torch.equal(x_adv, x)
    assert accuracy(model, x_adv, y) == clean


def test_targeted_pgd_reaches_its_random_targets(cifar):
    model, x, y, _ = cifar
    x_adv = get("pgd-t")(model, x, y, 8 / 255, generator=gen(3))
    # Targets are drawn from the generator before anything else: reproduce them.
    targets = random_targets(y, 10, gen(3))
    assert not torch.any(targets == y)
    with torch.no_grad():
        pred = model(x_adv).argmax(1)
    hit = float((pred == targets).float().mean())
    print(f"PGD^T (eps 8/255) reaches its random target for {hit:.3f} of images (chance 0.111)")
    assert hit > 0.3

    # pgd-t is pgd(targeted=True) with those targets and the generator's remaining stream.
    g = gen(3)
    t = random_targets(y, 10, g)
    same = pgd_attack(model, x, y, 8 / 255, targeted=True, target=t, generator=g)
    assert torch.equal(same, x_adv)


def test_more_restarts_never_help_the_model(cifar):
    model, x, y, _ = cifar
    one = pgd_attack(model, x, y, 2 / 255, steps=5, restarts=1, generator=gen(4))
    three = pgd_attack(model, x, y, 2 / 255, steps=5, restarts=3, generator=gen(4))
    with torch.no_grad():
        robust_one = model(one).argmax(1) == y
        robust_three = model(three).argmax(1) == y
    print(
        f"eps 2/255, 5 steps: restarts=1 {float(robust_one.float().mean()):.3f}, "
        f"restarts=3 {float(robust_three.float().mean()):.3f}"
    )
    # The first restart uses the same random start, and an image keeps the first restart's
    # adversarial that fools the model: every image robust to 3 restarts is robust to 1.
    assert not torch.any(robust_three & ~robust_one)
    assert robust_three.sum() <= robust_one.sum()


def test_generator_makes_attacks_reproducible(cifar):
    model, x, y, _ = cifar
    for name in ("pgd", "pgd-t"):
        a = get(name)(model, x, y, 8 / 255, steps=3, generator=gen(5))
        b = get(name)(model, x, y, 8 / 255, steps=3, generator=gen(5))
        c = get(name)(model, x, y, 8 / 255, steps=3, generator=gen(6))
        assert torch.equal(a, b)
        assert not torch.equal(a, c)


@pytest.mark.parametrize("name", ["pgd", "pgd-t"])
def test_validation_on_real_data(cifar, name):
    model, x, y, _ = cifar
    attack = get(name)
    with pytest.raises(ValueError, match="8/255"):
        attack(model, x, y, 8)
    with pytest.raises(ValueError, match="10 output classes"):
        attack(model, x, torch.where(y == 9, 10, y), 8 / 255)
    with pytest.raises(ValueError, match=r"\[0, 1\] images"):
        attack(model, x * 255, y, 8 / 255)
    with pytest.raises(ValueError, match=r"\[0, 1\] images"):
        attack(model, (x - 0.5) / 0.25, y, 8 / 255)
    with pytest.raises(ValueError, match=r"shape \(N,\)"):
        attack(model, x, y[:, None], 8 / 255)
    assert not model.training
    assert all(p.requires_grad for p in model.parameters())


def test_bf16_attack_on_cpu_is_about_as_strong(cifar):
    model, x, y, _ = cifar
    fp32 = accuracy(model, pgd_attack(model, x, y, 2 / 255, generator=gen(7)), y)
    bf16 = accuracy(model, pgd_attack(model, x, y, 2 / 255, generator=gen(7), precision="bf16"), y)
    print(f"eps 2/255 PGD-10: fp32 {fp32:.3f}, bf16 {bf16:.3f}")
    assert abs(fp32 - bf16) <= 0.05


def test_matches_torchattacks_pgd(cifar):
    torchattacks = pytest.importorskip("torchattacks")
    model, x, y, _ = cifar
    eps, steps = 2 / 255, 10
    alpha = min(1.25 * eps, eps + 4 / 255) / steps
    ours = accuracy(model, pgd_attack(model, x, y, eps, steps=steps, generator=gen(8)), y)
    reference = torchattacks.PGD(model, eps=eps, alpha=alpha, steps=steps, random_start=True)
    theirs = accuracy(model, reference(x, y), y)
    print(f"eps 2/255 PGD-10: nofrost {ours:.3f}, torchattacks {theirs:.3f}")
    assert abs(ours - theirs) <= 0.02


def _textbook_pgd(model, x, y, eps, alpha, steps, generator):
    """Madry et al.'s PGD written as plainly as possible, as an independent reference."""
    delta = (torch.rand(x.shape, generator=generator) * 2 - 1) * eps
    delta = (x + delta).clamp(0, 1) - x
    for _ in range(steps):
        delta.requires_grad_(True)
        loss = F.cross_entropy(model(x + delta), y)
        (grad,) = torch.autograd.grad(loss, delta)
        delta = (delta.detach() + alpha * grad.sign()).clamp(-eps, eps)
        delta = (x + delta).clamp(0, 1) - x
    return x + delta


def test_matches_textbook_pgd(cifar):
    model, x, y, _ = cifar
    eps, steps = 2 / 255, 10
    alpha = min(1.25 * eps, eps + 4 / 255) / steps
    ours = accuracy(model, pgd_attack(model, x, y, eps, steps=steps, generator=gen(9)), y)
    theirs = accuracy(model, _textbook_pgd(model, x, y, eps, alpha, steps, gen(10)), y)
    print(f"eps 2/255 PGD-10: nofrost {ours:.3f}, textbook loop {theirs:.3f}")
    assert abs(ours - theirs) <= 0.02
