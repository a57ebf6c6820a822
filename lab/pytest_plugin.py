"""pytest plugin: a lab per xdist worker, healthy between destructive tests, node logs on failure.

Loaded with ``-p lab.pytest_plugin`` (pyproject's addopts). Fixtures:

- ``lab_home``: a per-session state directory (labs never touch ./.lab).
- ``lab`` / ``healthy_lab``: this worker's lab (started once per session), healed, its run-time
  config drift undone, and checked healthy before each test (replaced by a fresh one when it
  cannot be). Earlier drills may have failed it over: ask for the current master, never assume redis-1.
- ``lab_factory``: ``lab_factory(profile='lab')`` starts another lab, torn down after the test.
- ``profile_file``: ``profile_file(redis={...}, sentinel={...})`` a profile with just these overrides.
- ``drill_events``: ``drill_events(spec)`` records the Sentinels' events; prints the failovers seen.
- ``drill``: ``drill(spec, "kill-master", ...)`` a recorded drill (workers paced at ``DRILL_RATE``); its
  report goes under ``--lab-report``.
- ``redis_node``: ``redis_node(profile='lab', **overrides)`` one standalone redis-server rendered
  from the same template (no replicas, no Sentinels): a process, or a testcontainers container on
  the compose backend; for persistence, eviction and notification scenarios.
- ``lab_backend``: the backend under test; ``--lab-backend local|compose|all`` parametrizes every
  test that uses a lab (one marked ``one_backend`` runs on the first only). Docker missing skips
  compose tests, a failure under LAB_REQUIRE_DOCKER=1.
- ``lab_server``: the server build under test; ``--lab-server redis-7.0,redis-6.2,valkey-8.1`` (or
  ``all``) runs every lab test on each build with the local backend (compose runs the first; a test
  marked ``one_server`` runs on the first only). A build that is not here skips, a failure under
  LAB_REQUIRE_SERVERS=1.
- ``master_client``: a Sentinel-aware client of ``healthy_lab``'s master (follows failovers).
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import redis

from lab import control, faults
from lab.backends import get_backend, log_tails
from lab.drill.events import SentinelEvents, decisions
from lab.drill.result import DrillResult
from lab.drill.scenarios import run_drill
from lab.drill.steps import master_client as sentinel_master_client
from lab.errors import LabError
from lab.servers import resolve
from lab.spec import LabSpec
from lab.standalone import StandaloneNode, standalone
from lab.validate import restore_config

REPORTS = pytest.StashKey[list[Path]]()
LABS = pytest.StashKey[list[LabSpec]]()  # labs lab_factory started for a test (their logs go with a failure)
#: Operations/s of a drill's workers in tests (``drill(..., rate=None)``: unpaced). A write a millisecond
#: is finer than any window a test asserts on; unpaced, each drill's four workers keep a core busy and
#: starve the other xdist worker's lab.
DRILL_RATE = 1000.0


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("lab")
    group.addoption("--lab-keep", action="store_true", help="leave labs running after the tests (debugging)")
    group.addoption(
        "--lab-report",
        type=Path,
        default=None,
        help="write every drill's report (report.html, timeline.png, report.json, history.jsonl) under this directory",
    )
    group.addoption(
        "--lab-server",
        default=os.environ.get("LAB_SERVER", "system"),
        help="server build(s) for the lab fixtures: NAME[,NAME...] (system, redis-6.2, redis-7.0, redis-8.2, "
        "valkey-8.1, valkey-9.1, a path) "
        "or all (default: system; env LAB_SERVER)",
    )
    group.addoption(
        "--lab-backend",
        choices=("local", "compose", "all"),
        default=os.environ.get("LAB_BACKEND", "local"),
        help="backend(s) the lab fixtures run on (default: local; CI: all)",
    )


def chosen_servers(config: pytest.Config) -> list[str]:
    """The builds named by --lab-server (``all``: every build `lab servers` finds), system first."""
    from lab.servers import discover

    names = [n.strip() for n in config.getoption("--lab-server").split(",") if n.strip()]
    if names == ["all"]:
        return [s.name for s in discover()]
    return names


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    chosen = metafunc.config.getoption("--lab-backend")
    backends = ["local", "compose"] if chosen == "all" else [chosen]
    builds = chosen_servers(metafunc.config)
    if metafunc.definition.get_closest_marker("one_server"):
        builds = builds[:1]
    if metafunc.definition.get_closest_marker("one_backend"):
        backends = backends[:1]
    has_backend, has_server = ("lab_backend" in metafunc.fixturenames), ("lab_server" in metafunc.fixturenames)
    if has_backend and has_server:
        combos = [(b, s) for b in backends for s in builds if b == "local" or s == builds[0]]
        ids = [b if len(builds) == 1 else f"{b}-{s}" for b, s in combos]
        metafunc.parametrize(("lab_backend", "lab_server"), combos, ids=ids, scope="session")
    elif has_backend:
        metafunc.parametrize("lab_backend", backends, scope="session")
    elif has_server:
        metafunc.parametrize("lab_server", builds, scope="session")


def require_server(name: str) -> list[str]:
    """``--server`` values for a build; skips when it is not here (a failure under LAB_REQUIRE_SERVERS=1)."""
    from lab.servers import resolve

    try:
        resolve(name)
    except LabError as exc:
        if os.environ.get("LAB_REQUIRE_SERVERS") == "1":
            pytest.fail(f"LAB_REQUIRE_SERVERS=1 but {exc}")
        pytest.skip(str(exc))
    return [name]


def require_fault(spec: LabSpec, kind: str) -> None:
    """Skip with the reason when the backend cannot inject this fault on this machine (a failure
    under LAB_REQUIRE_FAULTS=1), or the lab's server builds rule it out (always a skip: no machine
    can change that)."""
    why = get_backend(spec.backend).unsupported(kind)
    if why:
        if os.environ.get("LAB_REQUIRE_FAULTS") == "1":
            pytest.fail(f"LAB_REQUIRE_FAULTS=1 but {kind} is unsupported: {why}")
        pytest.skip(why)
    if why := faults.unsupported_by_builds(spec, kind):
        pytest.skip(why)


def require_backend(backend: str) -> None:
    """Skip when Docker is missing for the compose backend, or fail under LAB_REQUIRE_DOCKER=1."""
    if backend != "compose":
        return
    from lab.docker import docker_unavailable

    why = docker_unavailable()
    if why:
        if os.environ.get("LAB_REQUIRE_DOCKER") == "1":
            pytest.fail(f"LAB_REQUIRE_DOCKER=1 but Docker is not available: {why}")
        pytest.skip(f"Docker not available: {why}")


def require_monitoring() -> None:
    """Skip when redis_exporter, Prometheus or Alertmanager is missing (a failure under LAB_REQUIRE_MONITORING=1)."""
    from lab.monitoring.stack import missing_binaries

    missing = missing_binaries()
    if missing:
        if os.environ.get("LAB_REQUIRE_MONITORING") == "1":
            pytest.fail(f"LAB_REQUIRE_MONITORING=1 but {', '.join(missing)} is missing")
        pytest.skip(f"monitoring needs {', '.join(missing)}")


def require_hosts() -> None:
    """Skip unless simulated hosts can be made here (root, sshd, iproute2); a failure under LAB_REQUIRE_HOSTS=1."""
    from lab.errors import Unavailable
    from lab.hosts.sim import preflight

    try:
        preflight()
    except Unavailable as exc:
        if os.environ.get("LAB_REQUIRE_HOSTS") == "1":
            pytest.fail(f"LAB_REQUIRE_HOSTS=1 but {exc}")
        pytest.skip(str(exc))


def require_browser() -> tuple[str, str]:
    """Debian's chromium and its chromedriver, for the report pages' tests; skips when either is missing
    (a failure under LAB_REQUIRE_BROWSER=1)."""
    import shutil

    chromium, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if chromium is None or driver is None:
        why = "chromium and chromium-driver are not installed (apt-get install chromium chromium-driver)"
        if os.environ.get("LAB_REQUIRE_BROWSER") == "1":
            pytest.fail(f"LAB_REQUIRE_BROWSER=1 but {why}")
        pytest.skip(why)
    return chromium, driver


def lab_name(tag: str) -> str:
    """A lab name unique to this test process (its addresses are derived from the name)."""
    tag = re.sub(r"[^a-z0-9_-]", "", tag.lower())  # build names carry dots (redis-7.0)
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
    server: list[str]
    generation: int = 0


@pytest.fixture(scope="session")
def _lab_holder(request: pytest.FixtureRequest, lab_home: Path, lab_backend: str, lab_server: str) -> Iterator[_Holder]:
    require_backend(lab_backend)
    server = require_server(lab_server)
    os.environ.setdefault("LAB_PULL", "0")  # tests never contact a registry
    tag = f"main-{lab_backend}-{lab_server}"
    holder = _Holder(control.up(lab_name(tag), "lab", lab_backend, lab_home, server=server).spec, lab_home, server)
    yield holder
    _teardown(request.config, holder.spec, lab_home)


@pytest.fixture
def lab(healthy_lab: LabSpec) -> LabSpec:
    return healthy_lab


@pytest.fixture
def healthy_lab(_lab_holder: _Holder) -> LabSpec:
    """Heal every fault and wait for health; replace the lab with a fresh one if that fails."""
    return heal_or_replace(_lab_holder)


def heal_or_replace(holder: _Holder) -> LabSpec:
    """The shared lab, healed; a fresh one in its place when healing or restoring it fails in any way
    (a test never errors for a lab another test left behind)."""
    spec = holder.spec
    try:
        faults.heal(spec)
        restore_config(spec)  # a drill that crashed may have left a CONFIG SET behind
        control.wait_healthy(spec, timeout=20)
    except (LabError, redis.RedisError, OSError) as exc:  # any error healing a shared lab replaces it
        first = (str(exc).splitlines() or [type(exc).__name__])[0]
        print(f"lab {spec.name} could not be healed ({type(exc).__name__}: {first}); starting a fresh one")
        control.down(spec.name, holder.home)
        holder.generation += 1
        tag = f"main-{spec.backend}{holder.generation}-{holder.server[0]}"
        holder.spec = control.up(lab_name(tag), "lab", spec.backend, holder.home, server=holder.server).spec
    return holder.spec


@pytest.fixture
def master_client(healthy_lab: LabSpec) -> Iterator[redis.Redis]:
    conn = sentinel_master_client(healthy_lab)
    yield conn
    conn.close()


@pytest.fixture
def profile_file(tmp_path: Path) -> Callable[..., str]:
    """``profile_file(base="lab", redis={...}, sentinel={...}, topology={...})``: the path of a profile
    that extends ``base`` with just these overrides (every knob of a test is visible in the test).
    ``edit=fn`` instead gets the whole profile as a dict to change (e.g. to remove a key)."""
    import yaml

    from lab.profile import profile_data

    made: list[Path] = []

    def make(base: str = "lab", edit: Callable[[dict[str, Any]], object] | None = None, **sections: Any) -> str:
        path = tmp_path / f"profile-{len(made)}.yaml"
        made.append(path)
        if edit is None:
            data: dict[str, Any] = {"extends": base, **sections}
        else:
            data = profile_data(base)
            edit(data)
        path.write_text(yaml.safe_dump(data, sort_keys=False))
        return str(path)

    return make


@pytest.fixture
def drill_events(request: pytest.FixtureRequest) -> Iterator[Callable[[LabSpec], SentinelEvents]]:
    """``events = drill_events(spec)``: record every Sentinel's events for the rest of the test; at
    the end the failovers seen (+switch-master) are printed. A second failover is a finding to
    report, not a reason to fail: drills assert convergence, never a particular winner."""
    watching: list[SentinelEvents] = []

    def start(spec: LabSpec) -> SentinelEvents:
        events = SentinelEvents(spec).__enter__()
        watching.append(events)
        return events

    yield start
    for events in watching:
        events.__exit__(None, None, None)
        switches = events.failovers()
        path = " -> ".join([switches[0][0], *(new for _, new in switches)]) if switches else "none"
        note = " (finding: more than one failover)" if len(switches) > 1 else ""
        print(f"\n{request.node.name}: {len(switches)} failover(s) seen by the Sentinels: {path}{note}")


@pytest.fixture
def drill(request: pytest.FixtureRequest, tmp_path: Path) -> Callable[..., DrillResult]:
    """``drill(spec, "kill-master", duration=8, ...)``: run a recorded drill (lab.drill.scenarios.run_drill)
    and write its report under ``--lab-report DIR`` (else the test's tmp dir); a failing test names it."""
    root: Path | None = request.config.getoption("--lab-report")

    def run(spec: LabSpec, scenario: str, **kw: Any) -> DrillResult:
        name = re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.name)
        report_dir = (root / name if root else tmp_path / "report") / scenario
        if kw.get("client") is None:
            kw.setdefault("rate", DRILL_RATE)
        result = run_drill(spec, scenario, report_dir=report_dir, **kw)
        request.node.stash.setdefault(REPORTS, []).append(report_dir)
        summary = result.findings.summary()
        print(
            f"\n{request.node.name}: drill {scenario}: {summary['ok']} ok, {summary['lost']} lost, "
            f"{summary['failovers']} failover(s), longest unavailability {summary['unavailable_ms'] / 1000:.2f}s; "
            f"report {report_dir / 'report.html'}" + "".join(f"\n  note: {n}" for n in result.findings.notes)
        )
        if not summary["failovers"]:  # (a test that wanted one fails: say what the Sentinels did instead)
            print(f"  no failover; the Sentinels: {decisions(result.recorder.history.records) or 'nothing'}")
        return result

    return run


@pytest.fixture
def lab_factory(
    request: pytest.FixtureRequest, lab_home: Path, lab_backend: str, lab_server: str
) -> Iterator[Callable[..., LabSpec]]:
    """``lab_factory(profile='lab', tag=None, server=None, backend=None)``: another lab for this test,
    on this test's build and backend unless ``server`` (``--server`` values) or ``backend`` say otherwise."""
    require_backend(lab_backend)
    started: list[LabSpec] = []

    def make(
        profile: str = "lab", tag: str | None = None, server: list[str] | None = None, backend: str | None = None
    ) -> LabSpec:
        backend = backend or lab_backend
        require_backend(backend)
        builds = server if server is not None else require_server(lab_server)
        for build in builds:
            require_server(build.partition("=")[2] or build)
        # A failed `up` cleans up after itself; only a started lab needs tearing down.
        name = lab_name(f"{tag or f'x{len(started)}'}-{backend[0]}")
        spec = control.up(name, profile, backend, lab_home, server=builds).spec
        started.append(spec)
        request.node.stash.setdefault(LABS, []).append(spec)
        return spec

    yield make
    for spec in started:
        _teardown(request.config, spec, lab_home)


@pytest.fixture
def redis_node(tmp_path: Path, lab_backend: str, lab_server: str) -> Iterator[Callable[..., StandaloneNode]]:
    """Factory: a standalone server of this test's build from redis.conf.tpl with a profile and
    ``redis:`` overrides: a process on the local backend, a testcontainers container on compose."""
    require_backend(lab_backend)
    build = resolve(require_server(lab_server)[0])
    started: list[StandaloneNode] = []

    def make(profile: str = "lab", **overrides: Any) -> StandaloneNode:
        name = lab_name(f"solo{len(started)}")
        solo = standalone(tmp_path / name, name, lab_backend, profile, build, **overrides)
        started.append(solo)
        return solo

    yield make
    for solo in started:
        solo.remove()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):  # type: ignore[no-untyped-def]
    outcome = yield
    report = outcome.get_result()
    funcargs = getattr(item, "funcargs", None)
    reports = item.stash.get(REPORTS, [])
    if report.failed and reports:
        report.sections.append(("drill reports", "\n".join(str(d / "report.html") for d in reports)))
    if report.failed and isinstance(funcargs, dict):
        # Every lab the test used (lab, healthy_lab, local_lab, lab_factory's, ...), once each.
        labs = [*funcargs.values(), *item.stash.get(LABS, [])]
        specs = {v.name: v for v in labs if isinstance(v, LabSpec)}
        for spec in specs.values():
            # The Sentinels first: what they decided is what a failed drill needs, and a long output is cut.
            tails = log_tails(spec, 20, nodes=[*spec.sentinels, *spec.redis_nodes])
            report.sections.append((f"lab {spec.name} node logs", tails))
