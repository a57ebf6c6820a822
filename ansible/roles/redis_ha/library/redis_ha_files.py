#!/usr/bin/python3
"""Ansible module: a host's plain files for redis-ha in one run: directories, files (whole content) and
links, each with its owner and mode, in the order given.

One module run costs a host about as much as the work of all of these together (Ansible ships and starts
the module each time), and a deploy wrote some twenty of them: written one by one, they were most of a
deploy's time. Semantics are those of ``file``/``copy`` for what the role uses:

- ``directory``: made (with its missing parents, each with the entry's owner and mode) when missing; owner and
  mode set when they differ (through a link to a directory); a file in its place is an error;
- ``file``: written atomically (a file beside it, owner and mode set, renamed over it) when its content differs
  or a link stands in its place (replaced, as ``copy`` does); owner and mode set when they differ; a directory in
  its place is an error;
- ``link``: a symbolic link to ``src``, put in place atomically over a link or file that is not that link
  (``force``); a directory in its place is an error.

An entry with ``systemd: true`` is written only where systemd is installed (``/etc/systemd/system``);
the result says whether it is, and whether it runs (``systemd``: running, installed or none).
``--check`` writes nothing and says what would change. The result names the paths that changed, never
their content.
"""

from __future__ import annotations

import grp
import os
import pwd
import stat
import tempfile
from typing import Any

from ansible.module_utils.basic import AnsibleModule

SYSTEMD_DIR = "/etc/systemd/system"


def systemd_here() -> str:
    if os.path.isdir("/run/systemd/system"):
        return "running"
    return "installed" if os.path.isdir(SYSTEMD_DIR) else "none"


def _ids(owner: str, group: str) -> tuple[int, int] | None:
    """The ids of an owner and group; None when this host has not one of them (a --check before the role
    made its user)."""
    try:
        return pwd.getpwnam(owner).pw_uid, grp.getgrnam(group).gr_gid
    except KeyError:
        return None


def _content_differs(path: str, content: str) -> bool:
    """Whether ``path`` lacks this content (a link counts as lacking it: the file replaces it, as copy does)."""
    if os.path.islink(path):
        return True
    try:
        with open(path, "rb") as f:
            return f.read() != content.encode()
    except FileNotFoundError:
        return True


def _wanted(module: AnsibleModule, path: str, entry: dict[str, Any]) -> tuple[int, int, int] | None:
    """(uid, gid, mode) the entry asks for; None under --check when its user is not made yet (else a failure)."""
    owner, group = entry["owner"], entry["group"] or entry["owner"]
    ids = _ids(owner, group)
    if ids is None:
        if not module.check_mode:
            module.fail_json(msg=f"{path}: no user or group {owner}:{group} here")
        return None
    return ids[0], ids[1], int(str(entry["mode"]), 8)


def _write(path: str, content: str, uid: int, gid: int, mode: int) -> None:
    """Atomically: a file beside it, whole, with its owner and mode, then renamed over it (never a moment
    without the old file, or with the new one not yet executable)."""
    fd, tmp = tempfile.mkstemp(prefix=".redis-ha-", dir=os.path.dirname(path))
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(content.encode())
            out.flush()
            os.fchown(out.fileno(), uid, gid)
            os.fchmod(out.fileno(), mode)
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def _metadata(module: AnsibleModule, path: str, entry: dict[str, Any]) -> bool:
    """Owner, group and mode as the entry says (through a link to a directory, as the file module goes);
    whether they changed (or would)."""
    wanted = _wanted(module, path, entry)
    if wanted is None:
        return True
    uid, gid, mode = wanted
    st = os.stat(path)
    changed = False
    if (st.st_uid, st.st_gid) != (uid, gid):
        changed = True
        if not module.check_mode:
            os.chown(path, uid, gid)
    if stat.S_IMODE(st.st_mode) != mode:
        changed = True
        if not module.check_mode:
            os.chmod(path, mode)
    return changed


def _directory(module: AnsibleModule, path: str, entry: dict[str, Any]) -> bool:
    if os.path.isdir(path):
        return _metadata(module, path, entry)
    if os.path.lexists(path):
        module.fail_json(msg=f"{path}: a file where a directory goes (move it away)")
    if module.check_mode:
        return True
    missing = [path]
    while not os.path.lexists(parent := os.path.dirname(missing[-1])):
        missing.append(parent)
    for directory in reversed(missing):  # (each one made gets the entry's owner and mode, as the file module does)
        os.mkdir(directory)
        _metadata(module, directory, entry)
    return True


def apply(module: AnsibleModule, entry: dict[str, Any]) -> bool:
    """Put one entry in place; whether it changed (or would, under --check)."""
    path, state = entry["path"], entry["state"]
    if state == "link":
        if os.path.islink(path) and os.readlink(path) == entry["src"]:
            return False
        if os.path.isdir(path) and not os.path.islink(path):
            module.fail_json(msg=f"{path}: a directory where the link to {entry['src']} goes")
        if not module.check_mode:
            os.symlink(entry["src"], tmp := os.path.join(os.path.dirname(path), f".redis-ha-{os.getpid()}.link"))
            os.replace(tmp, path)  # (atomically: never a moment without it)
        return True
    if state == "directory":
        return _directory(module, path, entry)
    if os.path.isdir(path) and not os.path.islink(path):
        module.fail_json(msg=f"{path}: a directory where a file goes (move it away)")
    if not _content_differs(path, entry["content"]):
        return _metadata(module, path, entry)
    wanted = _wanted(module, path, entry)
    if not module.check_mode and wanted is not None:
        _write(path, entry["content"], *wanted)
    return True


def main() -> None:
    entry_spec = {
        "path": {"type": "str", "required": True},
        "state": {"type": "str", "default": "file", "choices": ["file", "directory", "link"]},
        "content": {"type": "str"},
        "src": {"type": "str"},
        "owner": {"type": "str", "default": "root"},
        "group": {"type": "str"},
        "mode": {"type": "str", "default": "0644"},
        "systemd": {"type": "bool", "default": False},
    }
    module = AnsibleModule(
        argument_spec={"files": {"type": "list", "elements": "dict", "options": entry_spec, "required": True}},
        supports_check_mode=True,
    )
    systemd = systemd_here()
    changed = []
    for entry in module.params["files"]:
        if entry["systemd"] and systemd == "none":
            continue
        if entry["state"] == "file" and entry["content"] is None:
            module.fail_json(msg=f"{entry['path']}: a file needs its content")
        if entry["state"] == "link" and not entry["src"]:
            module.fail_json(msg=f"{entry['path']}: a link needs its src")
        if apply(module, entry):
            changed.append(entry["path"])
    module.exit_json(changed=bool(changed), changed_paths=changed, systemd=systemd)


if __name__ == "__main__":
    main()
