"""Ansible callback: one JSON line per task result, to the file REDIS_HA_EVENTS names, for `lab deploy`
(what changed on which host; why a host failed or did not answer), whatever the screen output."""

from __future__ import annotations

import json
import os
from typing import Any

from ansible.plugins.callback import CallbackBase

DOCUMENTATION = """
name: redis_ha_events
type: aggregate
short_description: task results as JSON lines, for lab deploy
description: Writes one JSON line per task result to the file named by REDIS_HA_EVENTS.
requirements: [enabled in callbacks_enabled]
"""


def _why(data: dict[str, Any]) -> str:
    """What a result says, in a line: a lifecycle script's own message when it printed one."""
    for line in str(data.get("stderr") or "").splitlines():
        if line.startswith(("manage_redis_server.sh: ", "manage_sentinel.sh: ")):
            return line.strip()[:500]
    return str(data.get("msg") or data.get("stderr") or "").strip()[:500]


class CallbackModule(CallbackBase):  # type: ignore[misc]
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "redis_ha_events"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self) -> None:
        super().__init__()
        self._path = os.environ.get("REDIS_HA_EVENTS", "")

    def _emit(self, status: str, result: Any) -> None:
        if not self._path:
            return
        data = result._result
        censored = data.get("censored") is not None
        event = {
            "host": result._host.get_name(),
            "task": result._task.get_name(),
            "status": "changed" if status == "ok" and data.get("changed") else status,
            "msg": "" if censored else _why(data),
        }
        if status in ("failed", "unreachable") and censored:
            event["msg"] = "(hidden: the task handles passwords; the host's own logs say more)"
        # (a task that writes many files, library/redis_ha_files.py: a change per file it changed)
        paths = data.get("changed_paths") if event["status"] == "changed" else None
        events = [{**event, "task": f"{event['task']}: {p}"} for p in paths] if paths else [event]
        with open(self._path, "a") as out:
            out.writelines(json.dumps(e) + "\n" for e in events)

    def v2_runner_on_ok(self, result: Any) -> None:
        self._emit("ok", result)

    def v2_runner_on_failed(self, result: Any, ignore_errors: bool = False) -> None:
        self._emit("ignored" if ignore_errors else "failed", result)

    def v2_runner_item_on_ok(self, result: Any) -> None:
        """A task's note to the user, one per line of its output that starts with "pending: "."""
        for line in str(result._result.get("stdout") or "").splitlines():
            if line.startswith("pending: ") and self._path:
                event = {"host": result._host.get_name(), "task": result._task.get_name(), "status": "pending"}
                with open(self._path, "a") as out:
                    out.write(json.dumps({**event, "msg": line[len("pending: ") :]}) + "\n")

    def v2_runner_item_on_failed(self, result: Any) -> None:
        self._emit("failed", result)

    def v2_runner_on_unreachable(self, result: Any) -> None:
        self._emit("unreachable", result)

    def v2_runner_on_skipped(self, result: Any) -> None:
        self._emit("skipped", result)
