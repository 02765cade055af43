"""ragdistill: Distilling Step-by-Step with plain and retrieval-augmented teachers."""

__version__ = "0.1.0"
