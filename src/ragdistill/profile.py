"""Apply a profile (a partial params file) over params.yaml, keeping every other value and comment.

    python -m ragdistill.profile profiles/tiny.yaml [--params params.yaml]

DVC reads only params.yaml, so a profile is applied by rewriting it (the way CI runs the tiny DAG).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import yaml

from ragdistill.config import validate
from ragdistill.io import write_text


def merge(base: dict, override: dict) -> dict:
    merged = dict(base)
    for key, value in override.items():
        merged[key] = merge(base[key], value) if isinstance(value, dict) and isinstance(base.get(key), dict) else value
    return merged


def apply_profile(profile: Path, params: Path) -> dict:
    merged = merge(yaml.safe_load(params.read_text()), yaml.safe_load(profile.read_text()) or {})
    validate(merged)  # a bad profile fails here, not in the middle of the pipeline
    header = f"# params.yaml with the profile {profile} applied\n"
    write_text(params, header + yaml.safe_dump(merged, sort_keys=False))
    return merged


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("profile", type=Path)
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    args = parser.parse_args()
    apply_profile(args.profile, args.params)
    print(f"applied {args.profile} to {args.params}")


if __name__ == "__main__":
    main()
