"""The trainer's speed paths change speed, not results: fused clean+adversarial passes,
gradient checkpointing, compilation with its eager fall-back, linear learning-rate scaling."""

from __future__ import annotations

import warnings

import pytest
import torch

from nofrost.config import load_config
from nofrost.data import load_dataset
from nofrost.methods import StepContext, build_method
from nofrost.methods.base import make_training_attack
from nofrost.models import create_model
from nofrost.models.norms import mixes_examples
from nofrost.train import train
from nofrost.train.compile import CompiledOrEager, should_compile
from nofrost.train.optim import build_optimizer


@pytest.fixture(scope="module")
def batch():
    data = load_dataset("cifar10-mini", "train")
    return data.images[:32].float() / 255, data.targets[:32]


def loss_and_grads(method_name, model, x, y, *, fuse):
    config = load_config("quickstart", overrides=[f"method.name={method_name}", "method.lam=null", "attack.steps=2",
                                                  "attack.random_start=false"])
    method = build_method(config.method, config.attack)
    ctx = StepContext(attack=make_training_attack(config.attack), fuse_clean_adv=fuse)
    model.zero_grad(set_to_none=True)
    out = method(model, x, y, ctx)
    out.loss.backward()
    return out, {name: p.grad.clone() for name, p in model.named_parameters()}


@pytest.mark.parametrize("method_name", ["sat", "trades"])
@pytest.mark.parametrize("norm", ["none", "gn"])
def test_fused_pass_gives_the_loss_and_gradients_of_separate_passes(method_name, norm, batch):
    torch.manual_seed(0)
    model = create_model("cifar_resnet10", num_classes=10, norm=norm, width=8).train()
    assert not mixes_examples(model)
    x, y = batch
    torch.manual_seed(1)
    fused, fused_grads = loss_and_grads(method_name, model, x, y, fuse=True)
    torch.manual_seed(1)
    separate, separate_grads = loss_and_grads(method_name, model, x, y, fuse=False)
    torch.testing.assert_close(fused.loss, separate.loss, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(fused.logits_adv, separate.logits_adv, rtol=1e-4, atol=1e-5)
    for name in fused_grads:
        torch.testing.assert_close(fused_grads[name], separate_grads[name], rtol=1e-4, atol=1e-6, msg=name)


def test_batch_norm_models_are_never_fused(tiny_overrides, tmp_path, monkeypatch):
    assert mixes_examples(create_model("cifar_resnet10", num_classes=10, norm="bn"))
    assert mixes_examples(create_model("cifar_resnet10", num_classes=10, norm="mbn"))
    seen = []
    from nofrost.methods import mixed

    real_call = mixed.MixedAdversarialLoss.__call__

    def spy(self, model, x, y, ctx):
        seen.append(ctx.fuse_clean_adv)
        return real_call(self, model, x, y, ctx)

    monkeypatch.setattr(mixed.MixedAdversarialLoss, "__call__", spy)
    for norm in ("bn", "none"):
        config = load_config("quickstart", overrides=[*tiny_overrides, "optim.epochs=1", f"model.norm={norm}"])
        train(config, tmp_path / norm, quiet=True)
        assert set(seen) == {norm == "none"}, norm
        seen.clear()


@pytest.mark.parametrize("name,norm", [("cifar_resnet10", "bn"), ("cifar_resnet10", "none"), ("nf_resnet26", None)])
def test_gradient_checkpointing_gives_the_same_gradients(name, norm, batch):
    kwargs = {"norm": norm} if norm else {}
    torch.manual_seed(0)
    model = create_model(name, num_classes=10, **kwargs).train()
    x, y = batch
    x = x[:8] if name == "nf_resnet26" else x
    y = y[:len(x)]

    def grads():
        model.zero_grad(set_to_none=True)
        torch.nn.functional.cross_entropy(model(x), y).backward()
        return {n: p.grad.clone() for n, p in model.named_parameters()}

    plain = grads()
    model.set_grad_checkpointing(True)
    checkpointed = grads()
    for n in plain:
        torch.testing.assert_close(plain[n], checkpointed[n], rtol=1e-4, atol=1e-6, msg=n)


def test_trainer_runs_with_gradient_checkpointing(tiny_overrides, tmp_path):
    config = load_config("quickstart", overrides=[*tiny_overrides, "optim.epochs=1", "runtime.grad_checkpointing=true"])
    result = train(config, tmp_path / "run", quiet=True)
    assert result.model.net.grad_checkpointing


def failing_backend(graph_module, example_inputs):
    raise RuntimeError("simulated compiler crash")


def test_a_compiler_failure_falls_back_to_eager_with_one_warning(batch):
    torch.manual_seed(0)
    model = create_model("cifar_resnet10", num_classes=10, norm="none", width=8).eval()
    wrapped = CompiledOrEager(model, backend=failing_backend)
    x, _ = batch
    with pytest.warns(RuntimeWarning, match="torch.compile failed .*simulated compiler crash.*runtime.compile=false"):
        out = wrapped(x)
    torch.testing.assert_close(out, model(x))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # stays eager without warning again
        wrapped(x)
    assert "simulated compiler crash" in wrapped.failed


def crashing_backward_backend():
    from torch._dynamo.backends.common import aot_autograd

    def backward_compiler(graph_module, example_inputs):
        raise RuntimeError("simulated backward compiler crash")

    return aot_autograd(fw_compiler=lambda graph_module, example_inputs: graph_module, bw_compiler=backward_compiler)


def test_a_lazy_backward_compile_failure_redoes_the_step_eagerly(tiny_overrides, batch, monkeypatch):
    """The backward graph compiles in backward(), outside the module call: the step catches it."""
    from nofrost.train import loop

    class CrashingBackward(CompiledOrEager):
        def __init__(self, module, mode="default"):
            super().__init__(module, mode, backend=crashing_backward_backend())

    torch._dynamo.reset()  # no graph compiled by another test may be reused
    monkeypatch.setattr(loop, "CompiledOrEager", CrashingBackward)
    deterministic = [*tiny_overrides, "model.norm=none", "attack.random_start=false"]  # the retry redraws nothing
    config = load_config("quickstart", overrides=[*deterministic, "runtime.compile=true"])

    def step_for(cfg):
        torch.manual_seed(0)
        model = loop.build_model_for(cfg)
        optimizer = build_optimizer(model, cfg.optim)
        schedule = loop.build_schedule(optimizer, cfg.optim, steps_per_epoch=10)
        return model, loop.TrainingStep.build(model, cfg, build_method(cfg.method, cfg.attack), optimizer, schedule)

    model, step = step_for(config)
    eager_model, eager_step = step_for(load_config("quickstart", overrides=deterministic))
    x, y = batch
    with pytest.warns(RuntimeWarning, match="simulated backward compiler crash"):
        step(x, y)
    eager_step(x, y)
    assert step.step_model.failed and step.step_model.eager_only
    for (name, a), b in zip(model.state_dict().items(), eager_model.state_dict().values()):
        torch.testing.assert_close(a, b, msg=name)


def test_user_errors_are_raised_not_swallowed_by_the_fallback():
    model = create_model("cifar_resnet10", num_classes=10, norm="none", width=8)
    wrapped = CompiledOrEager(model, backend="eager")
    with pytest.raises(ValueError, match="expected images of shape"):
        wrapped(torch.rand(2, 1, 32, 32))


def test_compiled_module_computes_what_the_module_computes(batch):
    torch.manual_seed(0)
    model = create_model("cifar_resnet10", num_classes=10, norm="none", width=8).eval()
    wrapped = CompiledOrEager(model, backend="eager")
    x, _ = batch
    torch.testing.assert_close(wrapped(x), model(x))
    assert wrapped.failed is None
    assert {id(p) for p in wrapped.parameters()} == {id(p) for p in model.parameters()}


def test_compile_auto_means_cuda_only():
    assert should_compile("auto", torch.device("cuda")) and not should_compile("auto", torch.device("cpu"))
    assert should_compile(True, torch.device("cpu")) and not should_compile(False, torch.device("cuda"))


def test_linear_lr_scaling_follows_the_global_batch():
    model = create_model("cifar_resnet10", num_classes=10, width=8)
    config = load_config("imagenet-nofrost-r50", overrides=["optim.batch_size=1024"])
    assert build_optimizer(model, config.optim).param_groups[0]["lr"] == pytest.approx(0.4)
    config = load_config("quickstart", overrides=["optim.batch_size=512"])  # no lr_base_batch: as given
    assert build_optimizer(model, config.optim).param_groups[0]["lr"] == pytest.approx(0.1)


@pytest.mark.parametrize("override, broadcast", [([], False), (["runtime.broadcast_buffers=true"], True)])
def test_ddp_keeps_bn_statistics_per_process_as_the_reference(tiny_overrides, monkeypatch, override, broadcast):
    """PGDAT.py wraps the model in DDP with broadcast_buffers=False; so does the trainer."""
    from nofrost.distributed import DistContext
    from nofrost.train import loop

    seen = {}

    def fake_ddp(module, **kwargs):
        seen.update(kwargs)
        return module

    monkeypatch.setattr(loop, "DistributedDataParallel", fake_ddp)
    config = load_config("quickstart", overrides=[*tiny_overrides, *override])
    model = loop.build_model_for(config)
    optimizer = build_optimizer(model, config.optim)
    schedule = loop.build_schedule(optimizer, config.optim, steps_per_epoch=10)
    loop.TrainingStep.build(model, config, build_method(config.method, config.attack), optimizer, schedule,
                            DistContext(world_size=2))
    assert seen["broadcast_buffers"] is broadcast


@pytest.mark.parametrize("native", [True, False])
def test_cpu_bf16_runs_the_whole_step_in_bf16_only_where_the_cpu_has_it(native, batch, monkeypatch):
    """runtime.cpu_bf16: the loss forwards and the training attack's forwards under bf16 autocast
    on a CPU with native bf16; on another CPU, all in fp32 (emulated bf16 is slower there)."""
    from nofrost.methods import build_method
    from nofrost.train import precision
    from nofrost.train.loop import TrainingStep
    from nofrost.train.optim import build_schedule

    monkeypatch.setattr(precision, "cpu_has_native_bf16", lambda: native)
    config = load_config("quickstart", overrides=["runtime.cpu_bf16=true", "runtime.device=cpu", "model.norm=none",
                                                  "attack.steps=2"])
    torch.manual_seed(0)
    model = create_model("cifar_resnet10", num_classes=10, norm="none", width=8).train()
    optimizer = build_optimizer(model, config.optim)
    step = TrainingStep.build(model, config, build_method(config.method, config.attack), optimizer,
                              build_schedule(optimizer, config.optim, steps_per_epoch=10))
    seen = []
    model.net.fc.register_forward_hook(lambda module, args, out: seen.append((module.training, out.dtype)))
    x, y = batch
    out = step(x, y)
    expected = torch.bfloat16 if native else torch.float32
    assert {training for training, _ in seen} == {False, True}  # the attack (eval mode) and the loss (train mode)
    assert {dtype for _, dtype in seen} == {expected}
    assert torch.isfinite(out.loss) and all(p.dtype == torch.float32 for p in model.parameters())


def test_cpu_bf16_says_when_the_cpu_has_no_native_bf16(tiny_overrides, tmp_path, monkeypatch, capsys):
    from nofrost.train import precision

    monkeypatch.setattr(precision, "cpu_has_native_bf16", lambda: False)
    config = load_config("quickstart", overrides=[*tiny_overrides, "optim.epochs=1", "runtime.cpu_bf16=true"])
    train(config, tmp_path / "run", quiet=False)
    assert "runtime.cpu_bf16: this CPU has no native bf16 (AMX or AVX512-BF16)" in capsys.readouterr().err
