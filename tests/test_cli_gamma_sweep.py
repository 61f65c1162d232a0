"""`nofrost gamma-sweep`: an MBNAT run swept over γ, with a NoFrost point, JSON and figure."""

from nofrost.cli import main
from nofrost.evaluate.sweep_result import SweepResult


def test_gamma_sweep_writes_json_table_and_plot(tiny_overrides, tmp_path, capsys):
    sets = [a for o in tiny_overrides for a in ("--set", o)]
    mbnat, nf = tmp_path / "mbnat", tmp_path / "nf"
    assert main(["train", "--preset", "quickstart", *sets, "--set", "method.name=mbnat", "--set", "model.norm=mbn",
                 "--out", str(mbnat), "--quiet", "--no-eval"]) == 0
    assert main(["train", "--preset", "quickstart", *sets, "--set", "model.norm=none", "--out", str(nf), "--quiet", "--no-eval"]) == 0
    capsys.readouterr()
    out_json, out_png = tmp_path / "sweep.json", tmp_path / "sweep.png"
    code = main(["gamma-sweep", str(mbnat), "--data", "cifar10-mini", "--gammas", "0,0.5,1", "--n", "32",
                 "--attacks", "pgd:steps=2", "--nofrost", str(nf), "--device", "cpu", "--json", str(out_json),
                 "--plot", str(out_png), "--quiet"])
    assert code == 0, capsys.readouterr().err
    result = SweepResult.load(out_json)
    assert result.grid == {"gamma": ["0", "0.5", "1"]} and result.label == "MBNAT (logits)"
    assert [r.label for r in result.references] == ["nf"]
    for entry in [*(r.result for r in result.runs), *(r.result for r in result.references)]:
        assert entry.n == 32 and 0 <= entry.attacks["pgd:steps=2"].accuracy <= entry.clean <= 1
    assert out_png.read_bytes()[:4] == b"\x89PNG"
    assert "MBNAT (logits)" in capsys.readouterr().out

    # Plain `evaluate` says which path of the MBNAT model it measures.
    assert main(["evaluate", str(mbnat), "--data", "cifar10-mini", "--n", "16", "--attacks", "clean",
                 "--device", "cpu", "--json", str(tmp_path / "e.json"), "--quiet"]) == 0
    assert "through its default route, the adversarial BNs (BN_a, γ = 1)" in capsys.readouterr().err


def test_gamma_sweep_refuses_a_model_without_mbn(tmp_path, capsys):
    code = main(["gamma-sweep", "tests/assets/cifar_resnet10_sat_bn", "--data", "cifar10-mini", "--n", "8",
                 "--device", "cpu", "--json", str(tmp_path / "x.json"), "--plot", str(tmp_path / "x.png")])
    assert code == 2 and "mixture-BN" in capsys.readouterr().err
