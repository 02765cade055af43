"""Stage prepare: load one dataset from the data directory into the normalized schema."""

import argparse

from ragdistill.config import load_params
from ragdistill.data.prepare import prepare

parser = argparse.ArgumentParser(description=__doc__)
parser.add_argument("--dataset", required=True)
args = parser.parse_args()
prepare(load_params(), args.dataset)
