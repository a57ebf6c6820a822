"""check_redis_health's pure parts: Nagios ranges, worst-state logic and the three renderers."""

from __future__ import annotations

import ast
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from redis_ha_health import check_redis_health
from redis_ha_health.check_redis_health import (
    CRITICAL,
    OK,
    UNKNOWN,
    WARNING,
    InstanceFacts,
    Range,
    Thresholds,
    _parse,
    check,
    judge,
    judge_clients,
    judge_replicas,
    main,
    measured,
    render_json,
    render_nagios,
    render_prometheus,
)


@pytest.mark.parametrize(
    ("text", "alerting", "quiet"),
    [
        ("10", [-1, 10.5, 11], [0, 5, 10]),
        ("10:", [9.99, -5], [10, 1e9]),
        ("~:10", [10.1, 100], [-1e9, 0, 10]),
        ("10:20", [9, 21], [10, 15, 20]),
        ("@10:20", [10, 15, 20], [9, 21]),
        ("0.5:1.5", [0.4, 1.6], [0.5, 1.0, 1.5]),
    ],
)
def test_nagios_ranges(text: str, alerting: list[float], quiet: list[float]) -> None:
    r = Range.parse(text)
    assert [v for v in alerting if r.alerts(v)] == alerting
    assert [v for v in quiet if r.alerts(v)] == []


@pytest.mark.parametrize("text", ["", "abc", "20:10", "~", "1:2:3", "@"])
def test_invalid_ranges(text: str) -> None:
    with pytest.raises(ValueError, match="invalid Nagios range"):
        Range.parse(text)


def test_judge_worst_wins() -> None:
    assert judge(95, Range.parse("80"), Range.parse("90")) == CRITICAL
    assert judge(85, Range.parse("80"), Range.parse("90")) == WARNING
    assert judge(50, Range.parse("80"), Range.parse("90")) == OK
    assert Range.parse("10:").high == math.inf


def _sample() -> list[dict[str, object]]:
    return [
        measured("ping", 0.42, "ms", Range.parse("100"), Range.parse("500"), "PING took", "10.0.0.1:6379"),
        measured("memory", 85.0, "%", Range.parse("80"), Range.parse("90"), "used", "10.0.0.1:6379", hi=100),
        check("ckquorum", CRITICAL, "NOQUORUM 1 usable Sentinels", 0, target="sentinel 10.0.0.9:26379"),
    ]


def test_nagios_output_shape() -> None:
    lines = render_nagios(_sample()).splitlines()
    head, perf = lines[0].split(" | ")
    assert head == "REDIS CRITICAL - 10.0.0.1:6379: used 85% (+1 more)"
    assert "'10.0.0.1:6379 ping'=0.42ms;100;500;0" in perf
    assert "'10.0.0.1:6379 memory'=85%;80;90;0;100" in perf
    assert lines[1:] == [
        "WARNING: 10.0.0.1:6379: used 85%",
        "CRITICAL: sentinel 10.0.0.9:26379: NOQUORUM 1 usable Sentinels",
    ]


def test_json_and_prometheus_outputs() -> None:
    import json

    doc = json.loads(render_json(_sample(), {"target": "x", "duration_seconds": 0.01}))
    assert doc["schema_version"] == 1 and doc["status"] == "CRITICAL" and doc["exit_code"] == 2
    assert {"name", "state", "value", "unit", "warn", "crit", "message"} <= doc["checks"][0].keys()
    families = {f.name: f for f in text_string_to_metric_families(render_prometheus(_sample(), 0.01))}
    assert families["redis_health_status"].samples[0].value == 2
    states = {s.labels["check"]: s.value for s in families["redis_health_check_state"].samples}
    assert states == {"ping": 0, "memory": 1, "ckquorum": 2}


@pytest.mark.parametrize(
    "argv",
    [["--bogus"], ["--memory-warn", "20:10"], ["--port", "x"], ["--sentinel", "nohostport"], ["--timeout", "0"]],
)
def test_bad_arguments_are_unknown(argv: list[str]) -> None:
    printed: list[str] = []
    assert main(argv, out=printed.append) == 3
    assert len(printed) == 1 and printed[0].startswith("REDIS UNKNOWN - ")


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"REDIS_PORT": "abc"}, "REDIS_PORT: expected a port number (1-65535), got 'abc'"),
        ({"SENTINEL_HOSTS": "garbage"}, "SENTINEL_HOSTS: expected HOST:PORT, got 'garbage'"),
        ({"SENTINEL_HOSTS": "a:1,b:notaport"}, "SENTINEL_HOSTS: expected a port number (1-65535), got 'notaport'"),
    ],
)
def test_a_bad_environment_is_unknown_in_every_format(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], message: str
) -> None:
    for var in ("REDIS_HOST", "REDIS_PORT", "SENTINEL_HOSTS"):
        monkeypatch.delenv(var, raising=False)
    for var, value in env.items():
        monkeypatch.setenv(var, value)
    printed: list[str] = []
    assert main([], out=printed.append) == 3
    assert printed == [f"REDIS UNKNOWN - {message}"]
    printed.clear()
    assert main(["--format", "json"], out=printed.append) == 3
    doc = json.loads(printed[0])
    assert (doc["status"], doc["exit_code"], doc["error"]) == ("UNKNOWN", 3, message)
    printed.clear()
    assert main(["--format=prometheus"], out=printed.append) == 3
    assert "redis_health_status{} 3" in printed[0]


def test_bad_arguments_with_json_answer_in_json() -> None:
    printed: list[str] = []
    assert main(["--format", "json", "--memory-warn", "20:10"], out=printed.append) == 3
    assert json.loads(printed[0])["status"] == "UNKNOWN"


def test_the_file_runs_alone_on_a_monitoring_host() -> None:
    """It is copied alone and run as a plain file: it imports nothing but the standard library and redis-py
    (nothing of its own package; tests/integration/test_install.py runs it with the package uninstalled)."""
    tree = ast.parse(Path(check_redis_health.__file__).read_text())
    froms = [node for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)]
    names = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    names |= {node.module or "" for node in froms}
    assert all(node.level == 0 for node in froms), "no relative import"
    assert {name.split(".")[0] for name in names} - sys.stdlib_module_names == {"redis"}


def test_a_console_script_error_never_prints_a_traceback() -> None:
    script = Path(sys.executable).parent / "check-redis-health"
    result = subprocess.run(
        [str(script)], env={**os.environ, "REDIS_PORT": "abc"}, capture_output=True, text=True, check=False
    )
    assert result.returncode == 3 and result.stderr == "" and result.stdout.startswith("REDIS UNKNOWN - REDIS_PORT")


def _facts(info: dict[str, object], min_replicas: int | None = None) -> InstanceFacts:
    repl = {"role": "master", "replicas": [], "repl_backlog_size": 1}
    return InstanceFacts("h:6379", 1.0, dict(info), repl, min_replicas)


def _thresholds() -> Thresholds:
    return _parse(["--host", "h"]).thresholds


@pytest.mark.parametrize(
    ("info", "flag", "state", "text"),
    [
        ({}, None, None, ""),  # min-replicas-to-write off: INFO has no min_slaves_good_slaves
        (
            {"min_slaves_good_slaves": 0},
            None,
            CRITICAL,
            "0 replicas within min-replicas-max-lag, min-replicas-to-write on",
        ),
        ({"min_slaves_good_slaves": 1}, None, None, ""),
        ({"min_slaves_good_slaves": 1}, 2, CRITICAL, "1 replicas within min-replicas-max-lag, min-replicas-to-write 2"),
        ({"min_slaves_good_slaves": 2}, 2, None, ""),
    ],
)
def test_min_replicas_is_judged_from_info(
    info: dict[str, object], flag: int | None, state: int | None, text: str
) -> None:
    """No CONFIG GET (it reads masterauth): INFO says min-replicas-to-write is on, --min-replicas-to-write its value."""
    found = [c for c in judge_replicas(_facts(info, flag), _thresholds(), None) if c["name"] == "min_replicas"]
    assert [c["code"] for c in found] == ([state] if state is not None else [])
    assert all(text in c["message"] and c["message"].endswith("writes are refused") for c in found)


def test_maxclients_comes_from_info() -> None:
    (clients,) = judge_clients(_facts({"maxclients": 200, "connected_clients": 190}), _thresholds())
    assert clients["value"] == 95.0 and clients["code"] == CRITICAL


def _pem_files(tmp_path: Path) -> dict[str, Path]:
    """A CA, a certificate it signed and its key, and another key (the lab's own CA maker)."""
    from lab.tls import issue_lab_certificates

    files = issue_lab_certificates(tmp_path / "tls", "unit", ["127.0.0.1"])
    return {"ca": files.ca, "cert": files.client_cert, "key": files.client_key, "other_key": files.key}


@pytest.mark.parametrize(
    ("damage", "said"),
    [
        ("missing key", "TLS client key {key} (--key, REDIS_TLS_KEY) is missing"),
        ("key is a directory", "TLS client key {key} (--key, REDIS_TLS_KEY) is not a regular file (a directory)"),
        ("cert not PEM", "TLS client certificate {cert} (--cert, REDIS_TLS_CERT) is not a PEM certificate"),
        ("ca is a key", "TLS CA certificate {ca} (--cacert, REDIS_TLS_CA_CERT) is not a PEM certificate"),
        ("another key", "TLS client certificate {cert} and key {other_key} cannot be used (they do not match)"),
    ],
)
def test_a_broken_tls_file_is_unknown_naming_it(tmp_path: Path, damage: str, said: str) -> None:
    files = _pem_files(tmp_path)
    key = files["key"]
    if damage == "missing key":
        key.unlink()
    elif damage == "key is a directory":
        key.unlink()
        key.mkdir()
    elif damage == "cert not PEM":
        files["cert"].write_text("garbage")
    elif damage == "ca is a key":
        files["ca"].write_text(files["other_key"].read_text())
    else:
        key = files["other_key"]
    printed: list[str] = []
    args = ["--host", "127.0.0.1", "--cacert", str(files["ca"]), "--cert", str(files["cert"]), "--key", str(key)]
    assert main(args, out=printed.append) == UNKNOWN
    assert printed == [f"REDIS UNKNOWN - {said.format(**{k: str(v) for k, v in files.items()})}"]


@pytest.mark.parametrize("argv", [["--pasword=S3cret-pw"], ["--password", "S3cret-pw", "--bogus", "S3cret-pw"]])
def test_a_password_on_the_command_line_is_never_repeated_in_unknown(argv: list[str]) -> None:
    printed: list[str] = []
    assert main(argv, out=printed.append) == UNKNOWN
    assert "S3cret-pw" not in "\n".join(printed) and "***" in printed[0]
