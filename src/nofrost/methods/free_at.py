"""Free AT: A. Shafahi, M. Najibi, A. Ghiasi, Z. Xu, J. Dickerson, C. Studer, L. S. Davis,
G. Taylor, T. Goldstein, "Adversarial training for free!", NeurIPS 2019 (their Algorithm 1).

    δ ← 0 once, before training
    for each minibatch B, replayed m times:
        one forward/backward of L = CE(f(clip₀₁(x + δ)), y) gives ∇θ L and ∇δ L together
        θ ← optimizer step with ∇θ L
        δ ← clip_{[−ε, ε]}(δ + α · sign(∇δ L))          (α = ε in the paper)

The perturbation δ persists across the m replays *and* across minibatches (the next
minibatch starts from the last δ), and the number of epochs is divided by m so that the
number of SGD steps stays that of ``optim.epochs`` epochs. The trainer does the replays: this
method exposes ``replays = m`` (``method.replays``, default 8, the value Shafahi et al. use on
CIFAR-10); see ``nofrost.train.loop``.

δ's update needs ∇δ of the *same* backward pass the trainer runs for θ, so each call leaves
a leaf tensor for δ in the graph and the next call applies δ's update from that leaf's
``.grad`` before it forms the next input: one backward per replay, as in the paper. α is
``attack.step_size`` if set, else ε; ε is ``attack.eps``; ``attack.steps`` and
``attack.eval_mode`` do not apply (the "attack" is the training pass itself, in train mode).
δ is a batch-sized tensor; it is saved with ``--resume`` checkpoints (``state_dict``).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from nofrost.config import AttackConfig, MethodConfig
from nofrost.methods.base import StepContext, StepOutput, cross_entropy, register_method

DEFAULT_REPLAYS = 8


class FreeAdversarialLoss:
    """CE on ``clip(x + δ)`` with a persistent δ, updated by the previous replay's gradient."""

    def __init__(self, eps: float, step_size: float, replays: int) -> None:
        self.eps = float(eps)
        self.step_size = float(step_size)
        self.replays = int(replays)
        self.delta: Tensor | None = None  # the persistent perturbation, (batch, C, H, W)
        self._leaf: Tensor | None = None  # δ as used in the last call, to read ∇δ from
        self._rows = 0  # how many rows of δ the last call used

    def _apply_pending_update(self) -> None:
        """δ ← clip(δ + α·sign(∇δ)) with the gradient the trainer's backward left on the leaf."""
        leaf, self._leaf = self._leaf, None
        if leaf is None or leaf.grad is None or self.delta is None:
            return
        rows = self._rows
        with torch.no_grad():
            updated = self.delta[:rows] + self.step_size * leaf.grad.sign()
            self.delta[:rows] = updated.clamp_(-self.eps, self.eps)

    def _delta_for(self, x: Tensor) -> Tensor:
        n = x.shape[0]
        if self.delta is not None and (self.delta.device != x.device or self.delta.dtype != x.dtype):
            self.delta = self.delta.to(device=x.device, dtype=x.dtype)  # e.g. restored from a checkpoint
        if self.delta is None or self.delta.shape[1:] != x.shape[1:]:
            self.delta = torch.zeros_like(x)
        elif self.delta.shape[0] < n:  # a larger batch than seen so far: new rows start at 0
            extra = torch.zeros((n - self.delta.shape[0], *x.shape[1:]), dtype=x.dtype, device=x.device)
            self.delta = torch.cat([self.delta, extra])
        self._rows = n
        return self.delta[:n]

    def __call__(self, model: nn.Module, x: Tensor, y: Tensor, ctx: StepContext) -> StepOutput:
        self._apply_pending_update()
        leaf = self._delta_for(x).detach().clone().requires_grad_(True)
        self._leaf = leaf
        x_adv = torch.clamp(x + leaf, 0.0, 1.0)
        with ctx.autocast():
            logits_adv = model(x_adv)
        return StepOutput(loss=cross_entropy(logits_adv, y, ctx), logits_adv=logits_adv)

    # ---- state for --resume ---------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        self._apply_pending_update()
        return {} if self.delta is None else {"delta": self.delta.detach().clone()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._leaf = None
        delta = state.get("delta")
        self.delta = None if delta is None else delta.detach().clone()


@register_method("free-at", uses=("replays",), display="FreeAT")
def _free_at(config: MethodConfig, attack: AttackConfig) -> FreeAdversarialLoss:
    step_size = attack.step_size if attack.step_size is not None else attack.eps
    replays = DEFAULT_REPLAYS if config.replays is None else config.replays
    return FreeAdversarialLoss(eps=attack.eps, step_size=step_size, replays=replays)
