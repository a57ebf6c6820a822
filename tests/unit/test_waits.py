"""lab.waits.wait_for (on tenacity) and the typed WaitTimeout its callers reword by field, not by text."""

from __future__ import annotations

import contextlib
import pickle
import signal
import subprocess
import sys
import time

import pytest

from lab import interrupts
from lab.errors import DockerUnavailable, Interrupted, LabError, WaitTimeout
from lab.waits import wait_for


def test_returns_the_observation_once_the_probe_is_done() -> None:
    seen = iter([(False, 1), (False, 2), (True, 3)])
    assert wait_for(lambda: next(seen), what="three", timeout=5, interval=0) == 3


def test_a_timeout_says_what_was_awaited_what_was_seen_last_and_the_detail() -> None:
    tries: list[int] = []

    def probe() -> tuple[bool, int]:
        tries.append(len(tries))
        return False, len(tries)

    started = time.monotonic()
    with pytest.raises(WaitTimeout) as caught:
        wait_for(
            probe,
            what="the moon",
            timeout=0.1,
            interval=0.01,
            describe=lambda n: f"try {n}",
            detail=lambda: "log\ntail",
        )
    exc = caught.value
    assert 0.1 <= time.monotonic() - started < 2 and len(tries) >= 2
    assert (exc.what, exc.timeout, exc.last_seen, exc.detail) == ("the moon", 0.1, f"try {len(tries)}", "log\ntail")
    assert exc.headline == f"timed out after 0.1s waiting for the moon; last seen: try {len(tries)}"
    assert str(exc) == f"{exc.headline}\nlog\ntail", "the message a user sees is unchanged"
    assert isinstance(exc, LabError) and exc.exit_code == 1


def test_without_a_detail_the_message_is_the_headline() -> None:
    with pytest.raises(WaitTimeout) as caught:
        wait_for(lambda: (False, "nope"), what="x", timeout=0, interval=0)
    assert str(caught.value) == caught.value.headline == "timed out after 0s waiting for x; last seen: nope"
    assert caught.value.detail == ""


def test_an_error_in_the_probe_ends_the_wait_at_once() -> None:
    tries: list[int] = []

    def probe() -> tuple[bool, None]:
        tries.append(1)
        raise LabError("broken")

    with pytest.raises(LabError, match=r"^broken$"):
        wait_for(probe, what="x", timeout=5, interval=0)
    assert tries == [1]


def test_typed_errors_survive_pickling_with_their_fields() -> None:
    exc = pickle.loads(pickle.dumps(WaitTimeout("x", 2.5, "seen", "detail")))
    assert (exc.what, exc.timeout, exc.last_seen, exc.detail, str(exc)) == (
        "x",
        2.5,
        "seen",
        "detail",
        "timed out after 2.5s waiting for x; last seen: seen\ndetail",
    )
    assert pickle.loads(pickle.dumps(DockerUnavailable("no engine"))).why == "no engine"


def test_an_interrupt_swallowed_on_the_way_stops_the_wait() -> None:
    """checkpoint() runs before every try: a SIGTERM whose exception was swallowed (lab.interrupts) still ends it."""
    tries: list[int] = []

    def probe() -> tuple[bool, None]:
        tries.append(1)
        if len(tries) == 2:
            with contextlib.suppress(Interrupted):  # swallowed, as a finaliser or a weakref callback would
                signal.raise_signal(signal.SIGTERM)
        return False, None

    with pytest.raises(Interrupted) as caught, interrupts.command():
        wait_for(probe, what="x", timeout=30, interval=0.001)
    assert len(tries) == 2 and caught.value.signum == signal.SIGTERM


def test_an_interrupt_turned_into_another_error_is_still_the_interrupt() -> None:
    """CPython makes a TypeError ("expected a message argument") of a signal handler's exception raised
    while `from ssl import ...` looked for a missing name (CI: a traceback and exit 1 on SIGTERM). The
    command reports the interrupt, with what it undid."""
    undone: list[str] = []
    with pytest.raises(Interrupted) as caught, interrupts.command():
        interrupts.undo_on_interrupt("probe", lambda: undone.append("x") or "undid the probe")
        try:
            signal.raise_signal(signal.SIGTERM)
        except Interrupted:
            raise TypeError("expected a message argument") from None
    assert caught.value.signum == signal.SIGTERM and undone == ["x"]
    assert str(caught.value) == "interrupted by SIGTERM; undone: undid the probe"
    with pytest.raises(TypeError), interrupts.command():  # with no interrupt, an error is that error
        raise TypeError("a bug")


def test_an_interrupt_in_a_weakref_callback_is_not_printed_and_still_ends_the_command(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Python swallows an exception raised in a weakref callback and prints "Exception ignored in" with a
    traceback (CI, compose: a SIGTERM during a WeakKeyDictionary's callback). The interrupt is pending:
    the command still ends on it, and nothing reaches the printing hook."""
    import weakref

    printed: list[object] = []
    monkeypatch.setattr(sys, "unraisablehook", printed.append)  # what Python would print

    class Thing:
        pass

    def on_collect(_ref: object) -> None:
        signal.raise_signal(signal.SIGTERM)  # the handler raises here, inside the callback

    with pytest.raises(Interrupted) as caught, interrupts.command():
        thing = Thing()
        ref = weakref.ref(thing, on_collect)
        del thing  # the callback runs now; its Interrupted is swallowed by Python
        assert ref() is None
    assert caught.value.signum == signal.SIGTERM and printed == []
    assert sys.unraisablehook == printed.append  # handed back


def test_waits_do_not_import_tenacity_until_a_wait_runs() -> None:
    code = "import sys, lab.waits; assert 'tenacity' not in sys.modules; print('ok')"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert out.stdout.strip() == "ok", out.stderr
