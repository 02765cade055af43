"""Stage train-baseline: standard finetuning (gold labels) or standard distillation
(teacher labels)."""

import argparse

from ragdistill.config import METHODS, stage_params
from ragdistill.pipeline.train import run

parser = argparse.ArgumentParser(description=__doc__)
parser.add_argument("--dataset", required=True)
baselines = [name for name, method in METHODS.items() if method.stage == "train-baseline"]
parser.add_argument("--method", required=True, choices=baselines)
args = parser.parse_args()
run(stage_params(), args.dataset, args.method)
