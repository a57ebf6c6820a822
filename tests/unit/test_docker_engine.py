"""lab.docker's engine: one line, never a traceback, when there is none; the compose backend branches on the
SDK's typed errors (a status), not on the text a CLI printed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import docker  # type: ignore[import-untyped]
import pytest
import requests

from lab import docker as lab_docker
from lab.backends import compose
from lab.errors import DockerUnavailable, LabError


@pytest.fixture
def no_engine(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(lab_docker, "_ENGINE", None)
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-engine.sock")


@pytest.mark.usefixtures("no_engine")
def test_no_engine_is_one_line_saying_what_to_do() -> None:
    why = "no Docker engine is running (start dockerd, or use --backend local)"
    assert lab_docker.docker_unavailable() == why
    with pytest.raises(DockerUnavailable) as caught:
        lab_docker.engine()
    assert caught.value.why == str(caught.value) == why
    assert caught.value.__cause__ is None and caught.value.__suppress_context__, "no chained SDK traceback"


@pytest.mark.usefixtures("no_engine")
def test_no_docker_at_all_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    assert lab_docker.docker_unavailable() == "docker is not installed (Debian/Ubuntu: apt-get install docker.io)"


@pytest.mark.usefixtures("no_engine")
def test_a_compose_lab_without_an_engine_is_down_and_says_what_it_could_not_remove(tmp_path: Path) -> None:
    spec: Any = type("Spec", (), {"identity_dir": tmp_path / "x"})()
    backend = compose.ComposeBackend()
    assert backend.remove(spec) == [
        f"the containers and network of compose project {compose.project(spec)} "
        "(no Docker engine is running (start dockerd, or use --backend local))"
    ]
    with pytest.raises(LabError, match=r"^the compose backend needs Docker: no Docker engine is running"):
        backend.prepare(spec)


def _api_error(status: int, explanation: str) -> Any:
    response = requests.Response()
    response.status_code = status
    return docker.errors.APIError("refused", response=response, explanation=explanation)


class _Network:
    def __init__(self, error: Exception | None, endpoints: tuple[str, ...] = ()) -> None:
        self.error = error
        self.disconnected: list[tuple[str, bool]] = []
        self.attrs: dict[str, object] = {}
        self.endpoints = endpoints

    def reload(self) -> None:
        self.attrs = {"Containers": {f"ep-{name}": {"Name": name} for name in self.endpoints}}

    def remove(self) -> None:
        if self.error:
            raise self.error

    def disconnect(self, container: str, force: bool) -> None:
        self.disconnected.append((container, force))


def test_a_network_refused_with_403_has_its_endpoints_forced_off_for_the_next_try() -> None:
    """The lab's containers, and an endpoint the network still lists of a container already gone (CI, valkey:
    the engine refused the network for it past the 15 s of tries), each by its name: the engine finds a removed
    container's endpoint by name only (a run that passed the containers' ids still failed)."""
    refused = _api_error(403, "error while removing network: network lab_x has active endpoints")
    net = _Network(refused, endpoints=("lab-redis-2-1", "lab-gone-1"))
    assert compose._remove(net, "networks", ["/lab-redis-1-1", "/lab-redis-2-1"]) == (
        "error while removing network: network lab_x has active endpoints"
    )
    assert net.disconnected == [("lab-redis-1-1", True), ("lab-redis-2-1", True), ("lab-gone-1", True)]


def test_other_refusals_are_reported_and_a_network_gone_meanwhile_is_removed() -> None:
    busy = _Network(_api_error(500, "engine   is\nbusy"))
    assert compose._remove(busy, "networks", ["c1"]) == "engine is busy" and busy.disconnected == []
    assert compose._remove(_Network(docker.errors.NotFound("gone")), "networks", ["c1"]) == ""
    assert compose._remove(_Network(None), "volumes", []) == ""


def test_an_engine_error_is_one_line_naming_the_call() -> None:
    def refuse() -> None:
        raise _api_error(409, "Container abc is not running")

    def gone() -> None:
        raise docker.errors.NotFound("no such container")

    with pytest.raises(LabError, match=r"^docker kill: Container abc is not running$"):
        lab_docker.api("kill", refuse)
    assert lab_docker.found("kill", gone) is None, "a 404 is an answer"
