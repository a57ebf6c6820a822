"""redis-ha-lab: render Redis/Sentinel configs and run a real HA lab from them."""

from pathlib import Path

#: Repository root: templates (conf/) and lifecycle scripts (scripts/) live beside the package.
REPO_ROOT = Path(__file__).resolve().parent.parent
CONF_DIR = REPO_ROOT / "conf"
SCRIPTS_DIR = REPO_ROOT / "scripts"
