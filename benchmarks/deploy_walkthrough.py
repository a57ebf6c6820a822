"""The walkthrough table of docs/deploy.md, measured: three simulated hosts (`lab hosts up 3`), the production
profile deployed to them with `lab deploy`, then again, then after a safe failover, then with a changed
profile; each step's time, what it changed, and whether the master or the Sentinels' epoch moved.

    python -m benchmarks.deploy_walkthrough            # print the table
    python -m benchmarks.deploy_walkthrough --write    # and put it into docs/deploy.md (make deploy-walkthrough)
"""

from __future__ import annotations

import argparse
import datetime
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import redis

from benchmarks.findings import write
from lab.drill.pages import machine
from lab.hosts import inventory

PAGE = Path(__file__).resolve().parent.parent / "docs" / "deploy.md"
TUNED = "extends: production\nsentinel:\n  parallel_syncs: 2\nredis:\n  maxmemory: 96mb\n"


def lab(home: Path, *args: str) -> tuple[float, subprocess.CompletedProcess[str]]:
    start = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "lab.cli", "--home", str(home), *args], capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"lab {' '.join(args)}: {done.stderr or done.stdout}")
    return time.monotonic() - start, done


def view(sentinels: list[Any]) -> tuple[str, int]:
    """(the master all three Sentinels name, their config epoch), once they agree."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        seen = {(str(m["ip"]), int(m["config-epoch"])) for m in (s.sentinel_master("mymaster") for s in sentinels)}
        if len(seen) == 1:
            return next(iter(seen))
        time.sleep(0.2)
    raise SystemExit(f"the Sentinels disagree: {seen}")


def walk(work: Path) -> list[tuple[str, float, str, str]]:
    home = work / "home"
    rows: list[tuple[str, float, str, str]] = []
    took, made = lab(home, "hosts", "up", "3", "--json")
    doc = json.loads(made.stdout)
    rows.append(("`lab hosts up 3`", took, "3 hosts, sshd answering", ""))
    inv, vault = doc["inventory"], doc["vault_password_file"]
    try:

        def deploy(step: str, *extra: str) -> None:
            took, done = lab(home, "deploy", "-i", inv, "--vault-password-file", vault, "--json", *extra)
            hosts = json.loads(done.stdout)["hosts"]
            changed = sum(len(h["changed"]) for h in hosts)
            pending = sum(len(h["pending"]) for h in hosts)
            master, epoch = view(sentinels)
            moved = f"master {names[master]}, epoch {epoch}"
            rows.append((step, took, f"{changed} tasks changed" + (f", {pending} pending" if pending else ""), moved))

        variables = inventory.load(Path(inv), Path(vault)).variables()
        password = variables["redis_ha_sentinel_users"]["admin"]
        names = {h["address"]: h["name"] for h in doc["hosts"]}
        sentinels: list[Any] = [redis.Redis(a, 26379, username="admin", password=password) for a in names]
        deploy("`lab deploy` (first)")
        deploy("`lab deploy` (again)")
        sentinels[0].execute_command("SENTINEL", "FAILOVER", "mymaster")
        time.sleep(5)
        deploy("`lab deploy` after `SENTINEL FAILOVER`")
        tuned = work / "tuned.yaml"
        tuned.write_text(TUNED)
        deploy("`lab deploy --profile tuned.yaml`", "--profile", str(tuned))
        deploy("`lab deploy --profile tuned.yaml` (again)", "--profile", str(tuned))
    finally:
        took, _ = lab(home, "hosts", "down")
        rows.append(("`lab hosts down`", took, "every process, namespace, the bridge, the files", ""))
    return rows


def table(rows: list[tuple[str, float, str, str]]) -> str:
    from ansible.release import __version__ as ansible_version  # type: ignore[import-untyped]

    m = machine()
    head = (
        f"Measured {datetime.date.today().isoformat()} with `python -m benchmarks.deploy_walkthrough --write` "
        f"(`make deploy-walkthrough`): {m['cpus']} CPUs, {m['memory_gib']} GiB, {m['kernel']}, Python {m['python']}, "
        f"ansible-core {ansible_version}, the hosts' redis-server "
        f"{subprocess.run(['redis-server', '--version'], capture_output=True, text=True).stdout.split()[2][2:]}, "
        "production profile (ACL users, `down-after-milliseconds` 5000)."
    )
    lines = [head, "", "| step | seconds | what changed | master and epoch after |", "|---|---|---|---|"]
    lines += [f"| {step} | {took:.1f} | {what} | {after} |" for step, took, what, after in rows]
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    about = __doc__.split("\n\n")[0]
    parser = argparse.ArgumentParser(prog="python -m benchmarks.deploy_walkthrough", description=about)
    parser.add_argument("--write", action="store_true", help=f"put the table into {PAGE.name}")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="deploy-walkthrough-") as work:
        text = table(walk(Path(work)))
    print(text)
    if args.write:
        write(text, "walkthrough", PAGE)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
