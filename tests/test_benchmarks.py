"""The benchmark scripts run end to end (tiny settings), so the published commands keep working."""

import importlib.util
import json
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
ASSETS = Path(__file__).resolve().parent / "assets"
sys.path.insert(0, str(BENCHMARKS))  # as when a script runs: its folder is importable


def load(name):
    spec = importlib.util.spec_from_file_location(name, BENCHMARKS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def test_train_throughput_times_the_reference_and_our_step(tmp_path):
    out = tmp_path / "train.md"
    load("train_throughput").main(["--device", "cpu", "--steps", "1", "--batch", "16", "--rounds", "1", "--iters", "1",
                                   "--threads", "1", "--ablate", "--out", str(out)])
    results = json.loads(out.with_suffix(".json").read_text())["results"]
    arms = [r["arm"] for r in results]
    assert arms[:2] == ["reference recipe", "nofrost TrainingStep"] and "without fused clean+adv pass" in arms
    assert all(r["images_per_s"] > 0 for r in results)
    assert results[0]["ratio"] == 1.0
    assert "× reference" in out.read_text()


def test_reference_step_trains_and_restores_the_model_state():
    """One step updates the weights, reports its metrics and leaves grad flags and train mode as found."""
    import torch

    bench = load("train_throughput")
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 8 * 8, 10))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    x, y = torch.rand(4, 3, 8, 8), torch.randint(0, 10, (4,))
    before = model[1].weight.clone()
    metrics = bench.reference_step(model, optimizer, x, y, eps=8 / 255, alpha=2 / 255, steps=3, lam=0.5)
    assert set(metrics) == {"acc", "acc_adv", "loss"} and metrics["loss"] > 0
    assert not torch.equal(before, model[1].weight)
    assert all(p.requires_grad for p in model.parameters()) and model.training


def test_eval_throughput_times_each_of_our_attacks_through_the_callback(tmp_path):
    out = tmp_path / "eval.json"
    load("eval_throughput").main(["--device", "cpu", "--n", "20", "--version", "standard", "--steps", "2",
                                  "--queries", "10", "--repeats", "1", "--threads", "1", "--out", str(out)])
    (result,) = json.loads(out.read_text())["results"]
    for side in ("ours", "official"):  # ours through the callback, the official code's from its own log
        per_attack = result[side]["seconds_per_attack_last_repeat"]
        assert set(per_attack) == {"apgd-ce", "apgd-t", "fab-t", "square"} and all(s >= 0 for s in per_attack.values())


def test_attack_floor_multiplies_each_sub_attacks_passes_by_the_pass_cost(tmp_path):
    out = tmp_path / "floor.md"
    load("attack_floor").main(["--device", "cpu", "--batch", "4", "--rounds", "1", "--iters", "1", "--threads", "1",
                               "--out", str(out)])
    result = json.loads(out.with_suffix(".json").read_text())
    ms = result["ms_per_pass"]
    assert set(ms) == {f"{side} {kind}" for side in ("official", "ours") for kind in ("forward", "forward+backward")}
    floors = {row["attack"]: row for row in result["floors_s"]}
    assert list(floors) == ["apgd-t", "fab-t", "square"]
    # standard AutoAttack's budgets: 9 targets x 100 steps; FAB-T checks each new point; 5,000 queries
    fab = floors["fab-t"]
    assert (fab["forward+backward passes"], fab["forward passes"]) == (900, 900)
    assert fab["ours"] == pytest.approx((900 * ms["ours forward+backward"] + 900 * ms["ours forward"]) / 1000)
    assert floors["square"]["official"] == pytest.approx(4999 * ms["official forward"] / 1000)
    assert result["total_s"]["ours"] == pytest.approx(sum(row["ours"] for row in floors.values()))
    assert "| **in all** |" in out.read_text()


def test_attack_precision_compares_bf16_with_fp32_per_attack(tmp_path):
    out = tmp_path / "precision.md"
    load("attack_precision").main(["--n", "20", "--attacks", "pgd:steps=2,square:queries=10", "--threads", "1",
                                   "--out", str(out)])
    text = out.read_text()
    assert "| pgd:steps=2 |" in text and "| square:queries=10 |" in text and "| worst_case |" in text


def test_corruption_speed_times_each_corruption(imagenet_samples, tmp_path):
    out = tmp_path / "corruptions.md"
    load("corruption_speed").main(["--n32", "4", "--n224", "1", "--corruptions", "contrast,glass_blur", "--repeats", "1", "--all-variants",
                                   "--samples", str(imagenet_samples[0].parent),
                                   "--evaluate", str(ASSETS / "cifar_resnet10_sat_bn"), "--evaluate-n", "20",
                                   "--out", str(out)])
    text = out.read_text()
    assert "| contrast |" in text and "| glass_blur |" in text and "ours 224 px img/s" in text
    assert "All 10 corruption x severity variants of 4 images" in text
    assert "Whole CIFAR-10-C-gen evaluation of" in text and "(10 sets x 20 images" in text


def test_augment_cost_times_each_augmentation_against_the_nofrost_star_step(tmp_path):
    out = tmp_path / "augment.md"
    load("augment_cost").main(["--device", "cpu", "--steps", "1", "--batch", "8", "--width", "8", "--rounds", "1",
                               "--threads", "1", "--out", str(out)])
    results = json.loads(out.with_suffix(".json").read_text())["results"]
    assert [r["arm"] for r in results][0] == "NoFrost* training step" and results[0]["fraction_of_step"] == 1.0
    assert {"DeepAugment: Noise2Net", "DeepAugment: CAE", "DeepAugment: EDSR", "TDA, batched on the device"} <= {
        r["arm"] for r in results}
    assert all(r["seconds"] > 0 for r in results)


def test_method_cost_times_each_method_step_against_sat(tmp_path):
    out = tmp_path / "methods.md"
    load("method_cost").main(["--device", "cpu", "--steps", "1", "--batch", "8", "--rounds", "1", "--threads", "1",
                              "--out", str(out)])
    results = json.loads(out.with_suffix(".json").read_text())["results"]
    assert [(r["method"], r["norm"]) for r in results] == [
        ("st", "bn"), ("sat", "bn"), ("sat", "none"), ("nofrost-star", "none"), ("combine", "bn")]
    assert results[1]["relative_to_sat"] == 1.0 and all(r["seconds"] > 0 for r in results)
    text = out.read_text()
    assert "| NoFrost* | none |" in text and "| Combine w/ BN | bn |" in text


@pytest.mark.slow
def test_the_prepared_gpu_checks_run_through_on_cpu(tmp_path):
    """benchmarks/run_gpu_checks.sh as a dry run (DEVICE=cpu, tiny sizes): every step of the GPU
    session runs, and the training report names the four runs with their AutoAttack column."""
    import os
    import subprocess

    script = Path(__file__).resolve().parents[1] / "benchmarks" / "run_gpu_checks.sh"
    env = {**os.environ, "DEVICE": "cpu", "PYTHON": sys.executable, "RUNS": str(tmp_path / "runs")}
    done = subprocess.run(["bash", str(script), str(tmp_path / "out")], env=env, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert {"train_throughput_cpu-dry-run.md", "gpu_training_cpu-dry-run.md", "attack_precision_cpu-dry-run.md",
            "eval_throughput_cpu-dry-run.md", "attack_floor_cpu-dry-run.md"} <= {p.name for p in (tmp_path / "out").iterdir()}
    report = (tmp_path / "out" / "gpu_training_cpu-dry-run.md").read_text()
    for row in ("NoFrost* (DeepAugment: noise2net) (nofrost-star)", "Combine w/ BN (DeepAugment: noise2net) (combine)",
                "SAT w/ BN (sat-bn)", "NoFrost (nofrost)"):
        assert f"| {row} |" in report
    assert "AutoAttack: AA" in report and not list((tmp_path / "out").glob("**/*.safetensors"))
