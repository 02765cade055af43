"""The whole DVC pipeline on the tiny profile, through the real `dvc` commands, in a scratch clone.

Checks what the pipeline promises: `dvc repro` runs end to end, a second `dvc repro` does nothing,
changing one training parameter reruns only what depends on it, and `dvc exp run -S` works.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from ragdistill.machine import cpu_model
from ragdistill.students.models import pick_device

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def _run(args: list[str], cwd: Path, env: dict) -> str:
    result = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=1200)
    if result.returncode != 0:
        raise AssertionError(f"{' '.join(args)} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    return result.stdout + result.stderr


def _correct(repo: Path, dataset: str, method: str) -> dict[str, bool]:
    rows = (repo / "reports" / "predictions" / f"{dataset}-{method}.jsonl").read_text().splitlines()
    return {row["id"]: row["correct"] for row in map(json.loads, rows)}


def _ran_stages(output: str) -> set[str]:
    return {line.split("'")[1] for line in output.splitlines() if line.startswith("Running stage '")}


@pytest.fixture(scope="module")
def tiny_repo(tmp_path_factory, data_root, tmp_cache) -> tuple[Path, dict]:
    if shutil.which("git") is None:
        pytest.skip("git is needed")
    repo = tmp_path_factory.mktemp("dag") / "repo"
    top_level_only = {"data", "models", "reports"}  # src/ragdistill/data must still be copied

    def ignore(folder: str, names: list[str]) -> set[str]:
        skipped = {n for n in names if n in {".venv", ".git", ".cache", ".dvc", "dvc.lock", "__pycache__"}
                   or n.endswith(".egg-info")}
        return skipped | (top_level_only & set(names) if Path(folder) == REPO else set())

    shutil.copytree(REPO, repo, ignore=ignore)
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}", "RAGDISTILL_DATA": str(data_root),
           "RAGDISTILL_CACHE": str(tmp_cache), "DVC_NO_ANALYTICS": "1",
           "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t"}
    _run(["git", "init", "-q"], repo, env)
    _run(["dvc", "init", "-q"], repo, env)
    _run([sys.executable, "-m", "ragdistill.profile", "profiles/tiny.yaml"], repo, env)
    _run(["git", "add", "-A"], repo, env)
    _run(["git", "commit", "-qm", "tiny"], repo, env)
    return repo, env


def test_repro_end_to_end_then_nothing_to_do(tiny_repo):
    repo, env = tiny_repo
    first = _ran_stages(_run(["dvc", "repro"], repo, env))
    assert {"prepare@svamp", "train-sbs@cqa", "evaluate@cqa-sbs", "summarize", "plot"} <= first
    metrics = json.loads((repo / "reports" / "metrics.json").read_text())
    assert set(metrics) == {"svamp", "cqa"}
    for dataset in ("svamp", "cqa"):
        assert {"finetune", "distill", "sbs", "teacher-palm"} <= set(metrics[dataset])
        assert all(0.0 <= v <= 1.0 for v in metrics[dataset].values())
    assert (repo / "reports" / "figures" / "accuracy.png").stat().st_size > 1000
    for dataset in ("svamp", "cqa"):
        # The learning gate: each student minus the untrained one, from the two prediction files.
        gate = json.loads((repo / "reports" / "learning" / f"{dataset}.json").read_text())
        base = _correct(repo, dataset, "untrained")
        assert gate["untrained"]["accuracy"] == round(100 * sum(base.values()) / len(base), 2)
        assert [row["name"] for row in gate["rows"]] == ["finetune", "distill", "sbs"]
        assert gate["teacher"] == "palm" and gate["fraction"] == 0.5 and gate["train_examples"] > 0
        for row in gate["rows"]:
            mine = _correct(repo, dataset, row["name"])
            diff = 100 * (sum(mine.values()) - sum(base.values())) / len(base)
            assert row["minus_untrained"]["diff"] == pytest.approx(diff, abs=0.01)
            assert row["minus_untrained"]["low"] <= row["minus_untrained"]["diff"] <= row["minus_untrained"]["high"]
            assert row["learned"] == (row["minus_untrained"]["low"] > 0)
        # Each student was validated on held-out training questions after its epoch, and the best kept.
        stats = json.loads((repo / "models" / dataset / "sbs" / "train_stats.json").read_text())
        split = json.loads((repo / "data" / "splits" / dataset / "summary.json").read_text())
        assert split["valid"] > 0 and stats["validation"]["examples"] == split["valid"]
        assert stats["validation"]["history"] and stats["validation"]["saved"] == "best"
    assert "minus untrained (95%)" in (repo / "reports" / "RESULTS.md").read_text()
    second = _run(["dvc", "repro"], repo, env)
    assert _ran_stages(second) == set(), second
    _run(["git", "add", "-A"], repo, env)
    _run(["git", "commit", "-qm", "tiny results"], repo, env)


def test_changing_alpha_reruns_only_sbs(tiny_repo):
    repo, env = tiny_repo
    ran = _ran_stages(_run(["dvc", "repro", "--dry"], repo, env))
    assert ran == set()
    params = (repo / "params.yaml").read_text()
    (repo / "params.yaml").write_text(params.replace("alpha: 0.5", "alpha: 0.3"))
    try:
        ran = _ran_stages(_run(["dvc", "repro"], repo, env))
    finally:
        (repo / "params.yaml").write_text(params)
    # train.alpha is a parameter of the sbs students only: the baselines and the data stages stay.
    assert {"train-sbs@svamp", "train-sbs@cqa", "evaluate@svamp-sbs", "evaluate@cqa-sbs"} <= ran
    assert not any(s.startswith(("prepare", "split", "train-baseline", "evaluate@svamp-f",
                                 "evaluate@cqa-d", "evaluate-untrained"))
                   for s in ran), ran


def test_exp_run_with_a_set_param(tiny_repo):
    repo, env = tiny_repo
    _run(["dvc", "repro"], repo, env)  # back to the committed parameters
    out = _run(["dvc", "exp", "run", "-S", "split.fraction.cqa=0.25", "-n", "cqa-quarter"], repo, env)
    assert "split@cqa" in _ran_stages(out) and "split@svamp" not in _ran_stages(out)
    shown = _run(["dvc", "exp", "show", "--json"], repo, env)
    assert "cqa-quarter" in shown
    diff = _run(["dvc", "metrics", "diff", "HEAD", "--json"], repo, env)
    assert json.loads(diff) is not None


def test_rag_teacher_experiment(tiny_repo, smollm2_gguf):
    """`dvc exp run -S teacher=rag` on OpenBookQA: a real retriever (MiniLM over the open book) and a real
    LLM teacher (the 135M GGUF through llama.cpp) annotate, then the students train on the annotations."""
    repo, env = tiny_repo
    out = _run(["dvc", "exp", "run", "-S", "teacher=rag", "-S", "datasets=[openbookqa]", "-n", "obqa-rag"], repo, env)
    assert {"retrieve@openbookqa", "annotate-teacher@openbookqa", "train-sbs@openbookqa"} <= _ran_stages(out)
    rows = [json.loads(line) for line in (repo / "data/annotations/openbookqa-rag.jsonl").read_text().splitlines()]
    train_rows = [r for r in rows if r["split"] == "train"]
    k = yaml.safe_load((repo / "params.yaml").read_text())["retrieval"]["k"]
    split = json.loads((repo / "data/splits/openbookqa/summary.json").read_text())
    # The students' training questions only: validation is scored on gold labels.
    assert len(train_rows) == split["train"] == 24 - split["valid"] and split["valid"] > 0
    assert all(len(r["meta"]["evidence_ids"]) == k for r in rows)
    assert all(r["meta"]["prompt_hash"] and r["meta"]["completion_tokens"] > 0 and r["meta"]["reply"] for r in rows)
    report = json.loads((repo / "reports/teacher/openbookqa-rag.json").read_text())
    assert report["eval"]["n"] == 8 and report["stats"]["queried"] + report["stats"]["from_cache"] == split["train"] + 8
    cost = report["cost"]
    assert cost["latency_s"] > cost["generation_s"] > 0 and cost["retrieval_s"] > 0 and cost["params"] > 100e6
    student_cost = json.loads((repo / "reports/cost/openbookqa-sbs.json").read_text())
    assert student_cost["timed_examples"] == 4 and student_cost["latency_s"] > 0 and student_cost["params"] > 0
    assert "| latency ms |" in (repo / "reports/RESULTS.md").read_text()
    recall = json.loads((repo / "reports/retrieval/openbookqa.json").read_text())
    assert 0.0 <= recall["recall_eval"][f"recall@{k}"] <= 1.0
    # The plain teacher next: finetune learns gold labels only, so DVC skips it and its evaluation.
    out = _run(["dvc", "exp", "run", "-S", "teacher=plain", "-S", "datasets=[openbookqa]", "-n", "obqa-plain"],
               repo, env)
    ran = _ran_stages(out)
    assert {"annotate-teacher@openbookqa", "split@openbookqa", "train-baseline@openbookqa-distill",
            "train-sbs@openbookqa", "evaluate@openbookqa-sbs"} <= ran, ran
    finetune = {"train-baseline@openbookqa-finetune", "evaluate@openbookqa-finetune", "cost@openbookqa-finetune"}
    assert not finetune & ran, ran
    # The gold-fact control: no model runs, the rationale is each question's gold book fact.
    out = _run(["dvc", "exp", "run", "-S", "teacher=gold_fact", "-S", "datasets=[openbookqa]", "-n", "obqa-gold"],
               repo, env)
    assert {"annotate-teacher@openbookqa", "train-sbs@openbookqa"} <= _ran_stages(out)
    sbs = [json.loads(line) for line in (repo / "data/splits/openbookqa/train-sbs.jsonl").read_text().splitlines()]
    assert sbs and all(row["rationale"] == row["meta"]["gold_fact"] for row in sbs if row["meta"].get("gold_fact"))
    _run(["dvc", "exp", "apply", "obqa-rag"], repo, env)  # the next test starts from the RAG experiment


def test_study_cell_reuses_published_annotations_and_feeds_the_report(tiny_repo, smollm2_gguf):
    """A fresh clone has the published annotations but no reply cache: forced to rerun, the teacher stage
    rebuilds the same file from it without loading the model. Then a grid cell with students that read
    evidence runs through the study driver, which collects it and writes the report."""
    repo, env = tiny_repo
    published = repo / "data/annotations/openbookqa-rag.jsonl"
    before = published.read_bytes()
    shutil.rmtree(repo / ".cache" / "teacher", ignore_errors=True)  # only the published file remains
    out = _run(["dvc", "repro", "-f", "-s", "annotate-teacher@openbookqa"], repo, env)
    # 21 training questions (3 more are validation) and 8 evaluation ones
    assert "29 teacher replies taken from the published" in out and "the teacher model was not loaded" in out
    assert published.read_bytes() == before
    out = _run([sys.executable, "-m", "ragdistill.study", "run", "--dataset", "openbookqa", "--fractions", "0.5",
                "--variants", "rag-student-evidence"], repo, env)
    assert {"split@openbookqa", "train-sbs@openbookqa", "cost@openbookqa-sbs"} <= _ran_stages(out)
    train = [json.loads(line) for line in (repo / "data/splits/openbookqa/train-sbs.jsonl").read_text().splitlines()]
    assert all(row["input"].startswith("Evidence:\n- ") for row in train)
    snapshot = json.loads((repo / "reports/study/openbookqa-rag-student-evidence-f0.5-s0.json").read_text())
    assert snapshot["student_evidence"] and set(snapshot["rows"]) == {"teacher-rag", "untrained", "finetune", "distill",
                                                                       "sbs"}
    assert len(snapshot["rows"]["sbs"]["correct"]) == 24 and len(snapshot["rows"]["teacher-rag"]["correct"]) == 8
    # Each question's answer and each student's loss curve travel with the snapshot.
    sbs = snapshot["rows"]["sbs"]
    assert set(sbs["predicted"]) == set(sbs["correct"]) and all(isinstance(a, str) for a in sbs["predicted"].values())
    assert sbs["loss_history"] and all("loss" in point for point in sbs["loss_history"])
    assert set(snapshot["rows"]["teacher-rag"]["predicted"]) == set(snapshot["rows"]["teacher-rag"]["correct"])
    assert snapshot["machine"]["cores"] == os.cpu_count() and snapshot["rows"]["sbs"]["device"] == pick_device()
    again = _run([sys.executable, "-m", "ragdistill.study", "run", "--dataset", "openbookqa", "--fractions", "0.5",
                  "--variants", "rag-student-evidence"], repo, env)
    assert "already collected" in again and not _ran_stages(again)
    # `study rerun` trains the cell again (not from the run cache), compares it with the snapshot above,
    # and pushes the experiment, git ref and checkpoints, only because it reproduced it exactly.
    cell = "openbookqa-rag-student-evidence-f0.5-s0"
    committed = (repo / f"reports/study/{cell}.json").read_bytes()
    origin, store = repo.parent / "origin.git", repo.parent / "dvc-store"
    _run(["git", "init", "-q", "--bare", str(origin)], repo, env)
    _run(["git", "remote", "add", "origin", str(origin)], repo, env)
    _run(["dvc", "remote", "add", "--local", "-d", "store", str(store)], repo, env)
    out = _run([sys.executable, "-m", "ragdistill.study", "rerun", cell, "--push", "origin"], repo, env)
    assert {"train-baseline@openbookqa-finetune", "train-sbs@openbookqa"} <= _ran_stages(out), out
    assert "reproduced: every row scored every question as committed" in out and "0 of 24 questions" in out
    assert (repo / f"reports/study/{cell}.json").read_bytes() == committed
    assert json.loads((repo / f".cache/study-reruns/{cell}.json").read_text())["cell"] == cell
    assert cell in _run(["git", "ls-remote", str(origin)], repo, env)
    assert sum(1 for p in store.rglob("*") if p.is_file()) > 5
    _run([sys.executable, "-m", "ragdistill.study", "report"], repo, env)
    report = (repo / "reports/REPORT.md").read_text()
    assert "sbs (rag teacher) + student reads evidence" in report
    assert f"- Compute: {os.cpu_count()} cores of an {cpu_model()}" in report
    assert (repo / "reports/figures/study-openbookqa-latency.png").stat().st_size > 1000


def test_study_cells_on_dvcs_queue_then_collected_and_compared(tiny_repo, smollm2_gguf):
    """The grid on a bigger machine: `study run --queue` queues cells, `dvc queue start -j 2` runs two at a
    time, and each finished cell is applied and collected; `dvc exp show` and `dvc metrics diff` compare them."""
    repo, env = tiny_repo
    cells = ["openbookqa-plain-f0.5-s1", "openbookqa-rag-f0.5-s1"]
    out = _run([sys.executable, "-m", "ragdistill.study", "run", "--dataset", "openbookqa", "--fractions", "0.5",
                "--seeds", "1", "--variants", "plain", "rag", "--queue"], repo, env)
    assert all(f"queueing {cell}" in out for cell in cells) and not _ran_stages(out)
    # The workers inherit the stdout of `dvc queue start` and hold it until the queue is empty, so a captured
    # pipe would make this call wait for both cells; a file lets it return once the workers are started.
    with open(repo.parent / "queue-start.log", "w") as log:
        started = subprocess.run(["dvc", "queue", "start", "-j", "2"], cwd=repo, env=env, stdout=log,
                                 stderr=subprocess.STDOUT, timeout=120)
    assert started.returncode == 0, (repo.parent / "queue-start.log").read_text()
    deadline = time.monotonic() + 2400
    while True:
        status = _run(["dvc", "queue", "status"], repo, env)
        if not any(word in status for word in ("Queued", "Running")):
            break
        assert time.monotonic() < deadline, status
        time.sleep(5)
    assert status.count("Success") >= 2 and "Failed" not in status, status
    shown = json.loads(_run(["dvc", "exp", "show", "--json"], repo, env))
    names = {exp.get("name") for baseline in shown for exp in (baseline.get("experiments") or [])}
    assert set(cells) <= names, names
    diff = json.loads(_run(["dvc", "metrics", "diff", cells[0], cells[1], "--json"], repo, env))
    assert "reports/metrics.json" in diff
    for cell in cells:
        _run(["dvc", "exp", "apply", cell], repo, env)
        _run([sys.executable, "-m", "ragdistill.study", "collect", cell], repo, env)
        snapshot = json.loads((repo / f"reports/study/{cell}.json").read_text())
        assert snapshot["seed"] == 1 and snapshot["rows"]["sbs"]["predicted"]
    _run(["dvc", "queue", "stop"], repo, env)


def test_a_gold_fact_cell_skips_distill_and_its_snapshot_holds_only_what_it_ran(tiny_repo):
    """Under gold_fact distill would learn finetune's data again; the cell runs only its stages, and a distill
    evaluation an earlier cell left in the workspace does not become one of its rows."""
    repo, env = tiny_repo
    assert (repo / "reports/eval/openbookqa-distill.json").exists()  # left by an earlier cell
    out = _run([sys.executable, "-m", "ragdistill.study", "run", "--dataset", "openbookqa", "--fractions", "0.5",
                "--seeds", "2", "--variants", "gold-fact"], repo, env)
    ran = _ran_stages(out)
    assert "train-sbs@openbookqa" in ran and not any("distill" in stage for stage in ran), ran
    snapshot = json.loads((repo / "reports/study/openbookqa-gold-fact-f0.5-s2.json").read_text())
    assert {"untrained", "finetune", "sbs"} <= set(snapshot["rows"]) and "distill" not in snapshot["rows"]
    assert snapshot["rows"]["sbs"]["loss_history"] and len(snapshot["rows"]["sbs"]["correct"]) == 24
    assert snapshot["rows"]["sbs"]["train_tokens_per_second"] > 0 and "validation" in snapshot["rows"]["sbs"]
