"""The registered datasets, one module per family (see ``_registry`` for how to add one).

Importing this package registers every family; :mod:`nofrost.data.catalog` looks them up.
"""

from nofrost.data.datasets import (  # noqa: F401  (importing a family registers it)
    cifar,
    cifar10_c,
    corruptions_gen,
    fashion_mnist,
    imagenet,
    imagenet_c,
    imagenet_shifts,
)
from nofrost.data.datasets._registry import (
    CORRUPTION_VARIANTS,
    DatasetEntry,
    Variant,
    dataset_entry,
    register_dataset,
)

__all__ = ["CORRUPTION_VARIANTS", "DatasetEntry", "Variant", "dataset_entry", "register_dataset"]
