"""Stage retrieve: the top-k passages of every example from its dataset's corpus; recall where gold exists."""

import argparse

from ragdistill.config import stage_params
from ragdistill.pipeline.retrieve import run

parser = argparse.ArgumentParser(description=__doc__)
parser.add_argument("--dataset", required=True)
args = parser.parse_args()
run(stage_params(), args.dataset)
