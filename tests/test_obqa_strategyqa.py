"""OpenBookQA and StrategyQA loaders on the real data, the open-book corpus, and bad-row errors."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from ragdistill.data import load_dataset
from ragdistill.data.corpora import load_openbook, self_exclusion, strategyqa_fact_pool
from ragdistill.data.openbookqa import load_openbookqa, normalize_fact
from ragdistill.data.registry import DATASETS, task_kind
from ragdistill.data.strategyqa import load_strategyqa
from ragdistill.io import DataError


@pytest.fixture(scope="module")
def obqa_root(data_root: Path) -> Path:
    if not (data_root / "openbookqa" / "Main").is_dir():
        pytest.skip("openbookqa is missing from the data directory")
    return data_root


@pytest.fixture(scope="module")
def sqa_root(data_root: Path) -> Path:
    if not (data_root / "strategyqa" / "train.json").is_file():
        pytest.skip("strategyqa is missing from the data directory")
    return data_root


@pytest.fixture(scope="module")
def obqa(obqa_root):
    return {split: load_dataset("openbookqa", obqa_root, split) for split in ("train", "eval")}


@pytest.fixture(scope="module")
def sqa(sqa_root):
    return {split: load_dataset("strategyqa", sqa_root, split) for split in ("train", "eval")}


def test_registry_entries():
    assert DATASETS["openbookqa"].splits == {"train": "train", "eval": "dev"}
    assert DATASETS["strategyqa"].splits == {"train": "train", "eval": "eval"}
    assert task_kind("openbookqa") == task_kind("strategyqa") == "choice"


# --------------------------------------------------------------------------- OpenBookQA


def test_openbookqa_sizes_and_labels(obqa):
    assert len(obqa["train"]) == 4957 and len(obqa["eval"]) == 500
    for examples in obqa.values():
        assert len({e.id for e in examples}) == len(examples)
        for e in examples:
            assert e.source == "openbookqa" and len(e.choices) == 4
            assert e.label in e.choices
            assert e.input.startswith(e.meta["stem"]) and "\nAnswer Choices:\n(a) " in e.input


def test_openbookqa_gold_facts_are_book_lines(obqa, obqa_root):
    book = {p.id: p.text for p in load_openbook(obqa_root)}
    for examples in obqa.values():
        found = [e for e in examples if e.meta["gold_fact_id"] is not None]
        assert len(found) > 0.95 * len(examples)
        for e in found:
            assert normalize_fact(book[e.meta["gold_fact_id"]]) == normalize_fact(e.meta["gold_fact"])
    first = obqa["train"][0]
    assert first.id == "7-980" and first.label == "plants sprouting, blooming and wilting"
    assert first.meta["gold_fact"] == "the sun is the source of energy for physical cycles on Earth"


def test_open_book_corpus(obqa_root):
    book = load_openbook(obqa_root)
    assert len(book) == 1326 and len({p.id for p in book}) == 1326
    assert book[0].id == "book-1" and book[0].text == "A bee is a pollinating animal"
    assert not any(p.text.startswith('"') or p.text.endswith('"') for p in book)


def _tiny_obqa(tmp_path: Path, row: dict) -> Path:
    main, extra = tmp_path / "openbookqa" / "Main", tmp_path / "openbookqa" / "Additional"
    main.mkdir(parents=True)
    extra.mkdir(parents=True)
    (main / "openbook.txt").write_text('"Metals conduct electricity"\n"Ice is cold"\n')
    good = {"id": "g1", "question": {"stem": "What conducts?", "choices": [
        {"label": "A", "text": "copper"}, {"label": "B", "text": "wood"}]}, "answerKey": "A"}
    (main / "dev.jsonl").write_text(json.dumps(good) + "\n\n" + json.dumps(row) + "\n")
    (extra / "dev_complete.jsonl").write_text(
        json.dumps({**good, "fact1": '"metals  conduct electricity"'}) + "\n")
    return tmp_path


def test_openbookqa_bad_rows_name_file_and_line(tmp_path):
    bad = {"id": "b1", "question": {"stem": "Q?", "choices": [{"label": "A", "text": "x"},
                                                              {"label": "B", "text": "y"}]}, "answerKey": "E"}
    root = _tiny_obqa(tmp_path / "one", bad)
    with pytest.raises(DataError, match=r"dev\.jsonl:3: answerKey 'E'"):
        load_openbookqa(root, "dev")
    root = _tiny_obqa(tmp_path / "two", {"id": "b2", "question": {"stem": " ", "choices": []}, "answerKey": "A"})
    with pytest.raises(DataError, match=r"dev\.jsonl:3: empty question stem"):
        load_openbookqa(root, "dev")
    with pytest.raises(ValueError, match="known: train, dev"):
        load_openbookqa(root, "test")


def test_openbookqa_gold_fact_normalized_and_missing(tmp_path):
    ok = {"id": "o2", "question": {"stem": "Cold?", "choices": [{"label": "A", "text": "ice"},
                                                                 {"label": "B", "text": "fire"}]}, "answerKey": "A"}
    root = _tiny_obqa(tmp_path, ok)
    first, second = load_openbookqa(root, "dev")
    assert first.label == "copper" and first.meta["gold_fact"] == "metals  conduct electricity"
    assert first.meta["gold_fact_id"] == "book-1"
    assert second.meta["gold_fact"] is None and second.meta["gold_fact_id"] is None


# --------------------------------------------------------------------------- StrategyQA


def test_strategyqa_split(sqa, sqa_root):
    train, held_out = sqa["train"], sqa["eval"]
    assert len(train) + len(held_out) == 2061
    assert len(held_out) == 413
    assert not {e.id for e in train} & {e.id for e in held_out}
    again = load_strategyqa(sqa_root, "eval")
    assert [e.id for e in again] == [e.id for e in held_out]
    yes_train = sum(e.label == "yes" for e in train) / len(train)
    yes_eval = sum(e.label == "yes" for e in held_out) / len(held_out)
    assert abs(yes_train - yes_eval) < 0.01  # stratified


def test_strategyqa_examples(sqa):
    for e in sqa["train"][:50] + sqa["eval"][:50]:
        assert e.label in ("yes", "no") and e.choices == ["yes", "no"]
        assert e.input == e.meta["question"] + "\nAnswer Choices:\n(a) yes\n(b) no"
        assert e.meta["facts"] and e.meta["decomposition"]


def test_strategyqa_fact_pool_from_train_only(sqa):
    pool = strategyqa_fact_pool(sqa["train"])
    eval_ids = {e.id for e in sqa["eval"]}
    assert not any(p.meta["question_id"] in eval_ids for p in pool)
    exclude = self_exclusion(pool)
    example = sqa["train"][0]
    assert exclude(example) >= {f"fact-{example.id}-{i}" for i in range(len(example.meta["facts"]))}


def test_strategyqa_bad_rows(tmp_path, sqa_root):
    folder = tmp_path / "strategyqa"
    folder.mkdir()
    (folder / "train.json").write_text(json.dumps([{"qid": "a", "question": "Q?", "answer": "yes"}]))
    with pytest.raises(DataError, match=r"train\.json: row 1: answer must be true or false"):
        load_strategyqa(tmp_path, "train")
    (folder / "train.json").write_text(json.dumps({"qid": "a"}))
    with pytest.raises(DataError, match="expected a JSON list"):
        load_strategyqa(tmp_path, "train")
    shutil.rmtree(folder)
    with pytest.raises(FileNotFoundError):
        load_strategyqa(tmp_path, "train")
