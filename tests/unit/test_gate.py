"""The gate for names and paths (lab.home), tried the way a careless or hostile user would: whatever
name and home every command is given, nothing outside that lab's own directory changes."""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lab import cli, state
from lab.errors import UsageError
from lab.home import lab_dir, validate_name

# Every command that takes a lab name, with what it needs besides; `up`, `drill` and `clients` are
# left out because a valid new name makes them start a lab (their name check is the same call).
COMMANDS = [
    ["down"],
    ["down", "--keep-data"],
    ["status"],
    ["status", "--json"],
    ["logs", "redis-1"],
    ["env"],
    ["heal"],
    ["kill", "redis-1"],
    ["stop", "sentinel-1"],
    ["restart", "redis-2"],
    ["freeze", "redis-1"],
    ["thaw", "redis-1"],
    ["isolate", "redis-1"],
    ["failover"],
    ["upgrade", "redis-1", "--server", "system"],
]
HOSTILE = ["..", ".", "../outside", "link", "junk", "home", "a/b", "", "x" * 41, "../../world", "/tmp", "junk/.."]
HOMES = ["home", "home/junk", "home/link", "world-is-home", "home/new/deeper"]


def _world() -> Path:
    """A tree around the lab home: a precious file beside it, a directory outside it that looks like a
    lab (garbage state.json), a link inside the home pointing there, a garbage lab inside the home."""
    world = Path(tempfile.mkdtemp(prefix="gate-"))
    (world / "precious.txt").write_text("precious")
    outside = world / "outside"
    outside.mkdir()
    (outside / "state.json").write_text("garbage")
    (outside / "keep.txt").write_text("keep")
    home = world / "home"
    (home / "junk").mkdir(parents=True)
    (home / "junk" / "state.json").write_text("garbage")
    (home / "junk" / "mine.txt").write_text("the user's")
    (home / "link").symlink_to(outside)
    (world / "state.json").write_text("garbage")
    return world


def _snapshot(root: Path) -> dict[str, tuple[str, str]]:
    found: dict[str, tuple[str, str]] = {}
    for directory, dirs, files in os.walk(root):
        for entry in [*dirs, *files]:
            path = Path(directory) / entry
            rel = str(path.relative_to(root))
            if path.is_symlink():
                found[rel] = ("link", os.readlink(path))
            elif path.is_dir():
                found[rel] = ("dir", oct(path.stat().st_mode))
            else:
                found[rel] = ("file", path.read_text(errors="replace") + oct(path.stat().st_mode))
    return found


def _run(argv: list[str]) -> int:
    sink = io.StringIO()
    with contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
        try:
            return cli.main(argv)
        except SystemExit as exc:  # argparse's usage error
            return int(exc.code or 0)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    command=st.sampled_from(COMMANDS),
    name=st.sampled_from(HOSTILE) | st.text(min_size=0, max_size=12),
    home_rel=st.sampled_from(HOMES),
)
def test_no_command_changes_anything_outside_the_lab_it_was_named(command: list[str], name: str, home_rel: str) -> None:
    world = _world()
    try:
        home = world if home_rel == "world-is-home" else world / home_rel
        before = _snapshot(world)
        code = _run(["--home", str(home), command[0], "--name", name, *command[1:]])
        after = _snapshot(world)
        try:
            validate_name(name)
            real = Path(os.path.realpath(home))  # a home may itself be a link: it is that directory
            allowed = real / name if not (real / name).is_symlink() else None
        except UsageError:
            allowed = None
            assert code == 2, f"an invalid name is bad usage: {name!r}"
        locks = Path(os.path.realpath(home)) / ".locks"

        def free(rel: str) -> bool:  # a path the command may change: its lab's directory, its lock
            path = world / rel
            return (allowed is not None and (path == allowed or allowed in path.parents)) or (
                path == locks or (path.parent == locks and path.name == f"{name}.lock")
            )

        changed = {rel for rel in before.keys() | after.keys() if before.get(rel) != after.get(rel)}
        assert {rel for rel in changed if not free(rel)} == set(), (command, name, home_rel, code)
        # A file the lab did not make survives even `down` of its own directory.
        assert (world / "home" / "junk" / "mine.txt").read_text() == "the user's"
        assert (world / "outside" / "keep.txt").exists() and (world / "precious.txt").exists()
    finally:
        shutil.rmtree(world, ignore_errors=True)


@pytest.mark.parametrize("name", ["..", ".", "a/b", "../x", "", "A", "-a", "a" * 41, "é", "a\nb", "a b"])
def test_a_lab_name_is_one_safe_path_component(name: str, tmp_path: Path) -> None:
    with pytest.raises(UsageError):
        lab_dir(tmp_path, name)


def test_a_lab_directory_that_is_a_link_is_refused(tmp_path: Path) -> None:
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "home").mkdir()
    (tmp_path / "home" / "lab1").symlink_to(tmp_path / "elsewhere")
    with pytest.raises(UsageError, match="symbolic link"):
        lab_dir(tmp_path / "home", "lab1")


def test_remove_deletes_only_what_a_lab_makes(tmp_path: Path) -> None:
    lab = tmp_path / "l1"
    for made in ("redis-1", "sentinel-3", "users", "tls"):
        (lab / made).mkdir(parents=True)
        (lab / made / "x").write_text("x")
    for made in ("state.json", "redis.pass", "env.key"):
        (lab / made).write_text("x")
    (lab / "notes.txt").write_text("mine")
    (lab / "redis.pass.bak").write_text("mine")
    (lab / "redis-9").mkdir()
    (lab / "state.json.d").mkdir()
    left = state.remove(lab)
    assert sorted(p.name for p in left) == ["notes.txt", "redis-9", "redis.pass.bak", "state.json.d"]
    assert sorted(p.name for p in lab.iterdir()) == ["notes.txt", "redis-9", "redis.pass.bak", "state.json.d"]
    for leftover in left:
        shutil.rmtree(leftover) if leftover.is_dir() else leftover.unlink()
    (lab / "redis-1").mkdir()
    assert state.remove(lab) == [] and not lab.exists(), "an empty lab directory goes too"


@pytest.mark.parametrize("value", ["abc", "-5", "inf", "nan", "1e9"])
def test_a_bad_lock_timeout_is_one_usage_error_not_a_traceback(
    value: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("LAB_LOCK_TIMEOUT", value)
    assert cli.main(["--home", str(tmp_path), "down", "--name", "x"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "LAB_LOCK_TIMEOUT" in err[0] and "Traceback" not in err[0]
    assert not (tmp_path / ".locks").exists(), "nothing was touched"


def test_a_home_that_is_a_file_or_unquotable_is_refused_and_never_created(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    afile = tmp_path / "file"
    afile.write_text("x")
    assert cli.main(["--home", str(afile), "list"]) == 2
    assert "is not a directory" in capsys.readouterr().err
    assert cli.main(["--home", str(afile / "below"), "down", "--name", "x"]) == 2
    quoted = tmp_path / 'a"b'
    assert cli.main(["--home", str(quoted), "down", "--name", "x"]) == 2
    assert not quoted.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["file"]


@pytest.mark.parametrize("argv", [["--home", "", "list"], ["render", "--out", ""]])
def test_an_empty_path_is_not_the_current_directory(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert _run(argv) == 2


def test_list_says_when_there_is_no_lab(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["--home", str(tmp_path / "none"), "list"]) == 0
    assert capsys.readouterr().out.startswith("no labs under") and not (tmp_path / "none").exists()


@pytest.mark.parametrize("out", [".", ".locks", ".locks/x"])
def test_render_never_writes_into_the_home_itself_or_its_locks(out: str, tmp_path: Path) -> None:
    """Hostile tour: `render --out <home>` wrote six node directories with passwords into the home."""
    assert _run(["--home", str(tmp_path), "render", "--out", str(tmp_path / out)]) == 2
    assert list(tmp_path.iterdir()) == []
