"""Manual failover through Sentinel (``lab failover``), safe by default, and what it does when a
Sentinel will not act on it: NOGOODSLAVE, TILT mode, a failover it aborts."""

from __future__ import annotations

import signal
import time
from contextlib import suppress
from typing import TYPE_CHECKING

import redis

from lab import interrupts
from lab.backends import get_backend, log_tails
from lab.errors import LabError, UsageError
from lab.nodes import current_master, disconnect_clients, locked, rejoin_as_replica
from lab.render import SENTINEL_AUTH_USER, SENTINEL_COORDINATED
from lab.spec import LabSpec, Node
from lab.topology import node_client, observe
from lab.waits import WaitTimeout, wait_for

if TYPE_CHECKING:
    from collections.abc import Callable

    import tenacity

#: How long to keep asking while the Sentinels answer NOGOODSLAVE: a Sentinel's view of a replica can
#: be stale (replicas' INFO is refreshed every 10 s; a replica that just resynced, or a PING answered
#: late on a busy machine, makes it unfit for a moment). Seen in CI right after a lab had healed.
NOGOODSLAVE_RETRY_S = 12.0

#: Sentinel's TILT period (SENTINEL_TILT_PERIOD): a Sentinel whose timer stalled for 2 s (a starved or
#: paused process, a slow fsync, a clock jump) only watches for 30 s. In TILT it still answers OK to
#: SENTINEL FAILOVER, then does nothing until TILT ends (measured: the switch came 31.5 s later).
TILT_PERIOD_S = 30.0

#: How long the node the Sentinels name may stay a replica before `lab failover` promotes it itself:
#: every Sentinel names it already, so none is still on its way to turn it back.
TURNED_BACK_GRACE_S = 1.0

#: Sentinel's hello period (SENTINEL_PUBLISH_PERIOD): a write-paused master queues the PUBLISH of a hello
#: and every PING behind it on that Sentinel's link, so it looks down to every Sentinel within
#: down-after + this (measured 2.5-3.8 s with down-after 1 s on Redis 6.2, 7.0 and Valkey 8.1), and
#: they fail it over themselves: o_down one is-master-down round (1 s) later, then an election.
HELLO_PERIOD_S = 2.0

#: The first Valkey with SENTINEL FAILOVER <master> COORDINATED (Valkey 9.0; no Redis has it).
COORDINATED_SINCE = (9, 0)

#: How often to look for the switch: one look (every node's INFO) costs ~25 ms of CPU on this machine
#: kind, and polling it back to back would starve the very Sentinels being waited for on 2 cores.
POLL_S = 0.1


def failover(
    spec: LabSpec,
    safe: bool = True,
    timeout: float = 30.0,
    on_pause: Callable[[bool], None] | None = None,
    coordinated: bool = False,
) -> tuple[Node, Node]:
    """Manual failover through Sentinel; returns (old master, new master).

    ``safe`` (the default) loses no acknowledged write: writes on the master are paused
    (CLIENT PAUSE WRITE: clients wait, they do not fail), the replicas are let catch up, SENTINEL
    FAILOVER runs, and the pause ends only once the old master is a replica, so a write held
    during the switch fails with READONLY (the client retries on the new master) instead of
    being accepted by the old master and then lost. ``safe=False`` is a bare SENTINEL FAILOVER.
    ``coordinated`` is Valkey 9's ``SENTINEL FAILOVER <master> COORDINATED``, as the Sentinels do it (the
    old master hands over with FAILOVER; the lab pauses nothing): a lab that cannot is refused first
    (:func:`why_not_coordinated`, exit 2).
    ``on_pause(True)`` is called once the old master's writes are paused, ``on_pause(False)`` once
    they are not (a drill stamps them: a write-paused master that still says master is no split brain).
    """
    if coordinated and (why := why_not_coordinated(spec)):
        raise UsageError(f"no coordinated failover in lab {spec.name}: {why}")
    with locked(spec, "failover"):
        return _Failover(spec, safe and not coordinated, timeout, on_pause, coordinated).run()


def why_not_coordinated(spec: LabSpec) -> str | None:
    """Why the lab's Sentinels cannot fail over COORDINATED (valkey-io/valkey#1292), or None. Asked of the running
    nodes (an attached deployment records no builds): every Sentinel must be Valkey 9.0+, and with ACL users
    Sentinel's user on the data nodes must be allowed FAILOVER and CLIENT PAUSE, which the coordinated failover
    runs there (without them it stalls at +failover-state-wait-promotion until failover-timeout, NOPERM in the
    master's ACL LOG: seen on 9.1.2). A node that cannot be asked is a reason too: nothing is left to chance."""
    for sentinel in spec.sentinels:
        try:
            with node_client(spec, sentinel, timeout=2) as conn:
                info = conn.info("server")
        except redis.RedisError as exc:
            return f"cannot ask {sentinel.name} which build it runs: {exc}"
        version = str(info.get("valkey_version") or "")
        major_minor = tuple(int(p) for p in version.split(".")[:2] if p.isdigit())
        if info.get("server_name") != "valkey" or major_minor < COORDINATED_SINCE:
            runs = f"Valkey {version}" if version else f"Redis {info.get('redis_version', '?')}"
            return f"{sentinel.name} runs {runs}; SENTINEL FAILOVER ... COORDINATED is Valkey 9.0+'s"
    if not spec.acl:
        return None
    rules = " ".join(f"+{c}" for c in SENTINEL_COORDINATED)
    for node in spec.redis_nodes:
        lacking = []
        try:
            with node_client(spec, node, timeout=2) as conn:
                for command in SENTINEL_COORDINATED.values():
                    said = conn.execute_command("ACL", "DRYRUN", SENTINEL_AUTH_USER, *command)
                    if said not in ("OK", b"OK"):
                        lacking.append(" ".join(command[:2]))
        except redis.RedisError as exc:
            return f"cannot check what Sentinel's user {SENTINEL_AUTH_USER} may run on {node.name}: {exc}"
        if lacking:
            return (
                f"Sentinel's user {SENTINEL_AUTH_USER} on {node.name} may not run {', '.join(lacking)} (the failover "
                f"would stall until failover-timeout): add {rules} to its rule"
            )
    return None


def in_tilt(spec: LabSpec, sentinel: Node) -> bool:
    with node_client(spec, sentinel, timeout=2) as conn:
        return bool(int(conn.info("sentinel").get("sentinel_tilt", 0)))


def stall_into_tilt(spec: LabSpec, sentinel: Node, seconds: float = 2.5) -> None:
    """Stop a Sentinel's process for ``seconds`` (> 2): its timer then jumps and it enters TILT mode,
    as a starved process or a slow fsync makes it do. Returns once it reports TILT (drills, benches)."""
    backend = get_backend(spec.backend)
    backend.signal_node(spec, sentinel, signal.SIGSTOP)
    try:
        time.sleep(seconds)
    finally:
        backend.signal_node(spec, sentinel, signal.SIGCONT)
    wait_for(lambda: (in_tilt(spec, sentinel), None), what=f"{sentinel.name} to enter TILT mode", timeout=10)


class _Stalled(LabError):
    """The Sentinel that accepted the failover will not carry it out: go on without it."""


class _Failover:
    """One failover: ask a Sentinel that would act on SENTINEL FAILOVER (never one in TILT) and wait for
    the switch. When the Sentinel that accepted stalls or aborts, the other Sentinels soon fail the
    paused master over themselves (wait for that); only if they do not is the next one asked."""

    def __init__(
        self,
        spec: LabSpec,
        safe: bool,
        timeout: float,
        on_pause: Callable[[bool], None] | None = None,
        coordinated: bool = False,
    ) -> None:
        self.spec, self.safe, self.timeout, self.coordinated = spec, safe, timeout, coordinated
        self.on_pause = on_pause
        self.old = current_master(spec)
        self.old_addr = (self.old.host, self.old.port)
        self.acting: Node | None = None  # the Sentinel that accepted (or is failing the master over)
        self.stalled: dict[Node, str] = {}  # Sentinels that accepted and then did not act, and why
        self.refusals = 0  # NOGOODSLAVE answers so far: each ask goes to the next usable Sentinel
        self.refused_since: float | None = None
        self.turned_back_since: float | None = None  # when the named master was first seen a replica
        self.master_conn = node_client(spec, self.old, timeout=2)  # connects on first use
        self.paused_at: float | None = None  # when the old master's writes were paused (safe mode)

    @property
    def pause_key(self) -> str:
        return f"write pause on {self.old.name}"

    def _lift_pause(self) -> str:
        """An interrupt's undo: a fresh connection (the paused one may be mid-command)."""
        with node_client(self.spec, self.old, timeout=2) as conn:
            conn.client_unpause()
        return f"lifted the write pause (CLIENT PAUSE WRITE) on {self.old.name}"

    def _unpause(self) -> None:
        self.master_conn.client_unpause()
        interrupts.done(self.pause_key)
        if self.paused_at is not None and self.on_pause is not None:
            self.on_pause(False)

    def run(self) -> tuple[Node, Node]:
        interrupted = False
        try:
            addr = self._until_switched()
            if self.safe:
                rejoin_as_replica(self.spec, self.old, disconnect=False)
        except KeyboardInterrupt:  # Ctrl-C, SIGTERM: the command's undo log lifts the pause and says so
            interrupted = True
            raise
        finally:
            if self.safe and not interrupted:
                with suppress(redis.RedisError):
                    self._unpause()  # writes held meanwhile now fail with READONLY: definite
            self.master_conn.close()
        interrupts.done("failover under way")
        if self.safe:
            # Then, as Sentinel's own demotion does, drop the old master's clients: they rediscover the
            # new master instead of meeting READONLY on every write until they reconnect by themselves.
            disconnect_clients(self.spec, self.old)
        return self.old, next(n for n in self.spec.redis_nodes if (n.host, n.port) == addr)

    def _until_switched(self) -> tuple[str, int]:
        """Ask a Sentinel, then wait for the switch; when the one that accepted stalls (:class:`_Stalled`),
        ask again without it. Each stall sets one Sentinel aside, so this ends: with a switch, or with
        :meth:`_ask` finding no other Sentinel to ask."""
        import tenacity

        retrying = tenacity.Retrying(retry=tenacity.retry_if_exception_type(_Stalled), after=self._set_aside)
        return retrying(self._ask_then_wait)

    def _set_aside(self, attempt: tenacity.RetryCallState) -> None:
        assert self.acting is not None and attempt.outcome is not None
        self.stalled[self.acting] = str(attempt.outcome.exception())
        self.acting, self.refusals, self.refused_since = None, 0, None

    def _ask_then_wait(self) -> tuple[str, int]:
        try:
            # NOGOODSLAVE gives up sooner (in _ask); a TILT that every Sentinel is in lasts this long
            asking = TILT_PERIOD_S + 5
            wait_for(self._ask, what="a Sentinel to accept SENTINEL FAILOVER", timeout=asking, interval=0.5)
        except WaitTimeout as exc:
            raise LabError(f"no Sentinel would fail over: {exc}") from None
        who = f"{self.acting.name} accepted" if self.acting else "a switch was under way"
        interrupts.leave(
            "failover under way",
            f"the failover ({who}) goes on without `lab failover`: "
            + (
                f"{self.old.name} hands over as the Sentinels coordinate it"
                if self.coordinated
                else f"{self.old.name} takes writes until the Sentinels demote it"
            ),
        )
        addr = wait_for(
            self._switched,
            what=f"the Sentinels to name a new master ({who})",
            timeout=self.timeout,
            interval=POLL_S,
            detail=lambda: _sentinel_report(self.spec),
        )
        assert addr is not None  # (_switched is done only once a new master is named)
        return addr

    def _ask(self) -> tuple[bool, str]:
        if self.stalled and self._switch_under_way():
            return True, "a switch is under way"
        if self.stalled and self._own_failover_due():
            # Forcing another Sentinel now would race their election: a forced failover does not vote
            # for itself, so it can vote for a peer's candidate in its own epoch and both promote a
            # different replica (seen in CI, loaded: two masters replicating from each other for 30 s).
            return False, "the other Sentinels are due to fail the paused master over themselves"
        usable, why_not = _sentinels_to_ask(self.spec, exclude=list(self.stalled))
        if not usable and not why_not:
            if self.stalled:
                raise LabError(f"no other Sentinel is running ({'; '.join(self.stalled.values())})")
            raise LabError("no Sentinel is running: none can fail the master over")
        if not usable:  # every Sentinel in TILT (a machine-wide stall): wait it out, not paused
            return False, "; ".join(why_not)
        sentinel = usable[self.refusals % len(usable)]
        if self.safe:
            try:
                interrupts.undo_on_interrupt(self.pause_key, self._lift_pause)
                self.master_conn.client_pause(int(self.timeout * 1000), all=False)
                if self.paused_at is None and self.on_pause is not None:
                    self.on_pause(True)
                self.paused_at = self.paused_at or time.monotonic()
                _wait_replicas_caught_up(self.spec, self.master_conn, self.timeout)
            except redis.ConnectionError as exc:  # a Sentinel demoting it drops its clients: look again
                return False, f"{self.old.name}: {exc}"
        refused = _ask_for_failover(self.spec, sentinel, self.coordinated)
        if not refused:
            self.acting = sentinel
            return True, sentinel.name
        self.refusals += 1
        if self.safe:  # not paused while waiting: to the Sentinels a paused master soon looks down
            self._unpause()
            self.paused_at = None
        self.refused_since = self.refused_since or time.monotonic()
        if time.monotonic() - self.refused_since >= NOGOODSLAVE_RETRY_S:
            raise LabError(f"no Sentinel would fail over within {NOGOODSLAVE_RETRY_S:g}s (last: {refused})")
        return False, refused

    def _switch_under_way(self) -> bool:
        """Before asking again: are the Sentinels already failing the paused master over on their own
        (it looked down to them: o_down starts their election)? Then wait for that switch rather than
        start a second one."""
        seen = observe(self.spec)
        others = [v for v in seen.sentinels if v.reachable and v.node not in self.stalled]
        busy = [v.node for v in others if "failover_in_progress" in v.master_flags]
        electing = any("o_down" in v.master_flags for v in others)
        if not busy and not electing and seen.master == self.old_addr:
            return False
        # None: the Sentinels name a new master already, or are electing the one that will act
        self.acting = busy[0] if busy else None
        return True

    def _own_failover_due(self) -> bool:
        """Is the old master paused recently enough that the Sentinels may not have flagged it o_down
        yet? They all will (HELLO_PERIOD_S), unless too few of them are running for a quorum: once
        that time has passed with no election, asking the next Sentinel races nothing."""
        if self.paused_at is None:
            return False
        due = self.spec.down_after_ms / 1000 + HELLO_PERIOD_S + 2.0  # + the o_down round, + slack
        return time.monotonic() - self.paused_at < due

    def _switched(self) -> tuple[bool, tuple[str, int] | None]:
        seen = observe(self.spec)
        new = seen.master
        acting = self.acting
        if new == self.old_addr and acting is not None:  # all still name the old master: is the one asked acting?
            view = next(v for v in seen.sentinels if v.node == acting)
            if view.reachable and view.master == self.old_addr and "failover_in_progress" not in view.master_flags:
                # -failover-abort-*
                raise _Stalled(f"{acting.name} ended the failover with {self.old.name} still master")
            tilted = False
            with suppress(redis.RedisError):
                tilted = in_tilt(self.spec, acting)
            if tilted:
                raise _Stalled(f"{acting.name} entered TILT mode after accepting")
        if new is None or new == self.old_addr:  # (None: the Sentinels disagree, a switch is under way)
            return False, new
        # A Sentinel that has not heard of the failover yet can turn the promoted replica straight back
        # into a replica (+convert-to-slave); demoting the old master under it would leave no master at
        # all (seen in CI: the two replicating from each other). Wait until the named node is a master.
        promoted = next((v for v in seen.redis if (v.node.host, v.node.port) == new), None)
        if promoted is not None and promoted.role == "master":
            return True, new
        if promoted is not None and promoted.role == "slave" and self.safe:
            self._promote_if_turned_back(promoted.node)
        return False, new

    def _promote_if_turned_back(self, named: Node) -> None:
        """Every Sentinel names ``named`` master, but it is a replica again: a Sentinel that had not heard
        of the switch turned it back (+convert-to-slave) and none will undo that; Sentinel's own remedy is
        to find it down after down-after + 20 s of reporting the wrong role and fail over a second time
        (seen in CI, loaded, compose: 26 s of READONLY, two failovers). With the old master's writes
        paused and the replicas caught up, promoting it as the Sentinels already say loses nothing."""
        now = time.monotonic()
        if self.turned_back_since is None:
            self.turned_back_since = now
        if now - self.turned_back_since < TURNED_BACK_GRACE_S:
            return
        try:
            with node_client(self.spec, named, timeout=2) as conn:  # as Sentinel promotes: MULTI, and rewrite
                pipe = conn.pipeline(transaction=True)
                pipe.replicaof("NO", "ONE")
                pipe.config_rewrite()
                pipe.execute()
        except (redis.ConnectionError, redis.TimeoutError):
            return  # it dropped between two looks: look again on the next poll
        self.turned_back_since = None


def _sentinels_to_ask(spec: LabSpec, exclude: list[Node]) -> tuple[list[Node], list[str]]:
    """Running Sentinels that would act on SENTINEL FAILOVER now, and why each other one would not."""
    backend = get_backend(spec.backend)
    usable: list[Node] = []
    why_not: list[str] = []
    for sentinel in spec.sentinels:
        if sentinel in exclude or backend.node_state(spec, sentinel) != "up":
            continue
        try:
            tilted = in_tilt(spec, sentinel)
        except redis.RedisError as exc:
            why_not.append(f"{sentinel.name}: {exc}")
            continue
        if tilted:
            why_not.append(f"{sentinel.name} is in TILT mode (it would accept and do nothing for up to 30 s)")
        else:
            usable.append(sentinel)
    return usable, why_not


def _ask_for_failover(spec: LabSpec, sentinel: Node, coordinated: bool = False) -> str:
    """SENTINEL FAILOVER (``coordinated``: ... COORDINATED) on ``sentinel``: "" once it accepted (or is already
    failing the master over: INPROG), its NOGOODSLAVE answer (which starts nothing) otherwise; any other
    refusal is a LabError."""
    try:
        with node_client(spec, sentinel, timeout=2) as sconn:
            sconn.execute_command("SENTINEL", "FAILOVER", spec.master_name, *(["COORDINATED"] if coordinated else []))
    except redis.ResponseError as exc:
        if str(exc).startswith("INPROG"):
            return ""
        if not str(exc).startswith("NOGOODSLAVE"):
            raise LabError(f"{sentinel.name} refused SENTINEL FAILOVER: {exc}") from exc
        return f"{sentinel.name}: {exc}"
    return ""


def _sentinel_report(spec: LabSpec) -> str:
    """What each Sentinel names and flags, and the tail of its log: why a failover did not finish."""
    seen = observe(spec)
    lines = [
        f"{v.node.name}: master {v.master} flags {v.master_flags}" if v.reachable else f"{v.node.name}: {v.error}"
        for v in seen.sentinels
    ]
    return "\n".join(lines) + "\n" + log_tails(spec, 12, spec.sentinels)


def _wait_replicas_caught_up(spec: LabSpec, conn: redis.Redis, timeout: float) -> None:
    """Until every replica the paused master lists has applied all it was sent (and one is listed).
    Each replica behind in the master's view is asked its own offset: the master's INFO has it only as
    of the replica's last REPLCONF ACK (once a second), and waiting for that kept the master paused for
    about a second before SENTINEL FAILOVER, long enough for the other Sentinels to find it down and
    start a failover of their own (CI, loaded: two Sentinels promoted two replicas in one epoch)."""
    by_address = {(n.host, n.port): n for n in spec.redis_nodes}

    def offset_of(node: Node | None, listed: int) -> int:
        if node is None:
            return listed
        try:
            with node_client(spec, node, timeout=1) as replica:
                info = replica.info("replication")
        except (redis.RedisError, OSError):
            return listed  # (it answers later, or the master's view catches up)
        return int(info.get("slave_repl_offset", listed))

    def probe() -> tuple[bool, str]:
        info = conn.info("replication")
        offset = int(info["master_repl_offset"])
        listed = [v for k, v in info.items() if k.startswith("slave") and isinstance(v, dict)]
        lagging = []
        for v in listed:
            seen = int(v["offset"])
            if seen < offset:
                seen = offset_of(by_address.get((str(v["ip"]), int(v["port"]))), seen)
            if seen < offset:
                lagging.append(f"{v['ip']}:{v['port']} at {seen}")
        return bool(listed) and not lagging, f"master at {offset}, lagging: {lagging or 'none'}"

    wait_for(probe, what="replicas to reach the master's offset", timeout=timeout)
