"""The registered datasets, one module per family (see ``_registry`` for how to add one).

Importing this package registers every family; :mod:`nofrost.data.catalog` looks them up.
"""

from nofrost.data.datasets import cifar, fashion_mnist, imagenet  # noqa: F401  (registers them)
from nofrost.data.datasets._registry import DatasetEntry, Variant, dataset_entry, register_dataset

__all__ = ["DatasetEntry", "Variant", "dataset_entry", "register_dataset"]
