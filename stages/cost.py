"""Stage cost: what one trained student costs to deploy (parameters, memory, latency per question)."""

import argparse

from ragdistill.config import load_params
from ragdistill.evaluation.cost import student_cost

parser = argparse.ArgumentParser(description=__doc__)
parser.add_argument("--dataset", required=True)
parser.add_argument("--method", required=True)
args = parser.parse_args()
student_cost(load_params(), args.dataset, args.method)
