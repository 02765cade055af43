"""Shared fixtures: the data directory, a private cache for the tiny zoo models, small examples."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from pathlib import Path

import pytest

# Nothing a test does may write outside a temporary folder or reach the network. These are read when
# transformers / datasets are first imported, so they are set before any test module imports them.
_SESSION_TMP = Path(tempfile.mkdtemp(prefix="ragdistill-tests-"))
atexit.register(shutil.rmtree, _SESSION_TMP, ignore_errors=True)
os.environ.setdefault("HF_HOME", str(_SESSION_TMP / "hf"))
os.environ.setdefault("HF_DATASETS_CACHE", str(_SESSION_TMP / "hf" / "datasets"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("WANDB_DISABLED", "true")
os.environ["RAGDISTILL_CACHE"] = str(_SESSION_TMP / "cache")  # replaced by the tmp_cache fixture below

import torch  # noqa: E402

from ragdistill.data.example import Example  # noqa: E402

# Two threads as on the CI runner; RAGDISTILL_TEST_THREADS=1 is much faster for these tiny models when
# other processes keep the cores busy (an OpenMP team then waits for a descheduled thread).
torch.set_num_threads(int(os.environ.get("RAGDISTILL_TEST_THREADS", "2")))

REPO = Path(__file__).resolve().parents[1]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # The llama.cpp build's tests first: a broken native build then shows as one clear failure at the top.
    items.sort(key=lambda item: item.path.name != "test_llama_build.py")


@pytest.fixture(scope="session", autouse=True)
def tmp_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """RAGDISTILL_CACHE points at a session temporary folder (the tiny models are built there once)."""
    cache = tmp_path_factory.mktemp("ragdistill-cache")
    previous = os.environ.get("RAGDISTILL_CACHE")
    os.environ["RAGDISTILL_CACHE"] = str(cache)
    yield cache
    if previous is None:
        os.environ.pop("RAGDISTILL_CACHE", None)
    else:
        os.environ["RAGDISTILL_CACHE"] = previous


@pytest.fixture(scope="session")
def data_root() -> Path:
    """The read-only public datasets (``$RAGDISTILL_DATA``, else ``<repo>/../shared/data``)."""
    root = Path(os.environ.get("RAGDISTILL_DATA", REPO.parent / "shared" / "data"))
    if not (root / "dss").is_dir():
        pytest.skip(f"dataset directory {root} is missing (set RAGDISTILL_DATA)")
    return root


@pytest.fixture(scope="session")
def tiny_llama(tmp_cache):
    from ragdistill.students import load_student

    return load_student("tiny-llama")


@pytest.fixture(scope="session")
def tiny_t5(tmp_cache):
    from ragdistill.students import load_student

    return load_student("tiny-t5")


def _sharpened(name: str):
    """A fresh tiny zoo student with every weight multiplied by 4.

    At its random initialization a tiny student writes the same tokens whatever the prompt (greedy decoding
    of near-uniform logits); with larger weights its output depends on the context, so that tests of
    padding, caching and batching can see a mistake."""
    from ragdistill.students import load_student

    student = load_student(name)
    with torch.no_grad():
        for parameter in student.model.parameters():
            parameter.mul_(4.0)
    student.model.eval()
    return student


@pytest.fixture(scope="session")
def sharp_llama(tmp_cache):
    return _sharpened("tiny-llama")


@pytest.fixture(scope="session")
def sharp_t5(tmp_cache):
    return _sharpened("tiny-t5")


@pytest.fixture(scope="session")
def smollm2_gguf(tmp_cache) -> Path:
    """The SmolLM2 GGUF, once llama.cpp has loaded it and decoded a few tokens in a child process.

    A broken llama.cpp build dies in native code (SIGSEGV), which would kill pytest with every test after it;
    probed in a child, it fails each test that needs llama.cpp with the cause instead (the result, failure
    included, is computed once per session). Skips where llama.cpp or the model package is missing."""
    pytest.importorskip("llama_cpp")
    from ragdistill import zoo
    from ragdistill.teachers import TeacherError
    from ragdistill.teachers.llama_build import smoke_test

    try:
        model = zoo.smollm2_gguf()
    except zoo.ZooError as err:
        pytest.skip(str(err))
    try:
        smoke_test(model)
    except TeacherError as err:
        pytest.fail(str(err), pytrace=False)
    return model


_QUESTIONS = [
    ("Where do apples grow?", ["trees", "kids", "points", "rocks", "water"], "trees",
     "Apples grow on trees, so the answer is trees."),
    ("What do kids like to do?", ["sleep", "play", "cry", "eat", "run"], "play",
     "Kids like to play."),
    ("How many points is a win?", ["0", "1", "2", "3", "4"], "3",
     "A win is 3 points."),
    ("Which of these is a fruit?", ["apple", "stone", "car", "chair", "desk"], "apple",
     "An apple is a fruit."),
    ("What is 2 + 2?", ["1", "2", "3", "4", "5"], "4",
     "2 + 2 = 4."),
    ("Where are trees found?", ["forest", "sea", "sky", "moon", "sun"], "forest",
     "Many trees grow in a forest."),
]


@pytest.fixture
def tiny_examples():
    """Factory: ``tiny_examples(n, teacher=True)`` -> ``n`` choice examples with rationales.

    ``teacher_label=None`` / ``rationale=None`` on the indices given in ``no_teacher`` / ``no_rationale``.
    """

    def make(n: int = 4, no_teacher: tuple[int, ...] = (), no_rationale: tuple[int, ...] = ()) -> list[Example]:
        examples = []
        for i in range(n):
            question, choices, answer, rationale = _QUESTIONS[i % len(_QUESTIONS)]
            examples.append(Example(
                id=f"tiny-{i}",
                input=question + "\nAnswer Choices:\n" + "\n".join(
                    f"({'abcde'[j]}) {c}" for j, c in enumerate(choices)),
                label=answer,
                source="test",
                choices=list(choices),
                rationale=None if i in no_rationale else rationale,
                teacher_label=None if i in no_teacher else answer,
                meta={"teacher": "test"},
            ))
        return examples

    return make
