"""Stage prepare: load one dataset from the data directory into the normalized schema."""

import argparse

from ragdistill.config import stage_params
from ragdistill.pipeline.prepare import run

parser = argparse.ArgumentParser(description=__doc__)
parser.add_argument("--dataset", required=True)
args = parser.parse_args()
run(stage_params(), args.dataset)
