"""Keyspace notifications for session expiry, including through a failover."""

from __future__ import annotations

import time

import pytest
import redis

from lab import nodes
from lab.drill.steps import TRANSIENT, kill_master_unavailability
from lab.spec import LabSpec
from lab.topology import client, sentinel_for
from lab.waits import wait_for


def next_expired(pubsub, timeout: float) -> str | None:
    """The next expired-key event's key, or None; reconnects through transient errors."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            message = pubsub.get_message(ignore_subscribe_messages=True, timeout=0.2)
        except TRANSIENT:
            time.sleep(0.1)
            continue
        if message and message["type"] == "pmessage":
            return str(message["data"])
    return None


@pytest.mark.integration
def test_session_expiry_events_on_the_session_database(healthy_lab: LabSpec) -> None:
    spec = healthy_lab
    db = spec.databases["session"]
    master = nodes.current_master(spec)
    with client(master.host, master.port, spec.password, db=db) as conn, conn.pubsub() as pubsub:
        pubsub.psubscribe(f"__keyevent@{db}__:expired")
        conn.set("session:expiring", "v", px=50)
        assert next_expired(pubsub, 5) == "session:expiring"


@pytest.mark.chaos
@pytest.mark.integration
@pytest.mark.one_server
def test_expiry_subscriber_through_sentinel_survives_a_failover(healthy_lab: LabSpec) -> None:
    spec = healthy_lab
    db = spec.databases["session"]
    conn: redis.Redis = sentinel_for(spec, db=db).master_for(spec.master_name)
    pubsub = conn.pubsub()
    pubsub.psubscribe(f"__keyevent@{db}__:expired")
    conn.set("session:before", "v", px=50)
    assert next_expired(pubsub, 5) == "session:before"

    kill_master_unavailability(spec)
    new = nodes.current_master(spec)

    def expiry_after_failover() -> tuple[bool, object]:
        try:
            conn.set("session:after", "v", px=50)
        except TRANSIENT as exc:
            return False, exc
        got = next_expired(pubsub, 2)
        return got == "session:after", got

    try:
        wait_for(expiry_after_failover, what=f"the new master's ({new.name}) expiry event", timeout=20, interval=0.1)
    finally:
        pubsub.close()
        conn.close()


@pytest.mark.integration
@pytest.mark.one_server
def test_notifications_off_deliver_nothing(redis_node) -> None:
    quiet = redis_node("lab", notify_keyspace_events="")
    with quiet.conn.pubsub() as pubsub:
        pubsub.psubscribe("__key*__:*")
        quiet.conn.set("session:silent", "v", px=50)
        assert next_expired(pubsub, 1.5) is None
    loud = redis_node("lab")
    with loud.conn.pubsub() as pubsub:
        pubsub.psubscribe("__key*__:*")
        loud.conn.set("session:heard", "v", px=50)
        assert next_expired(pubsub, 5) == "session:heard", "the same check hears the profile's events"
