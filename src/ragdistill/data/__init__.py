"""Datasets normalized to one schema: the ``Example`` record and one loader per dataset."""

from ragdistill.data.example import Example, load_examples, save_examples
from ragdistill.data.registry import DATASETS, load_dataset, resolve_data_root

__all__ = ["DATASETS", "Example", "load_dataset", "load_examples", "resolve_data_root", "save_examples"]
