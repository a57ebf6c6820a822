"""pytest plugin: a lab per xdist worker, healthy between destructive tests, node logs on failure.

Loaded with ``-p lab.pytest_plugin`` (pyproject's addopts). Fixtures:

- ``lab_home``: a per-session state directory (labs never touch ./.lab).
- ``lab`` / ``healthy_lab``: this worker's lab (started once per session), healed and checked
  healthy before each test (replaced by a fresh one when it cannot be). Earlier drills may have
  failed it over: ask for the current master, never assume redis-1.
- ``lab_factory``: ``lab_factory(profile='lab')`` starts another lab, torn down after the test.
- ``redis_node``: ``redis_node(profile='lab', **overrides)`` one standalone redis-server rendered
  from the same template (no replicas, no Sentinels), for persistence and eviction scenarios.
- ``master_client``: a Sentinel-aware client of ``healthy_lab``'s master (follows failovers).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import redis

from lab import control, drill, faults
from lab.backends import get_backend
from lab.backends.local import LocalBackend
from lab.errors import LabError
from lab.profile import load_profile
from lab.render import render_node
from lab.spec import LabSpec, Node, build_spec, write_secret
from lab.topology import client


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("lab")
    group.addoption("--lab-keep", action="store_true", help="leave labs running after the tests (debugging)")


def _label(tag: str) -> str:
    return f"t{os.getpid() % 100000}-{os.environ.get('PYTEST_XDIST_WORKER', 'gw')}-{tag}"[:40]


@pytest.fixture(scope="session")
def lab_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("labs")


def _teardown(config: pytest.Config, spec: LabSpec, home: Path) -> None:
    if config.getoption("--lab-keep"):
        print(f"\n--lab-keep: lab {spec.name} left running (LAB_HOME={home}); `lab down --name {spec.name}`")
        return
    control.down(spec.name, home)


@dataclass
class _Holder:
    spec: LabSpec
    home: Path
    generation: int = 0


@pytest.fixture(scope="session")
def _lab_holder(request: pytest.FixtureRequest, lab_home: Path) -> Iterator[_Holder]:
    holder = _Holder(control.up(_label("main"), "lab", "local", lab_home).spec, lab_home)
    yield holder
    _teardown(request.config, holder.spec, lab_home)


@pytest.fixture
def lab(healthy_lab: LabSpec) -> LabSpec:
    return healthy_lab


@pytest.fixture
def healthy_lab(_lab_holder: _Holder) -> LabSpec:
    """Heal every fault and wait for health; replace the lab with a fresh one if that fails."""
    spec = _lab_holder.spec
    try:
        faults.heal(spec)
        control.wait_healthy(spec, timeout=20)
    except LabError as exc:
        print(f"lab {spec.name} could not be healed ({str(exc).splitlines()[0]}); starting a fresh one")
        control.down(spec.name, _lab_holder.home)
        _lab_holder.generation += 1
        tag = f"main{_lab_holder.generation}"
        _lab_holder.spec = control.up(_label(tag), "lab", "local", _lab_holder.home).spec
    return _lab_holder.spec


@pytest.fixture
def master_client(healthy_lab: LabSpec) -> Iterator[redis.Redis]:
    conn = drill.master_client(healthy_lab)
    yield conn
    conn.close()


@pytest.fixture
def lab_factory(request: pytest.FixtureRequest, lab_home: Path) -> Iterator[Callable[..., LabSpec]]:
    started: list[LabSpec] = []

    def make(profile: str = "lab", tag: str | None = None) -> LabSpec:
        # A failed `up` cleans up after itself; only a started lab needs tearing down.
        spec = control.up(_label(tag or f"x{len(started)}"), profile, "local", lab_home).spec
        started.append(spec)
        return spec

    yield make
    for spec in started:
        _teardown(request.config, spec, lab_home)


@dataclass
class StandaloneNode:
    spec: LabSpec
    node: Node
    conn: redis.Redis

    def restart(self) -> None:
        backend = LocalBackend()
        if backend.node_state(self.spec, self.node) != "down":
            backend.stop_node(self.spec, self.node)
        backend.start_node(self.spec, self.node)


@pytest.fixture
def redis_node(tmp_path: Path) -> Iterator[Callable[..., StandaloneNode]]:
    """Factory: a standalone redis-server from redis.conf.tpl with a profile and ``redis:`` overrides."""
    started: list[StandaloneNode] = []
    backend = LocalBackend()

    def make(profile: str = "lab", **overrides: Any) -> StandaloneNode:
        loaded = load_profile(profile)
        loaded.redis.update(overrides)
        name = _label(f"solo{len(started)}")
        spec = build_spec(name, loaded, backend="local", base_dir=tmp_path / name)
        node = spec.initial_master
        conf = spec.files(node).conf
        conf.parent.mkdir(parents=True, mode=0o700)
        write_secret(conf, render_node(spec, loaded, node))
        backend.start_node(spec, node)
        solo = StandaloneNode(spec, node, client(node.host, node.port, spec.password, timeout=5))
        started.append(solo)
        return solo

    yield make
    for solo in started:
        solo.conn.close()
        backend.stop_node(solo.spec, solo.node)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):  # type: ignore[no-untyped-def]
    outcome = yield
    report = outcome.get_result()
    funcargs = getattr(item, "funcargs", None)
    if report.failed and isinstance(funcargs, dict):
        spec = funcargs.get("healthy_lab") or funcargs.get("lab")
        if isinstance(spec, LabSpec):
            report.sections.append(("lab node logs", control.log_tails(spec, get_backend(spec.backend), 20)))
