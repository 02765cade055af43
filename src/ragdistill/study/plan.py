"""The pre-specified analysis plan (``reports/study/plan.json``, explained in ``PLAN.md`` beside it): which
comparison is the primary one, at what size and with how many seeds. The report computes it as planned,
writes ``reports/study/primary.json``, and treats every other comparison as secondary."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ragdistill import paths
from ragdistill.io import DataError, read_json, write_json
from ragdistill.study.stats import INTERVAL_METHOD

PLAN = paths.REPORTS / "study" / "plan.json"
PRIMARY = paths.REPORTS / "study" / "primary.json"
FIELDS = ("dataset", "fraction", "a", "b", "min_seeds", "metric")


@dataclass(frozen=True)
class Plan:
    dataset: str
    fraction: float | None  # None: the size is not fixed yet, so nothing is primary
    a: str
    b: str
    min_seeds: int
    metric: str

    @property
    def comparison(self) -> str:
        return f"{self.a} − {self.b} on {self.dataset}"


def load_plan(path: Path = PLAN) -> Plan | None:
    """The plan, or None where there is none (the report then says that nothing was pre-specified)."""
    if not path.exists():
        return None
    raw = read_json(path)
    missing = [name for name in FIELDS if name not in raw]
    unknown = sorted(set(raw) - set(FIELDS))
    if missing or unknown:
        problems = [f"{what} {', '.join(names)}" for what, names in (("missing", missing), ("unknown", unknown))
                    if names]
        raise DataError(f"{path}: " + "; ".join(problems) + f" (the plan's fields: {', '.join(FIELDS)})")
    return Plan(**raw)


def primary_record(plan: Plan, result: dict, seeds: int) -> dict:
    """``primary.json``: the planned comparison as measured, in percent."""
    return {"dataset": plan.dataset, "fraction": plan.fraction, "seeds": seeds, "metric": plan.metric,
            "a": round(100 * result["a"], 2), "b": round(100 * result["b"], 2),
            "diff": round(100 * result["difference"], 2), "low": round(100 * result["ci_low"], 2),
            "high": round(100 * result["ci_high"], 2), "p": round(result["p_value"], 4), "method": INTERVAL_METHOD,
            "learned": result["learned"]}


def write_primary(record: dict | None, path: Path = PRIMARY) -> None:
    """Write the primary result, or remove a stale one where the plan's comparison has no runs yet."""
    if record is not None:
        write_json(path, record)
    elif path.exists():
        path.unlink()
