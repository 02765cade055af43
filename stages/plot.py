"""Stage plot: accuracy per method and dataset, and training loss curves, as PNG."""

from ragdistill.pipeline.plot import run

run()
