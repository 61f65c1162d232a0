"""ImageNet from a train/ + val/ folder of real photos (one per class 0-31, labels = 1k index)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from nofrost.data import dataset_info, load_dataset, make_loader, stratified_subset
from nofrost.data.imagenet import ImageNetFolder


def sample_class(photo: Path) -> tuple[int, str, str]:
    """``NNN_<wnid>_<name>.JPEG`` -> (NNN, wnid, name)."""
    index, wnid, name = photo.stem.split("_", 2)
    return int(index), wnid, name


@pytest.fixture
def imagenet_root(tmp_path: Path, imagenet_samples: list[Path]) -> Path:
    """``train/<wnid>/`` and ``val/<wnid>/`` with a symlink to each of the 32 real photos."""
    for photo in imagenet_samples:
        _, wnid, _ = sample_class(photo)
        for split in ("train", "val"):
            (tmp_path / split / wnid).mkdir(parents=True)
            (tmp_path / split / wnid / photo.name).symlink_to(photo)
    return tmp_path


def test_val_labels_are_1k_indices(imagenet_root: Path, imagenet_samples: list[Path]) -> None:
    val = load_dataset("imagenet", "val", root=imagenet_root)
    assert isinstance(val, ImageNetFolder) and len(val) == 32
    expected = {Path(path).name: label for path, label in val.samples}
    names = dataset_info("imagenet").classes
    assert len(val.classes) == 1000 and tuple(val.classes) == names
    for photo in imagenet_samples:
        index, _, name = sample_class(photo)
        assert expected[photo.name] == index
        assert names[index] == name
    for i in (0, 31):
        image, label = val[i]
        assert image.shape == (3, 224, 224) and image.dtype == torch.float32
        assert 0.0 <= image.min() and image.max() <= 1.0
        assert label == sample_class(Path(val.samples[i][0]))[0]
    test = load_dataset("imagenet", "test", root=imagenet_root)
    assert isinstance(test, ImageNetFolder) and test.samples == val.samples


def test_train_augmentation_and_image_size(imagenet_root: Path) -> None:
    train = load_dataset("imagenet", "train", root=imagenet_root, augment=True)
    first, second = train[5][0], train[5][0]
    assert first.shape == second.shape == (3, 224, 224)
    assert not torch.equal(first, second)  # a fresh random crop each time
    small = load_dataset("imagenet", "val", root=imagenet_root, image_size=96)
    assert small[0][0].shape == (3, 96, 96)


def test_folders_that_are_not_wnids_use_sorted_order(
    tmp_path: Path, imagenet_samples: list[Path]
) -> None:
    for name in ("zebra", "apple", "mango"):
        (tmp_path / "val" / name).mkdir(parents=True)
        (tmp_path / "val" / name / "a.JPEG").symlink_to(imagenet_samples[0])
    val = load_dataset("imagenet", "val", root=tmp_path)
    assert isinstance(val, ImageNetFolder) and val.classes == ["apple", "mango", "zebra"]
    assert [label for _, label in val.samples] == [0, 1, 2]
    (tmp_path / "val" / "n01440764").mkdir()
    with pytest.raises(ValueError, match="mixes ImageNet WNID class folders with others"):
        load_dataset("imagenet", "val", root=tmp_path)


def test_loader_shards_across_ranks(imagenet_root: Path) -> None:
    val = load_dataset("imagenet", "val", root=imagenet_root, image_size=64)
    seen = []
    for rank in (0, 1):
        loader = make_loader(val, 8, shuffle=True, augment=False, seed=3, rank=rank, world_size=2)
        batches = list(loader)
        assert len(loader) == len(batches) == 2
        assert all(x.shape == (8, 3, 64, 64) and y.dtype == torch.int64 for x, y in batches)
        seen.append({int(label) for _, y in batches for label in y})  # one photo per class
    assert not seen[0] & seen[1] and seen[0] | seen[1] == set(range(32))


def test_loader_augments_through_the_dataset_transform(imagenet_root: Path) -> None:
    train = load_dataset("imagenet", "train", root=imagenet_root, augment=True, image_size=64)
    subset = stratified_subset(train, 8)  # a Subset of the augmenting dataset
    (x, y), *_ = make_loader(subset, 4, shuffle=True, augment=True, seed=1)
    assert x.shape == (4, 3, 64, 64) and 0.0 <= x.min() and x.max() <= 1.0
    assert len(set(y.tolist())) == 4  # one photo per class: 4 distinct photos
    val = load_dataset("imagenet", "val", root=imagenet_root)
    with pytest.raises(
        ValueError,
        match=r"loaded with augment=False; load it with load_dataset\(..., augment=True\)",
    ):
        make_loader(val, 4, shuffle=True, augment=True)


def test_missing_root_and_split_folder(tmp_path: Path, imagenet_root: Path) -> None:
    with pytest.raises(
        FileNotFoundError,
        match=r"ImageNet root .*nothing is not a folder; expected <root>/train/<wnid>",
    ):
        load_dataset("imagenet", "train", root=tmp_path / "nothing")
    empty = tmp_path / "empty"
    (empty / "val").mkdir(parents=True)
    with pytest.raises(
        FileNotFoundError,
        match=r"no ImageNet train folder at .*empty/train; expected <root>/train/<wnid>",
    ):
        load_dataset("imagenet", "train", root=empty)
    with pytest.raises(FileNotFoundError, match=r"no class folders in .*empty/val; expected"):
        load_dataset("imagenet", "val", root=empty)
    with pytest.raises(
        ValueError,
        match="unknown split 'validation' for dataset 'imagenet'; allowed: test, train, val",
    ):
        load_dataset("imagenet", "validation", root=imagenet_root)


def test_folder_views_are_drawn_in_the_workers(imagenet_root: Path) -> None:
    train = load_dataset("imagenet", "train", root=imagenet_root, augment=True, image_size=48, views=("tda",))
    (x, y, views), *_ = make_loader(train, 4, shuffle=True, augment=True, seed=1, views=("tda",))
    assert views["tda"].shape == x.shape == (4, 3, 48, 48) and len(y) == 4
    assert 0.0 <= views["tda"].min() and views["tda"].max() <= 1.0
    assert not torch.equal(views["tda"], x)
    with pytest.raises(ValueError, match=r"loaded with views=\('tda',\); load it with load_dataset\(..., views=\(\)\)"):
        make_loader(train, 4, shuffle=True, augment=True)


def test_nofrost_star_trains_with_tda_drawn_in_a_loader_worker(imagenet_root: Path, tmp_path: Path) -> None:
    from nofrost.config import load_config
    from nofrost.train import train

    config = load_config("imagenet-nofrost-star-r26", overrides=[
        f"data.root={imagenet_root}", "data.image_size=32", "data.workers=1", "data.eval_n=8",
        "model.name=cifar_resnet10", "model.norm=none", "model.width=8", "optim.batch_size=8", "optim.epochs=1",
        "attack.steps=1", "runtime.device=cpu",
    ])
    result = train(config, tmp_path / "run", quiet=True)
    (record,) = result.history
    assert record["train_clean_acc"] is not None and record["train_adv_acc"] is not None
    assert torch.isfinite(torch.tensor(record["train_loss"]))
