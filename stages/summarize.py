"""Stage summarize: one metrics file for `dvc metrics`, the full table, and the plot data."""

from ragdistill.config import METHODS, load_params
from ragdistill.evaluation.summary import summarize

summarize(load_params(), list(METHODS))
