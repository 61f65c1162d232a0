"""ImageNet-C in its published folders (Hendrycks & Dietterich, ICLR 2019; zenodo record 2235448).

``ROOT/<corruption>/<severity 1-5>/<wnid>/*.JPEG``: the 50,000 ImageNet validation images,
resized to 256, center-cropped to 224 and then corrupted. As in the reference evaluation
(github:hendrycks/robustness ImageNet-C/test.py: CenterCrop(224) only), images are not
resized again: at the default 224 pixels they are read as they are.
"""

from __future__ import annotations

import os
from pathlib import Path

from nofrost.data.datasets._registry import CORRUPTION_VARIANTS, register_dataset
from nofrost.data.imagenet import ImageNetFolder, load_wnid_folder
from nofrost.data.info import imagenet_info, imagenet_ood_facts

IMAGENET_C_LAYOUT = (
    "expected the published ImageNet-C folders: ROOT/<corruption>/<severity 1-5>/<wnid>/*.JPEG "
    "(corruption names as nofrost.data.corruptions.list_corruptions() spells them)"
)


@register_dataset("imagenet-c", summary="ImageNet-C, the published folders (Hendrycks & Dietterich 2019)",
                  info=imagenet_info, splits=("test",), layout=IMAGENET_C_LAYOUT, variants=CORRUPTION_VARIANTS,
                  distribution_shift=True, reference_errors=lambda: imagenet_ood_facts()["alexnet_imagenet_c_error"],
                  reference_clean_error=lambda: imagenet_ood_facts()["alexnet_imagenet_clean_error"],
                  uncorrupted=("imagenet", "val"))
def imagenet_c(root: Path, split: str, *, augment: bool, image_size: int | None, corruption: str,
               severity: int) -> ImageNetFolder:
    """The validation images under ``corruption`` at ``severity``; labels are 1000-class indices."""
    if not root.is_dir():
        raise FileNotFoundError(f"ImageNet-C root {root} is not a folder; {IMAGENET_C_LAYOUT}")
    folder = root / corruption
    if not folder.is_dir():
        present = _subfolders(root)
        raise FileNotFoundError(f"no {corruption}/ folder in {root} (folders there: "
                                f"{', '.join(present[:8]) or 'none'}); {IMAGENET_C_LAYOUT}")
    severities = [f for f in _subfolders(folder) if f.isdigit()]
    if not severities:
        raise ValueError(f"{folder} has no severity folders 1-5 (found {', '.join(_subfolders(folder)[:5]) or 'none'}); "
                         f"{IMAGENET_C_LAYOUT}")
    if str(severity) not in severities:
        raise FileNotFoundError(f"no severity folder {folder / str(severity)} (severities there: "
                                f"{', '.join(severities)}); {IMAGENET_C_LAYOUT}")
    size = imagenet_info().image_size if image_size is None else image_size
    return load_wnid_folder(folder / str(severity), IMAGENET_C_LAYOUT, image_size=size, augment=augment,
                            crop_fraction=1.0)


def _subfolders(path: Path) -> list[str]:
    return sorted(entry.name for entry in os.scandir(path) if entry.is_dir())
