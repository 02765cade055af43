"""Data-parallel training: `accelerate launch --multi_gpu --num_processes 2` over gloo on two CPU cores runs
train-sbs and train-baseline on the tiny profile. Only the main process logs and writes, and with the same
global batch the result matches a single-process run:

- the loss at every logged step within 1% (relative) of the single-process run's;
- the final weights closer to the single-process run's than half the distance to a run with another seed.

They are not equal: each process averages the loss over its own share of the batch before the gradients
are averaged, and the last batch of an epoch is filled up with repeated examples so that every process gets
one."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import test_dag  # the DAG test's scratch clone and helpers (tests/ is on sys.path under pytest)
import yaml
from test_dag import BIN, _run

tiny_repo = test_dag.tiny_repo  # the same fixture, its own scratch clone for this module

LAUNCH = [str(BIN / "accelerate"), "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
          "--mixed_precision", "no", "--dynamo_backend", "no"]
STAGES = {"sbs": ["stages/train_sbs.py", "--dataset", "svamp"],
          "finetune": ["stages/train_baseline.py", "--dataset", "svamp", "--method", "finetune"]}


def _weights(folder: Path) -> dict:
    from safetensors.torch import load_file

    return load_file(str(folder / "model.safetensors"))


def _distance(a: dict, b: dict) -> float:
    return float(sum(((a[k] - b[k]) ** 2).sum() for k in a) ** 0.5)


def _set_seed(repo: Path, seed: int) -> None:
    params = yaml.safe_load((repo / "params.yaml").read_text())
    params["train"]["seed"] = seed
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


def _train(repo: Path, env: dict, method: str, into: Path, launch: list[str] | None = None) -> str:
    out = _run([*(launch or []), *([] if launch else [sys.executable]), *STAGES[method]], repo, env)
    shutil.copytree(repo / "models" / "svamp" / method, into)
    shutil.rmtree(repo / "models" / "svamp" / method)
    return out


@pytest.fixture(scope="module")
def split_repo(tiny_repo):
    repo, env = tiny_repo
    _run(["dvc", "repro", "split@svamp"], repo, env)
    return repo, {**env, "OMP_NUM_THREADS": "1"}  # one thread per process: two processes on two cores


@pytest.mark.parametrize("method", list(STAGES))
def test_two_processes_match_one_and_only_the_main_one_writes(split_repo, tmp_path, method):
    repo, env = split_repo
    _set_seed(repo, 0)
    single = _train(repo, env, method, tmp_path / "single")
    parallel = _train(repo, env, method, tmp_path / "parallel", launch=LAUNCH)
    _set_seed(repo, 1)
    _train(repo, env, method, tmp_path / "seed1")
    _set_seed(repo, 0)

    # The main process alone logged the result (and wrote it: the same guard).
    assert single.count(f"trained {method} on svamp") == 1
    assert parallel.count(f"trained {method} on svamp") == 1, parallel[-3000:]
    stats = {name: json.loads((tmp_path / name / "train_stats.json").read_text()) for name in ("single", "parallel")}
    assert stats["parallel"]["steps"] == stats["single"]["steps"]  # the batch is global: the same steps
    curves = {name: [point["loss"] for point in s["loss_history"]] for name, s in stats.items()}
    assert len(curves["parallel"]) == len(curves["single"]) > 0
    for one, two in zip(curves["single"], curves["parallel"]):
        assert abs(one - two) <= 0.01 * abs(one), curves
    weights = {name: _weights(tmp_path / name) for name in ("single", "parallel", "seed1")}
    parallel_gap = _distance(weights["single"], weights["parallel"])
    seed_gap = _distance(weights["single"], weights["seed1"])
    # Not zero: one process alone (a launcher that ignored --num_processes) would repeat the run exactly.
    assert 0 < parallel_gap < 0.5 * seed_gap, (parallel_gap, seed_gap)
    assert not list((repo / ".cache" / "checkpoints").rglob("*.safetensors"))  # the checkpoints were removed


def test_a_global_batch_that_does_not_divide_among_the_processes_is_refused(split_repo):
    repo, env = split_repo
    params = yaml.safe_load((repo / "params.yaml").read_text())
    batch = params["train"]["batch_size"]
    try:
        params["train"]["batch_size"] = 3
        (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
        result = subprocess.run([*LAUNCH, *STAGES["finetune"]], cwd=repo, env=env, capture_output=True,
                                         text=True, timeout=600)
        assert result.returncode != 0
        out = result.stdout + result.stderr
        assert "params.yaml: train.batch_size 3 is the batch of a step over all processes" in out
        # The launcher reports the failed process with its own traceback; none runs through the project's code.
        assert not [line for line in out.splitlines() if 'File "' in line and ("/src/ragdistill/" in line
                                                                             or "/stages/" in line)], out
    finally:
        params["train"]["batch_size"] = batch
        (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
