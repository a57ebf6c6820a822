"""The role's one-run writer of a host's plain files (ansible/roles/redis_ha/library/redis_ha_files.py)."""

from __future__ import annotations

import grp
import os
import pwd
import stat
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from tests.helpers import role_module


def module() -> ModuleType:
    return role_module("redis_ha_files")


class Failed(Exception):
    pass


class FakeModule:
    """What apply() asks of AnsibleModule: check mode and fail_json."""

    def __init__(self, check: bool = False) -> None:
        self.check_mode = check

    def fail_json(self, msg: str) -> None:
        raise Failed(msg)


def entry(path: Path, **fields: Any) -> dict[str, Any]:
    owner, group = pwd.getpwuid(os.getuid()).pw_name, grp.getgrgid(os.getgid()).gr_name
    return {
        "path": str(path),
        "state": "file",
        "content": None,
        "src": None,
        "owner": owner,
        "group": group,
        "mode": "0644",
        "systemd": False,
    } | fields


def mode_of(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_file_is_written_once_then_left_and_its_mode_put_back(tmp_path: Path) -> None:
    files, path = module(), tmp_path / "bin" / "redis-1"
    (tmp_path / "bin").mkdir()
    wanted = entry(path, content="#!/bin/sh\nexit 0\n", mode="0755")
    assert files.apply(FakeModule(), wanted) is True
    assert path.read_text() == "#!/bin/sh\nexit 0\n" and mode_of(path) == 0o755
    assert files.apply(FakeModule(), wanted) is False
    path.chmod(0o600)
    assert files.apply(FakeModule(), wanted) is True and mode_of(path) == 0o755
    path.write_text("edited by hand\n")
    assert files.apply(FakeModule(check=True), wanted) is True  # --check: said, not done
    assert path.read_text() == "edited by hand\n"
    assert files.apply(FakeModule(), wanted) is True and path.read_text() == "#!/bin/sh\nexit 0\n"
    assert [p.name for p in path.parent.iterdir()] == ["redis-1"]  # (no temporary file left beside it)


def test_a_directory_is_made_with_its_parents_and_mode_and_check_makes_nothing(tmp_path: Path) -> None:
    files, path = module(), tmp_path / "opt" / "redis-ha" / "bin"
    wanted = entry(path, state="directory", mode="0750")
    assert files.apply(FakeModule(check=True), wanted) is True and not path.parent.exists()
    assert files.apply(FakeModule(), wanted) is True and mode_of(path) == 0o750
    assert files.apply(FakeModule(), wanted) is False


def test_a_link_replaces_what_is_not_it_and_is_then_left(tmp_path: Path) -> None:
    files, path = module(), tmp_path / "redis-ha.service"
    path.write_text("a stale copy\n")
    wanted = entry(path, state="link", src="/etc/systemd/system/redis-ha.service")
    assert files.apply(FakeModule(check=True), wanted) is True and not path.is_symlink()
    assert files.apply(FakeModule(), wanted) is True
    assert os.readlink(path) == "/etc/systemd/system/redis-ha.service"
    assert files.apply(FakeModule(), wanted) is False
    (tmp_path / "dir").mkdir()
    with pytest.raises(Failed, match="a directory where the link"):
        files.apply(FakeModule(), entry(tmp_path / "dir", state="link", src="/x"))


def test_an_owner_the_host_does_not_have_yet_is_a_change_under_check_and_an_error_otherwise(tmp_path: Path) -> None:
    files, path = module(), tmp_path / "conf"
    path.mkdir()
    wanted = entry(path, state="directory", owner="no-such-user-redis-ha", group=None, mode="0750")
    assert files.apply(FakeModule(check=True), wanted) is True
    with pytest.raises(Failed, match="no user or group no-such-user-redis-ha"):
        files.apply(FakeModule(), wanted)


def test_what_stands_in_an_entrys_place_is_replaced_when_copy_would_and_refused_otherwise(tmp_path: Path) -> None:
    files, target = module(), tmp_path / "elsewhere"
    target.write_text("not ours\n")
    link = tmp_path / "boot"
    link.symlink_to(target)
    wanted = entry(link, content="#!/bin/sh\n", mode="0755")
    assert files.apply(FakeModule(), wanted) is True  # (a link in a file's place is replaced, not written through)
    assert not link.is_symlink() and link.read_text() == "#!/bin/sh\n" and target.read_text() == "not ours\n"
    (tmp_path / "adir").mkdir()
    with pytest.raises(Failed, match="a directory where a file goes"):
        files.apply(FakeModule(), entry(tmp_path / "adir", content="x"))
    with pytest.raises(Failed, match="a file where a directory goes"):
        files.apply(FakeModule(), entry(target, state="directory", mode="0755"))


def test_new_parents_take_the_entrys_mode_and_a_linked_directory_is_followed(tmp_path: Path) -> None:
    files = module()
    deep = tmp_path / "var" / "lib" / "redis"
    assert files.apply(FakeModule(), entry(deep, state="directory", mode="0750")) is True
    assert mode_of(tmp_path / "var") == mode_of(tmp_path / "var" / "lib") == mode_of(deep) == 0o750
    real = tmp_path / "real"
    real.mkdir(mode=0o700)
    (tmp_path / "data").symlink_to(real)
    assert files.apply(FakeModule(), entry(tmp_path / "data", state="directory", mode="0750")) is True
    assert mode_of(real) == 0o750 and (tmp_path / "data").is_symlink()
    assert files.apply(FakeModule(), entry(tmp_path / "data", state="directory", mode="0750")) is False
