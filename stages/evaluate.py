"""Stage evaluate: score one student on the evaluation split (label task only)."""

import argparse

from ragdistill.config import stage_params
from ragdistill.pipeline.evaluate import run

parser = argparse.ArgumentParser(description=__doc__)
parser.add_argument("--dataset", required=True)
parser.add_argument("--method", required=True)
args = parser.parse_args()
run(stage_params(), args.dataset, args.method)
