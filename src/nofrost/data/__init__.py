"""Datasets and batch loading: CIFAR-10 (full or the shipped mini subset), Fashion-MNIST, ImageNet.

``load_dataset(name, split, root)`` gives a dataset of ``(float32 CHW image in [0, 1], label)``;
``make_loader`` turns it into deterministic, sharded batches on a device; ``dataset_info``
gives the class names, shape and normalization statistics a model needs.
"""

from nofrost.data.catalog import dataset_info, describe_dataset, list_datasets, load_dataset
from nofrost.data.info import DatasetInfo
from nofrost.data.loader import BatchLoader, make_loader
from nofrost.data.subset import (
    class_subset,
    dataset_class_subset,
    dataset_targets,
    parse_classes,
    stratified_indices,
    stratified_split,
    stratified_subset,
    take,
)
from nofrost.data.tensor_dataset import TensorImageDataset
from nofrost.data.transforms import random_crop_flip

__all__ = [
    "BatchLoader",
    "class_subset",
    "parse_classes",
    "DatasetInfo",
    "TensorImageDataset",
    "dataset_info",
    "describe_dataset",
    "list_datasets",
    "load_dataset",
    "make_loader",
    "random_crop_flip",
    "dataset_class_subset",
    "dataset_targets",
    "stratified_indices",
    "stratified_split",
    "stratified_subset",
    "take",
]
