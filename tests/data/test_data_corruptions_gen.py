"""cifar10-c-gen and imagenet-c-gen: generated corruption benchmarks behind load_dataset, lazy
and cached, named as generated everywhere."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from nofrost import load_model
from nofrost.cli import main
from nofrost.data import load_dataset, stratified_subset
from nofrost.data.corruptions import corrupt
from nofrost.data.corruptions import dataset as corrupted_dataset
from nofrost.data.corruptions.weather import FROST_DIR_ENV
from nofrost.evaluate import evaluate
from nofrost.evaluate.corruptions import evaluate_corruptions
from nofrost.evaluate.result import EvaluationResult

MODEL_DIR = Path(__file__).resolve().parents[1] / "assets" / "cifar_resnet10_sat_bn"


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("NOFROST_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache" / "corruptions"


def test_items_are_the_shipped_test_images_corrupted_as_corrupt_does(cache):
    data = load_dataset("cifar10-c-gen", "test", corruption="contrast", severity=3)
    mini = load_dataset("cifar10-mini", "test")
    assert len(data) == len(mini) and torch.equal(data.targets, mini.targets)
    for i in (0, 7, 1999):
        expected = corrupt(mini.images[i : i + 1].permute(0, 2, 3, 1).numpy(), "contrast", 3, indices=[i])
        assert torch.equal(data[i][0], torch.from_numpy(expected[0]).permute(2, 0, 1).float() / 255)
        assert data[i][1] == int(mini.targets[i])
    assert len(list(cache.glob("contrast-3-cifar-*.npy"))) == 1


def test_a_subset_generates_only_its_images_each_as_in_the_whole_set(cache, monkeypatch):
    whole = load_dataset("cifar10-c-gen", "test", corruption="gaussian_noise", severity=2).materialize()
    shutil.rmtree(cache)
    calls = []
    real = corrupted_dataset.corrupt
    monkeypatch.setattr(corrupted_dataset, "corrupt", lambda batch, *a, **k: calls.append(len(batch)) or real(batch, *a, **k))
    lazy = load_dataset("cifar10-c-gen", "test", corruption="gaussian_noise", severity=2)
    part = stratified_subset(lazy, 40, seed=1)
    assert not calls  # nothing generated until the images are needed
    chosen = part.positions
    made = part.materialize()
    assert sum(calls) == 40
    assert torch.equal(made.images, whole.images[torch.from_numpy(chosen)])
    assert torch.equal(made.targets, whole.targets[torch.from_numpy(chosen)])


def test_a_second_load_reads_the_cache(cache, monkeypatch):
    load_dataset("cifar10-c-gen", "test", corruption="fog", severity=1).materialize()
    monkeypatch.setattr(corrupted_dataset, "corrupt", lambda *a, **k: pytest.fail("generated again"))
    again = load_dataset("cifar10-c-gen", "test", corruption="fog", severity=1).materialize()
    assert len(again) == 2000


def test_frost_without_textures_is_refused_before_any_work(monkeypatch, tmp_path):
    monkeypatch.setenv(FROST_DIR_ENV, str(tmp_path / "no-textures"))
    monkeypatch.setattr("importlib.util.find_spec", lambda name, *a: None)
    with pytest.raises(FileNotFoundError, match="frost needs the published frost textures"):
        load_dataset("cifar10-c-gen", "test", corruption="frost", severity=1)


def test_the_corruption_loop_names_the_generated_benchmark_and_scores_each_set():
    model = load_model(MODEL_DIR)
    result = evaluate_corruptions(model, "cifar10-c-gen", corruptions="contrast,pixelate", severities="1,5", n=30)
    assert result.dataset == "cifar10-c-gen" and result.n == 4 * 30 and result.mce is None
    for name in ("contrast", "pixelate"):
        for level in (1, 5):
            data = stratified_subset(load_dataset("cifar10-c-gen", "test", corruption=name, severity=level), 30, 0)
            expected = evaluate(model, data.materialize(), attacks="clean", audit=False).clean
            assert result.corruptions[name].by_severity[level] == pytest.approx(expected)


def test_cli_evaluates_a_generated_benchmark_beside_the_run(tmp_path, capsys):
    run = tmp_path / "run"
    shutil.copytree(MODEL_DIR, run)
    argv = ["evaluate", str(run), "--data", "cifar10-c-gen", "--corruptions", "brightness", "--severities", "1,3",
            "--n", "20", "--quiet"]
    assert main(argv) == 0
    result = EvaluationResult.load(run / "eval-cifar10-c-gen.json")
    assert result.dataset == "cifar10-c-gen" and set(result.corruptions["brightness"].by_severity) == {1, 3}


def test_imagenet_c_gen_is_made_at_224_px_from_val(imagenet_samples, tmp_path):
    for photo in imagenet_samples[:4]:
        folder = tmp_path / "imagenet" / "val" / photo.name.split("_")[1]
        folder.mkdir(parents=True)
        shutil.copy(photo, folder / photo.name)
    data = load_dataset("imagenet-c-gen", "test", tmp_path / "imagenet", corruption="motion_blur", severity=2)
    assert len(data) == 4 and data.targets.tolist() == sorted(data.targets.tolist())
    image, label = data[0]
    assert image.shape == (3, 224, 224) and 0 <= float(image.min()) and float(image.max()) <= 1
    clean = load_dataset("imagenet", "val", tmp_path / "imagenet")[0][0]
    assert float((image - clean).abs().mean()) > 0.01 and label == data.targets[0]
    with pytest.raises(ValueError, match="made at 224 px"):
        load_dataset("imagenet-c-gen", "val", tmp_path / "imagenet", corruption="fog", severity=1, image_size=128)
    assert np.isfinite(float(image.mean()))
