"""Cells as DVC experiments: running them, training a committed one again (and pushing it), and whether a
DVC remote holds their students' checkpoints."""

from __future__ import annotations

import subprocess
from dataclasses import replace
from pathlib import Path

from tqdm.auto import tqdm

from ragdistill import paths
from ragdistill.config import METHODS
from ragdistill.io import DataError, read_json
from ragdistill.log import log
from ragdistill.remote import default_remote, experiment_refs, missing_on_remote
from ragdistill.study.grid import Cell
from ragdistill.study.snapshots import RERUNS, STUDY, collect, committed_snapshot, compare_lines, load_snapshots


def run(cells: list[Cell], queue: bool = False, settings: tuple[str, ...] = ()) -> None:
    for cell in cells:
        if (STUDY / f"{cell.name}.json").exists():
            log(f"study: {cell.name} already collected; skipped")
            continue
        command = cell.command(queue, settings)
        log(f"study: {'queueing' if queue else 'running'} {cell.name}: {' '.join(command)}")
        subprocess.run(command, check=True)
        if not queue:
            collect(cell)


def rerun_cell(cell: Cell, into: Path = RERUNS, push: str | None = None, settings: tuple[str, ...] = ()) -> bool:
    """Train a committed cell again and compare; push the experiment only if it reproduced exactly."""
    committed = read_json(committed_snapshot(cell))
    if committed.get("students"):  # the students the committed run trained, no more
        cell = replace(cell, students=tuple(committed["students"]))
    # -f: every stage runs again (the run cache would restore the students instead of retraining them),
    # and an experiment of the same name is replaced.
    command = [*cell.command(settings=settings), "-f"]
    log(f"study: rerunning {cell.name}: {' '.join(command)}")
    subprocess.run(command, check=True)
    lines, same = compare_lines(committed, read_json(collect(cell, into)))
    print("\n".join(lines), flush=True)
    if push and same:
        log(f"study: pushing {cell.name} to git remote {push!r} and its outputs to the default DVC remote")
        subprocess.run(["dvc", "exp", "push", push, cell.name], check=True)
    elif push:
        log(f"study: {cell.name} NOT pushed: the rerun differs from the committed snapshot. If the committed "
            f"run's checkpoints are lost, make the rerun the cell's run instead: `python -m ragdistill.study adopt "
            f"{into / (cell.name + '.json')}`, then `dvc exp push {push} {cell.name}`")
    return same


def check_remote(remote: str | None = None, directory: Path = STUDY) -> list[str]:
    """Per committed cell, whether a DVC remote (default: the default one) holds its students' checkpoints
    as its experiment's ``dvc.lock`` names them; prints a line per cell and returns the cells that fail."""
    snapshots = load_snapshots(directory)
    if not snapshots:
        raise DataError(f"{directory}: no committed snapshots to check")
    where = remote or default_remote()
    refs_by_cell = experiment_refs()  # one git call for every cell
    failing = []
    for snapshot in tqdm(snapshots, desc=f"cells checked on DVC remote {where!r}", unit="cell"):
        cell = snapshot["cell"]
        checkpoints = [paths.model_dir(snapshot["dataset"], method).as_posix() for method in METHODS]
        refs = refs_by_cell.get(cell, [])
        # A cell rerun from another baseline has several refs; any one that is whole can be pulled.
        missing = {ref: missing_on_remote(ref, checkpoints, remote) for ref in refs}
        whole = [ref for ref, gone in missing.items() if not gone]
        if whole:
            tqdm.write(f"{cell}: all {len(checkpoints)} student checkpoints on the remote ({whole[-1]})")
            continue
        failing.append(cell)
        if not refs:
            tqdm.write(f"{cell}: NO experiment ref in this clone (`git fetch origin 'refs/exps/*:refs/exps/*'` "
                       "brings those of origin)")
        for ref, gone in missing.items():
            tqdm.write(f"{cell}: NOT on the remote: {', '.join(gone)} ({ref})")
    print(f"{len(snapshots) - len(failing)} of {len(snapshots)} committed cells have every student checkpoint "
          f"on DVC remote {where!r}" + (f"; missing: {', '.join(failing)}" if failing else ""), flush=True)
    return failing
