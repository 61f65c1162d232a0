"""Distribution-shift evaluation: class-subset scoring (ImageNet-R/A), the corruption loop and
its JSON, mCE by hand, and the CLI."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

import nofrost
from nofrost import attacks as attack_registry
from nofrost.cli import main
from nofrost.data import describe_dataset, load_dataset
from nofrost.data.corruptions import BENCHMARK_CORRUPTIONS, SEVERITIES
from nofrost.evaluate import evaluate
from nofrost.evaluate.class_subset import SubsetLogits
from nofrost.evaluate.corruptions import (
    evaluate_corruptions, mce, parse_corruptions, parse_severities, relative_mce, relative_mce_datasets,
)
from nofrost.evaluate.result import CorruptionResult, EvaluationResult

MODEL_DIR = Path(__file__).resolve().parents[1] / "assets" / "cifar_resnet10_sat_bn"
SUBSET = [1, 3, 5, 7, 9]


@pytest.fixture(scope="module")
def model() -> nn.Module:
    return nofrost.load_model(MODEL_DIR)


@pytest.fixture(scope="module")
def covered_only():
    """Shipped test images of classes 1, 3, 5, 7, 9 that declare they cover only those classes."""
    test = load_dataset("cifar10-mini", "test")
    keep = torch.isin(test.targets, torch.tensor(SUBSET)).nonzero().squeeze(1)[:60]
    dataset = test.subset(keep)
    dataset.class_subset = SUBSET
    return dataset


def test_subset_logits_keep_those_columns_and_map_labels() -> None:
    logits = torch.tensor([[9.0, 1.0, 2.0, 0.0, 3.0]])  # argmax 0 overall, 4 among {1, 2, 4}
    wrapped = SubsetLogits(nn.Identity(), [1, 2, 4])
    assert torch.equal(wrapped(logits), torch.tensor([[1.0, 2.0, 3.0]]))
    assert wrapped.positions(torch.tensor([4, 1, 2])).tolist() == [2, 0, 1]
    with pytest.raises(ValueError, match=r"labels \[0, 7\] lie outside the dataset's class_subset"):
        wrapped.positions(torch.tensor([0, 7, 1]))
    with pytest.raises(ValueError, match="class_subset must be sorted"):
        SubsetLogits(nn.Identity(), [4, 1])
    with pytest.raises(ValueError, match="covers classes up to 4 but the model has 3 outputs"):
        wrapped(torch.zeros(1, 3))


def test_evaluate_scores_a_class_subset_on_its_logits_only(model, covered_only) -> None:
    with torch.no_grad():
        logits = model(torch.stack([covered_only[i][0] for i in range(len(covered_only))]))
    labels = covered_only.targets
    by_hand = (torch.tensor(SUBSET)[logits[:, SUBSET].argmax(1)] == labels).float().mean().item()
    unrestricted = (logits.argmax(1) == labels).float().mean().item()
    assert by_hand > unrestricted  # some argmaxes lie outside the subset: the test can tell them apart
    result = evaluate(model, covered_only, attacks="clean", model_name="sat")
    assert result.clean == pytest.approx(by_hand)
    assert model.training is False and not isinstance(model, SubsetLogits)


def test_attacks_see_only_the_covered_logits(model, covered_only, monkeypatch) -> None:
    outputs = []
    real_get = attack_registry.get

    def spying_get(name):
        attack = real_get(name)

        def spy(attacked, x, y, eps, **kwargs):
            with torch.no_grad():
                outputs.append((attacked(x[:1]).shape[1], int(y.max())))
            return attack(attacked, x, y, eps, **kwargs)

        return spy

    monkeypatch.setattr(attack_registry, "get", spying_get)
    result = evaluate(model, covered_only, attacks="pgd:steps=2", n=20, audit=False)
    assert outputs and all(width == len(SUBSET) and top < len(SUBSET) for width, top in outputs)
    assert result.attacks["pgd:steps=2"].accuracy <= result.clean


def sets(accuracy) -> dict[str, CorruptionResult]:
    return {name: CorruptionResult(name, {s: accuracy(name, s) for s in SEVERITIES}) for name in BENCHMARK_CORRUPTIONS}


def test_mce_by_hand() -> None:
    alexnet = describe_dataset("imagenet-c").reference_errors()
    assert alexnet["gaussian_noise"] == 0.886428 and alexnet["jpeg_compression"] == 0.6065 and len(alexnet) == 15
    # A model that errs exactly as AlexNet does has mCE 1.
    assert mce(sets(lambda name, s: 1 - alexnet[name]), alexnet) == pytest.approx(1.0)
    # Gaussian noise errors 0.2, 0.4, ..., 1.0 (mean 0.6): CE = 0.6 / 0.886428 = 0.676874; the other
    # 14 as AlexNet (CE 1): mCE = (14 + 0.676874) / 15 = 0.978458.
    noisy = sets(lambda name, s: 1 - 0.2 * s if name == "gaussian_noise" else 1 - alexnet[name])
    assert mce(noisy, alexnet) == pytest.approx(0.978458, abs=1e-6)
    # Half AlexNet's error everywhere: 0.5.
    assert mce(sets(lambda name, s: 1 - alexnet[name] / 2), alexnet) == pytest.approx(0.5)
    missing_severity = sets(lambda name, s: 0.5)
    missing_severity["fog"] = CorruptionResult("fog", {1: 0.5, 2: 0.5, 3: 0.5, 4: 0.5})
    assert mce(missing_severity, alexnet) is None
    assert mce({k: v for k, v in sets(lambda n, s: 0.5).items() if k != "snow"}, alexnet) is None


def test_relative_mce_by_hand() -> None:
    entry = describe_dataset("imagenet-c")
    alexnet, alexnet_clean = entry.reference_errors(), entry.reference_clean_error()
    assert alexnet_clean == pytest.approx(1 - 0.56522) and relative_mce_datasets() == ["imagenet-c"]
    assert entry.uncorrupted == ("imagenet", "val")
    # Clean error 0.2; every corruption adds exactly AlexNet's added error: relative mCE 1.
    as_alexnet = sets(lambda name, s: 1 - (0.2 + alexnet[name] - alexnet_clean))
    assert relative_mce(as_alexnet, 0.8, alexnet, alexnet_clean) == pytest.approx(1.0)
    # Gaussian noise errors 0.2, 0.4, ..., 1.0 (mean 0.6) over clean error 0.2: relative CE =
    # 0.4 / (0.886428 - 0.43478) = 0.885646; the other 14 as AlexNet: (14 + 0.885646) / 15 = 0.992376.
    noisy = sets(lambda name, s: 1 - 0.2 * s if name == "gaussian_noise" else 1 - (0.2 + alexnet[name] - alexnet_clean))
    assert relative_mce(noisy, 0.8, alexnet, alexnet_clean) == pytest.approx(0.992376, abs=1e-6)
    # Corruptions that cost nothing: 0, whatever the error itself (mCE would not be 0).
    unhurt = sets(lambda name, s: 0.7)
    assert relative_mce(unhurt, 0.7, alexnet, alexnet_clean) == pytest.approx(0.0)
    assert mce(unhurt, alexnet) > 0.3
    assert relative_mce({k: v for k, v in unhurt.items() if k != "fog"}, 0.7, alexnet, alexnet_clean) is None


class NearestOf(nn.Module):
    """Right on each of a few known images: the class of the nearest of their mean colours."""

    def __init__(self, colours: torch.Tensor, classes: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("colours", colours)
        self.register_buffer("classes", classes)

    def forward(self, x):
        logits = torch.full((len(x), 1000), -1e3)
        logits[:, self.classes] = -torch.cdist(x.mean(dim=(2, 3)), self.colours)
        return logits


def test_relative_mce_measures_the_uncorrupted_val_images(imagenet_samples, tmp_path) -> None:
    """ImageNet-C folders (all 15 x 5 sets, in the published layout) and the ImageNet val folder
    they corrupt: the loop measures the uncorrupted accuracy on the same images and the relative
    mCE from it, as a hand computation from the model's own predictions."""
    from PIL import Image

    photos = imagenet_samples[:4]
    labels = torch.tensor([int(p.name[:3]) for p in photos])
    for photo in photos:
        wnid = photo.name.split("_")[1]
        (tmp_path / "imagenet" / "val" / wnid).mkdir(parents=True)
        shutil.copy(photo, tmp_path / "imagenet" / "val" / wnid / photo.name)
    corrupted_copies = {}
    for photo in photos:  # one corrupted copy (224 px, colour channels reversed) for every corruption and severity
        with Image.open(photo) as image:
            small = image.convert("RGB").resize((256, 256)).crop((16, 16, 240, 240))
            corrupted_copies[photo] = Image.merge("RGB", small.split()[::-1])
    for name in BENCHMARK_CORRUPTIONS:
        for severity in SEVERITIES:
            for photo, image in corrupted_copies.items():
                folder = tmp_path / "c" / name / str(severity) / photo.name.split("_")[1]
                folder.mkdir(parents=True)
                image.save(folder / photo.name, "JPEG")
    clean = load_dataset("imagenet", "val", tmp_path / "imagenet")
    model = NearestOf(torch.stack([clean[i][0].mean((1, 2)) for i in range(4)]), labels)
    result = evaluate_corruptions(model, "imagenet-c", tmp_path / "c", corruptions="benchmark",
                                  clean_root=tmp_path / "imagenet", batch_size=4)
    corrupted = load_dataset("imagenet-c", "test", tmp_path / "c", corruption="fog", severity=2)
    with torch.no_grad():
        clean_accuracy = (model(torch.stack([clean[i][0] for i in range(4)])).argmax(1) == labels).float().mean()
        corrupted_accuracy = (model(torch.stack([corrupted[i][0] for i in range(4)])).argmax(1) == labels).float().mean()
    assert result.uncorrupted_accuracy == pytest.approx(clean_accuracy.item())
    assert corrupted_accuracy != clean_accuracy  # the test tells the uncorrupted images from the corrupted ones
    entry = describe_dataset("imagenet-c")
    alexnet, alexnet_clean = entry.reference_errors(), entry.reference_clean_error()
    added = (1 - corrupted_accuracy.item()) - (1 - clean_accuracy.item())  # the same in every set
    by_hand = sum(added / (alexnet[c] - alexnet_clean) for c in BENCHMARK_CORRUPTIONS) / 15
    assert result.relative_mce == pytest.approx(by_hand) and result.mce is not None
    data = json.loads(json.dumps(result.to_json()))
    assert data["uncorrupted_accuracy"] == result.uncorrupted_accuracy and data["relative_mce"] == pytest.approx(by_hand)
    assert EvaluationResult.from_json(data).relative_mce == result.relative_mce
    with pytest.raises(ValueError, match=r"clean_root is for a benchmark with a reference clean error \(relative mCE: "
                                         r"imagenet-c\); 'cifar10-c-gen' has none"):
        evaluate_corruptions(model, "cifar10-c-gen", clean_root=tmp_path)


def test_cli_finds_the_uncorrupted_images_for_relative_mce(tmp_path, capsys) -> None:
    import argparse

    from nofrost.cli import _clean_root

    run = tmp_path / "run"
    run.mkdir()
    args = argparse.Namespace(model=str(run), clean_root=None)
    assert _clean_root(args, "imagenet-c") is None
    assert "no relative mCE without the uncorrupted imagenet images; give --clean-root DIR" in capsys.readouterr().err
    (run / "config.yaml").write_text("data: {name: imagenet, root: /data/imagenet}\nmodel: {name: resnet26}\n")
    assert _clean_root(args, "imagenet-c") == "/data/imagenet"  # the run trained on those images
    assert "from the run's data.root, /data/imagenet" in capsys.readouterr().err
    assert _clean_root(argparse.Namespace(model=str(run), clean_root="/elsewhere"), "imagenet-c") == "/elsewhere"
    assert _clean_root(args, "cifar10-c") is None  # no AlexNet reference there
    assert main(["evaluate", str(MODEL_DIR), "--data", "cifar10-mini", "--clean-root", str(tmp_path)]) == 2
    assert "--clean-root is for the relative mCE of imagenet-c; --data cifar10-mini has no reference" in capsys.readouterr().err


def test_corruption_loop_gives_each_set_its_accuracy(model, fake_cifar10_c) -> None:
    result = evaluate_corruptions(model, "cifar10-c", fake_cifar10_c.root, corruptions="fog,snow",
                                  severities=[1, 3, 5], model_name="sat")
    assert list(result.corruptions) == ["snow", "fog"]  # benchmark order
    for name in ("fog", "snow"):
        for severity in (1, 3, 5):
            images = torch.from_numpy(fake_cifar10_c.expected(name, severity)).permute(0, 3, 1, 2).float() / 255
            with torch.no_grad():
                by_hand = (model(images).argmax(1).numpy() == fake_cifar10_c.labels).mean()
            assert result.corruptions[name].by_severity[severity] == pytest.approx(by_hand)
    means = {name: np.mean(list(c.by_severity.values())) for name, c in result.corruptions.items()}
    assert result.mean_corruption_accuracy == pytest.approx(np.mean(list(means.values())))
    assert result.n == 2 * 3 * 12 and result.clean == pytest.approx(result.mean_corruption_accuracy)
    data = json.loads(json.dumps(result.to_json()))
    assert data["dataset"] == "cifar10-c" and set(data["corruptions"]) == {"fog", "snow"}
    assert set(data["corruptions"]["fog"]) == {"1", "3", "5", "mean"} and "mce" not in data
    assert data["corruptions"]["fog"]["mean"] == pytest.approx(means["fog"])
    again = EvaluationResult.from_json(data)
    assert again.to_json() == data and again.corruptions["snow"].by_severity == result.corruptions["snow"].by_severity


def test_n_takes_the_same_stratified_images_per_set(model, fake_cifar10_c) -> None:
    result = evaluate_corruptions(model, "cifar10-c", fake_cifar10_c.root, corruptions=["fog"], severities="2", n=5)
    assert result.n == 5 and list(result.corruptions["fog"].by_severity) == [2]


def test_names_and_severities_are_checked() -> None:
    assert parse_corruptions("snow,fog") == ["snow", "fog"]  # benchmark order
    assert parse_corruptions("benchmark") == list(BENCHMARK_CORRUPTIONS) and len(parse_corruptions(None)) == 19
    assert parse_corruptions("extra,fog") == ["fog", "speckle_noise", "gaussian_blur", "spatter", "saturate"]
    with pytest.raises(ValueError, match=r"unknown corruption 'fgo'; valid: gaussian_noise, .* \(or all, benchmark, extra\)"):
        parse_corruptions("fog,fgo")
    assert parse_severities("3,1") == [1, 3] and parse_severities(None) == [1, 2, 3, 4, 5]
    with pytest.raises(ValueError, match="severity 6 is out of range; valid: 1, 2, 3, 4, 5"):
        parse_severities("1,6")
    with pytest.raises(ValueError, match="dataset 'cifar10-mini' has no corruptions; corruption benchmarks: cifar10-c"):
        evaluate_corruptions(nn.Identity(), "cifar10-mini")


def test_cli_evaluates_a_corruption_benchmark_and_refuses_bad_names(fake_cifar10_c, tmp_path, capsys) -> None:
    out = tmp_path / "c.json"
    code = main(["evaluate", str(MODEL_DIR), "--data", f"cifar10-c:{fake_cifar10_c.root}", "--corruptions", "fog",
                 "--severities", "1,5", "--json", str(out), "--quiet"])
    printed = capsys.readouterr().out
    assert code == 0 and "mean corruption accuracy (1 corruptions)" in printed and "fog" in printed
    assert set(json.loads(out.read_text())["corruptions"]["fog"]) == {"1", "5", "mean"}
    assert main(["evaluate", str(MODEL_DIR), "--data", f"cifar10-c:{fake_cifar10_c.root}", "--corruptions", "fgo"]) == 2
    assert "error: unknown corruption 'fgo'; valid: gaussian_noise" in capsys.readouterr().err
    assert main(["evaluate", str(MODEL_DIR), "--data", f"cifar10-c:{fake_cifar10_c.root}", "--attacks", "pgd"]) == 2
    assert "cifar10-c is a corruption benchmark" in capsys.readouterr().err
    assert main(["evaluate", str(MODEL_DIR), "--data", "cifar10-mini", "--severities", "1"]) == 2
    assert "dataset 'cifar10-mini' has no corruptions" in capsys.readouterr().err
    assert main(["evaluate", str(MODEL_DIR), "--data", f"cifar10-c:{fake_cifar10_c.root}", "--corruptions", "frost",
                 "--quiet"]) == 2
    assert "no frost.npy in" in capsys.readouterr().err


def test_report_tabulates_corruptions_and_draws_the_heatmap(fake_cifar10_c, tmp_path, capsys) -> None:
    run = tmp_path / "run"
    shutil.copytree(MODEL_DIR, run)
    (run / "config.yaml").write_text("method: {name: sat}\nmodel: {name: cifar_resnet10, norm: bn}\n")
    assert main(["evaluate", str(run), "--data", f"cifar10-c:{fake_cifar10_c.root}", "--corruptions", "snow,fog",
                 "--severities", "1,2", "--quiet"]) == 0
    written = EvaluationResult.load(run / "eval-cifar10-c.json")  # beside the run's eval.json, not over it
    assert not (run / "eval.json").exists() and set(written.corruptions) == {"fog", "snow"}
    imagenet_c = sets(lambda name, s: 0.5)
    EvaluationResult(dataset="imagenet-c", n=75, clean=0.5, corruptions=imagenet_c, mean_corruption_accuracy=0.5,
                     mce=0.61, uncorrupted_accuracy=0.7, relative_mce=0.73).save(run / "eval-imagenet-c.json")
    out = tmp_path / "report.md"
    assert main(["report", str(run), "-o", str(out)]) == 0
    text = out.read_text()
    fog = written.corruptions["fog"].mean
    assert "## Distribution shift" in text
    assert "| run | cifar10-c | imagenet-c | imagenet-c mCE | imagenet-c relative mCE |" in text
    assert f"| SAT w/ BN (run) | {100 * written.mean_corruption_accuracy:.2f} | 50.00 | 61.00 | 73.00 |" in text
    assert f"| fog | {100 * fog:.2f} | 50.00 |" in text  # per corruption: cifar10-c, imagenet-c
    for name in ("sat-w-bn-run-cifar10-c", "sat-w-bn-run-imagenet-c"):
        assert (tmp_path / "report_figures" / f"corruptions-{name}.png").read_bytes()[:4] == b"\x89PNG"


class NearestColour(nn.Module):
    """A 1000-class model that knows each image's mean colour: the logit of the class of the
    nearest known colour is highest among the known classes, but class 0 (outside ImageNet-R's
    200) beats them all, so only an argmax over the covered classes finds the right one."""

    def __init__(self, colours: torch.Tensor, classes: list[int]) -> None:
        super().__init__()
        self.register_buffer("colours", colours)
        self.classes = classes

    def forward(self, x):
        logits = torch.full((len(x), 1000), -1e3)
        logits[:, self.classes] = -torch.cdist(x.mean(dim=(2, 3)), self.colours)
        logits[:, 0] = 10.0
        return logits


def test_imagenet_r_folder_is_scored_on_its_200_logits(imagenet_samples, tmp_path) -> None:
    covered = describe_dataset("imagenet-r")  # the registry entry; the class list comes with the data
    for photo in imagenet_samples:
        wnid = photo.name.split("_")[1]
        (tmp_path / wnid).mkdir()
        shutil.copy(photo, tmp_path / wnid / photo.name)
    with pytest.raises(ValueError, match="the published imagenet-r layout"):  # classes outside R's 200
        load_dataset("imagenet-r", "test", root=tmp_path)
    for folder in tmp_path.iterdir():
        if int(next(folder.iterdir()).name[:3]) not in (1, 2, 4, 6, 8):  # keep 5 of R's classes
            shutil.rmtree(folder)
    dataset = load_dataset("imagenet-r", "test", root=tmp_path)
    images = torch.stack([dataset[i][0] for i in range(len(dataset))])
    model = NearestColour(images.mean(dim=(2, 3)), list(dataset.targets)).eval()
    with torch.no_grad():
        logits = model(images)
    labels = torch.tensor(dataset.targets)
    subset = torch.tensor(dataset.class_subset)
    assert (subset[logits[:, subset].argmax(1)] == labels).all() and (logits.argmax(1) == 0).all()
    result = evaluate(model, dataset, attacks="clean", model_name="colour", dataset_name=covered.name)
    assert result.clean == 1.0 and result.n == 5


def test_a_progress_bar_runs_over_the_sets(model, fake_cifar10_c, capsys) -> None:
    evaluate_corruptions(model, "cifar10-c", fake_cifar10_c.root, corruptions="fog,snow", severities="1,2",
                         progress=True)
    bar = capsys.readouterr().err
    assert "cifar10-c" in bar and "4/4" in bar and "snow 2" in bar and "<" in bar  # elapsed<remaining
