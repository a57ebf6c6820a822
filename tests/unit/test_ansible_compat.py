"""The templates are plain Jinja2: Ansible's own template module renders them byte for byte like
`lab render`, given the same variables (what a playbook would pass)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from lab import CONF_DIR
from lab.profile import available_profiles, load_profile
from lab.render import TEMPLATES, node_context, render_node
from lab.spec import Layout, build_spec

PLAYBOOK = Path(sys.executable).parent / "ansible-playbook"


def test_ansible_template_module_renders_identically(tmp_path: Path) -> None:
    assert PLAYBOOK.exists(), "ansible-core is a dev dependency: pip install -e '.[dev]'"
    plays = []
    expected: dict[Path, str] = {}
    for profile_name in available_profiles():
        profile = load_profile(profile_name, {})
        layout: Layout = "hosts" if profile.hosts else "local"
        spec = build_spec("ansible", profile, backend="none", base_dir=tmp_path / "lab", layout=layout)
        for node in spec.nodes:
            variables = tmp_path / f"{profile_name}-{node.name}.json"
            variables.write_text(json.dumps(node_context(spec, profile, node)))
            dest = tmp_path / "ansible" / f"{profile_name}-{node.name}.conf"
            expected[dest] = render_node(spec, profile, node)
            plays.append(
                {
                    "hosts": "localhost",
                    "gather_facts": False,
                    "vars_files": [str(variables)],
                    "tasks": [
                        {
                            "ansible.builtin.template": {
                                "src": str(CONF_DIR / TEMPLATES[node.kind]),
                                "dest": str(dest),
                                "mode": "0600",
                            }
                        }
                    ],
                }
            )
    (tmp_path / "ansible").mkdir()
    playbook = tmp_path / "render.yml"
    playbook.write_text(json.dumps(plays))
    env = {
        **os.environ,
        "ANSIBLE_LOCAL_TEMP": str(tmp_path / "tmp"),
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_PYTHON_INTERPRETER": sys.executable,
        "ANSIBLE_LOCALHOST_WARNING": "0",
        "ANSIBLE_INVENTORY_UNPARSED_WARNING": "0",
    }
    result = subprocess.run(
        [str(PLAYBOOK), "-i", "localhost,", "-c", "local", str(playbook)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    for dest, text in expected.items():
        assert dest.read_text() == text, f"{dest.name} differs from lab render"
    shutil.rmtree(tmp_path / "ansible")
