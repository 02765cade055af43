"""Training killed mid-run (SIGKILL) resumes from the Trainer's last checkpoint, not from zero, and ends
with the weights of an uninterrupted run; a run with other settings never resumes that checkpoint."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import torch
from safetensors.torch import load_file

STEPS, SAVE_EVERY, KILL_AT = 12, 4, 6

# Run in a child process so that it can really be killed. The kill is a callback: SIGKILL at the end of
# step KILL_AT (after checkpoint-4 was written, before checkpoint-8), the same as `kill -9` from outside.
SCRIPT = """
import json, os, signal, sys
from transformers import TrainerCallback
from ragdistill.data import Example
from ragdistill.students.formatting import build_task_examples
from ragdistill.students.models import load_student
from ragdistill.students.trainer import train_student

output_dir, checkpoint_dir, lr, kill_at = sys.argv[1], sys.argv[2], float(sys.argv[3]), int(sys.argv[4])
STEPS, SAVE_EVERY = int(sys.argv[5]), int(sys.argv[6])

class KillAt(TrainerCallback):
    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step == kill_at:
            os.kill(os.getpid(), signal.SIGKILL)

pairs = [("Where do apples grow?", "trees", "Apples grow on trees."),
         ("What do kids like to do?", "play", "Kids like to play."),
         ("How many points is a win?", "3", "A win is 3 points."),
         ("Which of these is a fruit?", "apple", "An apple is a fruit.")]
examples = [Example(id=str(i), input=q, label=a, source="test", rationale=r) for i, (q, a, r) in enumerate(pairs)]
groups, _ = build_task_examples(examples, "sbs", alpha=0.5)
stats = train_student(load_student("tiny-llama"), groups, output_dir, lr=lr, epochs=1.0, batch_size=4,
                      max_steps=STEPS, save_steps=SAVE_EVERY, max_input_tokens=64, max_target_tokens=32,
                      checkpoint_dir=checkpoint_dir, callbacks=[KillAt()] if kill_at else [])
print("STATS " + json.dumps({k: stats[k] for k in ("steps", "resumed_from")}))
"""


def _run(tmp_path: Path, name: str, lr: float = 5e-3, kill_at: int = 0) -> subprocess.CompletedProcess:
    script = tmp_path / "train_once.py"
    script.write_text(SCRIPT)
    return subprocess.run(
        [sys.executable, str(script), str(tmp_path / name), str(tmp_path / "checkpoints"), str(lr), str(kill_at),
         str(STEPS), str(SAVE_EVERY)],
        capture_output=True, text=True, timeout=600, env={**os.environ, "TOKENIZERS_PARALLELISM": "false"},
    )


def _stats(done: subprocess.CompletedProcess) -> dict:
    assert done.returncode == 0, done.stderr[-3000:]
    line = [x for x in done.stdout.splitlines() if x.startswith("STATS ")][-1]
    return json.loads(line[len("STATS "):])


def _checkpoints(tmp_path: Path) -> list[str]:
    root = tmp_path / "checkpoints"
    return sorted(str(p.relative_to(root)) for p in root.glob("*/checkpoint-*"))


def _weights(folder: Path) -> dict[str, torch.Tensor]:
    return load_file(str(folder / "model.safetensors"))


def test_killed_training_resumes_from_its_checkpoint_and_matches_an_uninterrupted_run(tmp_path):
    reference = _stats(_run(tmp_path, "uninterrupted"))
    assert reference == {"steps": STEPS, "resumed_from": None}
    assert not (tmp_path / "checkpoints").exists()  # removed once the model is saved

    killed = _run(tmp_path, "resumed", kill_at=KILL_AT)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    assert not (tmp_path / "resumed" / "model.safetensors").exists()
    (left,) = _checkpoints(tmp_path)
    assert left.endswith(f"checkpoint-{SAVE_EVERY}")

    resumed = _stats(_run(tmp_path, "resumed"))
    assert resumed["steps"] == STEPS
    assert resumed["resumed_from"] and resumed["resumed_from"].endswith(left)
    expected, got = _weights(tmp_path / "uninterrupted"), _weights(tmp_path / "resumed")
    assert expected.keys() == got.keys()
    for key in expected:
        torch.testing.assert_close(got[key], expected[key], rtol=0, atol=1e-6, msg=key)


def test_a_checkpoint_is_never_resumed_by_a_run_with_other_settings(tmp_path):
    killed = _run(tmp_path, "first", lr=5e-3, kill_at=KILL_AT)
    assert killed.returncode == -signal.SIGKILL
    (left,) = _checkpoints(tmp_path)

    other = _run(tmp_path, "other-lr", lr=1e-4)
    stats = _stats(other)
    assert stats == {"steps": STEPS, "resumed_from": None}
    assert "Not resuming the checkpoints of other settings" in other.stdout + other.stderr
    # The killed run's checkpoint is still there for the run it belongs to.
    assert _checkpoints(tmp_path) == [left]
    again = _stats(_run(tmp_path, "first", lr=5e-3))
    assert again["resumed_from"].endswith(left)
