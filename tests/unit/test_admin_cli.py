"""redis-admin's command table and argument types (no server)."""

from __future__ import annotations

import argparse

import pytest

from redis_ha_admin.cli import COMMANDS, _key, build_parser
from redis_ha_admin.values import ttl_seconds


def _subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    actions = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return {name: sub for action in actions for name, sub in action.choices.items()}


def _offered(parser: argparse.ArgumentParser) -> set[tuple[str, str]]:
    return {(area, command) for area, sub in _subcommands(parser).items() for command in _subcommands(sub)}


def test_every_command_the_parser_offers_is_in_the_table() -> None:
    assert _offered(build_parser()) == set(COMMANDS)


@pytest.mark.parametrize(("pttl", "ttl"), [(-2, -2.0), (-1, -1.0), (0, 0.0), (1500, 1.5), (42_123, 42.123)])
def test_one_ttl_helper(pttl: int, ttl: float) -> None:
    assert ttl_seconds(pttl) == ttl


def test_a_key_argument_that_is_not_utf8_becomes_its_bytes() -> None:
    assert _key("cache:\udcff") == b"cache:\xff"
    assert _key("cache:é") == "cache:é"


@pytest.mark.parametrize(
    "argv",
    [
        ["--password=S3cret-pw", "sessions", "count"],
        ["--password", "S3cret-pw", "sessions", "count"],
        ["--pasword", "S3cret-pw", "sessions", "count"],
    ],
)
def test_a_password_on_the_command_line_is_never_repeated_in_an_error(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    """Hostile tour: `redis-admin --password=VALUE` (an option it does not have) echoed the value."""
    from redis_ha_admin.cli import main

    with pytest.raises(SystemExit) as exited:
        main(argv)
    err = capsys.readouterr().err
    assert exited.value.code == 2 and "S3cret-pw" not in err and "***" in err


def test_a_negative_database_is_bad_usage_before_connecting(capsys: pytest.CaptureFixture[str]) -> None:
    from redis_ha_admin.cli import main

    with pytest.raises(SystemExit) as exited:
        main(["--port", "1", "--db", "-1", "sessions", "count"])
    assert exited.value.code == 2 and "expected a database index" in capsys.readouterr().err
