"""What `lab` prints without rich (one-line errors, `lab list`) is what rich printed for the same text, and the
parser a command line gets has that command's arguments."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from lab import cli

TEXTS = [
    "perf\tlocal\tlab\t/tmp/labs/perf",
    "a-much-longer-lab-name\tcompose\tproduction\t/x\t(copied or moved from /y: `lab down` removes it)",
    "lab status: lab 'x' is not running (no state in /tmp/x)",
    "bell\x07 back\x08 vt\x0b ff\x0c cr\r esc\x1b[31m del\x7f tab\tend",
    "[yellow]not markup[/] 100% ok :smile:",
    "wide\tcharacters ok\t\u5e93\u5b58\tstatus",
]


@pytest.mark.parametrize("text", TEXTS)
@pytest.mark.parametrize("stderr", [False, True])
def test_a_plain_line_is_what_rich_printed(
    text: str, stderr: bool, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    rich_out = io.StringIO()
    Console(file=rich_out, highlight=False, soft_wrap=True, emoji=False).print(text, markup=False)
    lazy = cli._Console(stderr=stderr, highlight=False, soft_wrap=True, emoji=False)
    lazy.line(text)
    captured = capsys.readouterr()
    assert (captured.err if stderr else captured.out) == rich_out.getvalue()
    plain = all(c == "\t" or " " <= c <= "~" for c in text)
    assert (lazy._made is None) == plain, "rich is loaded only for text that is not plain ASCII"


@pytest.mark.parametrize(
    ("argv", "command"),
    [
        (["status", "--name", "drill"], "status"),
        (["--home", "drill", "status"], "status"),
        (["--hom", "/x", "drill", "kill-master"], "drill"),
        (["--home=/x", "drill"], "drill"),
        (["--help"], None),
        ([], None),
    ],
)
def test_the_command_of_a_command_line(argv: list[str], command: str | None) -> None:
    assert cli._command(argv) == command


def test_only_the_named_command_gets_its_arguments() -> None:
    assert cli.build_parser(["drill", "kill-master"]).parse_args(["drill", "kill-master"]).scenario == "kill-master"
    argv = ["--home", "drill", "status", "--json"]
    args = cli.build_parser(argv).parse_args(argv)
    assert (args.command, args.json, str(args.home)) == ("status", True, "drill")
    up = cli.build_parser(["up"]).parse_args(["up"])
    assert up.timeout is None and cli._timeout(up) == 30.0
    with pytest.raises(SystemExit):  # `up` was not named: listed, without its arguments
        cli.build_parser(["status"]).parse_args(["up", "--timeout", "5"])
