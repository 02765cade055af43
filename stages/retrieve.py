"""Stage retrieve: the top-k passages of every example from its dataset's corpus; recall where gold exists."""

import argparse

from ragdistill.config import load_params
from ragdistill.retrieval.stage import retrieve

parser = argparse.ArgumentParser(description=__doc__)
parser.add_argument("--dataset", required=True)
args = parser.parse_args()
retrieve(load_params(), args.dataset)
