"""Rendering both profiles: every directive carries the profile's value, errors are clear, files are 0600."""

from __future__ import annotations

import dataclasses
import hashlib
import stat
from pathlib import Path

import pytest

from lab.confparse import ConfFile, parse
from lab.errors import LabError
from lab.profile import load_profile
from lab.render import render_lab, render_profile
from lab.spec import build_spec
from tests.helpers import run_lab

# Template directive -> profile key under `redis:` (the values must appear verbatim).
REDIS_DIRECTIVES = {
    "protected-mode": "protected_mode",
    "tcp-backlog": "tcp_backlog",
    "timeout": "timeout",
    "tcp-keepalive": "tcp_keepalive",
    "loglevel": "loglevel",
    "databases": "databases",
    "stop-writes-on-bgsave-error": "stop_writes_on_bgsave_error",
    "rdbcompression": "rdbcompression",
    "dbfilename": "dbfilename",
    "appendonly": "appendonly",
    "appendfsync": "appendfsync",
    "no-appendfsync-on-rewrite": "no_appendfsync_on_rewrite",
    "aof-use-rdb-preamble": "aof_use_rdb_preamble",
    "auto-aof-rewrite-percentage": "auto_aof_rewrite_percentage",
    "auto-aof-rewrite-min-size": "auto_aof_rewrite_min_size",
    "replica-read-only": "replica_read_only",
    "replica-serve-stale-data": "replica_serve_stale_data",
    "repl-diskless-sync": "repl_diskless_sync",
    "repl-diskless-sync-delay": "repl_diskless_sync_delay",
    "repl-backlog-size": "repl_backlog_size",
    "repl-timeout": "repl_timeout",
    "min-replicas-to-write": "min_replicas_to_write",
    "min-replicas-max-lag": "min_replicas_max_lag",
    "maxmemory": "maxmemory",
    "maxmemory-policy": "maxmemory_policy",
    "maxmemory-samples": "maxmemory_samples",
    "maxclients": "maxclients",
    "slowlog-log-slower-than": "slowlog_log_slower_than",
    "slowlog-max-len": "slowlog_max_len",
    "latency-monitor-threshold": "latency_monitor_threshold",
    "enable-debug-command": "enable_debug_command",
    "enable-protected-configs": "enable_protected_configs",
    "lazyfree-lazy-eviction": "lazyfree",
    "replica-lazy-flush": "lazyfree",
}
SENTINEL_DIRECTIVES = {
    "sentinel down-after-milliseconds": "down_after_milliseconds",
    "sentinel failover-timeout": "failover_timeout",
    "sentinel parallel-syncs": "parallel_syncs",
    "sentinel master-reboot-down-after-period": "master_reboot_down_after_period",
}
NO_ENV: dict[str, str] = {}


def values(conf: ConfFile) -> dict[str, list[str]]:
    """Directive -> every value it is given, as Redis reads them (quotes removed)."""
    found: dict[str, list[str]] = {}
    for directive in conf.directives:
        found.setdefault(directive.name, []).append(directive.value)
    return found


def render(profile_name: str, tmp_path: Path, env: dict[str, str] | None = None):
    profile = load_profile(profile_name, env or NO_ENV)
    spec, paths = render_profile(profile, tmp_path / "out", name="unit")
    return profile, spec, {p.parent.name: values(parse(p)) for p in paths}


def assert_users(conf: dict[str, list[str]], spec, profile, section: str) -> None:
    """One `user` line per profile user, with the SHA-256 of its password, never the password."""
    expected = ["default off resetkeys resetchannels -@all"]
    for name, rules in profile.acl[section].items():
        digest = hashlib.sha256(spec.acl_passwords[f"{section}/{name}"].encode()).hexdigest()
        expected.append(f"{name} on #{digest} {rules}")
    assert conf["user"] == expected
    assert not any(
        spec.acl_passwords[f"{section}/{name}"] in line for line in conf["user"] for name in profile.acl[section]
    )


@pytest.mark.parametrize("profile_name", ["lab", "production"])
def test_every_directive_has_the_profile_value(profile_name: str, tmp_path: Path) -> None:
    profile, spec, confs = render(profile_name, tmp_path)
    for node in spec.redis_nodes:
        conf = confs[node.name]
        for directive, key in REDIS_DIRECTIVES.items():
            assert conf[directive] == [str(profile.redis[key])], (node.name, directive)
        assert conf["notify-keyspace-events"] == [profile.redis["notify_keyspace_events"]]
        assert conf["save"] == profile.redis["save"]
        if spec.acl:  # named users, the default user off; replicas log in as replica
            assert "requirepass" not in conf
            assert conf["masteruser"] == ["replica"] and conf["masterauth"] == [spec.acl_passwords["users/replica"]]
            assert_users(conf, spec, profile, "users")
        else:
            assert conf["requirepass"] == [spec.password] == conf["masterauth"]
        assert conf["port"] == [str(profile.redis_port)]
        assert conf["replica-priority"] == [str(node.replica_priority)]
        assert conf["client-output-buffer-limit"] == profile.redis["client_output_buffer_limit"]
    assert "replicaof" not in confs["redis-1"]
    master = spec.initial_master
    for name in ("redis-2", "redis-3"):
        assert confs[name]["replicaof"] == [f"{master.host} {master.port}"]
    for node in spec.sentinels:
        conf = confs[node.name]
        for directive, key in SENTINEL_DIRECTIVES.items():
            assert conf[directive] == [f"{profile.master_name} {profile.sentinel[key]}"]
        assert conf["sentinel monitor"] == [f"{profile.master_name} {master.host} {master.port} {profile.quorum}"]
        if spec.acl:  # Sentinel logs in to the data nodes as sentinel, to its peers as peer
            assert conf["sentinel auth-user"] == [f"{profile.master_name} sentinel"]
            assert conf["sentinel auth-pass"] == [f"{profile.master_name} {spec.acl_passwords['users/sentinel']}"]
            assert conf["sentinel sentinel-user"] == ["peer"]
            assert conf["sentinel sentinel-pass"] == [spec.acl_passwords["sentinel_users/peer"]]
            assert_users(conf, spec, profile, "sentinel_users")
        else:
            assert conf["sentinel auth-pass"] == [f"{profile.master_name} {spec.password}"]
            assert conf["requirepass"] == [spec.sentinel_password]
        seeded = "sentinel myid" in conf
        assert seeded == profile.seed_sentinel_discovery
        if seeded:
            assert len(conf["sentinel known-replica"]) == 2
            assert len(conf["sentinel known-sentinel"]) == 2


def test_lab_nodes_each_own_a_loopback_address(tmp_path: Path) -> None:
    _, spec, confs = render("lab", tmp_path)
    hosts = {n.host for n in spec.nodes}
    assert len(hosts) == 6 and all(h.startswith("127.") and h != "127.0.0.1" for h in hosts)
    for node in spec.nodes:
        assert confs[node.name]["bind"] == [node.host]
        assert confs[node.name]["bind-source-addr"] == [node.host]
    myids = {confs[n.name]["sentinel myid"][0] for n in spec.sentinels}
    assert len(myids) == 3


def test_production_uses_profile_hosts_and_no_lab_seeding(tmp_path: Path) -> None:
    profile, spec, confs = render("production", tmp_path)
    assert spec.initial_master.host == profile.hosts["redis-1"]
    assert confs["redis-1"]["dir"] == [profile.paths["dir"]]
    assert "bind-source-addr" not in confs["redis-1"]
    assert not any(k.startswith("sentinel known") or k == "sentinel myid" for c in confs.values() for k in c)


def secret_file(tmp_path: Path, value: str, mode: int = 0o600) -> Path:
    path = tmp_path / f"secret-{mode:o}"
    path.write_text(value + "\n")
    path.chmod(mode)
    return path


def test_environment_overrides_win(tmp_path: Path) -> None:
    env = {
        "REDIS_PORT": "7001",
        "REDIS_PASSWORD": "s3cret-Pass",
        "SENTINEL_PASSWORD": "sent-pass",
        "SENTINEL_MASTER_NAME": "sessions",
        "REDIS_HOST": "10.1.2.3",
        "SENTINEL_HOSTS": "s1.example:26379,s2.example:26379,s3.example:26379",
        "REDIS_SESSION_DB_INDEX": "4",
        "REDIS_CACHE_DB_INDEX": "5",
        "REDIS_PUBSUB_DB_INDEX": "6",
        "REDIS_ACL_APP_PASSWORD": "app-Pass-0123456789",
        "SENTINEL_ACL_CLIENT_PASSWORD_FILE": str(secret_file(tmp_path, "client-Pass-0123456789")),
    }
    profile, spec, confs = render("production", tmp_path, env)
    assert confs["redis-1"]["port"] == ["7001"]
    assert confs["redis-2"]["replicaof"] == ["10.1.2.3 7001"]
    # The production profile has ACL users: one shared password would be ignored, theirs are taken.
    assert profile.ignored and all("ACL" in why for why in profile.ignored)
    assert "requirepass" not in confs["redis-1"] and "requirepass" not in confs["sentinel-2"]
    app_hash = hashlib.sha256(b"app-Pass-0123456789").hexdigest()
    assert any(line.startswith(f"app on #{app_hash} ") for line in confs["redis-1"]["user"])
    assert spec.acl_passwords["sentinel_users/client"] == "client-Pass-0123456789"
    assert confs["sentinel-3"]["sentinel monitor"] == ["sessions 10.1.2.3 7001 2"]
    assert [n.host for n in spec.sentinels] == ["s1.example", "s2.example", "s3.example"]
    assert spec.databases == {"session": 4, "cache": 5, "pubsub": 6}


def test_missing_value_is_an_error_naming_it(profile_file) -> None:
    path = profile_file(edit=lambda d: d["redis"].pop("maxclients"))
    with pytest.raises(LabError, match=r"profile-0.yaml: redis.maxclients: missing$"):
        load_profile(path, NO_ENV)


def test_a_template_error_leaves_nothing_behind(tmp_path: Path) -> None:
    profile = load_profile("lab", NO_ENV)
    broken = dataclasses.replace(profile, redis={k: v for k, v in profile.redis.items() if k != "maxclients"})
    spec = build_spec("unit", broken, backend="none", base_dir=tmp_path / "out")
    with pytest.raises(LabError, match="maxclients"):
        render_lab(spec, broken, tmp_path / "out")
    assert list(tmp_path.iterdir()) == [], "no half-rendered or staging directory left behind"


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda d: d["topology"].update(quorum=5), r"topology.quorum: .*less than or equal to 3 \(got 5\)"),
        (lambda d: d["topology"].update(redis_port="sixty"), "topology.redis_port: .*valid integer"),
        (lambda d: d["topology"].update(redis_port=70000), "less than or equal to 65535"),
        (lambda d: d["redis"].update(maxmemory_policy="allkeys-nope"), "redis.maxmemory_policy: .*'allkeys-nope'"),
        (lambda d: d["databases"].update(cache=16), r"databases.cache: 16 is out of range \(0 to 15\)"),
        (lambda d: d.pop("sentinel"), "sentinel: missing"),
        (lambda d: d["redis"].update(maxmemroy=1), r"redis.maxmemroy: unknown key \(did you mean redis.maxmemory\?\)"),
        (lambda d: d["sentinel"].update(down_after_milisecond=5), r"did you mean sentinel.down_after_milliseconds\?"),
        (lambda d: d.update(topolgy={}), r"topolgy: unknown key \(did you mean topology\?\)"),
        (lambda d: d["redis"].update(maxmemory="-1gb"), "redis.maxmemory: a memory size is a non-negative number"),
        (lambda d: d["redis"].update(maxmemory="1gb\nprotected-mode no"), "redis.maxmemory: a memory size"),
        (lambda d: d["redis"].update(dbfilename="dump.rdb\nprotected-mode no"), "newline or another control character"),
        (lambda d: d["redis"]["include"].append("/etc/x.conf\rbind 0.0.0.0"), "control character"),
        (lambda d: d["topology"].update(master_name="my master"), "topology.master_name"),
        (lambda d: d["redis"].update(save=["every minute"]), "a save rule is 'SECONDS CHANGES'"),
        (lambda d: d["redis"].update(repl_timeout="60s"), "redis.repl_timeout: .*valid integer"),
        (lambda d: d["redis"].update(notify_keyspace_events="Exq"), "combination of KEg"),
        (lambda d: d["redis"].update(client_output_buffer_limit=["normal 0 0"]), "CLASS HARD SOFT SECONDS"),
        (lambda d: d["redis"].update(protected_mode="maybe"), "redis.protected_mode: .*'yes' or 'no'"),
    ],
)
def test_malformed_profile_values(profile_file, edit, message: str) -> None:
    with pytest.raises(LabError, match=message) as raised:
        load_profile(profile_file(edit=edit), NO_ENV)
    assert "\n" not in str(raised.value), "one line"


def test_yaml_booleans_and_upper_case_become_what_redis_reads(profile_file) -> None:
    overrides = {"appendonly": True, "protected_mode": "YES", "maxmemory": "256MB"}
    profile = load_profile(profile_file(redis=overrides), NO_ENV)
    assert (profile.redis["appendonly"], profile.redis["protected_mode"], profile.redis["maxmemory"]) == (
        "yes",
        "yes",
        "256mb",
    )


def test_env_values_are_validated() -> None:
    with pytest.raises(LabError, match="REDIS_PORT"):
        load_profile("lab", {"REDIS_PORT": "abc"})
    with pytest.raises(LabError, match="REDIS_PASSWORD"):
        load_profile("lab", {"REDIS_PASSWORD": 'has "quotes" and spaces'})
    with pytest.raises(LabError, match="SENTINEL_HOSTS must name 3"):
        load_profile("production", {"SENTINEL_HOSTS": "a:26379"})


def test_rendered_files_hold_secrets_0600(tmp_path: Path) -> None:
    profile = load_profile("lab", NO_ENV)
    spec = build_spec("unit", profile, backend="none", base_dir=tmp_path / "out")
    for path in render_lab(spec, profile, tmp_path / "out"):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
        assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700, path.parent


def test_render_cli(tmp_path: Path) -> None:
    result = run_lab("render", "--profile", "production", "--out", str(tmp_path / "prod"), home=tmp_path)
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in (tmp_path / "prod").iterdir()) == [
        "monitoring",
        "redis-1",
        "redis-2",
        "redis-3",
        "sentinel-1",
        "sentinel-2",
        "sentinel-3",
        "users",
    ]
    assert "rendered 6 files" in result.stdout
    # The alert rules with the profile's timers (docs/monitoring.md), where the output names them.
    rules = tmp_path / "prod" / "monitoring" / "rules" / "redis-ha.rules.yml"
    assert f"alert rules for Prometheus: {rules}" in result.stdout.replace("\n", "")
    assert "for: 1m" in rules.read_text() and "[5m]" in rules.read_text()
    # The ACL users' generated passwords: the one copy of each (the configs hold their hashes), 0600.
    users = tmp_path / "prod" / "users"
    assert stat.S_IMODE(users.stat().st_mode) == 0o700 and "generated the passwords of 8 ACL users" in result.stderr
    for path in users.iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o600 and len(path.read_text().strip()) >= 16, path
    chosen = run_lab(
        "render",
        "--profile",
        "production",
        "--out",
        str(tmp_path / "mine"),
        home=tmp_path,
        env={"REDIS_ACL_ADMIN_PASSWORD_FILE": str(secret_file(tmp_path, "admin-Pass-0123456789", 0o644))},
    )
    assert chosen.returncode == 2 and not (tmp_path / "mine").exists()
    assert chosen.stderr.strip() == (
        f"lab render: REDIS_ACL_ADMIN_PASSWORD_FILE: {tmp_path}/secret-644 is readable by others (mode 644): "
        f"chmod 600 {tmp_path}/secret-644"
    )


def test_acl_rules_never_hold_a_password(profile_file) -> None:
    path = profile_file(base="production", edit=lambda d: d["acl"]["users"].update(app="on >hunter2 ~* +@all"))
    with pytest.raises(LabError, match=r"acl.users.app: 'on': give only the rules; a user's password and on/off"):
        load_profile(path, NO_ENV)
    path = profile_file(base="production", edit=lambda d: d["acl"]["users"].pop("replica"))
    with pytest.raises(LabError, match=r"acl: .*users lacks replica \(the lab connects as them\)"):
        load_profile(path, NO_ENV)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["render", "--profile", "nope", "--out", "x"], "unknown profile 'nope' (available: cache, lab, production)"),
        (["up", "--name", "Bad Name!"], "lab name 'Bad Name!'"),
        (["up", "--backend", "kvm"], "unknown backend 'kvm'"),
        (["up", "--profile", "/etc/hostname"], "a profile is a YAML mapping"),
        (["logs", "--name", "ghost", "../redis.pass"], "lab 'ghost' is not running"),
        (["status", "--name", "ghost"], "lab 'ghost' is not running"),
        (["render"], "the following arguments are required: --out"),
        (["frobnicate"], "invalid choice: 'frobnicate'"),
    ],
)
def test_bad_input_is_one_clear_line(tmp_path: Path, args: list[str], message: str) -> None:
    result = run_lab(*args, home=tmp_path / "home")
    assert result.returncode == 2, "bad usage"
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "home").exists() and not (tmp_path / "x").exists()
