"""Lifecycle trust: every case here once destroyed data, stopped the wrong server or left an orphan
that no command could find again; each is a regression test against real servers."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from lab import control, faults, nodes, procs, state
from lab.drill.steps import write_acked
from lab.failover import failover
from lab.lock import lab_lock
from lab.pytest_plugin import lab_name, require_backend, require_server
from lab.spec import LabSpec
from lab.topology import client, node_client
from lab.waits import wait_for
from tests.helpers import run_lab, running_parts, start_lab

pytestmark = pytest.mark.integration


def _one_line(result: subprocess.CompletedProcess[str], code: int, message: str) -> None:
    assert result.returncode == code, result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], result.stderr
    assert "Traceback" not in result.stderr


def _read(spec: LabSpec, key: str) -> str | None:
    master = nodes.current_master(spec)
    with client(master.host, master.port, spec.password) as conn:
        value = conn.get(key)
    return None if value is None else str(value)


# 1. A failed repair used to stop every node and delete the lab directory, data included.
@pytest.mark.one_server
def test_a_failed_repair_keeps_the_running_nodes_and_the_data(lab_factory, lab_home: Path) -> None:
    spec = lab_factory(tag="repair")
    write_acked(spec, {"precious": "kept"})
    faults.inject(spec, "kill", "redis-3")
    faults.inject(spec, "freeze", "sentinel-2")  # the lab cannot become healthy: the repair times out
    result = run_lab("up", "--name", spec.name, "--timeout", "0.5", home=lab_home)
    assert result.returncode == 1
    first = result.stderr.splitlines()[0]
    assert first.startswith(f"lab up: repair of lab {spec.name} failed: timed out after 0.5s"), result.stderr
    assert "the running nodes were left running and every node's data is in place" in first
    assert spec.base_dir.is_dir() and state.exists(lab_home, spec.name)
    assert [get_state(spec, n.name) for n in spec.nodes] == ["up", "up", "up", "up", "frozen", "up"]
    assert _read(spec, "precious") == "kept"
    assert run_lab("heal", "--name", spec.name, home=lab_home).returncode == 0
    again = run_lab("up", "--name", spec.name, home=lab_home)
    assert again.returncode == 0 and "already running" in again.stdout, again.stderr
    assert _read(spec, "precious") == "kept"


@pytest.mark.one_server
def test_a_repair_names_the_node_that_did_not_start_and_where_its_log_is(lab_factory, lab_home: Path) -> None:
    spec = lab_factory(tag="broken")
    write_acked(spec, {"precious": "kept"})
    node = spec.node("redis-3")
    faults.inject(spec, "kill", node.name)
    conf = spec.files(node).conf
    good = conf.read_text()
    conf.write_text(good + "\nno-such-directive yes\n")
    result = run_lab("up", "--name", spec.name, home=lab_home)
    assert result.returncode == 1
    line = result.stderr.splitlines()[0]
    assert f"repair of lab {spec.name} failed: redis-3 did not start" in line, result.stderr
    assert str(spec.files(node).logfile) in line
    assert "the running nodes were left running" in line
    assert all(get_state(spec, n.name) == "up" for n in spec.nodes if n != node)
    assert _read(spec, "precious") == "kept"
    conf.write_text(good)
    assert run_lab("up", "--name", spec.name, home=lab_home).returncode == 0


def get_state(spec: LabSpec, name: str) -> str:
    from lab.backends import get_backend

    return get_backend(spec.backend).node_state(spec, spec.node(name))


# 4. Two `lab up` of one name used to leave processes running in a deleted directory.
def test_concurrent_ups_of_one_name_make_one_lab(tmp_path: Path) -> None:
    home = tmp_path / "home"
    for attempt in range(3):
        name = lab_name(f"race{attempt}")
        ups = [
            subprocess.Popen(
                [sys.executable, "-m", "lab.cli", "up", "--backend", "local", "--name", name],
                env={**os.environ, "LAB_HOME": str(home)},
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for _ in range(2)
        ]
        outputs = [p.communicate(timeout=60) for p in ups]
        assert [p.returncode for p in ups] == [0, 0], outputs
        assert sum("already running" in out for out, _ in outputs) == 1, outputs
        assert len(procs.servers_under(home / name)) == 6
        down = run_lab("down", "--name", name, home=home)
        assert down.returncode == 0 and "is down" in down.stdout
        assert procs.servers_under(home / name) == [] and not (home / name).exists()


@pytest.mark.one_server
def test_a_command_on_a_busy_lab_waits_then_says_who_holds_it(lab: LabSpec, lab_home: Path) -> None:
    with lab_lock(lab_home, lab.name, "drill kill-master"):
        result = run_lab("kill", "--name", lab.name, "redis-2", home=lab_home, env={"LAB_LOCK_TIMEOUT": "0.5"})
    _one_line(result, 75, f"lab {lab.name} is busy (pid {os.getpid()}, command drill kill-master); waited 0.5s")
    assert get_state(lab, "redis-2") == "up", "nothing was done"


# 5. Ctrl-C during `lab up` of a new lab used to leave 1 to 6 processes running.
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
@pytest.mark.parametrize("servers", [1, 3, 6], ids=["master", "replicas", "sentinels"])
def test_an_interrupted_up_of_a_new_lab_removes_everything(tmp_path: Path, sig: signal.Signals, servers: int) -> None:
    home, name = tmp_path / "home", lab_name("intr")
    # The replicas sync only after 30 s: `up` waits for health long enough to be interrupted there.
    profile = tmp_path / "slow-sync.yaml"
    profile.write_text("extends: lab\nredis:\n  repl_diskless_sync_delay: 30\n")
    up = start_lab("up", "--backend", "local", "--name", name, "--profile", str(profile), home=home)
    try:
        wait_for(
            lambda: (len(procs.servers_under(home / name)) >= servers, len(procs.servers_under(home / name))),
            what=f"{servers} server(s) of the new lab",
            timeout=30,
            interval=0.002,
        )
        up.send_signal(sig)
        out, err = up.communicate(timeout=60)
    finally:
        if up.poll() is None:
            up.kill()
        if state.exists(home, name):  # never leave a lab behind, whatever happened
            run_lab("down", "--name", name, home=home)
    assert up.returncode == 128 + sig, out + err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    # It says what it undid, as it is (it used to say this for every command, whatever it had done).
    assert (
        f"lab up: interrupted by {sig.name}; undone: stopped the new lab {name}'s processes and removed its files"
        in err
    )
    assert procs.servers_under(home / name) == [], "every process the interrupted up started is gone"
    assert not (home / name).exists()
    assert run_lab("list", home=home).stdout.startswith("no labs under")


# 6. `lab down --name COPY` of a copied lab directory used to stop and delete the ORIGINAL lab.
@pytest.mark.one_server
def test_a_copied_lab_directory_is_never_an_alias(lab: LabSpec, lab_home: Path) -> None:
    copy = lab_home / f"{lab.name}-copy"[-40:]
    shutil.copytree(lab.base_dir, copy, ignore=shutil.ignore_patterns("appendonlydir"))
    try:
        _one_line(run_lab("up", "--name", copy.name, home=lab_home), 1, f"lab {copy.name} is a copy of")
        _one_line(run_lab("kill", "--name", copy.name, "redis-1", home=lab_home), 1, "is a copy of")
        down = run_lab("down", "--name", copy.name, home=lab_home)
        assert down.returncode == 0, down.stderr
        assert not copy.exists()
    finally:
        shutil.rmtree(copy, ignore_errors=True)
    assert running_parts(lab), "the original lab still runs"
    control.wait_healthy(lab, timeout=10)


# 7. After heal or failover, Redis and Sentinel used to rewrite their configs 0644 (they hold passwords).
def test_files_holding_secrets_stay_0600_after_failover_and_heal(lab: LabSpec, lab_home: Path) -> None:
    failover(lab)
    replica = next(n for n in lab.redis_nodes if n != nodes.current_master(lab))
    faults.inject(lab, "kill", replica.name)
    faults.heal(lab)  # restart + REPLICAOF + CONFIG REWRITE
    control.wait_healthy(lab, timeout=20)
    for path in [*lab.base_dir.rglob("*.conf"), *lab.base_dir.glob("*.pass"), lab.base_dir / "state.json"]:
        assert path.stat().st_mode & 0o077 == 0, f"{path} is {oct(path.stat().st_mode)}"
    linted = run_lab("lint", "--lab", str(lab.base_dir), home=lab_home)
    assert linted.returncode == 0, linted.stdout
    assert "F001" not in linted.stdout and "L002" not in linted.stdout, linted.stdout


# 8. A lab home with a space used to break every lab.
def test_a_lab_home_with_spaces_works(tmp_path: Path, lab_backend: str) -> None:
    require_backend(lab_backend)
    home = tmp_path / "my labs" / "ops team"
    name = lab_name(f"spaces-{lab_backend}")
    try:
        up = run_lab("up", "--backend", lab_backend, "--name", name, home=home, env={"LAB_PULL": "0"})
        assert up.returncode == 0, up.stderr
        assert 'pidfile "' in (home / name / "redis-1" / "redis.conf").read_text()
        assert run_lab("failover", "--name", name, home=home).returncode == 0
        assert run_lab("kill", "--name", name, "sentinel-2", home=home).returncode == 0
        assert run_lab("heal", "--name", name, home=home).returncode == 0
        assert run_lab("status", "--name", name, home=home).returncode == 0
    finally:
        spec = state.load(home, name) if state.exists(home, name) else None
        down = run_lab("down", "--name", name, home=home)
    assert down.returncode == 0, down.stderr
    assert spec is not None and running_parts(spec) == []


# 9. `lab env` and the "Connect:" hint used to be unquoted: a home holding $(...) was executed.
def test_lab_env_and_the_connect_hint_are_shell_quoted(tmp_path: Path) -> None:
    home = tmp_path / "$(touch pwned) 'q' a b"
    name = lab_name("quoted")
    try:
        up = run_lab("up", "--backend", "local", "--name", name, home=home)
        assert up.returncode == 0, up.stderr
        hint = next(line.strip() for line in up.stdout.splitlines() if line.strip().startswith("REDISCLI_AUTH="))
        env = run_lab("env", "--name", name, home=home).stdout
        shell = subprocess.run(
            ["bash", "-c", f'{hint} PING && eval "$LAB_ENV" && printf "%s\\n" "$REDIS_PASSWORD" "$REDIS_HOST"'],
            cwd=tmp_path,
            env={**os.environ, "LAB_ENV": env},
            capture_output=True,
            text=True,
            check=False,
        )
        spec = state.load(home, name)
        assert shell.returncode == 0, shell.stderr
        assert shell.stdout.split() == ["PONG", spec.password, spec.initial_master.host]
        assert not (tmp_path / "pwned").exists(), "nothing in the path was executed"
    finally:
        assert run_lab("down", "--name", name, home=home).returncode == 0


# 10. After `eval "$(lab env)"`, rendering used to fail (lab) or take the lab's values (production).
@pytest.mark.one_server
def test_lab_env_does_not_change_what_later_commands_render(lab: LabSpec, lab_home: Path, tmp_path: Path) -> None:
    exports = run_lab("env", "--name", lab.name, home=lab_home).stdout
    script = f"""
        eval "$LAB_ENV"
        {sys.executable} -m lab.cli render --profile lab --out {tmp_path}/lab || exit 11
        {sys.executable} -m lab.cli render --profile production --out {tmp_path}/prod || exit 12
    """
    rendered = subprocess.run(
        ["bash", "-c", script], env={**os.environ, "LAB_ENV": exports}, capture_output=True, text=True, check=False
    )
    assert rendered.returncode == 0, rendered.stderr
    assert f"environment ignored: REDIS_HOST (exported by `lab env --name {lab.name}`)" in rendered.stderr
    prod = (tmp_path / "prod" / "redis-2" / "redis.conf").read_text()
    assert "replicaof redis-1.internal 6379" in prod
    assert lab.password not in prod and lab.initial_master.host not in prod
    assert lab.password not in (tmp_path / "lab" / "redis-1" / "redis.conf").read_text()

    # The user's own REDIS_HOST: applied (and said) for production, refused for the loopback lab.
    mine = {"REDIS_HOST": "10.9.8.7"}
    applied = run_lab("render", "--profile", "production", "--out", str(tmp_path / "mine"), home=lab_home, env=mine)
    assert applied.returncode == 0 and "environment overrides applied: REDIS_HOST=10.9.8.7" in applied.stderr
    assert "replicaof 10.9.8.7 6379" in (tmp_path / "mine" / "redis-2" / "redis.conf").read_text()
    refused = run_lab("render", "--profile", "lab", "--out", str(tmp_path / "no"), home=lab_home, env=mine)
    _one_line(refused, 2, "REDIS_HOST is set, but this profile runs every node on its own loopback address")
    assert not (tmp_path / "no").exists()


# 12. User-caused errors of `lab` that used to print tracebacks.
@pytest.mark.one_server
def test_render_errors_are_one_line_and_leave_nothing(tmp_path: Path, lab: LabSpec, lab_home: Path) -> None:
    a_file = tmp_path / "a-file"
    a_file.write_text("keep me\n")
    _one_line(run_lab("render", "--out", str(a_file), home=tmp_path), 2, "is a file, not a directory")
    assert a_file.read_text() == "keep me\n"
    _one_line(run_lab("render", "--out", str(a_file / "sub"), home=tmp_path), 1, "cannot write")
    _one_line(run_lab("render", "--out", "/proc/lab-render", home=tmp_path), 1, "cannot write")
    _one_line(run_lab("render", "--out", str(lab.base_dir), home=lab_home), 2, "is a lab's directory")
    _one_line(run_lab("--home", "/proc/lab-home", "up", "--name", "x", home=tmp_path), 1, "cannot use the lab home")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a-file"], "no staging directory left behind"


@pytest.mark.one_server
def test_a_corrupt_state_file_is_reported_and_down_cleans_it_up(lab_factory, lab_home: Path) -> None:
    spec = lab_factory(tag="corrupt")
    (spec.base_dir / "state.json").write_text("{not json")
    _one_line(run_lab("status", "--name", spec.name, home=lab_home), 1, "state.json is unreadable")
    assert "unreadable" in run_lab("list", home=lab_home).stdout
    down = run_lab("down", "--name", spec.name, home=lab_home)
    if spec.backend == "local":
        _one_line(down, 1, "stopped 6 server process(es) working in it and removed")
        assert procs.servers_under(spec.base_dir) == []
    assert not spec.base_dir.exists()
    if spec.backend == "compose":
        from lab.backends import get_backend

        get_backend("compose").remove(spec)  # containers are named after the lab, not its state


@pytest.mark.one_server
def test_down_of_a_compose_lab_without_docker_says_what_it_could_not_remove(
    lab_factory, lab_home: Path, lab_backend: str
) -> None:
    if lab_backend != "compose":
        pytest.skip("compose only: a local lab needs no engine")
    spec = lab_factory(tag="nodocker")
    no_docker = {"DOCKER_HOST": f"unix://{lab_home}/no-engine.sock"}  # the engine is gone (lab drives it via its API)
    down = run_lab("down", "--name", spec.name, home=lab_home, env=no_docker)
    _one_line(down, 1, "could not remove the containers and network of compose project")
    assert "run `lab down --name" in down.stderr and state.exists(lab_home, spec.name), "state kept for a retry"
    assert running_parts(spec), "nothing was removed behind the user's back"
    again = run_lab("down", "--name", spec.name, home=lab_home)
    assert again.returncode == 0 and running_parts(spec) == []


def test_a_new_lab_that_fails_to_start_is_rolled_back_but_kept_data_stays(tmp_path: Path) -> None:
    """`down --keep-data` then a failing `up`: the kept data survives, the failed lab is gone."""
    home, name = tmp_path / "home", lab_name("kept")
    assert run_lab("up", "--backend", "local", "--name", name, home=home).returncode == 0
    spec = state.load(home, name)
    with client(spec.initial_master.host, spec.initial_master.port, spec.password) as conn:
        conn.set("kept", "1")
        conn.save()
    assert run_lab("down", "--name", name, "--keep-data", home=home).returncode == 0
    with socket_taken(spec.node("sentinel-2").host, spec.node("sentinel-2").port):
        failed = run_lab("up", "--backend", "local", "--name", name, home=home)
    _one_line(failed, 1, "address already in use")
    assert (home / name / "redis-1" / "dump.rdb").is_file(), "the kept data is still there"
    assert not state.exists(home, name) and procs.servers_under(home / name) == []
    up = run_lab("up", "--backend", "local", "--name", name, home=home)
    assert up.returncode == 0, up.stderr
    assert _read(state.load(home, name), "kept") == "1", "the new lab started from the kept data"
    assert run_lab("down", "--name", name, home=home).returncode == 0


class socket_taken:
    def __init__(self, host: str, port: int) -> None:
        import socket

        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((host, port))
        self.sock.listen()

    def __enter__(self) -> None:
        return None

    def __exit__(self, *_: object) -> None:
        self.sock.close()


def test_the_lock_file_of_a_lab_is_not_a_lab(tmp_path: Path) -> None:
    """The lock directory lives beside the labs; `lab list` never shows it and `down` ignores it."""
    with lab_lock(tmp_path, "solo", "test"):
        pass
    assert (tmp_path / ".locks" / "solo.lock").exists()
    assert run_lab("list", home=tmp_path).stdout.startswith("no labs under")
    assert "not running" in run_lab("down", "--name", "solo", home=tmp_path).stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["kill", "redis-9"], "lab kill: error: argument node: no node 'redis-9' (choose from: redis-1, "),
        (["isolate", "redis-1", "--from", "redis-1"], "lab isolate: --from redis-1: a node cannot be isolated from"),
        (["isolate", "redis-1", "--from", "sentinel-9"], "lab isolate: error: argument --from: no node 'sentinel-9'"),
        (["heal", "redis-0"], "lab heal: error: argument node: no node 'redis-0'"),
        (["heal", "--timeout", "nan"], "lab heal: error: argument --timeout: must be a number of seconds from 0 to"),
        (["up", "--timeout", "inf"], "lab up: error: argument --timeout: must be a number of seconds from 0 to"),
        (
            ["upgrade", "redis-1", "--server", "redis-7.0", "--timeout", "nan"],
            "lab upgrade: error: argument --timeout: must be a number of seconds from 0 to",
        ),
    ],
)
def test_bad_fault_and_heal_arguments_exit_2_before_the_lab_is_read(
    tmp_path: Path, args: list[str], message: str
) -> None:
    result = run_lab(*args, home=tmp_path)  # (no lab there: a usage error comes first)
    _one_line(result, 2, message)
    assert not (tmp_path / "default").exists()


# Issue 25 case 2: restore_config raised redis's ConnectionError (reset by peer) and only LabError was
# caught: the test errored instead of getting a fresh lab.
@pytest.mark.one_server
def test_a_shared_lab_that_answers_with_a_redis_error_is_replaced(lab_factory, lab_home: Path, lab_server: str) -> None:
    from lab.pytest_plugin import _Holder, heal_or_replace

    spec = lab_factory(tag="heal")
    for node in spec.redis_nodes:  # every tool's AUTH now fails: a redis-py AuthenticationError, not a LabError
        with node_client(spec, node) as conn:
            conn.config_set("requirepass", "changed-behind-the-labs-back")
    holder = _Holder(spec, lab_home, require_server(lab_server))
    fresh = heal_or_replace(holder)
    try:
        assert fresh.name != spec.name and holder.spec == fresh
        assert control.status(fresh.name, lab_home)[1] == 0
        assert not state.exists(lab_home, spec.name) and procs.servers_under(spec.base_dir) == []
    finally:
        control.down(fresh.name, lab_home)
