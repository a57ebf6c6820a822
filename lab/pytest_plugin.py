"""pytest plugin: a lab per xdist worker, a factory for extra labs, node logs on failure.

Loaded with ``-p lab.pytest_plugin`` (pyproject's addopts). Fixtures:

- ``lab_home``: a per-session state directory (labs never touch ./.lab).
- ``lab``: a healthy lab (session scope, one per worker), torn down at the end.
- ``lab_factory``: ``lab_factory(profile='lab')`` starts another lab, torn down after the test.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from lab import control
from lab.backends import get_backend
from lab.spec import LabSpec


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("lab")
    group.addoption("--lab-keep", action="store_true", help="leave labs running after the tests (debugging)")


def _worker(request: pytest.FixtureRequest) -> str:
    return os.environ.get("PYTEST_XDIST_WORKER", "gw")


def _label(request: pytest.FixtureRequest, tag: str) -> str:
    return f"t{os.getpid() % 100000}-{_worker(request)}-{tag}"[:40]


@pytest.fixture(scope="session")
def lab_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("labs")


def _teardown(request: pytest.FixtureRequest, spec: LabSpec, home: Path) -> None:
    if request.config.getoption("--lab-keep"):
        print(f"\n--lab-keep: lab {spec.name} left running (LAB_HOME={home}); `lab down --name {spec.name}`")
        return
    control.down(spec.name, home)


@pytest.fixture(scope="session")
def lab(request: pytest.FixtureRequest, lab_home: Path) -> Iterator[LabSpec]:
    result = control.up(_label(request, "main"), "lab", "local", lab_home)
    yield result.spec
    _teardown(request, result.spec, lab_home)


@pytest.fixture
def lab_factory(request: pytest.FixtureRequest, lab_home: Path) -> Iterator[Callable[..., LabSpec]]:
    started: list[LabSpec] = []

    def make(profile: str = "lab", tag: str | None = None) -> LabSpec:
        # A failed `up` cleans up after itself; only a started lab needs tearing down.
        spec = control.up(_label(request, tag or f"x{len(started)}"), profile, "local", lab_home).spec
        started.append(spec)
        return spec

    yield make
    for spec in started:
        _teardown(request, spec, lab_home)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):  # type: ignore[no-untyped-def]
    outcome = yield
    report = outcome.get_result()
    funcargs = getattr(item, "funcargs", None)
    if report.failed and isinstance(funcargs, dict):
        spec = funcargs.get("lab")
        if isinstance(spec, LabSpec):
            report.sections.append(("lab node logs", control.log_tails(spec, get_backend(spec.backend), 20)))
