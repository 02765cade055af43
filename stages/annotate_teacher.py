"""Stage annotate-teacher: rationales and labels from the teacher (palm | none | plain | rag), resumable."""

import argparse

from ragdistill.config import load_params
from ragdistill.teachers.stage import annotate_teacher

parser = argparse.ArgumentParser(description=__doc__)
parser.add_argument("--dataset", required=True)
args = parser.parse_args()
annotate_teacher(load_params(), args.dataset)
