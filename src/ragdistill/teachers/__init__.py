"""LLM teachers: prompts, backends (llama.cpp in-process, OpenAI-compatible HTTP, transformers),
reply parsing, a resumable annotation cache, and ``annotate``."""

from ragdistill.teachers.annotate import AnnotationStats, annotate
from ragdistill.teachers.base import (
    Completion,
    DecodingSettings,
    Teacher,
    TeacherError,
    build_teacher,
)
from ragdistill.teachers.cache import AnnotationCache
from ragdistill.teachers.parsing import parse_teacher_output
from ragdistill.teachers.prompts import build_prompt, prompt_hash

__all__ = [
    "AnnotationCache", "AnnotationStats", "Completion", "DecodingSettings",
    "Teacher", "TeacherError", "annotate", "build_prompt", "build_teacher", "parse_teacher_output", "prompt_hash",
]
