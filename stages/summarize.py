"""Stage summarize: one metrics file for `dvc metrics`, the full table, and the plot data."""

from ragdistill.config import stage_params
from ragdistill.pipeline.summarize import run

run(stage_params())
