"""Names and paths against a real lab: a name that climbs out of the home, a link to another home's
lab or a garbage state next to precious files never lets a command stop or delete what is not its own."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from lab import procs, state
from lab.pytest_plugin import lab_name
from lab.spec import LabSpec
from tests.helpers import run_lab, running_parts

pytestmark = [pytest.mark.integration, pytest.mark.one_server]


def _usage_error(result: subprocess.CompletedProcess[str], text: str) -> None:
    assert result.returncode == 2, result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and text in lines[0] and "Traceback" not in result.stderr, result.stderr


def _running(spec: LabSpec) -> int:
    """The lab's server processes (local) or containers (compose)."""
    return sum(part.startswith(("pid", "container")) for part in running_parts(spec))


# Issue 24, case 1: `down --name ..` removed the parent of the lab home.
def test_down_of_dot_dot_never_removes_the_homes_parent(tmp_path: Path) -> None:
    outer = tmp_path / "H"
    (outer / "inner").mkdir(parents=True)
    (outer / "state.json").write_text("garbage")
    (outer / "keepme.txt").write_text("precious")
    _usage_error(run_lab("--home", str(outer / "inner"), "down", "--name", "..", home=outer), "lab name '..'")
    assert (outer / "keepme.txt").read_text() == "precious" and (outer / "state.json").exists()


# Issue 24, case 2: a name that climbs into another home stopped that home's lab and deleted it.
def test_another_homes_lab_is_out_of_reach_by_name_or_by_link(lab: LabSpec, lab_home: Path, tmp_path: Path) -> None:
    other = tmp_path / "B"
    other.mkdir()
    climb = os.path.relpath(lab.base_dir, other)
    for command in ("status", "down", "kill", "heal", "env", "logs"):
        extra = ["redis-1"] if command in ("kill", "logs") else []
        _usage_error(run_lab("--home", str(other), command, "--name", climb, *extra, home=other), "lab name")
    # A link in the other home that points at the real lab is not a lab of that home either.
    (other / "prz").symlink_to(lab.base_dir)
    for command in ("status", "down"):
        _usage_error(run_lab("--home", str(other), command, "--name", "prz", home=other), "symbolic link")
    assert _running(lab) == 6 and state.exists(lab_home, lab.name), "the real lab runs on, untouched"
    assert sorted(p.name for p in other.iterdir()) == ["prz"], "no lock or directory made in the other home"
    assert not (lab.base_dir.parent.parent / f"{lab.name}.lock").exists()


# `down` of a lab whose state is garbage stops what runs in it and removes the lab's files only.
def test_down_of_an_unreadable_lab_keeps_what_the_lab_did_not_make(tmp_path: Path) -> None:
    home = tmp_path / "home"
    gate1 = lab_name("gate1")
    assert run_lab("up", "--name", gate1, "--backend", "local", home=home, timeout=120).returncode == 0
    lab_dir = home / gate1
    try:
        (lab_dir / "notes.txt").write_text("the user's")
        (lab_dir / "state.json").write_text("garbage")
        assert len(procs.servers_under(lab_dir)) == 6
        result = run_lab("down", "--name", gate1, home=home)
        assert result.returncode == 1 and "stopped 6 server process(es)" in result.stderr, result.stderr
        assert "kept notes.txt" in result.stderr
        assert procs.servers_under(lab_dir) == []
        assert sorted(p.name for p in lab_dir.iterdir()) == ["notes.txt"]
    finally:
        procs.terminate(procs.servers_under(lab_dir))


def test_render_never_writes_into_a_lab(lab: LabSpec, lab_home: Path, tmp_path: Path) -> None:
    conf = (lab.base_dir / "redis-1" / "redis.conf").read_text()
    for target in (lab.base_dir / "redis-1", lab.base_dir / "new" / "deeper"):
        _usage_error(run_lab("render", "--out", str(target), home=tmp_path), "is inside the directory of the lab")
    assert (lab.base_dir / "redis-1" / "redis.conf").read_text() == conf and not (lab.base_dir / "new").exists()


# A directory in the home that no `down --keep-data` left (a render, the user's own) is never adopted.
def test_up_adopts_only_what_down_keep_data_kept(tmp_path: Path) -> None:
    home = tmp_path / "home"
    out = home / "gate2"
    assert run_lab("render", "--out", str(out), home=tmp_path).returncode == 0
    before = sorted(str(p) for p in out.rglob("*"))
    _usage_error(run_lab("up", "--name", "gate2", "--backend", "local", home=home), "holds no lab")
    assert sorted(str(p) for p in out.rglob("*")) == before, "the rendered files are left as they were"


def test_logs_n_0_prints_nothing_and_n_2_the_last_two(lab: LabSpec, lab_home: Path) -> None:
    none = run_lab("logs", "--name", lab.name, "redis-1", "-n", "0", home=lab_home)
    assert none.returncode == 0 and none.stdout == ""
    two = run_lab("logs", "--name", lab.name, "redis-1", "-n", "2", home=lab_home)
    assert two.returncode == 0 and len(two.stdout.splitlines()) == 2


# Issue 24, case 13: `lab env` exported a 12-hex sha256 prefix of the password.
def test_lab_env_exports_no_password_fingerprint(lab: LabSpec, lab_home: Path) -> None:
    import hashlib

    exports = run_lab("env", "--name", lab.name, home=lab_home).stdout
    for secret in filter(None, (lab.password, lab.sentinel_password, *lab.acl_passwords.values())):
        digest = hashlib.sha256(secret.encode()).hexdigest()
        assert digest[:8] not in exports and secret not in exports
    assert (lab.base_dir / state.ENV_KEY).stat().st_mode & 0o777 == 0o600
    # The marker still tells lab env's own values from the user's (keyed, per lab).
    script = f'eval "$LAB_ENV"; {sys.executable} -m lab.cli render --profile lab --out "$OUT"'
    rendered = subprocess.run(
        ["bash", "-c", script],
        env={**os.environ, "LAB_ENV": exports, "OUT": str(lab_home.parent / "envr"), "LAB_HOME": str(lab_home)},
        capture_output=True,
        text=True,
        check=False,
    )
    assert rendered.returncode == 0 and "environment ignored: REDIS_HOST" in rendered.stderr, rendered.stderr


# Hostile tour D1: the lock file (or .locks) made a link to a file the user cares about was truncated.
def test_a_lock_that_is_a_link_is_refused_and_its_target_untouched(
    lab: LabSpec, lab_home: Path, tmp_path: Path
) -> None:
    decoy = tmp_path / "keep.txt"
    decoy.write_text("precious")
    lock = lab_home / ".locks" / f"{lab.name}.lock"
    lock.unlink()
    lock.symlink_to(decoy)
    try:
        _usage_error(run_lab("kill", "--name", lab.name, "redis-2", home=lab_home), "symbolic link")
        assert decoy.read_text() == "precious" and _running(lab) == 6
    finally:
        lock.unlink()
    home = tmp_path / "home2"
    home.mkdir()
    (tmp_path / "elsewhere").mkdir()
    (home / ".locks").symlink_to(tmp_path / "elsewhere")
    (home / "lab1").mkdir()
    (home / "lab1" / "state.json").write_text("{}")
    _usage_error(run_lab("down", "--name", "lab1", home=home), "not a directory of the lab home")
    assert list((tmp_path / "elsewhere").iterdir()) == []


# Hostile tour D2 and D3: a node directory swapped for a link made the servers write (and a graceful stop
# delete) pidfiles, logs, configs with passwords and data wherever it pointed.
def test_a_node_directory_that_is_a_link_stops_every_command(tmp_path: Path) -> None:
    home, decoy = tmp_path / "home", tmp_path / "decoy"
    decoy.mkdir()
    (decoy / "redis.pid").write_text("x")
    gate3 = lab_name("gate3")
    assert run_lab("up", "--name", gate3, "--backend", "local", home=home, timeout=120).returncode == 0
    lab_dir = home / gate3
    real = lab_dir / "redis-1.real"
    try:
        (lab_dir / "redis-1").rename(real)
        (lab_dir / "redis-1").symlink_to(decoy)
        for command in (["down"], ["status"], ["kill", "redis-2"], ["heal"]):
            _usage_error(run_lab(command[0], "--name", gate3, *command[1:], home=home), "symbolic link to")
        assert sorted(p.name for p in decoy.iterdir()) == ["redis.pid"] and (decoy / "redis.pid").read_text() == "x"
        assert len(procs.servers_under(lab_dir)) == 6, "nothing was stopped"
        (lab_dir / "redis-1").unlink()
        real.rename(lab_dir / "redis-1")
        kept = run_lab("down", "--name", gate3, "--keep-data", home=home)
        assert kept.returncode == 0, kept.stderr
        # A kept lab whose node directory became a link is not adopted either.
        (lab_dir / "redis-2").rename(tmp_path / "redis-2.moved")
        (lab_dir / "redis-2").symlink_to(decoy)
        _usage_error(run_lab("up", "--name", gate3, "--backend", "local", home=home), "symbolic link to")
        assert sorted(p.name for p in decoy.iterdir()) == ["redis.pid"]
    finally:
        procs.terminate(procs.servers_under(lab_dir))


def test_secrets_are_written_by_rename_never_through_a_link(tmp_path: Path) -> None:
    from lab.secretfiles import write_secret

    target = tmp_path / "target"
    target.write_text("precious")
    link = tmp_path / "redis.pass"
    link.symlink_to(target)
    write_secret(link, "s3cret")
    assert target.read_text() == "precious" and not link.is_symlink() and link.read_text() == "s3cret\n"
    assert link.stat().st_mode & 0o777 == 0o600 and sorted(p.name for p in tmp_path.iterdir()) == [
        "redis.pass",
        "target",
    ]
