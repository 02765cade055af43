"""Is a run's output on a DVC remote? Checked from git and the remote alone, without pulling anything.

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
    from dvc_data.hashfile.hash_info import HashInfo
    from dvc_data.hashfile.tree import Tree

    locked = locked_outputs(rev, root)
    missing = []
    with Repo(str(root)) as repo:
        for path in outputs:
            entry = locked.get(path, {})
            oid = entry.get("md5")
            if oid is None:
                missing.append(path)
                continue
            # DVC 3 writes `hash: md5`; entries without it are DVC 2's, stored under the legacy layout.
            odb = repo.cloud.get_remote_odb(remote, command="study check-remote",
                                            hash_name=entry.get("hash", "md5-dos2unix"))
            if not odb.exists(oid):
                missing.append(path)
            elif oid.endswith(".dir"):
                files = {hash_info.value for _, _, hash_info in Tree.load(odb, HashInfo(odb.hash_name, oid))}
                if set(odb.oids_exist(files)) != files:
                    missing.append(path)
    return missing


def default_remote(root: Path = Path(".")) -> str | None:
    """The name of the repository's default DVC remote (``core.remote``), None if it has none."""
    from dvc.repo import Repo

    with Repo(str(root)) as repo:
        return repo.config["core"].get("remote")
