"""Student models: loading, task formatting, collation and the multi-task trainer."""

from ragdistill.students.formatting import TASK_PREFIXES, TaskFormatter, build_task_rows
from ragdistill.students.models import Student, load_student

__all__ = ["TASK_PREFIXES", "Student", "TaskFormatter", "build_task_rows", "load_student"]
