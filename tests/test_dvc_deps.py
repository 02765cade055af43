"""Every stage in dvc.yaml lists the library code it runs, so `dvc repro` reruns it when that code changes.

The code a stage runs is found statically: the stage script's `ragdistill` imports, followed with `ast`
through every module they reach (lazy imports inside functions too), plus the `__init__.py` of every
package on the way. Nothing is imported or run. The "module:attribute" names of ragdistill.registry are not
followed: every stage imports the registry, and the stages that load an entry (retrieve, annotate-teacher)
depend on the whole package that holds it.
"""

from __future__ import annotations

import ast
import copy
import re
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
SRC = REPO / "src"
PACKAGE = "ragdistill"
SCRIPT = re.compile(r"\bpython\s+(stages/\S+\.py)\b")


def _module_file(module: str) -> Path | None:
    """The file under src/ that defines a dotted module name, or None when it is not project code."""
    base = SRC.joinpath(*module.split("."))
    for candidate in (base / "__init__.py", base.with_suffix(".py")):
        if candidate.is_file():
            return candidate
    return None


def _module_name(path: Path) -> str:
    parts = path.relative_to(SRC).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _with_packages(module: str) -> list[str]:
    # importing ragdistill.a.b first runs ragdistill/__init__.py and ragdistill/a/__init__.py
    parts = module.split(".")
    return [".".join(parts[: i + 1]) for i in range(len(parts))]


def imported_files(script: Path) -> set[Path]:
    """The project source files that running `script` can import, the script itself included."""
    seen: set[Path] = set()
    todo = [script]
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        seen.add(path)
        is_package = path.name == "__init__.py"
        here = _module_name(path) if path.is_relative_to(SRC) else ""
        modules: list[str] = []
        # ast.walk reaches imports inside functions and `if TYPE_CHECKING:` blocks: count them all
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Import):
                modules += [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:  # relative import: resolve against this module's package
                    anchor = here.split(".")[: len(here.split(".")) - node.level + is_package]
                    base = ".".join(anchor + ([node.module] if node.module else []))
                else:
                    base = node.module or ""
                modules.append(base)
                # `from pkg import name` may name a submodule; _module_file tells which
                modules += [f"{base}.{alias.name}" for alias in node.names if alias.name != "*"]
        for module in modules:
            if module.split(".")[0] != PACKAGE:
                continue
            for name in _with_packages(module):
                found = _module_file(name)
                if found is not None:
                    todo.append(found)
    return seen


def missing_deps(stage: dict) -> list[str]:
    """The files (relative to the repo) a stage's script imports that none of its deps covers."""
    match = SCRIPT.search(stage["cmd"])
    assert match, f"cmd {stage['cmd']!r} does not run a stages/*.py script"
    # a dep covers a file when it is that file or a directory above it
    deps = [REPO / dep for dep in stage.get("deps", [])]
    missing = [path for path in imported_files(REPO / match.group(1))
               if not any(path == dep or path.is_relative_to(dep) for dep in deps)]
    return sorted(str(path.relative_to(REPO)) for path in missing)


def _stages() -> dict[str, dict]:
    return yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]


def test_every_stage_depends_on_the_code_it_imports():
    problems = {name: missing for name, stage in _stages().items() if (missing := missing_deps(stage))}
    assert not problems, "stages missing code deps in dvc.yaml:\n" + "\n".join(
        f"  {name}: {', '.join(files)}" for name, files in problems.items())


def test_every_code_dependency_exists():
    # a dep on a moved or deleted module would make `dvc repro` fail before it runs anything
    missing = {name: [dep for dep in stage.get("deps", []) if dep.startswith(("src/", "stages/"))
                      and not (REPO / dep).exists()] for name, stage in _stages().items()}
    assert not any(missing.values()), missing


def test_checker_reports_a_removed_dependency():
    # guard against a checker that passes vacuously: drop one dep it must have found, in memory
    stage = copy.deepcopy(_stages()["prepare"])
    stage["deps"] = [dep for dep in stage["deps"] if dep != "src/ragdistill/config.py"]
    assert "src/ragdistill/config.py" in missing_deps(stage)
    assert imported_files(REPO / "stages" / "prepare.py") >= {
        SRC / "ragdistill" / "__init__.py", SRC / "ragdistill" / "data" / "__init__.py",
        SRC / "ragdistill" / "pipeline" / "prepare.py"}
