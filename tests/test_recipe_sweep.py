"""The sweep table of benchmarks/recipe_sweep.py: one row per setting, the kept epoch, the control row."""

import importlib.util
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "recipe_sweep.py"


def _sweep_module():
    spec = importlib.util.spec_from_file_location("recipe_sweep", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _run(lr: float, epochs: float, scores: list[float], note: str | None = None) -> dict:
    history = [{"accuracy": a, "step": 10 * (i + 1), "epoch": float(i + 1)} for i, a in enumerate(scores)]
    best = max(history, key=lambda h: h["accuracy"])
    row = {"name": f"sweep-lr{lr:g}-e{epochs:g}", "command": "dvc exp run ...", "dataset": "openbookqa",
           "method": "finetune", "teacher": "none", "fraction": 0.25, "train_examples": 100, "valid_examples": 20,
           "lr": lr, "warmup_ratio": 0.06, "epochs": epochs, "batching": "paired", "seed": 0,
           "steps": 10 * len(scores), "train_seconds": 120.0, "real_tokens_per_second": 90.0, "padding_waste": 0.02,
           "validation": {"history": history, "best": best}, "machine": "test CPU"}
    return {**row, "note": note} if note else row


def test_each_setting_is_a_row_with_its_epochs_its_kept_epoch_and_its_note():
    sweep = _sweep_module()
    rows = [_run(5e-5, 3, [51.0, 46.0, 44.0]), _run(5e-5, 1, [43.0], note="shared the cores with another job"),
            {"name": "untrained-openbookqa-f0.25", "dataset": "openbookqa", "fraction": 0.25, "valid_examples": 20,
             "accuracy": 30.0}]
    text = sweep.report(rows)
    assert "| untrained student | – | – | – | 0 | 30.0 | 30.0 |" in text
    assert "| 5e-05 | 0.06 | 3 | paired | 30 | **51.0**, 46.0, 44.0 | 51.0 (epoch 1) | 2.0 | 90 | 2.0% |" in text
    assert "| 5e-05 (1) | 0.06 | 1 | paired | 10 | **43.0** | 43.0 (epoch 1) |" in text
    assert "(1) shared the cores with another job" in text
    assert "one question is 5.0 points" in text
