"""Ask a teacher for a rationale and a label for each example, through the annotation cache."""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import NamedTuple

from ragdistill.data.example import Example
from ragdistill.evaluation.metrics import is_correct
from ragdistill.registry import LABEL_POLICIES, lookup
from ragdistill.teachers.base import DecodingSettings, Teacher, TeacherError
from ragdistill.teachers.cache import AnnotationCache
from ragdistill.teachers.parsing import parse_teacher_output
from ragdistill.teachers.prompts import build_prompt, prompt_hash, task_of


@dataclass
class AnnotationStats:
    total: int = 0
    from_cache: int = 0
    queried: int = 0
    unparsed: int = 0
    corrected: int = 0
    seconds: float = 0.0  # wall time of the new queries
    prompt_tokens: int = 0  # of the new queries
    completion_tokens: int = 0
    examples_per_s: float = 0.0
    tokens_per_s: float = 0.0  # completion tokens per second of wall time

    def to_dict(self) -> dict:
        return asdict(self)


class _Prompt(NamedTuple):
    """One example as it is asked: its prompt, the prompt's cache key, the facts it shows."""

    example: Example
    task: str
    messages: list
    key: str
    evidence_ids: list[str]
    hinted: bool  # shown its gold answer to explain


def _evidence(items: list | None) -> tuple[list[str] | None, list[str]]:
    """Texts and ids of an example's retrieved passages (dicts with ``text`` and ``id``, or plain strings)."""
    if items is None:
        return None, []
    texts, ids = [], []
    for position, item in enumerate(items):
        if isinstance(item, str):
            texts.append(item)
            ids.append(str(position))
        else:
            texts.append(str(item["text"]))
            ids.append(str(item.get("id", item.get("doc_id", position))))
    return texts, ids


def annotate(
    examples: list[Example],
    teacher: Teacher,
    settings: DecodingSettings,
    demonstrations: list[Example],
    evidence_by_id: dict[str, list[dict]] | None,
    cache: AnnotationCache,
    batch_size: int = 8,
    label_policy: str = "keep",
    progress: bool = True,
    publish: Callable[[list[Example]], None] | None = None,
    publish_every: int = 50,
    hint_ids: set[str] | frozenset[str] = frozenset(),
) -> tuple[list[Example], AnnotationStats]:
    """Copies of ``examples`` with ``rationale``, ``teacher_label`` and ``meta`` (teacher model id,
    prompt_hash, evidence_ids, prompt/completion tokens, seconds, parse rule) filled in, and statistics.

    ``evidence_by_id`` maps an example id to its retrieved passages (a retrieval-augmented teacher); None
    for a plain teacher. An example missing from it gets the RAG prompt with no facts. The examples whose
    ids are in ``hint_ids`` are shown their gold answer and asked to explain it (``meta["rationalized"]``).
    Replies come from ``cache`` when their prompt hash is there; new ones are stored in it as each one
    arrives, so a killed run resumes where it stopped. An example whose reply has no readable label keeps its
    rationale with ``teacher_label=None`` and is counted in ``stats.unparsed``.

    ``label_policy``:
      - ``keep``: ``teacher_label`` is the teacher's label as parsed (possibly wrong, possibly None).
      - ``gold_if_wrong``: where the teacher's label is missing or disagrees with the gold label,
        ``teacher_label`` becomes the gold label; the parsed one stays in ``meta["teacher_label_raw"]``
        and ``meta["label_corrected"]`` is True. The rationale is kept as written, so it may argue for a
        different answer. Which label the student finally trains on is decided later by
        ``train.sbs_labels``.

    ``batch_size`` prompts are handed to the teacher at a time (a backend with ``concurrency`` keeps that
    many of them in flight, so make it at least the concurrency).

    ``publish``, if given, is called after every ``publish_every`` new replies with the annotated examples
    answered so far (in order), so that a long run keeps its progress outside the cache too.

    Raises TeacherError when the teacher fails (after its own retries); what was answered before is
    in the cache.
    """
    lookup(LABEL_POLICIES, label_policy, "label_policy")
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    stats = AnnotationStats(total=len(examples))

    prepared = []
    for example in examples:
        texts, ids = _evidence(None if evidence_by_id is None else evidence_by_id.get(example.id, []))
        task = task_of(example)
        messages = build_prompt(example, demonstrations, texts, task=task, hint=example.id in hint_ids)
        prepared.append(_Prompt(example, task, messages, prompt_hash(messages, teacher.model_id, settings), ids,
                                example.id in hint_ids))

    # Each distinct prompt is asked once: skip what is cached, and duplicates within this run.
    todo: dict[str, list] = {}
    for item in prepared:
        if cache.get(item.key) is None and item.key not in todo:
            todo[item.key] = item.messages
    stats.from_cache = sum(1 for item in prepared if item.key not in todo)

    bar = None
    if progress and todo:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(todo), desc=f"teacher {teacher.model_id}", unit="ex")
    keys = list(todo)
    start = time.perf_counter()
    try:
        for offset in range(0, len(keys), batch_size):
            batch = keys[offset : offset + batch_size]
            for index, completion in teacher.iter_complete([todo[k] for k in batch], settings):
                cache.put(batch[index], {"model": teacher.model_id, **completion.to_dict()})
                stats.queried += 1
                stats.prompt_tokens += completion.prompt_tokens
                stats.completion_tokens += completion.completion_tokens
                if bar is not None:
                    bar.update(1)
                if publish is not None and stats.queried % publish_every == 0:
                    publish([_annotated(item, teacher, cache, label_policy) for item in prepared
                             if cache.get(item.key) is not None])
    except TeacherError as err:
        raise TeacherError(
            f"{err}\n{stats.queried} new replies of {len(keys)} (and {stats.from_cache} cached before) are saved in "
            f"{cache.path}; run again to resume"
        ) from None
    finally:
        if bar is not None:
            bar.close()
    stats.seconds = time.perf_counter() - start
    if stats.queried and stats.seconds > 0:
        stats.examples_per_s = stats.queried / stats.seconds
        stats.tokens_per_s = stats.completion_tokens / stats.seconds

    annotated = [_annotated(item, teacher, cache, label_policy) for item in prepared]
    # Unparsed counts the teacher's own label, also where gold_if_wrong replaced it.
    stats.unparsed = sum(1 for e in annotated if e.meta.get("teacher_label_raw", e.teacher_label) is None)
    stats.corrected = sum(1 for e in annotated if e.meta.get("label_corrected"))
    return annotated, stats


def _annotated(item: _Prompt, teacher: Teacher, cache: AnnotationCache, label_policy: str) -> Example:
    """A copy of one prepared example with its cached reply parsed into rationale, label and meta."""
    example, task, key, ids = item.example, item.task, item.key, item.evidence_ids
    record = cache.get(key)
    rationale, label, how = parse_teacher_output(record["text"], example.choices, task=task)
    out = copy.deepcopy(example)
    out.rationale = rationale
    out.teacher_label = label
    out.meta.update({
        "teacher": teacher.model_id, "prompt_hash": key, "evidence_ids": ids,
        "prompt_tokens": record.get("prompt_tokens", 0), "completion_tokens": record.get("completion_tokens", 0),
        "seconds": record.get("seconds", 0.0), "parse": how, "reply": record["text"],
    })
    if item.hinted:
        out.meta["rationalized"] = True
    kind = "arithmetic" if task == "arithmetic" else "choice"  # the metric's own notion of agreement
    if label_policy == "gold_if_wrong" and not is_correct(label, example.label, kind):
        out.meta["teacher_label_raw"] = label
        out.meta["label_corrected"] = True
        out.teacher_label = example.label
    return out
