"""Stage train-sbs: Distilling Step-by-Step, label and rationale tasks weighted by alpha."""

import argparse

from ragdistill.config import stage_params
from ragdistill.pipeline.train import run

parser = argparse.ArgumentParser(description=__doc__)
parser.add_argument("--dataset", required=True)
args = parser.parse_args()
run(stage_params(), args.dataset, "sbs")
