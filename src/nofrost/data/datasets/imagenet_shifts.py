"""ImageNet-R, ImageNet-A and ImageNet-Sketch: test sets of other image distributions, one folder
of images per WNID, evaluated with the ImageNet evaluation transform (resize 256, crop 224).

- ImageNet-R (renditions: art, cartoons, sculptures, ...; Hendrycks et al., ICCV 2021) and
  ImageNet-A (natural adversarial examples; Hendrycks et al., CVPR 2021) cover 200 classes each,
  not the same ones. Labels are 1000-class indices and the dataset's ``class_subset`` lists the
  200 it covers, so a 1000-class model is scored on those logits only, as their authors'
  eval.py do (github:hendrycks/imagenet-r, github:hendrycks/natural-adv-examples). The class
  lists ship in ``assets/imagenet_ood.json`` with their sources.
- ImageNet-Sketch (Wang et al., NeurIPS 2019) covers all 1000 classes.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from nofrost.data.datasets._registry import register_dataset
from nofrost.data.imagenet import ImageNetFolder, load_wnid_folder
from nofrost.data.info import imagenet_indices, imagenet_info, imagenet_ood_facts


def _register(name: str, summary: str, wnids: Callable[[], list[str]] | None) -> None:
    classes = "200 WNID class folders of its subset" if wnids else "1000 WNID class folders"
    layout = f"expected ROOT/<wnid>/<image files>, the published {name} layout ({classes})"

    @register_dataset(name, summary=summary, info=imagenet_info, splits=("test",), layout=layout,
                      distribution_shift=True)
    def load(root: Path, split: str, *, augment: bool, image_size: int | None) -> ImageNetFolder:
        size = imagenet_info().image_size if image_size is None else image_size
        covered = wnids() if wnids else None
        dataset = load_wnid_folder(root, layout, image_size=size, augment=augment, allowed=covered)
        if covered is not None:
            dataset.class_subset = imagenet_indices(covered)
        return dataset


_register("imagenet-r", "ImageNet-R renditions, 200 classes (Hendrycks et al. 2021)",
          lambda: imagenet_ood_facts()["imagenet_r_wnids"])
_register("imagenet-a", "ImageNet-A natural adversarial examples, 200 classes (Hendrycks et al. 2021)",
          lambda: imagenet_ood_facts()["imagenet_a_wnids"])
_register("imagenet-sketch", "ImageNet-Sketch, 1000 classes (Wang et al. 2019)", None)
