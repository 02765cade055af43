"""Rationale and label from a teacher's reply, tolerant of the ways small models stray from the format.

``parse_teacher_output(text, choices)`` returns ``(rationale, label, how)``: ``label`` is a choice's text
(multiple choice), ``"yes"`` / ``"no"``, or an equation (arithmetic), and None when no answer can be
read; the caller keeps such examples and counts them. ``how`` says which rule matched (for statistics).
"""

from __future__ import annotations

import re

from ragdistill.data.dss import LETTERS
from ragdistill.evaluation.arith import try_eval

# Where a run-on few-shot block starts: a new "Q:" / "Question:" on its own line or after a sentence.
_RUN_ON = re.compile(r"(?:\n|(?<=[.!?])[ \t]+)\s*(?:Q|Question)\s*:", re.IGNORECASE)
_LEADING_A = re.compile(r"^\s*(?:A|Answer)\s*:\s*(?=\S)", re.IGNORECASE)
_MARKER = re.compile(
    r"(?:\b(?:so|thus|therefore|hence)\b,?\s+)?(?:\bthe\s+)?(?:\b(?:correct|final|best|right)\s+)?"
    r"\b(?:answer|choice|option)\b\s*(?:is|would\s+be|will\s+be|should\s+be|=|:)\s*:?",
    re.IGNORECASE,
)
_BOXED = re.compile(r"\\boxed\{([^{}]*)\}")
_LETTER_ONLY = re.compile(r"[(\[]?([a-j])[)\].:]?", re.IGNORECASE)
_LETTER_THEN_TEXT = re.compile(r"[(\[]([a-j])[)\]]\s*(.*)|([a-j])\s*[).:,\-]\s+(.*)", re.IGNORECASE | re.DOTALL)
_TRAILING_LETTER = re.compile(r"[(\[]([a-j])[)\]]\s*([^()\[\]\n]*?)\s*[.!]?\s*$", re.IGNORECASE)
_OPTION_WORD = re.compile(r"^(?:option|choice|letter)\s+", re.IGNORECASE)


def _normalize(text: str) -> str:
    text = text.lower().strip()
    text = re.sub(r"[\"'`“”‘’]", "", text)
    text = re.sub(r"\s+", " ", text)
    text = re.sub(r"^(?:a|an|the)\s+", "", text)
    return text.strip(" .,!?;:")


def _clean(text: str) -> str:
    """The answer span: up to the first line break, without markdown, quotes or final punctuation."""
    text = _BOXED.sub(r"\1", text)
    text = text.replace("**", "").replace("__", "").replace("`", "")
    text = text.strip().split("\n", 1)[0].strip()
    text = text.strip("\"'“”‘’ ")
    text = re.sub(r"[.!;,]+$", "", text).strip()
    return _OPTION_WORD.sub("", text).strip()


def cut_run_on(text: str) -> str:
    """The reply without a following made-up "Q: ..." block or a leading "A:"."""
    text = _LEADING_A.sub("", text.strip())
    match = _RUN_ON.search(text)
    if match and match.start() > 0:
        text = text[: match.start()]
    return text.strip()


def _by_letter(letter: str, choices: list[str]) -> int | None:
    index = LETTERS.find(letter.lower())
    return index if 0 <= index < len(choices) else None


def _match_choice(span: str, choices: list[str], loose: bool = True) -> tuple[str | None, str]:
    """A choice from an answer span: "(b) text", "(b)", "b", "b. text", the text itself; with ``loose``,
    also the one choice whose text the span contains."""
    cleaned = _clean(span)
    if not cleaned:
        return None, "empty"
    by_text = {_normalize(c): c for c in choices}
    if len({letter.lower() for letter in re.findall(r"[(\[]([a-j])[)\]]", cleaned, re.IGNORECASE)}) > 1:
        return None, "several_letters"  # "(a) trees or (b) kids"
    found = _LETTER_THEN_TEXT.fullmatch(cleaned)
    if found:
        letter, rest = (found.group(1), found.group(2)) if found.group(1) else (found.group(3), found.group(4))
        index = _by_letter(letter, choices)
        if index is not None:
            rest_norm = _normalize(_clean(rest))
            if not rest_norm or rest_norm == _normalize(choices[index]):
                return choices[index], "letter_text" if rest_norm else "letter"
            if rest_norm in by_text:  # "(b) trees" where trees is (a): the text wins, as in the paper's parser
                return by_text[rest_norm], "text_over_letter"
            if found.group(1):  # "(b) something else": the letter is explicit
                return choices[index], "letter"
    found = _LETTER_ONLY.fullmatch(cleaned)
    if found:
        index = _by_letter(found.group(1), choices)
        if index is not None:
            return choices[index], "letter"
    norm = _normalize(cleaned)
    if norm in by_text:
        return by_text[norm], "text"
    if loose and norm:
        hits = [c for key, c in by_text.items() if key and re.search(rf"(?<!\w){re.escape(key)}(?!\w)", norm)]
        # "deep sea fish" contains "fish" and "deep sea fish": keep the longest ones only.
        hits = [c for c in hits if not any(c != o and _normalize(c) in _normalize(o) for o in hits)]
        if len(hits) == 1:
            return hits[0], "text_in_answer"
    return None, "unmatched"


def _yes_no(span: str) -> str | None:
    words = _normalize(_clean(span)).split()
    first = words[0].strip("()[]*.,!") if words else ""
    return first if first in ("yes", "no") else None


def _equation(span: str) -> str | None:
    span = _BOXED.sub(r"\1", span.split("\n", 1)[0]).replace("**", "").replace("`", "").strip()
    start, end = span.find("("), span.rfind(")")
    if start != -1 and end > start and try_eval(span[start : end + 1]) is not None:
        inner = span[start + 1 : end].strip()
        return inner if try_eval(inner) is not None else span[start : end + 1].strip()
    cleaned = re.sub(r"(?<=\d),(?=\d{3}\b)", "", span)  # 1,000 -> 1000
    cleaned = cleaned.replace("$", "").replace("×", "*").replace("÷", "/")
    cleaned = re.sub(r"[.!;]+$", "", cleaned.strip()).strip()
    for candidate in [cleaned, *(part.strip() for part in cleaned.split("="))]:
        if candidate and try_eval(candidate) is not None:
            return candidate
    found = re.match(r"[-\d.\s+*/()]+", cleaned)  # "42 apples"
    if found and try_eval(found.group(0).strip()) is not None:
        return found.group(0).strip()
    return None


def _parse_span(span: str, choices: list[str] | None, task: str, loose: bool) -> tuple[str | None, str]:
    if task == "choice":
        return _match_choice(span, choices or [], loose)
    if task == "yes_no":  # after an answer phrase its first word; otherwise the span must be yes / no alone
        answer = _yes_no(span)
        if not loose and len(_normalize(_clean(span)).split()) != 1:
            answer = None
        return answer, "yes_no" if answer else "unmatched"
    equation = _equation(span)
    return equation, "equation" if equation else "unmatched"


def parse_teacher_output(
    text: str, choices: list[str] | None, task: str | None = None
) -> tuple[str, str | None, str]:
    """(rationale, label or None, how). ``task`` is ``choice``, ``yes_no`` or ``arithmetic``; by default
    ``choice`` when there are choices, else ``yes_no`` when the answer reads yes / no, else ``arithmetic``."""
    body = cut_run_on(text or "")
    if not body:
        return "", None, "empty"
    if task in (None, "choice") and choices and sorted(_normalize(c) for c in choices) == ["no", "yes"]:
        # Yes/no as two choices (StrategyQA): "(a) yes" as for any choice, else "Yes, because ..." and kin.
        parsed = _parse(body, choices, "choice")
        if parsed[1] is not None:
            return parsed
        rationale, label, how = _parse(body, None, "yes_no")
        return rationale, next((c for c in choices if _normalize(c) == label), None), how
    if task is None and not choices:
        marker = list(_MARKER.finditer(body))
        span = body[marker[-1].end():] if marker else body
        words = body.rstrip(" .!").split()
        ends = not marker and (_yes_no(words[0]) or _yes_no(words[-1]))
        task = "yes_no" if _yes_no(span) or ends else "arithmetic"
    task = task or "choice"
    if task == "choice" and not choices:
        raise ValueError("a multiple-choice answer needs the choices")
    return _parse(body, choices, task)


def _parse(body: str, choices: list[str] | None, task: str) -> tuple[str, str | None, str]:
    markers = list(_MARKER.finditer(body))
    if markers:  # "... So the answer is (b) trees." -- the last such phrase counts
        last = markers[-1]
        label, how = _parse_span(body[last.end():], choices, task, loose=True)
        rationale = body[: last.start()].strip()
        if label is not None:
            return rationale, label, f"marker:{how}"
        return body, None, f"unparsed:{how}"

    # No answer phrase: the whole reply, its last line, a trailing "(b) text", or a leading / final yes-no.
    label, how = _parse_span(body, choices, task, loose=False)
    if label is not None:
        return "", label, f"bare:{how}"
    lines = [line for line in body.split("\n") if line.strip()]
    if len(lines) > 1:
        label, how = _parse_span(lines[-1], choices, task, loose=False)
        if label is not None:
            return "\n".join(lines[:-1]).strip(), label, f"last_line:{how}"
    if task == "choice":
        found = _TRAILING_LETTER.search(body)
        if found:
            label, how = _match_choice(found.group(0), choices or [], loose=False)
            if label is not None:
                return body[: found.start()].strip(), label, f"trailing:{how}"
    if task == "yes_no":
        first = _yes_no(body.split(None, 1)[0])
        if first:
            return body.split(None, 1)[1].strip(" ,.") if len(body.split(None, 1)) > 1 else "", first, "leading:yes_no"
        last = _yes_no(body.rstrip(" .!").rsplit(None, 1)[-1])
        if last:
            return body, last, "final:yes_no"
    return body, None, "unparsed"
