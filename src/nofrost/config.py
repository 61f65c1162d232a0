"""The one typed config that flows from the CLI to the trainer to the report.

A config is built from a YAML preset (``presets/<name>.yaml``, which may ``extends:`` another
preset and change only what differs), optionally a user YAML file on top, then ``--set
section.key=value`` overrides. Every layer is validated against the
dataclasses below: an unknown key, a value of the wrong type or one out of range is an error
that names the key and says what is allowed.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from nofrost.epsilon import parse_eps


class ConfigError(ValueError):
    """A config key, type or value that is not allowed."""


@dataclass
class DataConfig:
    name: str = "cifar10-mini"
    root: str | None = None
    train_n: int | None = None  # use a class-stratified subset of the training split
    eval_n: int = 500  # held-out examples evaluated after each epoch
    image_size: int | None = None  # ImageNet-style datasets only
    workers: int = 0
    augment: bool = True  # random crop and horizontal flip of training images

    def validate(self) -> None:
        _check(self.train_n is None or self.train_n > 0, "data.train_n", "a positive integer or null")
        _check(self.eval_n >= 0, "data.eval_n", "a non-negative integer")
        _check(self.workers >= 0, "data.workers", "a non-negative integer")


@dataclass
class ModelConfig:
    name: str = "cifar_resnet10"
    norm: str | None = None  # None keeps the model's default; "bn", "in", "gn", "none"
    width: int | None = None
    dropout: float = 0.0
    drop_path: float = 0.0

    def validate(self) -> None:
        _check(0 <= self.dropout < 1, "model.dropout", "a probability in [0, 1)")
        _check(0 <= self.drop_path < 1, "model.drop_path", "a probability in [0, 1)")
        _check(self.width is None or self.width > 0, "model.width", "a positive integer or null")


@dataclass
class AttackConfig:
    """The attack that makes training's adversarial examples (ℓ∞ PGD)."""

    eps: float = 8 / 255
    steps: int = 10
    step_size: float | None = None  # None: min(1.25·eps, eps + 4/255) / steps
    # Generate x* with the model in eval mode (true, the reference code's choice) or in train
    # mode (false); null: the method's own choice (eval mode, except Fast AT: train mode).
    eval_mode: bool | None = None
    random_start: bool = True  # start PGD at a uniform random point of the eps-ball
    precision: str = "fp32"  # "fp32" or "bf16" (bf16 autocast on CUDA)

    def train_mode(self, method_default: bool = False) -> bool:
        """Whether x* is generated in train mode: ``eval_mode`` if set, else the method's default."""
        return method_default if self.eval_mode is None else not self.eval_mode

    def validate(self) -> None:
        _check(self.steps >= 1, "attack.steps", "an integer >= 1")
        _check(self.step_size is None or self.step_size > 0, "attack.step_size", "a positive number or null")
        _check(self.precision in ("fp32", "bf16"), "attack.precision", "'fp32' or 'bf16'")


@dataclass
class MethodConfig:
    """The training objective and its hyper-parameters (see docs/methods.md).

    Every hyper-parameter is ``None`` by default, meaning "the method's default"; a method
    refuses one it does not use (e.g. ``method.tau`` with ``trades``), so a typo cannot be
    silently ignored.
    """

    name: str = "sat"
    lam: float | None = None  # weight of the adversarial loss (st/sat/pgdat/mbnat)
    beta: float | None = None  # TRADES weight of the KL term (trades, trades-fat); default 1
    tau: int | None = None  # FAT early-stop steps after misclassification (fat, trades-fat); default 1
    replays: int | None = None  # Free AT minibatch replays m (free-at); default 8
    # DeepAugment (deepaugment, combine, nofrost-star): the variant, "noise2net" (weight-free,
    # the default without weight files), "cae", "edsr" or "cae+edsr" (default: the weight files
    # given); the published weight files; Noise2Net's largest ε (default 0.75).
    deepaugment: str | None = None
    cae_weights: str | None = None
    edsr_weights: str | None = None
    noise2net_max_epsilon: float | None = None

    def validate(self) -> None:
        _check(self.lam is None or 0 <= self.lam <= 1, "method.lam", "a number in [0, 1]")
        _check(
            self.beta is None or (self.beta >= 0 and self.beta < float("inf")),
            "method.beta",
            "a finite number >= 0 (TRADES uses 1 in the NoFrost paper, 6 in Zhang et al. 2019) or null",
        )
        _check(self.tau is None or self.tau >= 0, "method.tau", "an integer >= 0 (FAT's τ; the paper uses 1) or null")
        _check(self.replays is None or self.replays >= 1, "method.replays", "an integer >= 1 (Free AT's m) or null")
        from nofrost.data.deepaugment import VARIANTS

        _check(self.deepaugment is None or self.deepaugment in VARIANTS, "method.deepaugment",
               f"one of {', '.join(VARIANTS)} or null (noise2net unless weight files are given)")
        _check(self.noise2net_max_epsilon is None or self.noise2net_max_epsilon > 0, "method.noise2net_max_epsilon",
               "a positive number (the reference uses 0.75) or null")


#: ``optim.weight_decay_on``: every parameter (the reference code), or conv/linear weights only.
WEIGHT_DECAY_ON = ("all", "weights")


@dataclass
class OptimConfig:
    epochs: int = 10
    batch_size: int = 128  # the global batch: split across processes under torchrun
    lr: float = 0.1
    momentum: float = 0.9
    nesterov: bool = True
    weight_decay: float = 5e-4
    # "all" parameters (the reference code) or only conv/linear "weights" (no decay on biases,
    # gains and norm affines, of any kind of model)
    weight_decay_on: str = "all"
    label_smoothing: float = 0.0
    warmup_epochs: float = 0.0
    agc_clip: float | None = None  # adaptive gradient clipping λ (Brock et al. 2021b); None: off
    # Linear scaling (Goyal et al. 2017), as the reference code does: when set, ``lr`` is the
    # rate for a global batch of this many images and training uses lr · batch_size / lr_base_batch.
    lr_base_batch: int | None = None

    def validate(self) -> None:
        _check(self.epochs >= 1, "optim.epochs", "an integer >= 1")
        _check(self.batch_size >= 1, "optim.batch_size", "an integer >= 1")
        _check(self.lr > 0, "optim.lr", "a positive number")
        _check(0 <= self.momentum < 1, "optim.momentum", "a number in [0, 1)")
        _check(self.weight_decay >= 0, "optim.weight_decay", "a non-negative number")
        _check(self.weight_decay_on in WEIGHT_DECAY_ON, "optim.weight_decay_on",
               "'all' (every parameter, as the reference code) or 'weights' (conv/linear weights only)")
        _check(0 <= self.label_smoothing < 1, "optim.label_smoothing", "a number in [0, 1)")
        _check(0 <= self.warmup_epochs < self.epochs, "optim.warmup_epochs", "a number in [0, epochs)")
        _check(self.agc_clip is None or self.agc_clip > 0, "optim.agc_clip", "a positive number or null")
        _check(self.lr_base_batch is None or self.lr_base_batch >= 1, "optim.lr_base_batch", "a positive integer or null")

    @property
    def scaled_lr(self) -> float:
        """The learning rate training starts from (after warm-up): ``lr``, linearly scaled if asked."""
        if self.lr_base_batch is None:
            return self.lr
        return self.lr * self.batch_size / self.lr_base_batch


@dataclass
class RuntimeConfig:
    seed: int = 0
    device: str = "auto"  # "auto" (CUDA when available), "cpu", "cuda", "cuda:1", ...
    bf16: bool = True  # bf16 autocast for the training step's loss forwards on CUDA (ignored on CPU)
    # On CPUs with native bf16 (AMX or AVX512-BF16): the whole training step, loss forwards and
    # training attack, under bf16 autocast. Ignored on CUDA and, with a note, on other CPUs.
    cpu_bf16: bool = False
    channels_last: bool = True  # NHWC activations: faster convolutions on CUDA and on CPU (oneDNN)
    # torch.compile the model: "auto" compiles on CUDA only; a compilation failure falls back to
    # eager with a warning rather than stopping the run.
    compile: bool | str = "auto"
    compile_mode: str = "default"  # torch.compile mode; "reduce-overhead" adds CUDA graphs
    # One forward/backward over [clean; adversarial] when no layer mixes examples (no BN):
    # the same loss as two passes, with larger, faster kernels.
    fused_forward: bool = True
    sync_bn: bool = False  # under torchrun: synchronize BN batch statistics across processes
    # Batch-norm statistics over groups of this many examples (ghost BN); the reference code's
    # BN saw 32 images per GPU. null: the whole per-process batch.
    bn_group_size: int | None = None
    # Under torchrun: copy rank 0's BN running statistics to every rank before each forward.
    # The reference code turns this off (each GPU keeps its own statistics); so do we.
    broadcast_buffers: bool = False
    grad_checkpointing: bool = False  # recompute activations in backward: less memory, ~1 more forward

    def validate(self) -> None:
        _check(
            self.device == "auto" or self.device == "cpu" or self.device.startswith("cuda"),
            "runtime.device",
            "'auto', 'cpu' or 'cuda[:N]'",
        )
        _check(self.compile in (True, False, "auto"), "runtime.compile", "true, false or 'auto'")
        _check(self.bn_group_size is None or self.bn_group_size >= 2, "runtime.bn_group_size",
               "an integer >= 2 (e.g. 32, the reference code's per-GPU BN batch) or null")
        _check(not (self.sync_bn and self.bn_group_size), "runtime.bn_group_size",
               "null when runtime.sync_bn is on (one synchronizes BN statistics across processes, "
               "the other splits them into groups)")
        _check(
            self.compile_mode in ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs"),
            "runtime.compile_mode",
            "'default', 'reduce-overhead', 'max-autotune' or 'max-autotune-no-cudagraphs'",
        )


@dataclass
class EvalConfig:
    """Evaluation after training (and in `nofrost evaluate` when given a run)."""

    attacks: list[str] = field(default_factory=lambda: ["pgd"])  # specs, e.g. "pgd:steps=50:restarts=5"
    n: int = 1000
    batch_size: int = 256
    # Which checkpoint the run's result is: the "last" epoch's, or the "best" by PGD robust
    # accuracy during training (the reference code's best_RA.pth). Both are kept either way
    # when "best" is asked for: RUN/model.safetensors (last) and RUN/best/ (best).
    select: str = "last"
    # Where "best" is chosen: "holdout", select_n images held out of the training data (never
    # trained on), or "eval", select_n images of the test split, as the reference code (it
    # chose on the ImageNet val set it reports on: selection on test data, warned about).
    select_on: str = "holdout"
    select_n: int = 1000
    select_steps: int = 5  # PGD steps of the selection attack (the reference's val_steps)
    # Check every select_every epochs and every epoch of the last 10% (the reference's schedule).
    select_every: int = 10

    def validate(self) -> None:
        _check(self.n >= 1, "eval.n", "an integer >= 1")
        _check(self.batch_size >= 1, "eval.batch_size", "an integer >= 1")
        _check(self.select in ("last", "best"), "eval.select", "'last' or 'best'")
        _check(self.select_on in ("holdout", "eval"), "eval.select_on",
               "'holdout' (images held out of the training data) or 'eval' (the test split, as the reference code)")
        _check(self.select_n >= 1, "eval.select_n", "an integer >= 1")
        _check(self.select_steps >= 1, "eval.select_steps", "an integer >= 1")
        _check(self.select_every >= 1, "eval.select_every", "an integer >= 1")

    def selects_at(self, epoch: int, epochs: int) -> bool:
        """Whether the best checkpoint is looked for after 0-based ``epoch`` (PGDAT.py's rule)."""
        return self.select == "best" and (epoch % self.select_every == 0 or epoch >= int(0.9 * epochs))


@dataclass
class Config:
    name: str = "custom"
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    method: MethodConfig = field(default_factory=MethodConfig)
    attack: AttackConfig = field(default_factory=AttackConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    runtime: RuntimeConfig = field(default_factory=RuntimeConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)

    def validate(self) -> "Config":
        for f in dataclasses.fields(self):
            section = getattr(self, f.name)
            if dataclasses.is_dataclass(section):
                section.validate()
        if self.method.name == "mbnat" and not _routed_norm(self.model.norm):
            raise ConfigError(
                f"method.name=mbnat routes clean and adversarial images through two batch norms and "
                f"needs model.norm=mbn (mixture BN), got model.norm={self.model.norm!r}; "
                f"add --set model.norm=mbn"
            )
        return self

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _routed_norm(kind: str | None) -> bool:
    """Whether ``kind`` is a registered norm that routes clean and adversarial images apart."""
    from nofrost.models.norms import NORM_LAYERS, norm_traits

    return kind is not None and kind in NORM_LAYERS and norm_traits(kind).routed


def _check(ok: bool, key: str, allowed: str) -> None:
    if not ok:
        raise ConfigError(f"{key}: must be {allowed}")


# ---------------------------------------------------------------------------------------------
# Building configs from dicts, YAML files, presets and overrides


def _coerce(value: Any, hint: Any, key: str) -> Any:
    """Check ``value`` against the type ``hint``; convert where it is unambiguous."""
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(hint)
        if value is None:
            if type(None) in options:
                return None
            raise ConfigError(f"{key}: must not be null")
        errors = []
        for option in options:
            if option is type(None):
                continue
            try:
                return _coerce(value, option, key)
            except ConfigError as err:
                errors.append(str(err))
        raise ConfigError(errors[0])
    if origin is list:
        (item_hint,) = typing.get_args(hint)
        if isinstance(value, str):
            value = [v.strip() for v in value.split(",") if v.strip()]
        if not isinstance(value, list):
            raise ConfigError(f"{key}: must be a list, got {value!r}")
        return [_coerce(v, item_hint, f"{key}[{i}]") for i, v in enumerate(value)]
    if hint is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false", "yes", "no", "1", "0"):
            return value.lower() in ("true", "yes", "1")
        raise ConfigError(f"{key}: must be true or false, got {value!r}")
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, (int, str)):
            raise ConfigError(f"{key}: must be an integer, got {value!r}")
        try:
            return int(value)
        except ValueError:
            raise ConfigError(f"{key}: must be an integer, got {value!r}") from None
    if hint is float:
        if key.endswith("eps") or key.endswith("step_size"):
            try:
                return parse_eps(value, what=key)
            except ValueError as err:
                raise ConfigError(str(err)) from None
        if isinstance(value, bool):
            raise ConfigError(f"{key}: must be a number, got {value!r}")
        try:
            return float(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{key}: must be a number, got {value!r}") from None
    if hint is str:
        if not isinstance(value, str):
            raise ConfigError(f"{key}: must be a string, got {value!r}")
        return value
    raise TypeError(f"unsupported config type {hint!r} for {key}")


def _build(cls: type, data: dict[str, Any], prefix: str, base: Any | None = None) -> Any:
    """Instantiate dataclass ``cls`` from ``data`` laid over ``base`` (or the defaults)."""
    if not isinstance(data, dict):
        raise ConfigError(f"{prefix or 'config'}: must be a mapping of keys to values, got {data!r}")
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    unknown = sorted(set(data) - set(names))
    if unknown:
        where = prefix or "config"
        raise ConfigError(
            f"unknown key {prefix + unknown[0] if prefix else unknown[0]!r} in {where}; "
            f"allowed keys: {', '.join(names)}"
        )
    values = {}
    for name in names:
        current = getattr(base, name) if base is not None else None
        if dataclasses.is_dataclass(hints[name]):
            values[name] = _build(hints[name], data.get(name, {}), f"{prefix}{name}.", current)
        elif name in data:
            values[name] = _coerce(data[name], hints[name], prefix + name)
        elif base is not None:
            values[name] = current
    return cls(**values)


def config_from_dict(data: dict[str, Any], base: Config | None = None) -> Config:
    """Build and validate a Config from a nested dict laid over ``base`` (or the defaults)."""
    return _build(Config, data or {}, "", base).validate()


def parse_override(text: str) -> dict[str, Any]:
    """Turn ``"a.b=value"`` into ``{"a": {"b": value}}`` (value parsed as YAML)."""
    if "=" not in text:
        raise ConfigError(f"--set {text!r}: expected section.key=value, e.g. optim.epochs=5")
    key, raw = text.split("=", 1)
    parts = [p for p in key.strip().split(".") if p]
    if not parts:
        raise ConfigError(f"--set {text!r}: the key is empty")
    # eps-like values such as 8/255 stay strings; everything else is read as YAML (numbers, null).
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        value = raw
    nested: dict[str, Any] = {parts[-1]: value}
    for part in reversed(parts[:-1]):
        nested = {part: nested}
    return nested


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def list_presets() -> list[str]:
    folder = resources.files("nofrost") / "presets"
    return sorted(p.name[: -len(".yaml")] for p in folder.iterdir() if p.name.endswith(".yaml"))


def _read_yaml(path: Path | Any, what: str) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        raise ConfigError(f"{what} is not valid YAML: {err}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{what} must hold a mapping of sections, got {type(data).__name__}")
    return data


def _preset_data(name: str, chain: tuple[str, ...] = ()) -> dict[str, Any]:
    """A preset's settings, laid over those of the preset it ``extends`` (if any)."""
    if name not in list_presets():
        where = f" (extended by preset {chain[-1]!r})" if chain else ""
        raise ConfigError(f"unknown preset {name!r}{where}; available: {', '.join(list_presets())}")
    if name in chain:
        raise ConfigError(f"presets extend each other in a cycle: {' -> '.join([*chain, name])}")
    data = _read_yaml(resources.files("nofrost") / "presets" / f"{name}.yaml", f"preset {name!r}")
    base = data.pop("extends", None)
    if base is None:
        return data
    if not isinstance(base, str):
        raise ConfigError(f"preset {name!r}: 'extends' must name one preset, got {base!r}")
    inherited = _preset_data(base, (*chain, name))
    inherited.pop("name", None)
    return _merge(inherited, data)


def load_config(
    preset: str | None = None,
    file: str | Path | None = None,
    overrides: list[str] | tuple[str, ...] = (),
) -> Config:
    """Resolve preset → file → ``--set`` overrides into one validated Config."""
    data: dict[str, Any] = {}
    if preset is not None:
        data = _preset_data(preset)
        data.setdefault("name", preset)
    if file is not None:
        path = Path(file)
        if not path.is_file():
            raise ConfigError(f"config file {str(path)!r} does not exist")
        data = _merge(data, _read_yaml(path, f"config file {str(path)!r}"))
    for text in overrides:
        data = _merge(data, parse_override(text))
    return config_from_dict(data)


def save_config(config: Config, path: str | Path) -> None:
    Path(path).write_text(yaml.safe_dump(config.to_dict(), sort_keys=False))
