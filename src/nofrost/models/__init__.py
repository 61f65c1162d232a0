"""Models: a registry of factories, CIFAR and ImageNet (NF-)ResNets, and checkpoint I/O.

Every model takes images in [0, 1] of shape (N, C, H, W) and normalizes them itself
(``model.normalize``, then ``model.net``), and carries ``model.nofrost_spec`` so it can be
rebuilt exactly (``create_model_from_spec``) and saved/loaded (``save_model``/``load_model``).

Registered models (``list_models()``):

- ``cifar_resnet10``, ``cifar_resnet18``: CIFAR-size pre-activation ResNets with
  ``norm`` in {"bn", "in", "gn", "none"}; "none" is the NF-ResNet of Brock et al. (2021a).
- ``resnet26``, ``resnet50`` (timm, ``norm`` in {"bn", "in", "gn"}), ``nf_resnet26``,
  ``nf_resnet50`` (timm NF-ResNets): the ImageNet models of the NoFrost paper.
"""

from nofrost.models import cifar_resnet as _cifar_resnet  # noqa: F401  (registers models)
from nofrost.models import timm_models as _timm_models  # noqa: F401  (registers models)
from nofrost.models.cifar_resnet import CifarResNet, CifarResNetConfig, PreActBasicBlock
from nofrost.models.factory import (
    MODELS,
    create_model,
    create_model_from_spec,
    list_models,
    model_norm,
    register_model,
)
from nofrost.models.io import ModelLoadError, detect_timm_architecture, load_model, model_spec, save_model
from nofrost.models.normalize import (
    CIFAR10_MEAN,
    CIFAR10_STD,
    IMAGENET_MEAN,
    IMAGENET_STD,
    ImageClassifier,
    Normalize,
)
from nofrost.models.norms import (
    NORM_LAYERS,
    FeatureMapTooSmallError,
    find_normalization_layers,
    is_normalization_layer,
    list_norms,
    make_norm,
    norm_display,
    norm_layer,
    register_norm,
)

__all__ = [
    "CIFAR10_MEAN",
    "CIFAR10_STD",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "MODELS",
    "NORM_LAYERS",
    "CifarResNet",
    "CifarResNetConfig",
    "FeatureMapTooSmallError",
    "ImageClassifier",
    "ModelLoadError",
    "Normalize",
    "PreActBasicBlock",
    "create_model",
    "create_model_from_spec",
    "detect_timm_architecture",
    "find_normalization_layers",
    "is_normalization_layer",
    "list_models",
    "list_norms",
    "model_norm",
    "norm_display",
    "load_model",
    "make_norm",
    "model_spec",
    "norm_layer",
    "register_model",
    "register_norm",
    "save_model",
]
