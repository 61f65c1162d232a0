"""Registry, create_model kwargs handling and model specs."""

from __future__ import annotations

import json

import pytest
import torch

from nofrost.models import (
    create_model,
    create_model_from_spec,
    list_models,
    list_norms,
    register_model,
)
from nofrost.models.factory import MODELS

EXPECTED = ["cifar_resnet10", "cifar_resnet18", "nf_resnet26", "nf_resnet50", "resnet26", "resnet50"]


def test_registered_names() -> None:
    assert set(EXPECTED) <= set(list_models())
    assert list_models() == sorted(list_models())
    assert {"bn", "in", "gn", "none"} <= set(list_norms())


def test_unknown_model_lists_available() -> None:
    with pytest.raises(ValueError, match="unknown model 'resnet9000'.*cifar_resnet18"):
        create_model("resnet9000", 10)


def test_unknown_kwarg_lists_accepted() -> None:
    with pytest.raises(ValueError, match="unexpected keyword argument.*depth.*accepts:.*norm"):
        create_model("cifar_resnet10", 10, depth=3)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"norm": "ln"}, "unknown norm 'ln'"),
        ({"width": 0}, "width"),
        ({"dropout": 1.5}, "dropout"),
        ({"alpha": -1.0}, "alpha"),
        ({"mean": [0.5, 0.5]}, "mean and std need 3 values"),
        ({"std": [0.5, 0.0, 0.5]}, "std must be > 0"),
    ],
)
def test_invalid_cifar_kwargs(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        create_model("cifar_resnet10", 10, **kwargs)


def test_invalid_num_classes() -> None:
    with pytest.raises(ValueError, match="num_classes"):
        create_model("cifar_resnet10", 0)


def test_timm_resnet_norm_none_points_to_nf() -> None:
    with pytest.raises(ValueError, match="nf_resnet26"):
        create_model("resnet26", 10, norm="none")


def test_nf_timm_models_reject_norm() -> None:
    with pytest.raises(ValueError, match="unexpected keyword argument.*norm"):
        create_model("nf_resnet26", 10, norm="bn")


def test_spec_is_complete_json_and_rebuilds_exactly() -> None:
    model = create_model("cifar_resnet10", 7, norm="none", mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25))
    spec = model.nofrost_spec
    assert spec["name"] == "cifar_resnet10" and spec["num_classes"] == 7
    kw = spec["kwargs"]
    assert kw["mean"] == [0.5, 0.5, 0.5] and kw["std"] == [0.25, 0.25, 0.25]
    assert {"norm", "in_chans", "width", "dropout", "drop_path", "alpha", "skipinit"} <= set(kw)
    assert kw["width"] == 16 and kw["alpha"] == 0.2 and kw["skipinit"] is False
    spec2 = json.loads(json.dumps(spec))
    rebuilt = create_model_from_spec(spec2)
    assert rebuilt.nofrost_spec == spec
    sd, sd2 = model.state_dict(), rebuilt.state_dict()
    assert list(sd) == list(sd2)
    assert all(sd[k].shape == sd2[k].shape for k in sd)
    assert torch.equal(rebuilt.normalize.mean, model.normalize.mean)


def test_timm_spec_defaults() -> None:
    spec = create_model("resnet26", 5).nofrost_spec
    assert spec["kwargs"]["mean"] == [0.485, 0.456, 0.406]
    assert spec["kwargs"]["norm"] == "bn"


def test_register_model_and_duplicate(monkeypatch: pytest.MonkeyPatch) -> None:
    # work on a copy of the registry so the global list of models is left as it was
    monkeypatch.setattr(MODELS, "_entries", dict(MODELS._entries))
    name = "_test_tiny_model"

    @register_model(name)
    def tiny(num_classes: int, *, hidden: int = 4) -> torch.nn.Module:
        return torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(12, num_classes))

    assert name in list_models()
    model = create_model(name, 3, hidden=8)
    assert model.nofrost_spec == {"name": name, "num_classes": 3, "kwargs": {"hidden": 8}}
    with pytest.raises(ValueError, match="registered twice"):
        register_model(name)(tiny)


def test_non_json_kwarg_rejected() -> None:
    with pytest.raises(ValueError, match="JSON"):
        create_model("cifar_resnet10", 10, mean=(torch.tensor(0.5), 0.5, 0.5))
