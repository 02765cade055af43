"""Fault cases of the pipeline (issue "a pipeline that survives faults"), with the real pieces: stage scripts
run as processes in a scratch directory and killed with SIGKILL, a real llama.cpp server stopped and started
again, and the tiny student trained twice through the train and evaluate stages.

The teacher is the 135M SmolLM2 GGUF (greedy, one thread); the student is the tiny random llama of the zoo.
"""

from __future__ import annotations

import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from ragdistill.data.example import Example
from ragdistill.profile import apply_profile
from ragdistill.teachers import AnnotationCache, DecodingSettings, TeacherError, annotate
from ragdistill.teachers.openai_http import OpenAITeacher
from ragdistill.teachers.server import start_llama_server, stop_server

REPO = Path(__file__).resolve().parents[1]


def _scratch(folder: Path, overrides: dict) -> Path:
    """A scratch pipeline directory: the repository's params.yaml with the tiny profile and ``overrides``."""
    folder.mkdir(parents=True)
    shutil.copy(REPO / "params.yaml", folder / "params.yaml")
    apply_profile(REPO / "profiles" / "tiny.yaml", folder / "params.yaml")
    overlay = folder.parent / f"{folder.name}-overrides.yaml"
    overlay.write_text(yaml.safe_dump(overrides))
    apply_profile(overlay, folder / "params.yaml")
    return folder


def _stage_env(data_root: Path, cache: Path) -> dict[str, str]:
    # The stages import this checkout's src (not whatever else is installed), read the shared datasets and
    # build zoo models in the session cache. The torch thread count follows conftest (see the note there).
    threads = os.environ.get("RAGDISTILL_TEST_THREADS", "2")
    return {**os.environ, "PYTHONPATH": str(REPO / "src"), "RAGDISTILL_DATA": str(data_root),
            "RAGDISTILL_CACHE": str(cache), "OMP_NUM_THREADS": threads, "TOKENIZERS_PARALLELISM": "false"}


def _stage_args(script: str, *args: str) -> list[str]:
    return [sys.executable, str(REPO / "stages" / script), *args]


def _run_stage(args: list[str], cwd: Path, env: dict[str, str]) -> str:
    result = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=900)
    if result.returncode != 0:
        raise AssertionError(f"{' '.join(args[1:])} failed ({result.returncode}):\n{result.stderr[-3000:]}")
    return result.stdout + result.stderr


def _jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").split("\n") if line]


def _newlines(path: Path) -> int:
    return path.read_bytes().count(b"\n") if path.exists() else 0


def _without_seconds(row: dict) -> dict:
    """A row without the wall time its reply took: ``meta.seconds`` (annotations) or ``seconds`` (cache).
    It is measured afresh by every run that asks the teacher, so two runs never agree on it."""
    row = json.loads(json.dumps(row))
    row.pop("seconds", None)
    row.get("meta", {}).pop("seconds", None)
    return row


# -- the annotate-teacher stage killed with SIGKILL and run again ------------------------------------------

DATASET = "openbookqa"
TEACHER = "plain"
# Tiny profile: 48 training examples at fraction 0.5 (24, of which 21 are asked: validation takes 3 and is
# scored on gold labels) and the first 8 evaluation examples.
QUESTIONS = 21 + 8


def test_annotate_stage_killed_and_restarted_matches_uninterrupted(tmp_path: Path, data_root: Path,
                                                                   tmp_cache: Path, smollm2_gguf: Path) -> None:
    env = _stage_env(data_root, tmp_cache)
    # One llama.cpp thread: with two, a thread descheduled by other load stalls every barrier of the other.
    base = _scratch(tmp_path / "base", {"datasets": [DATASET], "teacher": TEACHER, "teacher_model": {"threads": 1}})
    _run_stage(_stage_args("prepare.py", "--dataset", DATASET), base, env)  # a plain teacher reads no retrieval
    whole, killed = tmp_path / "whole", tmp_path / "killed"
    shutil.copytree(base, whole)
    shutil.copytree(base, killed)
    annotate_stage = _stage_args("annotate_teacher.py", "--dataset", DATASET)
    cache_file = Path(".cache/teacher") / f"{DATASET}.jsonl"
    artifact = Path("data/annotations") / f"{DATASET}-{TEACHER}.jsonl"
    report = Path("reports/teacher") / f"{DATASET}-{TEACHER}.json"

    _run_stage(annotate_stage, whole, env)
    reference_cache = _jsonl(whole / cache_file)
    assert len(reference_cache) == QUESTIONS
    assert json.loads((whole / report).read_text())["stats"]["queried"] == QUESTIONS

    # Kill at a random moment after the k-th reply is saved (a reply may be half written, or a batch half
    # answered; the llama.cpp backend hands its replies over 8 at a time, so the kill mostly lands inside a
    # batch). The seed is in every message so that a failure can be replayed.
    seed = random.randrange(2**32)
    rng = random.Random(seed)
    kill_after, delay = rng.randint(1, QUESTIONS - 9), rng.uniform(0.0, 0.5)
    where = f"seed {seed}: kill after {kill_after} replies + {delay:.2f} s"
    log = tmp_path / "killed-run.log"
    with open(log, "wb") as output:
        process = subprocess.Popen(annotate_stage, cwd=killed, env=env, stdout=output, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 600
        while _newlines(killed / cache_file) < kill_after:
            if process.poll() is not None:
                pytest.fail(f"{where}: the stage exited with {process.returncode} first:\n{log.read_text()[-3000:]}")
            assert time.monotonic() < deadline, f"{where}: no reply after 600 s"
            time.sleep(0.005)
        time.sleep(delay)
        os.kill(process.pid, signal.SIGKILL)
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=30)
    assert process.returncode == -signal.SIGKILL, f"{where}: the run ended before the kill"
    assert not (killed / artifact).exists(), where

    # What the kill left: whole lines with distinct keys, and at most a torn last line (no newline).
    *lines, _torn = (killed / cache_file).read_bytes().split(b"\n")  # _torn is b"" after a whole line
    kept = [json.loads(line) for line in lines]
    keys = [row["key"] for row in kept]
    assert len(set(keys)) == len(keys), where
    assert kill_after <= len(kept) < QUESTIONS, where

    out = _run_stage(annotate_stage, killed, env)
    assert f"{len(kept)} replies cached" in out, where
    stats = json.loads((killed / report).read_text())["stats"]
    assert (stats["from_cache"], stats["queried"]) == (len(kept), QUESTIONS - len(kept)), where
    resumed_cache = _jsonl(killed / cache_file)  # every line whole now: a torn tail was cut before appending
    assert resumed_cache[: len(kept)] == kept, where
    # Each reply was asked for once: one line per prompt, no key twice, the same prompts as the whole run.
    resumed_keys = [row["key"] for row in resumed_cache]
    assert len(resumed_keys) == len(set(resumed_keys)) == QUESTIONS, where
    assert set(resumed_keys) == {row["key"] for row in reference_cache}, where

    # The artifact equals the uninterrupted run's except for the per-reply wall times (see _without_seconds).
    whole_rows, killed_rows = _jsonl(whole / artifact), _jsonl(killed / artifact)
    assert len(killed_rows) == QUESTIONS
    assert [_without_seconds(r) for r in killed_rows] == [_without_seconds(r) for r in whole_rows], where
    by_key = {row["key"]: _without_seconds(row) for row in reference_cache}
    assert all(_without_seconds(row) == by_key[row["key"]] for row in resumed_cache), where
    whole_report, killed_report = (json.loads((d / report).read_text()) for d in (whole, killed))
    assert killed_report["eval"] == whole_report["eval"] and killed_report["unparsed"] == whole_report["unparsed"]


# -- the HTTP teacher: its server killed mid-run, a new one started, the run resumed ---------------------

def _serve(model: Path, log: Path) -> tuple[subprocess.Popen, str]:
    pytest.importorskip("uvicorn", reason="needs llama-cpp-python[server]")
    try:
        return start_llama_server(model, log, alias="smollm2", n_ctx=1024, threads=1, timeout=120)
    except TeacherError as err:
        pytest.fail(str(err))


def _kill_when_saved(cache_file: Path, replies: int, server: subprocess.Popen, stop: threading.Event) -> None:
    """SIGKILL ``server`` once ``cache_file`` holds ``replies`` lines (polled, as an outside crash would come)."""
    while not stop.is_set():
        if _newlines(cache_file) >= replies:
            stop_server(server)
            return
        time.sleep(0.005)


def _http_teacher(base_url: str) -> OpenAITeacher:
    # Two requests in flight (one of them is cut off by the kill); one retry, soon, so the failure is fast.
    return OpenAITeacher("smollm2", base_url=base_url, concurrency=2, timeout=30, max_retries=1, backoff=0.05)


def test_http_teacher_survives_server_restart(tmp_path: Path, tiny_examples: Callable[..., list[Example]],
                                              smollm2_gguf: Path) -> None:
    examples = tiny_examples(6)
    for example in examples:
        example.rationale = example.teacher_label = None
    settings = DecodingSettings(max_new_tokens=16)
    cache_file = tmp_path / "replies.jsonl"
    kill_after = 2

    first, first_url = _serve(smollm2_gguf, tmp_path / "first.log")
    stop = threading.Event()
    killer = threading.Thread(target=_kill_when_saved, args=(cache_file, kill_after, first, stop), daemon=True)
    killer.start()
    try:
        with pytest.raises(TeacherError) as caught:
            annotate(examples, _http_teacher(first_url), settings, [], None, AnnotationCache(cache_file),
                     batch_size=len(examples), progress=False)
    finally:
        stop.set()
        killer.join(timeout=30)
        stop_server(first)
    message = str(caught.value)
    assert "gave up after 2 attempts; last error: connection failed" in message, message
    found = re.search(r"(\d+) new replies of 6 \(and 0 cached before\) are saved in (.+); run again to resume",
                      message)
    assert found is not None, message
    saved = int(found[1])
    assert found[2] == str(cache_file) and kill_after <= saved < len(examples), message
    assert len(AnnotationCache(cache_file)) == saved == _newlines(cache_file)

    second, second_url = _serve(smollm2_gguf, tmp_path / "second.log")  # another port: the new URL is passed in
    try:
        resumed, stats = annotate(examples, _http_teacher(second_url), settings, [], None,
                                  AnnotationCache(cache_file), batch_size=len(examples), progress=False)
        # The same questions asked in one go, to compare with (its own cache: everything is asked).
        whole, whole_stats = annotate(examples, _http_teacher(second_url), settings, [], None,
                                      AnnotationCache(tmp_path / "whole.jsonl"), progress=False)
    finally:
        stop_server(second)
    assert (stats.total, stats.from_cache, stats.queried) == (6, saved, 6 - saved)
    assert whole_stats.queried == 6
    rows = _jsonl(cache_file)
    assert len(rows) == len({row["key"] for row in rows}) == 6  # only the missing prompts were asked
    for got, expected in zip(resumed, whole):
        assert (got.id, got.rationale, got.teacher_label) == (expected.id, expected.rationale, expected.teacher_label)
        assert _without_seconds({"meta": got.meta}) == _without_seconds({"meta": expected.meta})


# -- determinism: the tiny student trained twice with one seed -------------------------------------------

def _safetensors(folder: Path) -> dict[str, Any]:
    from safetensors.torch import load_file

    files = sorted(folder.glob("*.safetensors"))
    assert files, f"no safetensors in {folder}"
    tensors: dict[str, Any] = {}
    for file in files:
        tensors.update(load_file(str(file)))
    return tensors


def _overlay(tmp_path: Path, name: str, values: dict) -> Path:
    path = tmp_path / f"{name}-overrides.yaml"
    path.write_text(yaml.safe_dump(values))
    return path


def test_same_seed_same_metrics_on_tiny_profile(tmp_path: Path, data_root: Path, tmp_cache: Path) -> None:
    import torch

    env = _stage_env(data_root, tmp_cache)
    dataset, method = "cqa", "sbs"
    base = _scratch(tmp_path / "base", {"datasets": [dataset], "teacher": "palm"})
    for script in ("prepare.py", "annotate_teacher.py", "split.py"):  # the PaLM teacher: no model runs
        _run_stage(_stage_args(script, "--dataset", dataset), base, env)
    runs = {}
    for name, seed in (("first", 0), ("again", 0), ("other", 1)):
        folder = tmp_path / name
        shutil.copytree(base, folder)
        apply_profile(_overlay(tmp_path, name, {"train": {"seed": seed}}), folder / "params.yaml")
        # Separate processes, as dvc runs them: nothing (RNG state, hash order) carries over from one to the next.
        _run_stage(_stage_args("train_sbs.py", "--dataset", dataset), folder, env)
        if name != "other":
            _run_stage(_stage_args("evaluate.py", "--dataset", dataset, "--method", method), folder, env)
        runs[name] = folder

    model = Path("models") / dataset / method
    first, again, other = (_safetensors(runs[name] / model) for name in ("first", "again", "other"))
    assert set(first) == set(again) == set(other)
    for key, tensor in first.items():
        assert torch.equal(tensor, again[key]), f"{key} differs between two runs with seed 0"
    assert any(not torch.equal(tensor, other[key]) for key, tensor in first.items()), "seed 1 gave seed 0's weights"
    stats = [json.loads((runs[name] / model / "train_stats.json").read_text()) for name in ("first", "again")]
    assert stats[0]["steps"] == 6 and stats[0]["loss_history"] == stats[1]["loss_history"]
    assert stats[0]["final_loss"] == stats[1]["final_loss"]

    predictions = Path("reports/predictions") / f"{dataset}-{method}.jsonl"
    rows = [_jsonl(runs[name] / predictions) for name in ("first", "again")]
    assert len(rows[0]) == 24 and rows[0] == rows[1]  # labels, correctness and every choice's score
    timing = {"eval_seconds", "train_seconds", "train_tokens_per_second"}  # wall clock, not results
    results = [{k: v for k, v in json.loads((runs[name] / "reports/eval" / f"{dataset}-{method}.json").read_text())
                .items() if k not in timing} for name in ("first", "again")]
    assert results[0] == results[1] and results[0]["n"] == 24
