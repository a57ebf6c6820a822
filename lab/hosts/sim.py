"""Simulated hosts (`lab hosts up N`, `lab hosts down`): N machines on this one to deploy to and drill.

A host is a network namespace on a bridge of the set's own /24 (its own address, real packets between
hosts, its own iptables) and, inside it, PID, mount and UTS namespaces whose first process is sshd:

- /etc, /root, /home, /opt, /srv, /var and /tmp are the host's own (directories under the set's,
  bind-mounted), /run a fresh tmpfs, /usr the machine's read-only: python3, redis-server and the
  lifecycle scripts' tools are there, and nothing a deployment writes reaches the machine;
- its /etc is a copy of the machine's without its secrets (shadow, gshadow, SSH host keys, TLS keys);
- root logs in with the set's key pair only (0600, made here), and every host's key is generated here
  and pinned in the set's known_hosts: no trust on first use;
- killing the first process kills every process of the host at once: a power cut (:func:`kill`);
  :func:`boot` starts it again (sshd, then ``/opt/redis-ha/boot`` when a deployment installed one).

Everything is named after the set's directory (a digest), never read from a file: ``down`` removes
only what ``up`` of this set made (namespaces ``lh-<digest>-<i>``, the bridge ``lh-<digest>``, the
directory), and a half-made set is removed by ``down`` as a whole one is.
"""

from __future__ import annotations

import hashlib
import importlib.util
import ipaddress
import json
import os
import re
import secrets
import shlex
import shutil
import signal
import socket
import stat
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from lab.errors import LabError, Unavailable, UsageError
from lab.home import validate_name
from lab.secretfiles import write_secret

#: Host sets live under ``<home>/.hosts/<name>/``.
HOSTS_DIR = ".hosts"
STATE = "hosts.json"
MAX_HOSTS = 12
DEFAULT_POOL = "172.30.0.0/16"
#: The host's own directories (bind-mounted over the machine's), and /run as a tmpfs.
OWN_DIRS = ("etc", "root", "home", "opt", "srv", "var", "tmp")
#: Never copied from the machine's /etc (besides what not every user may read: see :func:`_private`):
#: what would make a host look deployed already, the machine's SSH host keys, its namespaces' files.
NOT_COPIED = {"redis", "redis-ha", "valkey", "netns"}
#: A host set's directory goes into the hosts' sshd config and the inventory (INI values, ssh options).
PLAIN_PATH = re.compile(r"^[A-Za-z0-9._/+@:=,-]+$")
#: Written last by `up`: a set without it was left half made (an interrupted or killed `up`).
COMPLETE = "complete"
#: What a deployment installs to start its nodes when the host boots (the role; its systemd unit runs it too).
BOOT_HOOK = "/opt/redis-ha/boot"
KEY = "id_ed25519"
KNOWN_HOSTS = "known_hosts"
INVENTORY = "inventory/hosts.ini"
VAULT = "inventory/group_vars/all/vault.yml"
VAULT_PASSWORD = "vault.pass"


@dataclass(frozen=True)
class SimHost:
    name: str  # host-1
    address: str
    netns: str
    veth: str


@dataclass(frozen=True)
class HostSet:
    name: str
    directory: Path
    bridge: str
    subnet: str  # "172.30.5": the bridge is .1, host i is .(10 + i)
    hosts: tuple[SimHost, ...]

    @property
    def key(self) -> Path:
        return self.directory / KEY

    @property
    def known_hosts(self) -> Path:
        return self.directory / KNOWN_HOSTS

    @property
    def inventory(self) -> Path:
        return self.directory / INVENTORY

    @property
    def vault_password(self) -> Path:
        return self.directory / VAULT_PASSWORD

    def host(self, name: str) -> SimHost:
        for host in self.hosts:
            if host.name == name:
                return host
        raise UsageError(f"hosts {self.name}: no host {name!r} (hosts: {', '.join(h.name for h in self.hosts)})")

    def root(self, host: SimHost) -> Path:
        """The host's own filesystem (its /etc, /var, ... as this machine sees them)."""
        return self.directory / host.name


def set_dir(home: Path, name: str) -> Path:
    validate_name(name)
    directory = home / HOSTS_DIR / name
    if directory.is_symlink() or (home / HOSTS_DIR).is_symlink():
        raise UsageError(f"{directory} is (or is under) a symbolic link: refusing to use it")
    return directory


def _digest(directory: Path) -> str:
    """Names of a set's namespaces and bridge: its directory's real path (any spelling of the home finds them)."""
    return hashlib.sha1(str(directory.resolve()).encode()).hexdigest()[:8]


def pool() -> ipaddress.IPv4Network:
    """LAB_HOSTS_POOL (default 172.30.0.0/16): where a set's /24 is chosen; one line and exit 2 if unusable."""
    text = os.environ.get("LAB_HOSTS_POOL") or DEFAULT_POOL
    try:
        net = ipaddress.IPv4Network(text)
    except ValueError:
        raise UsageError(f"LAB_HOSTS_POOL={text!r}: give an IPv4 network such as {DEFAULT_POOL}") from None
    if net.prefixlen > 24:
        raise UsageError(f"LAB_HOSTS_POOL={text}: give a /24 or wider")
    return net


def _names(directory: Path, count: int, subnet: str) -> HostSet:
    digest = _digest(directory)
    hosts = tuple(
        SimHost(f"host-{i}", f"{subnet}.{10 + i}", f"lh-{digest}-{i}", f"lh{digest}v{i}") for i in range(1, count + 1)
    )
    return HostSet(directory.name, directory, f"lh-{digest}", subnet, hosts)


def load(home: Path, name: str) -> HostSet:
    directory = set_dir(home, name)
    try:
        data = json.loads((directory / STATE).read_text())
        count, subnet = int(data["count"]), str(data["subnet"])
        ipaddress.ip_network(f"{subnet}.0/24")
    except FileNotFoundError:
        raise UsageError(f"no hosts {name} under {home} (`lab hosts up N --name {name}` makes them)") from None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise LabError(
            f"{directory / STATE} is unreadable ({exc}): `lab hosts down --name {name}` removes the set"
        ) from None
    if not 1 <= count <= MAX_HOSTS:
        raise LabError(f"{directory / STATE}: {count} hosts? `lab hosts down --name {name}` removes the set")
    return _names(directory, count, subnet)


def _run(*argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    if check and done.returncode != 0:
        raise LabError(f"{' '.join(argv[:4])}: {(done.stderr or done.stdout).strip().splitlines()[-1:]}")
    return done


def preflight() -> None:
    """This machine can make hosts: root, iproute2, unshare, sshd, ssh-keygen, ansible-core (for the
    inventory's vault) (exit 69 otherwise)."""
    if os.geteuid() != 0:
        raise Unavailable("simulated hosts need root (network namespaces, a bridge, mounts)")
    missing = [b for b in ("ip", "unshare", "ssh-keygen", "ssh") if not shutil.which(b)]
    missing += [] if Path("/usr/sbin/sshd").exists() else ["sshd (apt-get install openssh-server)"]
    if importlib.util.find_spec("ansible") is None:
        missing.append("ansible-core (pip install ansible-core: the inventory's vault)")
    if missing:
        raise Unavailable(f"simulated hosts need {', '.join(missing)}")


def _used_subnets() -> list[ipaddress.IPv4Network]:
    used = []
    for cmd in (["ip", "-4", "-o", "route", "show", "table", "all"], ["ip", "-4", "-o", "addr"]):
        for line in _run(*cmd, check=False).stdout.splitlines():
            for word in line.split():
                try:
                    used.append(ipaddress.ip_network(word, strict=False))
                except ValueError:
                    continue
    return [n for n in used if isinstance(n, ipaddress.IPv4Network) and n.prefixlen > 0]


def _free_subnet(directory: Path) -> str:
    used = _used_subnets()
    where = pool()
    nets = list(where.subnets(new_prefix=24))
    start = int(_digest(directory), 16) % len(nets)
    for k in range(len(nets)):
        net = nets[(start + k) % len(nets)]
        if not any(net.overlaps(u) for u in used):
            return str(net.network_address).rsplit(".", 1)[0]
    raise Unavailable(f"no free /24 left in {where} (LAB_HOSTS_POOL chooses another range)")


def up(home: Path, name: str, count: int, *, timeout: float = 30.0) -> tuple[HostSet, bool]:
    """Make (or repair: boot the hosts that are down) the set ``name`` of ``count`` hosts.
    Returns the set and whether it was new. A new set that fails halfway is removed again."""
    from lab import interrupts

    if not 1 <= count <= MAX_HOSTS:
        raise UsageError(f"hosts: give 1 to {MAX_HOSTS}, not {count}")
    directory = set_dir(home, name)
    preflight()
    pool()
    if not PLAIN_PATH.match(str(directory.resolve())):
        raise UsageError(
            f"{directory}: simulated hosts need a home whose path has no spaces or quotes (it goes into the "
            "hosts' sshd config and the inventory's ssh options)"
        )
    if (directory / STATE).exists() and not (directory / COMPLETE).exists():
        raise LabError(f"hosts {name} were left half made (an interrupted `up`): `lab hosts down --name {name}` first")
    if (directory / STATE).exists():
        hs = load(home, name)
        if len(hs.hosts) != count:
            raise UsageError(
                f"hosts {name} has {len(hs.hosts)} hosts, not {count}: `lab hosts down --name {name}` first"
            )
        for host in hs.hosts:
            if not running(host):
                boot(hs, host)
        wait_ssh(hs, timeout)
        return hs, False
    if directory.exists():
        raise UsageError(f"{directory} exists but is no host set: remove it by hand")
    key = f"hosts {name}"
    interrupts.undo_on_interrupt(key, lambda: (down(home, name), f"removed the new hosts {name}")[1])
    try:
        directory.parent.mkdir(parents=True, exist_ok=True)
        directory.mkdir(mode=0o700)
        hs = _names(directory, count, _free_subnet(directory))
        write_secret(directory / STATE, json.dumps({"count": count, "subnet": hs.subnet}))
        _keys(hs)
        for host in hs.hosts:
            _filesystem(hs, host)
        _network(hs)
        for host in hs.hosts:
            boot(hs, host)
        wait_ssh(hs, timeout)
        _inventory(hs)
        (directory / COMPLETE).touch()
    except BaseException:
        with interrupts.shielded():
            if not interrupts.undo_now(key):  # (outside a command: no undo log, remove it here)
                down(home, name)
        raise
    interrupts.done(key)
    return hs, True


def _keys(hs: HostSet) -> None:
    _run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", f"lab-hosts-{hs.name}", "-f", str(hs.key))
    os.chmod(hs.key, 0o600)


def _filesystem(hs: HostSet, host: SimHost) -> None:
    root = hs.root(host)
    root.mkdir(mode=0o700)
    shutil.copytree(
        "/etc",
        root / "etc",
        symlinks=True,
        ignore=lambda d, names: [n for n in names if n in NOT_COPIED or n.startswith("ssh_host_") or _private(d, n)],
        ignore_dangling_symlinks=True,
    )
    etc = root / "etc"
    users = [line.split(":", 1)[0] for line in (etc / "passwd").read_text().splitlines() if line]
    groups = [line.split(":", 1)[0] for line in (etc / "group").read_text().splitlines() if line]
    write_secret(etc / "shadow", "\n".join(f"{u}:*:19000:0:99999:7:::" for u in users))
    write_secret(etc / "gshadow", "\n".join(f"{g}:*::" for g in groups))
    (etc / "hostname").write_text(host.name + "\n")
    (etc / "machine-id").write_text(secrets.token_hex(16) + "\n")
    peers = "".join(f"{h.address}\t{h.name}\n" for h in hs.hosts)
    (etc / "hosts").write_text(f"127.0.0.1\tlocalhost\n127.0.1.1\t{host.name}\n{peers}")
    _run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", host.name, "-f", str(etc / "ssh/ssh_host_ed25519_key"))
    (etc / "ssh/sshd_config").write_text(
        f"# {host.name} of the simulated hosts {hs.name} (lab hosts): keys only, root by key\n"
        f"ListenAddress {host.address}\nHostKey /etc/ssh/ssh_host_ed25519_key\n"
        "PermitRootLogin prohibit-password\nPubkeyAuthentication yes\nPasswordAuthentication no\n"
        "KbdInteractiveAuthentication no\nUsePAM no\nPidFile none\nPrintMotd no\nPrintLastLog no\nMaxStartups 60\n"
        "MaxSessions 60\nSubsystem sftp internal-sftp\n"
    )
    for sub in ("root/.ssh", "home", "opt", "srv", "var/lib", "var/log", "var/cache", "var/spool", "var/tmp", "tmp"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    for sub in ("var/tmp", "tmp"):
        os.chmod(root / sub, 0o1777)
    os.symlink("/run", root / "var/run")
    os.symlink("/run/lock", root / "var/lock")
    os.chmod(root / "root", 0o700)
    os.chmod(root / "root/.ssh", 0o700)
    shutil.copyfile(hs.key.with_suffix(".pub"), root / "root/.ssh/authorized_keys")
    os.chmod(root / "root/.ssh/authorized_keys", 0o600)


def _private(directory: str, name: str) -> bool:
    """Not for every user of this machine to read (a file without o+r, a directory without o+rx): its
    secrets (shadow, keytabs, VPN and TLS keys, ...) by the only rule that finds them all."""
    try:
        mode = os.lstat(os.path.join(directory, name)).st_mode
    except OSError:
        return True
    if stat.S_ISLNK(mode):
        return False
    wanted = stat.S_IROTH | (stat.S_IXOTH if stat.S_ISDIR(mode) else 0)
    return mode & wanted != wanted


def _network(hs: HostSet) -> None:
    _run("ip", "link", "add", hs.bridge, "type", "bridge")
    _run("ip", "addr", "add", f"{hs.subnet}.1/24", "dev", hs.bridge)
    _run("ip", "link", "set", hs.bridge, "up")
    for host in hs.hosts:
        _run("ip", "netns", "add", host.netns)
        _run("ip", "link", "add", host.veth, "type", "veth", "peer", "name", "eth0", "netns", host.netns)
        _run("ip", "link", "set", host.veth, "master", hs.bridge, "up")
        _run("ip", "-n", host.netns, "addr", "add", f"{host.address}/24", "dev", "eth0")
        _run("ip", "-n", host.netns, "link", "set", "eth0", "up")
        _run("ip", "-n", host.netns, "link", "set", "lo", "up")
        _run("ip", "-n", host.netns, "route", "add", "default", "via", f"{hs.subnet}.1")


def _boot_script(hs: HostSet, host: SimHost) -> str:
    """The host's first process: its own directories over the machine's, then sshd (pid 1)."""
    root = hs.root(host).resolve()
    mounts = [(f"/{d}", str(root / d)) for d in OWN_DIRS] + [("/run", "")]
    # A directory that holds the set's own (the lab home under /tmp or /root) is covered last: its
    # bind would hide the sources of the ones after it.
    mounts.sort(key=lambda m: Path(m[0]) in root.parents)
    lines = ["set -eu"]
    for target, source in mounts:
        if source:
            lines.append(f"mount --bind {shlex.quote(source)} {target}")
        else:
            lines.append(f"mount -t tmpfs -o mode=0755,nosuid,nodev tmpfs {target}")
    lines += [
        "mkdir -p /run/sshd /run/lock",
        "mount --bind /usr /usr",
        "mount -o remount,ro,bind /usr",
        f"hostname {host.name}",
        f"if [ -x {BOOT_HOOK} ]; then (setsid {BOOT_HOOK} >/var/log/boot.log 2>&1 &); fi",
        "exec /usr/sbin/sshd -D -e",
    ]
    return "\n".join(lines) + "\n"


def boot(hs: HostSet, host: SimHost) -> None:
    """Start the host: its namespaces' first process (sshd), after the deployment's boot hook."""
    log = hs.directory / "logs" / f"{host.name}.log"
    log.parent.mkdir(exist_ok=True)
    script = hs.directory / "logs" / f"{host.name}.boot.sh"
    script.write_text(_boot_script(hs, host))
    argv = ["ip", "netns", "exec", host.netns, "unshare", "--pid", "--fork", "--kill-child", "--mount", "--uts"]
    argv += ["--propagation", "private", "--mount-proc", "/bin/sh", str(script)]
    with open(log, "ab") as out:
        subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=out, start_new_session=True)


def pids(host: SimHost) -> list[int]:
    """Every process of the host, as this machine numbers them."""
    found = _run("ip", "netns", "pids", host.netns, check=False).stdout.split()
    return [int(p) for p in found if p.isdigit()]


def init_pid(host: SimHost) -> int | None:
    """The host's first process (sshd, pid 1 inside), as this machine numbers it: `nsenter -t` it to act
    inside the host (its mounts, its network)."""
    for pid in pids(host):
        try:
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            continue
        nspid = next((line.split()[1:] for line in status.splitlines() if line.startswith("NSpid:")), [])
        if nspid[-1:] == ["1"] and len(nspid) > 1:
            return pid
    return None


def running(host: SimHost) -> bool:
    return bool(pids(host))


def kill(host: SimHost) -> list[int]:
    """A power cut: SIGKILL to every process of the host at once; returns their pids (gone on return)."""
    from lab.procs import wait_gone

    found = pids(host)
    for pid in found:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            continue
    for pid in found:
        wait_gone(pid, 10.0)
    return found


def wait_ssh(hs: HostSet, timeout: float) -> None:
    from lab.waits import wait_for

    def probe() -> tuple[bool, list[str]]:
        waiting = []
        for host in hs.hosts:
            try:
                with socket.create_connection((host.address, 22), timeout=0.5) as sock:
                    if not sock.recv(64).startswith(b"SSH-"):
                        waiting.append(host.name)
            except OSError:
                waiting.append(host.name)
        return not waiting, waiting

    wait_for(probe, what=f"sshd on hosts {hs.name}", timeout=timeout, interval=0.05, describe=lambda w: ", ".join(w))


def _inventory(hs: HostSet) -> None:
    """known_hosts (every host's key, pinned), an inventory in the layout `lab deploy` reads, and its
    vault (the deployment's passwords, encrypted with a password of its own, 0600)."""
    lines = []
    for host in hs.hosts:
        kind, key = (hs.root(host) / "etc/ssh/ssh_host_ed25519_key.pub").read_text().split()[:2]
        lines.append(f"{host.address} {kind} {key}")
    hs.known_hosts.write_text("\n".join(lines) + "\n")
    names = [h.name for h in hs.hosts]
    data, sentinel = (names[:3], names[:3]) if len(names) < 6 else (names[:3], names[3:6])
    ssh_args = f"-o UserKnownHostsFile={hs.known_hosts} -o StrictHostKeyChecking=yes -o IdentitiesOnly=yes"
    text = [f"# The simulated hosts {hs.name} (lab hosts up): `lab deploy -i {hs.inventory}`", "[lab_hosts]"]
    text += [f"{h.name} ansible_host={h.address}" for h in hs.hosts]
    if len(names) >= 3:
        text += ["", "[redis_ha_data]", *data, "", "[redis_ha_sentinel]", *sentinel]
    text += [
        "",
        "[all:vars]",
        "ansible_user=root",
        "ansible_python_interpreter=/usr/bin/python3",
        f"ansible_ssh_private_key_file={hs.key}",
        f"ansible_ssh_common_args='{ssh_args}'",
    ]
    hs.inventory.parent.mkdir(mode=0o700)
    hs.inventory.write_text("\n".join(text) + "\n")
    from lab.hosts.vault import encrypt, secrets_document

    write_secret(hs.vault_password, secrets.token_hex(24))
    vault = hs.directory / VAULT
    vault.parent.mkdir(parents=True, mode=0o700)
    write_secret(vault, encrypt(secrets_document(), hs.vault_password).rstrip("\n"))


def down(home: Path, name: str) -> list[str]:
    """Remove the set: every process of its hosts, its namespaces, its bridge, its directory
    (idempotent; also a set that `up` left half made). Returns what it removed."""
    directory = set_dir(home, name)
    digest = _digest(directory)  # (swept even when the directory is gone: nothing of a set outlives it)
    removed: list[str] = []
    netns = [
        line.split()[0]
        for line in _run("ip", "netns", "list", check=False).stdout.splitlines()
        if line.split() and line.split()[0].startswith(f"lh-{digest}-")
    ]
    for ns in netns:
        if kill(SimHost(ns, "", ns, "")):
            removed.append(f"the processes of {ns}")
        _run("ip", "netns", "delete", ns)
        removed.append(f"namespace {ns}")
    if _run("ip", "link", "show", f"lh-{digest}", check=False).returncode == 0:
        _run("ip", "link", "delete", f"lh-{digest}")
        removed.append(f"bridge lh-{digest}")
    if directory.exists():  # (only once everything above is gone: the directory is how it is found again)
        shutil.rmtree(directory)
        removed.append(str(directory))
    return removed


def sets(home: Path) -> Iterator[str]:
    root = home / HOSTS_DIR
    if root.is_dir() and not root.is_symlink():
        yield from sorted(d.name for d in root.iterdir() if (d / STATE).exists())
