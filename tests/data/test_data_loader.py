"""make_loader, random_crop_flip and stratified_subset on the shipped CIFAR-10 subset."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch.utils.data import Subset

from nofrost.data import TensorImageDataset, make_loader, random_crop_flip, stratified_subset
from nofrost.data.loader import TensorBatchLoader


def batches(dataset: TensorImageDataset, **kwargs) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """All batches of 128 of ``dataset``; shuffled and augmented unless ``kwargs`` say otherwise."""
    options = {"shuffle": True, "augment": True, "seed": 0, "epoch": 0} | kwargs
    return list(make_loader(dataset, 128, **options))


def tensor_loader(dataset: TensorImageDataset, batch_size: int, **kwargs) -> TensorBatchLoader:
    """make_loader's batched path for an in-memory dataset."""
    loader = make_loader(dataset, batch_size, **kwargs)
    assert isinstance(loader, TensorBatchLoader)
    return loader


def test_same_seed_and_epoch_give_the_same_batches(mini_test: TensorImageDataset) -> None:
    dataset = mini_test.subset(torch.arange(600))
    first, again = batches(dataset, seed=7, epoch=2), batches(dataset, seed=7, epoch=2)
    assert len(first) == len(again) == 5
    for (x1, y1), (x2, y2) in zip(first, again):
        assert torch.equal(x1, x2) and torch.equal(y1, y2)
    for other in (batches(dataset, seed=7, epoch=3), batches(dataset, seed=8, epoch=2)):
        assert not torch.equal(first[0][1], other[0][1])


def test_batches_cover_the_data_once(mini_test: TensorImageDataset) -> None:
    loader = tensor_loader(mini_test, 300, shuffle=True, augment=False, epoch=1)
    xs, ys = zip(*loader)
    assert len(loader) == len(xs) == 7 and [len(y) for y in ys] == [300] * 6 + [200]
    x, y = xs[0], ys[0]
    assert x.dtype == torch.float32 and y.dtype == torch.int64 and x.device.type == "cpu"
    assert torch.bincount(torch.cat(ys)).tolist() == [200] * 10
    order = loader.indices()
    assert sorted(order.tolist()) == list(range(2000))
    assert torch.equal(x, mini_test.images[order[:300]].float() / 255)
    unshuffled = tensor_loader(mini_test, 300, shuffle=False, augment=False, drop_last=True)
    assert len(unshuffled) == len(list(unshuffled)) == 6
    assert torch.equal(unshuffled.indices(), torch.arange(2000))


@pytest.mark.parametrize("size", [2000, 1999])
def test_ranks_get_disjoint_equal_shares(mini_test: TensorImageDataset, size: int) -> None:
    dataset = mini_test.subset(torch.arange(size))
    loaders = [
        tensor_loader(
            dataset, 100, shuffle=True, augment=False, seed=1, epoch=4, rank=r, world_size=2
        )
        for r in (0, 1)
    ]
    shares = [loader.indices() for loader in loaders]
    assert len(shares[0]) == len(shares[1]) == size // 2
    assert not set(shares[0].tolist()) & set(shares[1].tolist())
    assert len(loaders[0]) == 10
    _, y = next(iter(loaders[1]))
    assert torch.equal(y, dataset.targets[shares[1][:100]])
    with pytest.raises(
        ValueError, match="expected 0 <= rank < world_size, got rank=2, world_size=2"
    ):
        make_loader(dataset, 100, shuffle=True, augment=False, rank=2, world_size=2)


def test_augmentation_crops_and_flips_within_range(mini_test: TensorImageDataset) -> None:
    plain, y_plain = next(iter(make_loader(mini_test, 128, shuffle=True, augment=False)))
    augmented, y_aug = next(iter(make_loader(mini_test, 128, shuffle=True, augment=True)))
    assert torch.equal(y_plain, y_aug)  # augmentation does not change the order
    assert augmented.shape == plain.shape and augmented.dtype == torch.float32
    assert 0.0 <= augmented.min() and augmented.max() <= 1.0
    changed = (augmented != plain).flatten(1).any(1)
    assert changed.float().mean() > 0.8  # 1 in 162 crops is the identity
    padded = F.pad(plain, (4, 4, 4, 4))
    for i in range(8):  # each output is some 32x32 window of the padded image, maybe mirrored
        windows = padded[i].unfold(1, 32, 1).unfold(2, 32, 1)  # (C, 9, 9, 32, 32)
        candidates = torch.cat([windows, windows.flip(-1)], dim=1).permute(1, 2, 0, 3, 4)
        assert (candidates == augmented[i]).flatten(2).all(2).any()


def test_random_crop_flip_is_seeded_and_keeps_dtype(mini_test: TensorImageDataset) -> None:
    images = mini_test.images[:64]
    first = random_crop_flip(images, pad=4, generator=torch.Generator().manual_seed(5))
    again = random_crop_flip(images, pad=4, generator=torch.Generator().manual_seed(5))
    assert first.dtype == torch.uint8 and first.shape == images.shape and torch.equal(first, again)
    no_pad = random_crop_flip(images, pad=0, generator=torch.Generator().manual_seed(1))
    flipped = (no_pad != images).flatten(1).any(1)
    assert torch.equal(no_pad[flipped], images[flipped].flip(-1)) and 0 < flipped.sum() < 64
    with pytest.raises(
        ValueError, match=r"expects a \(N, C, H, W\) batch, got shape \(3, 32, 32\)"
    ):
        random_crop_flip(images[0])


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_batches_match_cpu(mini_test: TensorImageDataset) -> None:
    cpu = batches(mini_test, seed=2)
    cuda = batches(mini_test, seed=2, device="cuda")
    for (xc, yc), (xg, yg) in zip(cpu, cuda):
        assert xg.device.type == "cuda" and torch.equal(xc, xg.cpu()) and torch.equal(yc, yg.cpu())


def test_items_of_an_augmented_dataset(mini_test: TensorImageDataset) -> None:
    dataset = mini_test.subset(torch.arange(10))
    dataset.augment = True
    image, label = dataset[3]
    assert image.shape == (3, 32, 32) and 0.0 <= image.min() and image.max() <= 1.0
    assert label == int(mini_test.targets[3])


def test_stratified_subset(mini_train: TensorImageDataset) -> None:
    subset = stratified_subset(mini_train, 1005, seed=0)
    assert isinstance(subset, TensorImageDataset) and len(subset) == 1005
    counts = torch.bincount(subset.targets, minlength=10)
    assert counts.min() == 100 and counts.max() == 101
    again, other = (
        stratified_subset(mini_train, 1005, seed=0),
        stratified_subset(mini_train, 1005, seed=1),
    )
    assert isinstance(again, TensorImageDataset) and isinstance(other, TensorImageDataset)
    assert torch.equal(subset.images, again.images) and not torch.equal(subset.images, other.images)


def test_stratified_subset_of_uneven_classes_and_plain_datasets(
    mini_train: TensorImageDataset,
) -> None:
    # 5 birds (class 2) among many others: the birds all go in, the others share the rest.
    birds = torch.nonzero(mini_train.targets == 2).flatten()[:5]
    others = torch.nonzero(mini_train.targets != 2).flatten()[:400]
    uneven = Subset(mini_train, torch.cat([birds, others]).tolist())
    subset = stratified_subset(uneven, 95, seed=3)
    assert isinstance(subset, Subset) and len(subset) == 95
    labels = torch.tensor([uneven[i][1] for i in subset.indices])
    counts = torch.bincount(labels, minlength=10)
    assert counts[2] == 5 and set(counts[counts != 5].tolist()) <= {10, 11}
    with pytest.raises(ValueError, match=r"n must be in \[1, 405\] \(the dataset size\), got 406"):
        stratified_subset(uneven, 406)
    with pytest.raises(TypeError, match="expected a dataset with a `targets` attribute"):
        stratified_subset([(torch.zeros(1), 0)], 1)  # type: ignore[arg-type]
