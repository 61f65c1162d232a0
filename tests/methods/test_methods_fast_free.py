"""Fast AT (FGSM-RS) and Free AT (replays with a persistent perturbation)."""

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from nofrost.attacks import linf_bounds
from nofrost.config import AttackConfig, MethodConfig
from nofrost.methods import StepContext, build_method, list_methods
from nofrost.methods.base import make_training_attack

EPS = 8 / 255


@pytest.fixture
def batch():
    torch.manual_seed(0)
    return torch.rand(16, 3, 8, 8), torch.randint(0, 10, (16,))


@pytest.fixture
def model():
    torch.manual_seed(1)
    return nn.Sequential(nn.Flatten(), nn.Linear(3 * 8 * 8, 32), nn.ReLU(), nn.Linear(32, 10))


def no_attack(model, x, y):
    raise AssertionError("this method must not use ctx.attack (plain CE PGD)")


def test_registered():
    assert {"fast-at", "free-at"} <= set(list_methods())


def test_fast_at_step_size_defaults_to_1_25_eps():
    assert build_method(MethodConfig(name="fast-at"), AttackConfig(eps=EPS)).step_size == pytest.approx(1.25 * EPS)
    assert build_method(MethodConfig(name="fast-at"), AttackConfig(eps=EPS, step_size=2 / 255)).step_size == 2 / 255


def test_fast_at_is_one_fgsm_step_from_a_uniform_random_start(batch, model):
    x, y = batch
    x = x.clone()
    x[:4] = 0.0  # pixels at the border of [0, 1] exercise the clipping
    x[4:8] = 1.0
    config = AttackConfig(eps=EPS, steps=10)  # steps ignored: one step
    method = build_method(MethodConfig(name="fast-at"), config)
    made = []

    def attack(model, x, y, **options):
        made.append(make_training_attack(config)(model, x, y, **options))
        return made[-1]

    torch.manual_seed(5)
    method(model, x, y, StepContext(attack=attack))
    (x_adv,) = made
    # by hand: δ₀ ~ U(−ε, ε), x + δ₀ clipped to the ball ∩ [0, 1], one signed step of 1.25 ε, projected
    lo, hi = linf_bounds(x, EPS)
    torch.manual_seed(5)
    start = torch.clamp(x + torch.rand(x.shape) * 2 * EPS - EPS, min=lo, max=hi).requires_grad_(True)
    (grad,) = torch.autograd.grad(F.cross_entropy(model(start), y, reduction="sum"), start)
    expected = torch.clamp(start.detach() + 1.25 * EPS * grad.sign(), min=lo, max=hi)
    assert torch.allclose(x_adv, expected, atol=1e-7)
    assert (x_adv - x).abs().max() <= EPS and x_adv.min() >= 0 and x_adv.max() <= 1
    assert (x_adv - x).abs().mean() > EPS / 4  # really perturbed


class ModeRecorder(nn.Module):
    def __init__(self, net):
        super().__init__()
        self.net, self.modes = net, []

    def forward(self, x):
        self.modes.append(self.training)
        return self.net(x)


@pytest.mark.parametrize("eval_mode, attack_in_train_mode", [(None, True), (True, False), (False, True)])
def test_fast_at_takes_its_step_in_train_mode_as_wong_et_al(batch, model, eval_mode, attack_in_train_mode):
    x, y = batch
    recorder = ModeRecorder(model).train()
    config = AttackConfig(eps=EPS, eval_mode=eval_mode)
    method = build_method(MethodConfig(name="fast-at"), config)
    method(recorder, x, y, StepContext(attack=make_training_attack(config)))
    assert recorder.modes == [attack_in_train_mode, True] and recorder.training  # the FGSM pass, then the loss
    # every other method generates x* in eval mode unless told otherwise (the reference code)
    assert AttackConfig().train_mode() is False and AttackConfig(eval_mode=False).train_mode() is True


def test_fast_at_loss_is_ce_on_the_adversarial_example(batch, model):
    x, y = batch
    method = build_method(MethodConfig(name="fast-at"), AttackConfig(eps=EPS))
    options = []

    def stand_in(m, x, y, **kw):
        options.append(kw)
        return (x + EPS * torch.sign(torch.sin(13 * x))).clamp(0, 1)

    out = method(model, x, y, StepContext(attack=stand_in, label_smoothing=0.1))
    assert options == [{"steps": 1, "step_size": pytest.approx(1.25 * EPS), "start": "uniform", "train_mode": True}]
    expected = F.cross_entropy(model(stand_in(model, x, y)), y, label_smoothing=0.1)
    assert out.loss.item() == pytest.approx(expected.item(), rel=1e-6)
    assert out.logits_clean is None


class Recorder(nn.Module):
    """Records the images the method feeds the network."""

    def __init__(self, net):
        super().__init__()
        self.net, self.inputs = net, []

    def forward(self, x):
        self.inputs.append(x.detach().clone())
        return self.net(x)


def test_free_at_keeps_its_perturbation_across_replays_and_minibatches(model):
    torch.manual_seed(0)
    batches = [(torch.rand(8, 3, 8, 8), torch.randint(0, 10, (8,))) for _ in range(2)]
    method = build_method(MethodConfig(name="free-at", replays=3), AttackConfig(eps=EPS))
    assert method.replays == 3 and method.step_size == EPS  # α = ε, as in Shafahi et al.
    net = Recorder(model)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
    ctx = StepContext(attack=no_attack)
    delta = torch.zeros(8, 3, 8, 8)  # δ ← 0 once, before training
    for x, y in batches:  # the second minibatch starts from the first one's last δ
        for _ in range(3):
            out = method(net, x, y, ctx)
            used = torch.clamp(x + delta, 0, 1)
            assert torch.allclose(net.inputs[-1], used, atol=1e-7)
            assert out.loss.item() == pytest.approx(F.cross_entropy(model(used), y).item(), rel=1e-6)
            # the gradient w.r.t. δ of this very loss, computed independently, before θ moves
            d = delta.clone().requires_grad_(True)
            (g,) = torch.autograd.grad(F.cross_entropy(model(torch.clamp(x + d, 0, 1)), y), d)
            optimizer.zero_grad()
            out.loss.backward()  # one backward gives ∇θ (for the step below) and ∇δ
            optimizer.step()
            delta = torch.clamp(delta + EPS * g.sign(), -EPS, EPS)
    assert delta.abs().max() == pytest.approx(EPS) and (delta != 0).float().mean() > 0.5
    # the state saved for --resume holds the perturbation the next call would use
    state = method.state_dict()
    assert torch.allclose(state["delta"], delta, atol=1e-7)
    fresh = build_method(MethodConfig(name="free-at", replays=3), AttackConfig(eps=EPS))
    fresh.load_state_dict(state)
    x, y = batches[0]
    fresh(net, x, y, ctx)
    assert torch.allclose(net.inputs[-1], torch.clamp(x + delta, 0, 1), atol=1e-7)


def test_free_at_defaults_and_validation():
    method = build_method(MethodConfig(name="free-at"), AttackConfig(eps=4 / 255, step_size=2 / 255))
    assert method.replays == 8 and method.step_size == 2 / 255 and method.eps == 4 / 255
    assert method.state_dict() == {}
    with pytest.raises(ValueError, match="does not use method.tau"):
        build_method(MethodConfig(name="free-at", tau=1))
