"""Stage split: apply the training fraction and seed; hold out validation examples."""

import argparse

from ragdistill.config import stage_params
from ragdistill.pipeline.split import run

parser = argparse.ArgumentParser(description=__doc__)
parser.add_argument("--dataset", required=True)
args = parser.parse_args()
run(stage_params(), args.dataset)
