"""Stage annotate-teacher: rationales and labels from the teacher (palm | none | plain | rag), resumable."""

import argparse

from ragdistill.config import stage_params
from ragdistill.pipeline.annotate_teacher import run

parser = argparse.ArgumentParser(description=__doc__)
parser.add_argument("--dataset", required=True)
args = parser.parse_args()
run(stage_params(), args.dataset)
