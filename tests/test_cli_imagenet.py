"""`nofrost evaluate` on an official-style NoFrost checkpoint and a real ImageNet folder layout."""

import json
from pathlib import Path

import pytest
import timm
import torch

from nofrost.cli import main

SAMPLES = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "imagenet-samples"


@pytest.fixture
def imagenet_val(tmp_path):
    photos = sorted(SAMPLES.glob("*.JPEG"))
    if len(photos) != 32:
        pytest.skip(f"needs the 32 ImageNet sample photos in {SAMPLES}")
    for photo in photos[:8]:
        wnid = photo.name.split("_")[1]
        (tmp_path / "imagenet" / "val" / wnid).mkdir(parents=True)
        (tmp_path / "imagenet" / "val" / wnid / photo.name).symlink_to(photo)
    return tmp_path / "imagenet"


def test_evaluate_official_nf_resnet_checkpoint(imagenet_val, tmp_path, capsys):
    # The release checkpoints are timm state dicts saved from DataParallel ("module." prefix).
    torch.manual_seed(0)
    net = timm.create_model("nf_resnet26", pretrained=False, num_classes=1000)
    checkpoint = tmp_path / "nofrost_nf_resnet26.pth"
    torch.save({"module." + k: v for k, v in net.state_dict().items()}, checkpoint)

    out = tmp_path / "eval.json"
    code = main(["evaluate", str(checkpoint), "--data", f"imagenet:{imagenet_val}", "--split", "val",
                 "--attacks", "clean,pgd:steps=1", "--n", "8", "--batch-size", "8", "--device", "cpu",
                 "--json", str(out), "--quiet"])
    assert code == 0, capsys.readouterr().err
    result = json.loads(out.read_text())
    assert result["dataset"] == "imagenet" and result["n"] == 8
    assert 0 <= result["attacks"]["pgd:steps=1"] <= result["clean"] <= 1


def test_metrics_and_bn_statistics_of_imagenet_models(imagenet_val, tmp_path, capsys):
    """The model properties and the BN statistics run on timm ImageNet models (BN ResNet26 and
    NF-ResNet26, as in the paper's Table 5 and Figure 1), on real photos in the val layout."""
    checkpoints = []
    for name in ("resnet26", "nf_resnet26"):
        torch.manual_seed(0)
        net = timm.create_model(name, pretrained=False, num_classes=1000)
        checkpoints.append(tmp_path / f"{name}.pth")
        torch.save(net.state_dict(), checkpoints[-1])
    out = tmp_path / "e.json"
    code = main(["evaluate", str(checkpoints[1]), "--data", f"imagenet:{imagenet_val}", "--split", "val",
                 "--attacks", "clean", "--metrics", "margin,thickness:steps=1:points=4,smoothness:steps=1",
                 "--n", "4", "--batch-size", "4", "--device", "cpu", "--json", str(out), "--quiet"])
    assert code == 0, capsys.readouterr().err
    result = json.loads(out.read_text())
    assert set(result["metrics"]) == {"margin", "thickness:steps=1:points=4", "smoothness:steps=1"}
    assert out.with_suffix(".npz").is_file()
    code = main(["analyze", *map(str, checkpoints), "--data", f"imagenet:{imagenet_val}", "--split", "val",
                 "--n", "4", "--batch-size", "4", "--bn-stats", "--layer", "15", "--out", str(tmp_path / "a"),
                 "--device", "cpu", "--quiet"])
    assert code == 0, capsys.readouterr().err
    stats = json.loads((tmp_path / "a" / "bn_stats.json").read_text())
    assert [s["kind"] for s in stats] == ["bn", "nf"]
    assert len(stats[1]["layers"]) == 8  # nf_resnet26: one position per block, 2+2+2+2 blocks
    assert (tmp_path / "a" / "bn_running_stats.png").is_file()


@pytest.mark.slow
def test_the_ood_datasets_of_figures_3_and_4_in_one_call(tmp_path, capsys):
    """ImageNet-C, -R and -Sketch folders named on one command line: one result file each beside
    the run's own, and one summary row."""
    from nofrost.models import create_model
    from nofrost.models.io import save_model

    photos = [p for p in sorted(SAMPLES.glob("*.JPEG")) if int(p.name[:3]) in (1, 2)]  # classes of ImageNet-R
    if len(photos) != 2:
        pytest.skip(f"needs the ImageNet sample photos in {SAMPLES}")
    roots = {"imagenet-c": tmp_path / "c" / "fog" / "1", "imagenet-r": tmp_path / "r", "imagenet-sketch": tmp_path / "s"}
    for folder in roots.values():
        for photo in photos:
            wnid = photo.name.split("_")[1]
            (folder / wnid).mkdir(parents=True)
            (folder / wnid / photo.name).symlink_to(photo)
    torch.manual_seed(0)
    run = save_model(create_model("resnet26", num_classes=1000), tmp_path / "run")
    data = [f"imagenet-c:{tmp_path / 'c'}", f"imagenet-r:{roots['imagenet-r']}", f"imagenet-sketch:{roots['imagenet-sketch']}"]
    argv = ["evaluate", str(run), *(a for d in data for a in ("--data", d)), "--corruptions", "fog", "--severities", "1",
            "--batch-size", "8", "--device", "cpu", "--quiet"]
    assert main(argv) == 0, capsys.readouterr().err
    printed = capsys.readouterr().out
    assert printed.splitlines()[-3].split() == ["run", "imagenet-c", "imagenet-r", "imagenet-sketch"]
    assert not (run / "eval.json").exists()
    for name in ("imagenet-c", "imagenet-r", "imagenet-sketch"):
        result = json.loads((run / f"eval-{name}.json").read_text())
        assert result["dataset"] == name and result["n"] == 2 and result["attacks"] == {}
    assert set(json.loads((run / "eval-imagenet-c.json").read_text())["corruptions"]) == {"fog"}
    assert main(["evaluate", str(run), "--data", data[1], "--data", "cifar10-mini"]) == 2
    assert "several --data are for distribution-shift datasets only; 'cifar10-mini' is not one" in capsys.readouterr().err
    assert main(["evaluate", str(run), "--data", data[1], "--data", data[1]]) == 2
    assert "--data imagenet-r is given twice" in capsys.readouterr().err
    assert main(["evaluate", str(run), "--data", data[1], "--data", f"imagenet-a:{tmp_path / 'absent'}"]) == 2
    assert "imagenet-a root" in capsys.readouterr().err and not (run / "eval-imagenet-a.json").exists()
