"""Stage cost: what one trained student costs to deploy (parameters, memory, latency per question)."""

import argparse

from ragdistill.config import stage_params
from ragdistill.pipeline.cost import run

parser = argparse.ArgumentParser(description=__doc__)
parser.add_argument("--dataset", required=True)
parser.add_argument("--method", required=True)
args = parser.parse_args()
run(stage_params(), args.dataset, args.method)
