"""Stages train-finetune and train-distill: standard finetuning (gold labels) or standard distillation
(teacher labels)."""

import argparse

from ragdistill.config import load_params
from ragdistill.students.run import train

parser = argparse.ArgumentParser(description=__doc__)
parser.add_argument("--dataset", required=True)
parser.add_argument("--method", required=True, choices=["finetune", "distill"])
args = parser.parse_args()
train(load_params(), args.dataset, args.method)
