"""Scoring students and teachers: predictions, correctness, accuracy with intervals."""

from ragdistill.evaluation.metrics import accuracy_summary, bootstrap_interval, is_correct, paired_bootstrap

__all__ = ["accuracy_summary", "bootstrap_interval", "is_correct", "paired_bootstrap"]
