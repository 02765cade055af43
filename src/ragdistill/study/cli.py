"""The command line, ``python -m ragdistill.study <subcommand>``.

``run`` calls ``dvc exp run`` in this workspace one cell at a time and skips cells already collected
(``--students`` trains only some of each cell's students); with ``--queue`` it only queues them (``dvc queue
start`` runs them; then ``dvc exp apply <cell>`` and ``collect <cell>`` per cell). ``compare A.json B.json``
says whether a rerun of a cell reproduced a committed snapshot, question by question. ``rerun <cell>`` trains
a committed cell again from scratch (``dvc exp run -f``: no run cache), snapshots it beside the committed one
(``.cache/study-reruns``), compares the two, and with ``--push <git remote>`` pushes the experiment (its git
ref, and its checkpoints to the default DVC remote) when it reproduced the committed snapshot exactly. ``adopt
.cache/study-reruns/<cell>.json`` makes a rerun that did not reproduce exactly the cell's committed snapshot,
for when the committed run's checkpoints are gone. ``check-remote [--remote NAME]`` says which committed
cells' student checkpoints a DVC remote holds in full (nothing is pulled). ``deploy --dataset D`` times every
deployment of the study (the student, with and without evidence, and both teachers) in one run, batch 1
(``reports/study/deployment/``). ``report`` writes
``reports/REPORT.md`` and its figures.
"""

from __future__ import annotations

import argparse
import subprocess
from dataclasses import replace
from pathlib import Path

from ragdistill import paths
from ragdistill.config import METHODS
from ragdistill.io import DataError, read_json
from ragdistill.study.experiments import check_remote, rerun_cell, run
from ragdistill.study.grid import VARIANTS, grid, parse_cell
from ragdistill.study.report import report
from ragdistill.study.snapshots import RERUNS, adopt, collect, committed_snapshot, compare_lines


def _setting(text: str) -> str:
    key, equals, value = text.partition("=")
    if not equals or not key.strip() or not value.strip():
        raise argparse.ArgumentTypeError(f"{text!r} is not KEY=VALUE (for example train.precision=bf16)")
    return text


def _parser() -> argparse.ArgumentParser:
    from ragdistill import study  # at call time: the package imports this module

    parser = argparse.ArgumentParser(prog="python -m ragdistill.study", description=study.__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    run_parser = commands.add_parser("run", help="run (or queue) the grid's cells with dvc exp run, then collect")
    run_parser.add_argument("--dataset", required=True)
    run_parser.add_argument("--fractions", type=float, nargs="+", required=True)
    run_parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    run_parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    run_parser.add_argument("--students", nargs="+", choices=list(METHODS),
                            help="train only these students (default: all; a snapshot records which it holds)")
    run_parser.add_argument("--queue", action="store_true", help="only queue the experiments")
    run_parser.add_argument("--set", dest="settings", metavar="KEY=VALUE", action="append", default=[],
                            type=_setting, help="a params.yaml value for every cell (dvc exp run -S), e.g. "
                            "train.precision=bf16; the snapshots record it")
    collect_parser = commands.add_parser("collect", help="snapshot the run now in the workspace")
    collect_parser.add_argument("cell", help="a cell name, e.g. openbookqa-rag-f0.1-s0")
    collect_parser.add_argument("--students", nargs="+", choices=list(METHODS),
                                help="as for run: the students the run trained (default: all)")
    compare_parser = commands.add_parser("compare", help="did a rerun of a cell reproduce its committed snapshot?")
    compare_parser.add_argument("committed", type=Path, help="the committed snapshot, reports/study/<cell>.json")
    compare_parser.add_argument("rerun", type=Path, help="the rerun's snapshot (e.g. from a fresh clone)")
    rerun_parser = commands.add_parser("rerun", help="train committed cells again, compare, optionally push")
    rerun_parser.add_argument("cells", nargs="+", help="cell names, e.g. openbookqa-rag-f0.1-s0")
    rerun_parser.add_argument("--set", dest="settings", metavar="KEY=VALUE", action="append", default=[],
                              type=_setting, help="as for run: what the committed cell was run with")
    rerun_parser.add_argument("--into", type=Path, default=RERUNS, help="where the reruns' snapshots go")
    rerun_parser.add_argument("--push", metavar="GIT_REMOTE",
                              help="dvc exp push each rerun that reproduced exactly (e.g. origin)")
    adopt_parser = commands.add_parser("adopt", help="make a rerun the cell's committed snapshot (its run was lost)")
    adopt_parser.add_argument("rerun", type=Path, help="the rerun's snapshot, e.g. .cache/study-reruns/<cell>.json")
    check_parser = commands.add_parser("check-remote", help="which committed cells' checkpoints a DVC remote holds")
    check_parser.add_argument("--remote", help="a DVC remote's name (default: the repository's default remote)")
    deploy_parser = commands.add_parser("deploy", help="time every deployment of the study in one run (batch 1)")
    deploy_parser.add_argument("--dataset", required=True)
    deploy_parser.add_argument("--questions", type=int, default=32, help="evaluation questions timed (after one "
                               "untimed warm-up)")
    deploy_parser.add_argument("--student", help="the student checkpoint to time (default: params' student model; "
                               "its weights do not change its cost)")
    report_parser = commands.add_parser("report", help="write reports/REPORT.md from reports/study/")
    report_parser.add_argument("--appendix", type=Path, default=paths.REPORTS / "study" / "CONCLUSIONS.md")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "run":
        run(grid(args.dataset, args.fractions, args.seeds, args.variants, args.students), queue=args.queue,
            settings=tuple(args.settings))
    elif args.command == "collect":
        collect(replace(parse_cell(args.cell), students=tuple(args.students) if args.students else None))
    elif args.command == "rerun":
        cells = [parse_cell(name) for name in args.cells]
        try:
            for cell in cells:  # every name checked before hours of training start
                committed_snapshot(cell)
            reproduced = [rerun_cell(cell, args.into, args.push, tuple(args.settings)) for cell in cells]
        except DataError as error:
            raise SystemExit(f"study rerun: {error}") from None
        except subprocess.CalledProcessError as error:
            raise SystemExit(f"study rerun: `{' '.join(error.cmd)}` failed (exit {error.returncode})") from None
        return 0 if all(reproduced) else 1
    elif args.command == "adopt":
        try:
            adopt(args.rerun)
        except (DataError, OSError) as error:
            raise SystemExit(f"study adopt: {error}") from None
    elif args.command == "check-remote":
        from dvc.exceptions import DvcException  # DVC is slow to import: only for this subcommand

        try:
            return 1 if check_remote(args.remote) else 0
        except (DataError, OSError, subprocess.CalledProcessError, DvcException) as error:
            raise SystemExit(f"study check-remote: {error}") from None
    elif args.command == "compare":
        try:
            lines, same = compare_lines(read_json(args.committed), read_json(args.rerun))
        except (DataError, OSError) as error:
            raise SystemExit(f"study compare: {error}") from None
        print("\n".join(lines))
        return 0 if same else 1
    elif args.command == "deploy":
        from ragdistill.study.deployment import deploy

        try:
            deploy(args.dataset, args.questions, args.student)
        except DataError as error:
            raise SystemExit(f"study deploy: {error}") from None
    else:
        report(appendix=args.appendix)
    return 0
