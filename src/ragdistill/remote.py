"""Is a run's output on a DVC remote? Checked from git and the remote alone, without pulling anything.

    python -m ragdistill.remote pull [-r NAME]   # dvc pull, or say what the remote lacks and what to do

A commit's (or an experiment's) ``dvc.lock`` names the hash of every output; DVC's own object database for
the remote says which of those objects it holds. A directory output (a student checkpoint) counts as there
only if its manifest and every file the manifest lists are, which is what ``dvc pull`` needs. The same code
asks a local folder remote and an S3 one.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import yaml

from ragdistill.io import DataError


def experiment_refs(root: Path = Path(".")) -> dict[str, list[str]]:
    """Experiment name -> the git refs of the DVC experiments of that name (``refs/exps/<baseline>/<name>``),
    oldest first. Only refs in this clone: ``git fetch origin 'refs/exps/*:refs/exps/*'`` brings a remote's."""
    listed = subprocess.run(["git", "for-each-ref", "--sort=committerdate", "--format=%(refname)", "refs/exps"],
                            cwd=root, capture_output=True, text=True, check=True).stdout.split()
    refs: dict[str, list[str]] = {}
    for ref in listed:
        refs.setdefault(ref.rsplit("/", 1)[-1], []).append(ref)
    return refs


def locked_outputs(rev: str, root: Path = Path(".")) -> dict[str, dict]:
    """Every stage output in the ``dvc.lock`` committed at ``rev``: path -> its entry (hash, size, ...)."""
    shown = subprocess.run(["git", "show", f"{rev}:dvc.lock"], cwd=root, capture_output=True, text=True)
    if shown.returncode != 0:
        raise DataError(f"{rev}: no dvc.lock there ({shown.stderr.strip()})")
    try:
        lock = yaml.safe_load(shown.stdout) or {}
        return {out["path"]: out for stage in lock.get("stages", {}).values() for out in stage.get("outs", [])}
    except (yaml.YAMLError, AttributeError, KeyError, TypeError) as error:
        raise DataError(f"{rev}:dvc.lock is not a DVC lock file ({error})") from None


def missing_on_remote(rev: str, outputs: list[str], remote: str | None = None, root: Path = Path(".")) -> list[str]:
    """Those of ``outputs`` (paths, e.g. ``models/openbookqa/sbs``) that the DVC remote (default: the
    repository's default remote) does not wholly hold for the ``dvc.lock`` committed at ``rev``; an output
    the lock file does not name counts as missing."""
    from dvc.repo import Repo

    locked = locked_outputs(rev, root)
    missing = []
    with Repo(str(root)) as repo:
        for path in outputs:
            entry = locked.get(path, {})
            oid = entry.get("md5")
            # DVC 3 writes `hash: md5`; entries without it are DVC 2's, stored under the legacy layout.
            if oid is None or not _held(repo, remote, entry.get("hash", "md5-dos2unix"), oid):
                missing.append(path)
    return missing


def _held(repo, remote: str | None, hash_name: str, oid: str) -> bool:
    """Whether the remote holds the object, and for a directory its manifest and every file it lists."""
    from dvc_data.hashfile.hash_info import HashInfo
    from dvc_data.hashfile.tree import Tree

    odb = repo.cloud.get_remote_odb(remote, command="ragdistill remote check", hash_name=hash_name)
    if not odb.exists(oid):
        return False
    if oid.endswith(".dir"):
        files = {hash_info.value for _, _, hash_info in Tree.load(odb, HashInfo(odb.hash_name, oid))}
        return set(odb.oids_exist(files)) == files
    return True


def missing_for_pull(remote: str | None = None, root: Path = Path(".")) -> tuple[list[str], list[str]]:
    """(every output ``dvc pull`` would fetch for this workspace's ``dvc.lock``, those the remote lacks).
    Outputs with ``cache: false`` are in git and not asked for."""
    from dvc.repo import Repo

    with Repo(str(root)) as repo:
        wanted = sorted({(out.def_path, out.hash_info.name, out.hash_info.value) for stage in repo.index.stages
                         for out in stage.outs if out.use_cache and out.hash_info.value})
        missing = [path for path, hash_name, oid in wanted if not _held(repo, remote, hash_name, oid)]
    return [path for path, _, _ in wanted], missing


def default_remote(root: Path = Path(".")) -> str | None:
    """The name of the repository's default DVC remote (``core.remote``), None if it has none."""
    from dvc.repo import Repo

    with Repo(str(root)) as repo:
        return repo.config["core"].get("remote")


def _remote_url(name: str, root: Path) -> str:
    from dvc.repo import Repo

    with Repo(str(root)) as repo:
        return repo.config["remote"].get(name, {}).get("url", "?")


def pull(remote: str | None = None, root: Path = Path(".")) -> int:
    """``dvc pull`` from ``remote`` (default: the repository's default), after checking that it holds every
    output this workspace's ``dvc.lock`` names; where it does not, say which and what to do, pull nothing,
    and return 1. DVC's own error for a partial remote ("missing files ... Is your cache up to date?")
    tells a newcomer neither."""
    name = remote or default_remote(root)
    if name is None:
        print("no DVC remote is set: add one with `dvc remote add -d NAME URL` (README, Data and DVC remotes)")
        return 1
    url = _remote_url(name, root)
    try:
        wanted, missing = missing_for_pull(name, root)
    except Exception as error:  # DVC raises many kinds here (no such remote, connection refused, forbidden)
        print(f"DVC remote {name!r} ({url}) could not be read: {error}")
        print("Check its address and credentials (README, Data and DVC remotes), or rebuild with `dvc repro`.")
        return 1
    if missing:
        shown = ", ".join(missing[:8]) + (f" and {len(missing) - 8} more" if len(missing) > 8 else "")
        print(f"DVC remote {name!r} ({url}) holds {len(wanted) - len(missing)} of the {len(wanted)} outputs this "
              f"commit's dvc.lock names; missing: {shown}. Nothing was pulled. What to do:\n"
              f"- a copy of the outputs elsewhere: `dvc remote modify --local {name} url <path or s3://...>`, or\n"
              "- the team S3 remote: `scripts/s3-server.sh start` (or your team's endpoint), credentials in "
              ".dvc/config.local, then `make pull REMOTE=team`, or\n"
              "- rebuild them here: `dvc repro`. The teacher replies are in git (data/annotations/), so no teacher "
              "model is needed; `dvc repro` retrains only the missing outputs (README, quick start, for how long).")
        return 1
    print(f"DVC remote {name!r} ({url}) holds all {len(wanted)} outputs; pulling")
    return subprocess.run(["dvc", "pull", "-r", name], cwd=root).returncode


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m ragdistill.remote", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    pull_parser = commands.add_parser("pull", help="dvc pull, or say what the remote lacks and what to do")
    pull_parser.add_argument("-r", "--remote", help="the DVC remote (default: the repository's default)")
    args = parser.parse_args(argv)
    return pull(args.remote)


if __name__ == "__main__":
    raise SystemExit(main())
