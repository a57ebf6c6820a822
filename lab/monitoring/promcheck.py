"""``python -m lab.monitoring.promcheck`` (make lint): render each profile's monitoring files as a lab would
(prometheus.yml, alertmanager.yml, the shipped rules with its timers, the community's) and have the tools
that will load them check them: ``promtool check config`` (which checks the rules it names too) and
``amtool check-config``. Exit 1 naming what failed."""

from __future__ import annotations

import subprocess
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

from lab.monitoring.config import plan, render
from lab.profile import available_profiles, load_profile
from lab.spec import MONITORING_DIR, build_spec


def check(profile_name: str, root: Path) -> list[str]:
    profile = load_profile(profile_name, env={}, lab=True)
    spec = build_spec("promcheck", profile, backend="none", base_dir=root / profile_name)
    spec = replace(spec, monitoring=plan(spec, profile))
    render(spec, profile, spec.base_dir)
    home = spec.base_dir / MONITORING_DIR
    failed = []
    for argv in (
        ["promtool", "check", "config", str(home / "prometheus.yml")],
        ["amtool", "check-config", str(home / "alertmanager.yml")],
    ):
        result = subprocess.run(argv, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            failed.append(f"{profile_name}: {' '.join(argv[:3])}: {(result.stdout + result.stderr).strip()}")
    return failed


def main(argv: list[str] | None = None) -> int:
    import argparse

    argparse.ArgumentParser(prog="python -m lab.monitoring.promcheck", description=__doc__.split("\n\n")[0]).parse_args(
        argv
    )
    with tempfile.TemporaryDirectory(prefix="promcheck-") as tmp:
        failed = [line for name in available_profiles() for line in check(name, Path(tmp))]
    for line in failed:
        print(f"promcheck: {line}", file=sys.stderr)
    if not failed:
        print(f"promcheck: the monitoring files of {len(available_profiles())} profiles pass promtool and amtool")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
