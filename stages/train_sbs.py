"""Stage train-sbs: Distilling Step-by-Step, label and rationale tasks weighted by alpha."""

import argparse

from ragdistill.config import load_params
from ragdistill.students.run import train

parser = argparse.ArgumentParser(description=__doc__)
parser.add_argument("--dataset", required=True)
args = parser.parse_args()
train(load_params(), args.dataset, "sbs")
