"""lab lint: one deliberately broken deployment per rule, each producing exactly its finding."""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from lab.confparse import parse
from lab.lint import RULES, lint_paths, lint_profile
from lab.profile import available_profiles, load_profile
from lab.render import render_profile
from lab.servers import Server
from tests.helpers import run_lab


def rendered(tmp_path: Path, profile_name: str = "lab") -> Path:
    out = tmp_path / profile_name
    render_profile(load_profile(profile_name, {}), out, name="lint")
    return out


def conf(root: Path, node: str) -> Path:
    return root / node / ("redis.conf" if node.startswith("redis") else "sentinel.conf")


def sub(root: Path, node: str, pattern: str, replacement: str) -> None:
    path = conf(root, node)
    text, count = re.subn(pattern, replacement, path.read_text(), flags=re.M)
    assert count, f"{pattern!r} not found in {path}"
    path.write_text(text)


def append(root: Path, node: str, line: str) -> None:
    path = conf(root, node)
    path.write_text(path.read_text() + "\n" + line + "\n")


def write(root: Path, text: str | bytes) -> None:
    path = root / "redis.conf"
    path.write_bytes(text if isinstance(text, bytes) else text.encode())


def rules(root: Path, lab: bool = True, server: Server | None = None) -> set[str]:
    return {f.rule for f in lint_paths(sorted(root.rglob("*.conf")), lab=lab, server=server)}


#: A Redis 6.2 build as lint sees it (lint reads the capability table, it never runs the binary).
REDIS_62 = Server("redis", (6, 2, 14), Path("/nonexistent/redis-server"), Path("/nonexistent/redis-cli"), "test")


def myid(root: Path, node: str) -> str:
    return parse(conf(root, node)).value("sentinel myid")


def own_replication_user(root: Path, node: str, user: str, password: str = "p" * 32) -> None:
    """``node`` replicates as ``user``, a replication user only its own file defines."""
    append(root, node, f"user {user} on >{password} resetchannels -@all +psync +replconf +ping")
    sub(root, node, r"^masteruser .*", f"masteruser {user}")
    sub(root, node, r"^masterauth .*", f'masterauth "{password}"')


@dataclass(frozen=True)
class Broken:
    """A deployment broken in exactly one way: ``base`` rendered (or, for "file", one hand-written file)."""

    edit: Callable[[Path], object]
    base: str = "lab"
    lab: bool = True
    server: Server | None = None  # lint the files as meant for this build


#: The production render (ACL users), linted as a production deployment.
PRODUCTION: dict[str, Any] = {"base": "production", "lab": False}

BROKEN: dict[str, Broken] = {
    # Today's render (for Redis 7.0) handed to a 6.2 fleet: bind-source-addr & co. would not start.
    "L007": Broken(lambda r: None, server=REDIS_62),
    "AUTH001": Broken(
        lambda r: (
            sub(r, "redis-3", r'^requirepass ".*"', 'requirepass "other"'),
            sub(r, "redis-3", r'^masterauth ".*"', 'masterauth "other"'),
        )
    ),
    "AUTH002": Broken(lambda r: sub(r, "redis-2", r'^masterauth ".*"', 'masterauth "stale"')),
    "AUTH003": Broken(
        lambda r: sub(r, "sentinel-2", r'^sentinel auth-pass (\S+) ".*"', r'sentinel auth-pass \1 "stale"')
    ),
    "MEM001": Broken(lambda r: sub(r, "redis-2", r"^maxmemory \S+", "maxmemory 0")),
    "MEM002": Broken(lambda r: sub(r, "redis-1", r"^maxmemory-policy \S+", "maxmemory-policy allkeys-lru")),
    "NOTIFY001": Broken(lambda r: sub(r, "redis-1", r"^notify-keyspace-events .*", 'notify-keyspace-events "x"')),
    "PERS001": Broken(
        lambda r: (
            sub(r, "redis-3", r"^appendonly yes", "appendonly no"),
            sub(r, "redis-3", r"^save .*(\n^save .*)*", 'save ""'),
        )
    ),
    "REPL001": Broken(lambda r: sub(r, "redis-1", r"^min-replicas-to-write \d+", "min-replicas-to-write 3")),
    "REPL002": Broken(lambda r: sub(r, "redis-2", r"^replicaof .*", "")),
    "REPL003": Broken(lambda r: sub(r, "redis-3", r"^replicaof (\S+)\.1 ", r"replicaof \1.2 ")),
    "SEN001": Broken(lambda r: shutil.rmtree(r / "sentinel-3")),
    "SEN002": Broken(lambda r: sub(r, "sentinel-2", r"^sentinel monitor mymaster", "sentinel monitor othermaster")),
    "SEN003": Broken(lambda r: [sub(r, f"sentinel-{i}", r"^(sentinel monitor .*) 2$", r"\1 5") for i in (1, 2, 3)]),
    "SEN004": Broken(lambda r: [sub(r, f"sentinel-{i}", r"^(sentinel monitor .*) 2$", r"\1 1") for i in (1, 2, 3)]),
    "SEN005": Broken(
        lambda r: (
            shutil.copytree(r / "sentinel-3", r / "sentinel-4"),
            sub(r, "sentinel-4", r"^sentinel myid \S+", "sentinel myid " + "4" * 40),
            [sub(r, f"sentinel-{i}", r"^(sentinel monitor .*) 2$", r"\1 3") for i in (1, 2, 3, 4)],
        )
    ),
    "SEN006": Broken(
        lambda r: sub(r, "sentinel-1", r"^sentinel failover-timeout (\S+) \d+", r"sentinel failover-timeout \1 500")
    ),
    "SEN007": Broken(
        lambda r: [
            sub(r, f"sentinel-{i}", r"^sentinel monitor (\S+) \S+ ", r"sentinel monitor \1 127.0.0.99 ")
            for i in (1, 2, 3)
        ]
    ),
    "SEN008": Broken(
        lambda r: sub(r, "sentinel-1", r"^sentinel resolve-hostnames yes", "sentinel resolve-hostnames no"),
        base="production",
        lab=False,
    ),
    "SEN009": Broken(lambda r: sub(r, "sentinel-2", r"^sentinel myid \S+", "sentinel myid " + myid(r, "sentinel-1"))),
    # A lab's seeded Sentinel state copied into a production deployment.
    "SEN010": Broken(lambda r: append(r, "sentinel-1", "sentinel myid " + "1" * 40), **PRODUCTION),
    "F001": Broken(lambda r: conf(r, "redis-2").chmod(0o644)),
    "L001": Broken(lambda r: append(r, "redis-1", 'maxclients "100')),
    "L002": Broken(lambda r: append(r, "redis-1", "no-such-directive yes")),
    "L003": Broken(lambda r: append(r, "redis-1", "maxclients 100")),
    "L004": Broken(lambda r: write(r, "Dear ops team,\nplease restart the cache tonight.\nThanks\n"), base="file"),
    "L005": Broken(lambda r: write(r, b"\x80\x81\xfe\xff" * 10), base="file"),
    "L006": Broken(lambda r: sub(r, "redis-2", r'^pidfile "(.*)"', r"pidfile /var/run/my redis/\1")),
    "NET001": Broken(lambda r: write(r, "bind 0.0.0.0\nprotected-mode no\nport 6379\n"), base="file"),
    "NET002": Broken(lambda r: write(r, "bind 10.0.0.1 -::1\nprotected-mode yes\nport 6379\n"), base="file"),
    # The issue's own example: an open default user appended after requirepass.
    "ACL001": Broken(lambda r: append(r, "redis-2", "user default on nopass ~* &* +@all")),
    "ACL002": Broken(lambda r: sub(r, "redis-1", r"^(user app .*) -@dangerous -@admin", r"\1"), **PRODUCTION),
    "ACL003": Broken(lambda r: sub(r, "redis-1", r"^(user sentinel on \S+) .*", r"\1 allchannels +@all"), **PRODUCTION),
    "ACL004": Broken(lambda r: sub(r, "redis-2", r"^masteruser .*\n", ""), **PRODUCTION),
    # A node's masterauth that its own replica user refuses (every other node refuses it too, so no ACL009).
    "ACL005": Broken(lambda r: sub(r, "redis-2", r'^masterauth ".*"', 'masterauth "' + "s" * 32 + '"'), **PRODUCTION),
    # The master sends no AUTH: fine while it is the master, refused once a failover makes it a replica.
    "ACL008": Broken(lambda r: sub(r, "redis-1", r"^masteruser .*\nmasterauth .*\n", ""), **PRODUCTION),
    # The master logs in as a user only it defines: every node accepts itself, no other node accepts it.
    "ACL009": Broken(lambda r: own_replication_user(r, "redis-1", "replica2"), **PRODUCTION),
    "ACL010": Broken(lambda r: sub(r, "sentinel-2", r"^sentinel auth-user .*\n", ""), **PRODUCTION),
    "ACL006": Broken(lambda r: sub(r, "redis-1", r"^(user app .*)$", r"\1 &*"), **PRODUCTION),
    "ACL007": Broken(lambda r: sub(r, "redis-1", r"^(user monitor .*)$", r"\1 +config|get"), **PRODUCTION),
    "AUTH004": Broken(lambda r: append(r, "redis-1", "user ops on >short -@all +ping"), **PRODUCTION),
    "TLS001": Broken(lambda r: append(r, "redis-1", "tls-port 6380"), **PRODUCTION),
    "TLS002": Broken(lambda r: append(r, "redis-1", "tls-port 6380\ntls-auth-clients no")),
    "F002": Broken(
        lambda r: ((r / "redis-1" / "key.pem").write_text("KEY"), append(r, "redis-1", 'tls-key-file "key.pem"'))
    ),
}


def test_every_rule_has_a_broken_deployment_and_nothing_else_does() -> None:
    assert set(BROKEN) == set(RULES)


@pytest.mark.parametrize("rule", sorted(RULES))
def test_each_broken_deployment_produces_exactly_its_finding(tmp_path: Path, rule: str) -> None:
    case = BROKEN[rule]
    if case.base == "file":
        root = tmp_path / "files"
        root.mkdir()
    else:
        root = rendered(tmp_path, case.base)
        assert rules(root, lab=case.base == "lab") == set(), "the untouched render is clean"
    case.edit(root)
    assert rules(root, lab=case.lab, server=case.server) == {rule}


def test_the_docs_rule_table_is_the_registry() -> None:
    readme = (Path(__file__).parents[2] / "docs" / "lint.md").read_text()
    rows = re.findall(r"^\| ([A-Z]+\d{3}) \| (error|warning) \| (.*) \|$", readme, flags=re.M)
    assert sorted(rows) == sorted((r.id, r.severity, r.rationale) for r in RULES.values())


def test_list_rules_prints_the_registry(tmp_path: Path) -> None:
    listed = run_lab("lint", "--list-rules", "--json", home=tmp_path)
    assert listed.returncode == 0
    assert {row["rule"]: row["severity"] for row in json.loads(listed.stdout)} == {
        r.id: r.severity for r in RULES.values()
    }
    human = run_lab("lint", "--list-rules", home=tmp_path).stdout.splitlines()
    assert len(human) == len(RULES) and human[0].split()[:2] == ["ACL001", "error"]


@pytest.mark.parametrize(
    ("text", "rule"),
    [
        ("bind 0.0.0.0\nprotected-mode NO\nport 6379\n", "NET001"),  # Redis reads yes/no in any case
        ("bind 127.0.0.1\nmaxmemory-policy NoEviction\n", None),
        ("bind 127.0.0.1\nmaxmemory-policy ALLKEYS-LRU\n", "MEM001"),
        ("", "L004"),
    ],
)
def test_single_hand_written_files(tmp_path: Path, text: str, rule: str | None) -> None:
    path = tmp_path / "redis.conf"
    path.write_text(text)
    assert {f.rule for f in lint_paths([path])} == ({rule} if rule else set())


def test_what_sentinel_writes_into_its_own_file_is_not_flagged(tmp_path: Path) -> None:
    root = rendered(tmp_path)
    append(root, "sentinel-1", "latency-tracking-info-percentiles 50 99 99.9")
    append(root, "sentinel-1", "user default on #" + "a" * 64 + " ~* &* +@all")
    append(root, "sentinel-1", "sentinel current-epoch 1")
    assert rules(root) == set()


def test_unreadable_and_binary_files_are_reported_not_crashed_on(tmp_path: Path) -> None:
    binary = tmp_path / "dump.conf"
    binary.write_bytes(b"\x80\x81\xfe\xff" * 10)
    assert [(f.rule, f.why) for f in lint_paths([binary])] == [("L005", "not a text file")]
    assert [(f.rule, f.why) for f in lint_paths([tmp_path / "gone.conf"])] == [
        ("L005", "cannot read (No such file or directory)")
    ]


def test_quoted_values_and_include_chains(tmp_path: Path) -> None:
    (tmp_path / "common.conf").write_text('maxclients 50\nrequirepass "two words"\ninclude main.conf\n')
    main = tmp_path / "main.conf"
    main.write_text(f"include {tmp_path / 'common.conf'}\nport 6379\nmaxclients 60\n")
    parsed = parse(main)
    assert parsed.value("requirepass") == "two words"
    assert parsed.value("maxclients") == "60", "a later directive overrides an included one"
    assert parsed.get("requirepass").file == tmp_path / "common.conf"  # type: ignore[union-attr]
    assert any("include loop" in message for _, message in parsed.errors)
    findings = lint_paths([main])
    assert {f.rule for f in findings} >= {"L001", "L003"}


@pytest.mark.parametrize("profile", available_profiles())
def test_every_shipped_profile_lints_clean(profile: str) -> None:
    assert lint_profile(profile) == []


def test_lint_cli_round_trip_and_json(tmp_path: Path) -> None:
    out = tmp_path / "prod"
    assert run_lab("render", "--profile", "production", "--out", str(out), home=tmp_path).returncode == 0
    clean = run_lab("lint", str(out), home=tmp_path)
    assert clean.returncode == 0 and "0 error(s), 0 warning(s)" in clean.stdout
    sub(out, "redis-2", r'^masterauth ".*"', 'masterauth "an-old-password-0123456789"')
    broken = run_lab("lint", str(out), "--json", home=tmp_path)
    assert broken.returncode == 1
    [finding] = json.loads(broken.stdout)
    assert finding == {
        "rule": "ACL005",
        "severity": "error",
        "file": str(conf(out, "redis-2")),
        "line": finding["line"],
        "directive": "masteruser",
        "why": "replicas log in as replica, but the password is not user replica's: replication fails",
    }
    assert conf(out, "redis-2").read_text().splitlines()[finding["line"] - 1].startswith("masteruser")
    assert run_lab("lint", home=tmp_path).returncode == 0, "every shipped profile, rendered then linted"
    missing = run_lab("lint", str(tmp_path / "nope"), home=tmp_path)
    assert (
        missing.returncode == 1
        and missing.stderr.strip() == f"lab lint: {tmp_path / 'nope'}: no such file or directory"
    )


SENTINEL_RULES = load_profile("production", {}).acl["users"]["sentinel"]


@pytest.mark.parametrize(
    ("user", "rules_", "found"),
    [
        # issue 24's production users: app with every channel, monitor with CONFIG GET
        ("app", "~* &* +@all -@dangerous -@admin +role +info", {"ACL006"}),
        ("app", "~* allchannels +@all -@dangerous -@admin", {"ACL006"}),
        ("app", "~* resetchannels &__sentinel__:* +@all -@dangerous -@admin", {"ACL006"}),
        ("app", "~* resetchannels &* +@all -@dangerous -@admin", {"ACL006"}),
        ("app", "~* resetchannels &events:* &__keyevent@*__:* +@all -@dangerous -@admin", set()),
        ("app", "~* allchannels resetchannels &events:* +@all -@dangerous -@admin", set()),
        ("app", "~* allchannels -@all +get +subscribe", set()),  # may not publish
        ("monitor", "resetchannels -@all +ping +info +config|get", {"ACL007"}),
        ("monitor", "resetchannels -@all +ping +info +config", {"ACL002"}),
        ("monitor", "resetchannels -@all +ping +info +@admin", {"ACL002"}),
        ("monitor", "resetchannels -@all +ping +info +config|get -config|get", set()),
        ("replica", "resetchannels -@all +psync +replconf +ping +config|get", {"ACL007"}),
        ("sentinel", SENTINEL_RULES.replace("&__sentinel__:hello", "allchannels"), {"ACL003"}),
        ("sentinel", SENTINEL_RULES.replace("&__sentinel__:hello", "&__sentinel__:*"), {"ACL003"}),
    ],
)
def test_channel_and_secret_rules_of_each_user(tmp_path: Path, user: str, rules_: str, found: set[str]) -> None:
    root = rendered(tmp_path, "production")
    sub(root, "redis-1", rf"^(user {user} on \S+) .*$", rf"\1 {rules_}")
    assert rules(root, lab=False) == found


def test_a_user_without_resetchannels_gets_every_channel_where_the_default_is_allchannels(tmp_path: Path) -> None:
    """Redis 6.2's acl-pubsub-default is allchannels: a user line without resetchannels has every channel."""
    root = rendered(tmp_path, "production")
    sub(root, "redis-1", r"^(user app on \S+) .*$", r"\1 ~* +@all -@dangerous -@admin")
    assert rules(root, lab=False) == set()  # 7.0's default: no channel
    append(root, "redis-1", "acl-pubsub-default allchannels")
    assert rules(root, lab=False) == {"ACL006"}


# -- issue 25 item 8: every replication and Sentinel login on every data node, in both directions ----
@pytest.mark.parametrize(
    ("edit", "found"),
    [
        # masteruser alone: Redis sends no AUTH without masterauth
        (lambda r: sub(r, "redis-2", r"^masterauth .*\n", ""), {"ACL008"}),
        # a replica (not the master) whose replica user has another password, its masterauth following it:
        # it refuses the others and they refuse it (both directions)
        (
            lambda r: (
                sub(r, "redis-3", r"^user replica on \S+", "user replica on >" + "q" * 32),
                sub(r, "redis-3", r'^masterauth ".*"', 'masterauth "' + "q" * 32 + '"'),
            ),
            {"ACL009"},
        ),
        # a replica user that is off on one node only (its own masteruser is another user)
        (
            lambda r: (
                own_replication_user(r, "redis-2", "replica2"),
                sub(r, "redis-2", r"^(user replica on) ", r"user replica off "),
            ),
            {"ACL009"},
        ),
        # the replica user off on one node that itself logs in as it: ACL005 there, and ACL009 on the other
        # nodes, whose logins that node refuses once a failover makes it their master
        (lambda r: sub(r, "redis-2", r"^(user replica on) ", r"user replica off "), {"ACL005", "ACL009"}),
        # the master's replica user without +psync: the replicas are refused on start (ACL009 on them)
        (lambda r: sub(r, "redis-1", r"^(user replica .*) \+psync", r"\1"), {"ACL005", "ACL009"}),
        # auth-user alone: Sentinel sends no AUTH
        (lambda r: sub(r, "sentinel-3", r"^sentinel auth-pass .*\n", ""), {"ACL010"}),
        # the default user named explicitly is still the default user
        (
            lambda r: sub(r, "sentinel-1", r"^sentinel auth-user (\S+) \S+", r"sentinel auth-user \1 default"),
            {"ACL010"},
        ),
    ],
)
def test_replication_and_sentinel_logins_across_nodes(
    tmp_path: Path, edit: Callable[[Path], object], found: set[str]
) -> None:
    root = rendered(tmp_path, "production")
    edit(root)
    assert rules(root, lab=False) == found


def test_cross_node_findings_name_the_nodes_and_the_fix(tmp_path: Path) -> None:
    root = rendered(tmp_path, "production")
    sub(root, "redis-3", r"^user replica on \S+", "user replica on >" + "q" * 32)
    sub(root, "redis-3", r'^masterauth ".*"', 'masterauth "' + "q" * 32 + '"')
    findings = lint_paths(sorted(root.rglob("*.conf")))
    by_node = {Path(f.file).parent.name: f for f in findings}
    assert set(by_node) == {"redis-1", "redis-2", "redis-3"}
    assert "refused on redis-3 (the password is not user replica's)" in by_node["redis-1"].why
    assert "refused on redis-1, redis-2 (the password is not user replica's)" in by_node["redis-3"].why
    assert all(f.directive == "masteruser" and "+psync +replconf +ping" in f.fix for f in findings)


def test_a_user_off_on_one_node_is_acl009_on_the_nodes_it_refuses(tmp_path: Path) -> None:
    """docs/lint.md's ACL009 case "a user off on one node": after a failover to redis-2, redis-1 and redis-3
    log in to it as replica and are refused, so their masteruser lines are the findings; ACL005 stays on
    redis-2's own line."""
    root = rendered(tmp_path, "production")
    sub(root, "redis-2", r"^(user replica on) ", r"user replica off ")
    found = {(f.rule, Path(f.file).parent.name): f for f in lint_paths(sorted(root.rglob("*.conf")))}
    assert set(found) == {("ACL005", "redis-2"), ("ACL009", "redis-1"), ("ACL009", "redis-3")}
    for node in ("redis-1", "redis-3"):
        finding = found[("ACL009", node)]
        assert finding.directive == "masteruser" and "refused on redis-2 (user replica is off)" in finding.why


# -- a partial deployment: data nodes linted without their Sentinels' files ----------------------------
def test_a_partial_deployment_does_not_call_sentinels_user_an_application_user(tmp_path: Path) -> None:
    """One node's file, or the data nodes alone: no sentinel auth-user says whose the user `sentinel` is, so
    lint must not tell its owner to take away what Sentinel runs (ACL002) or its hello channel (ACL006)."""
    out = tmp_path / "r"
    assert run_lab("render", "--profile", "production", "--out", str(out), home=tmp_path).returncode == 0
    one = run_lab("lint", str(conf(out, "redis-2")), home=tmp_path)
    assert one.returncode == 1 and [line.split()[2] for line in one.stdout.splitlines()[:-1]] == ["REPL002", "REPL001"]
    assert "sentinel" not in one.stdout
    node = run_lab("lint", "--deployments", str(out / "redis-1"), home=tmp_path)
    assert node.returncode == 1 and [line.split()[2] for line in node.stdout.splitlines()[:-1]] == ["REPL001"]
    data = tmp_path / "data"
    for name in ("redis-1", "redis-2", "redis-3"):
        shutil.copytree(out / name, data / name)
    clean = run_lab("lint", str(data), home=tmp_path)
    assert clean.returncode == 0 and clean.stdout.strip() == "0 error(s), 0 warning(s)"


def test_a_partial_deployment_still_judges_what_no_role_may_have(tmp_path: Path) -> None:
    """Without the Sentinels' files: a user that cannot run what Sentinel runs is an application's (judged as
    always); one that can (+@all) is told only what neither Sentinel nor an application needs."""
    root = rendered(tmp_path, "production")
    for name in ("sentinel-1", "sentinel-2", "sentinel-3"):
        shutil.rmtree(root / name)
    assert rules(root, lab=False) == set()
    sub(root, "redis-1", r"^(user app .*)$", r"\1 &*")  # no SLAVEOF: not Sentinel's, whatever the files omit
    assert rules(root, lab=False) == {"ACL006"}
    sub(root, "redis-1", r"^(user app .*) -@dangerous -@admin", r"\1")  # +@all: it could be Sentinel's
    [finding] = lint_paths(sorted(root.rglob("*.conf")), lab=False)
    assert finding.rule == "ACL002" and finding.why.startswith("user app may run ACL, ") and "FLUSHALL" in finding.why
    assert "SLAVEOF" not in finding.why and "CONFIG|REWRITE" not in finding.why
    assert "if it is Sentinel's, give it only -@all" in finding.why
    # with the Sentinels' files the role is known again: an application user, judged in full
    shutil.copytree(rendered(tmp_path / "whole", "production") / "sentinel-1", root / "sentinel-1")
    assert rules(root, lab=False) >= {"ACL002", "ACL006"}


def test_the_new_login_rules_leave_requirepass_deployments_to_the_auth_rules(tmp_path: Path) -> None:
    """The lab profile (requirepass, no ACL users): a stale masterauth is AUTH002's alone."""
    root = rendered(tmp_path)
    sub(root, "redis-2", r'^masterauth ".*"', 'masterauth "stale"')
    sub(root, "sentinel-1", r"^sentinel auth-pass .*\n", "")
    assert rules(root) == {"AUTH002", "AUTH003"}
