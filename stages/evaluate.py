"""Stage evaluate: score one student on the evaluation split (label task only)."""

import argparse

from ragdistill.config import load_params
from ragdistill.evaluation.run import evaluate

parser = argparse.ArgumentParser(description=__doc__)
parser.add_argument("--dataset", required=True)
parser.add_argument("--method", required=True)
args = parser.parse_args()
evaluate(load_params(), args.dataset, args.method)
