"""The params.yaml schema."""

from __future__ import annotations

import copy
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from ragdistill.config import ConfigError, Params, load_params, validate

PARAMS_FILE = Path(__file__).resolve().parents[1] / "params.yaml"


@pytest.fixture
def raw() -> dict:
    return copy.deepcopy(yaml.safe_load(PARAMS_FILE.read_text(encoding="utf-8")))


def test_repository_params_are_valid(raw):
    params = validate(raw)
    assert isinstance(params, Params)
    assert params.datasets == raw["datasets"]
    assert params.teacher == raw["teacher"]
    assert params.train.alpha == raw["train"]["alpha"]
    assert params.train.lr == pytest.approx(float(raw["train"]["lr"]))
    assert isinstance(params.train.lr, float)
    assert params.eval.scoring == raw["eval"]["scoring"]
    for name, value in raw["split"]["fraction"].items():
        assert params.fraction(name) == value


def test_load_params_reads_the_repository_file():
    assert load_params(PARAMS_FILE) == validate(yaml.safe_load(PARAMS_FILE.read_text(encoding="utf-8")))


def test_defaults_and_coercions(raw):
    raw["train"]["lr"] = "1e-4"  # YAML 1.1 reads 1e-4 (no dot) as a string
    raw["train"]["epochs"] = 2  # an int where a float is expected
    raw["datasets"] = "svamp"  # one name instead of a list
    del raw["split"]["fraction"]["cqa"]
    params = validate(raw)
    assert params.train.lr == pytest.approx(1e-4)
    assert params.train.epochs == 2.0 and isinstance(params.train.epochs, float)
    assert params.datasets == ["svamp"]
    assert params.fraction("cqa") == 1.0
    minimal = validate({})
    assert minimal.teacher == "palm" and minimal.train.alpha == 0.5


def _set(raw: dict, dotted: str, value) -> dict:
    *parents, last = dotted.split(".")
    node = raw
    for key in parents:
        node = node.setdefault(key, {})
    node[last] = value
    return raw


@pytest.mark.parametrize(
    ("key", "value", "named"),
    [
        ("teacher", "gpt-9", "teacher"),
        ("split.fraction.cqa", 0, "split.fraction.cqa"),
        ("split.fraction.cqa", 0.0, "split.fraction.cqa"),
        ("split.fraction.svamp", 1.5, "split.fraction.svamp"),
        ("split.fraction.svamp", "half", "split.fraction.svamp"),
        ("split.fraction.gsm8k", 0.5, "split.fraction.gsm8k"),
        ("split.valid_size", 0.9, "split.valid_size"),
        ("train.alpha", -0.1, "train.alpha"),
        ("train.alpha", 1.2, "train.alpha"),
        ("train.lr", "fast", "train.lr"),
        ("train.lr", 0, "train.lr"),
        ("train.batch_size", 0, "train.batch_size"),
        ("train.batch_size", 2.5, "train.batch_size"),
        ("train.batch_size", True, "train.batch_size"),
        ("train.grad_accum", 0, "train.grad_accum"),
        ("train.epochs", 0, "train.epochs"),
        ("train.patience", -1, "train.patience"),
        ("train.precision", "fp16", "train.precision"),
        ("train.sbs_labels", "silver", "train.sbs_labels"),
        ("train.learning_rate", 1e-4, "train.learning_rate"),
        ("eval.scoring", "vibes", "eval.scoring"),
        ("eval.device", "gpu", "eval.device"),
        ("eval.device", "cuda:first", "eval.device"),
        ("eval.batch_size", 0, "eval.batch_size"),
        ("eval.bootstrap", 0, "eval.bootstrap"),
        ("student.max_input_tokens", 0, "student.max_input_tokens"),
        ("student.model", 135, "student.model"),
        ("train", [1, 2], "train"),
        ("color", "blue", "color"),
    ],
)
def test_bad_values_name_the_key(raw, key, value, named):
    _set(raw, key, value)
    with pytest.raises(ConfigError) as info:
        validate(raw)
    assert named in str(info.value)


@pytest.mark.parametrize("datasets", [["svamp", "imagenet"], "imagenet", [], 3])
def test_unknown_or_empty_datasets(raw, datasets):
    raw["datasets"] = datasets
    with pytest.raises(ConfigError, match="datasets"):
        validate(raw)


def test_unknown_dataset_is_named(raw):
    raw["datasets"] = ["svamp", "imagenet"]
    with pytest.raises(ConfigError, match="imagenet"):
        validate(raw)


def test_top_level_must_be_a_mapping():
    with pytest.raises(ConfigError, match="mapping"):
        validate(["teacher", "palm"])


def test_load_params_missing_file(tmp_path):
    missing = tmp_path / "nope.yaml"
    with pytest.raises(ConfigError, match="not found") as info:
        load_params(missing)
    assert str(missing) in str(info.value)


def test_load_params_invalid_yaml(tmp_path):
    bad = tmp_path / "params.yaml"
    bad.write_text("train:\n  alpha: [0.5\n  lr: 1\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="not valid YAML") as info:
        load_params(bad)
    assert str(bad) in str(info.value)


def test_load_params_bad_value_in_file(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text("teacher: palm\ntrain:\n  alpha: 2\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="train.alpha"):
        load_params(path)


def test_fraction_must_be_a_mapping(raw):
    raw["split"]["fraction"] = 0.5
    with pytest.raises(ConfigError, match="split.fraction"):
        validate(raw)


@pytest.mark.parametrize("key", ["train.alpha", "train.lr", "split.fraction.cqa", "split.valid_size"])
def test_nan_is_rejected(raw, key):
    _set(raw, key, float("nan"))
    with pytest.raises(ConfigError, match=key):
        validate(raw)


def test_max_train_must_be_an_integer(raw):
    raw["data"]["max_train"] = "ten"
    with pytest.raises(ConfigError, match="data.max_train"):
        validate(raw)


def test_every_bad_key_is_named_at_once(raw):
    raw["teacher"] = "ragg"
    raw["train"]["alpha"] = 1.5
    raw["train"]["learning_rate"] = 1e-4
    raw["eval"]["scoring"] = "vibes"
    with pytest.raises(ConfigError) as info:
        validate(raw)
    message = str(info.value)
    assert message.startswith("params.yaml: 4 problems:")
    for named in ("teacher = 'ragg'", "train.alpha = 1.5", "unknown key train.learning_rate", "eval.scoring"):
        assert named in message, message


def test_a_stage_with_bad_params_names_every_key_without_a_traceback(tmp_path, raw):
    """A stage script run as DVC runs it: exit status 2 and one message, before any data or model loads."""
    raw["teacher"] = "ragg"
    raw["train"]["alpha"] = 1.5
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(raw), encoding="utf-8")
    script = PARAMS_FILE.parent / "stages" / "train_sbs.py"
    done = subprocess.run([sys.executable, str(script), "--dataset", "svamp"], cwd=tmp_path, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    assert "teacher = 'ragg'" in done.stderr and "train.alpha = 1.5" in done.stderr
    assert not (tmp_path / "models").exists()


def test_new_teacher_options_are_checked_and_named():
    params = validate({"retrieval": {"min_score": 0.5}, "split": {"rationale_filter": "agree", "teacher_selection": 50},
                       "teacher": "rag_rationalize"})
    assert params.retrieval.min_score == 0.5 and params.split.rationale_filter == "agree"
    assert params.split.teacher_selection == 50 and validate({"retrieval": {"min_score": 1}}).retrieval.min_score == 1.0
    assert validate({}).retrieval.min_score is None and validate({}).split.rationale_filter == "all"
    with pytest.raises(ConfigError) as raised:
        validate({"retrieval": {"min_score": "high"}, "split": {"rationale_filter": "gold", "teacher_selection": -1},
                  "teacher": "rag_rationalise"})
    message = str(raised.value)
    for key in ("retrieval.min_score", "split.rationale_filter", "split.teacher_selection", "teacher"):
        assert key in message, key
    assert "rag_rationalize" in message and "one of all, agree" in message
    assert validate({"split": {"teacher_selection": 0}}).split.teacher_selection == 0
