"""Stage split: apply the training fraction and seed; hold out validation examples."""

import argparse

from ragdistill.config import load_params
from ragdistill.data.split import split

parser = argparse.ArgumentParser(description=__doc__)
parser.add_argument("--dataset", required=True)
args = parser.parse_args()
split(load_params(), args.dataset)
