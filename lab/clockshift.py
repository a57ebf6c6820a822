"""A node's own wall clock, moved without touching the machine's: a small preload library (built here with the
machine's C compiler, once per source) that a node is restarted under, and a 24-byte file in the node's
directory that says how far its clock is shifted and whether it stands still.

libfaketime is the usual tool and does not work here: Redis and Valkey allocate with jemalloc, which reads
the clock while libfaketime initialises and the two never start (libfaketime issues #130, #327: measured,
`redis-server --sentinel` under libfaketime 0.9.10 exits at once). This library needs no initialisation: it
asks the kernel for the time with a system call and adds what the file says, so it never calls back into
the allocator. Only the wall clock moves (CLOCK_REALTIME, gettimeofday, time): Sentinel's TILT check reads
it, and the monotonic clock its timers run on goes on as before, as on a host whose clock was stepped.

The file holds three signed 64-bit nanosecond values: the offset added to the wall clock, and a window
(from, until) in which the clock stands still at ``from`` (a stalled clock; past ``until`` it shows the real
time again, a jump forward by the stall's length).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import struct
import subprocess
import tempfile
import time
from pathlib import Path

from lab.errors import Unavailable

SOURCE = r"""
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static volatile int64_t *shift = (volatile int64_t *)-1;

static void attach(void) {
    const char *path = getenv("LAB_CLOCK_FILE");
    int fd = path ? open(path, O_RDONLY | O_CLOEXEC) : -1;
    void *page = fd >= 0 ? mmap(NULL, 24, PROT_READ, MAP_SHARED, fd, 0) : MAP_FAILED;
    if (fd >= 0) close(fd);
    shift = page == MAP_FAILED ? NULL : (volatile int64_t *)page;
}

__attribute__((constructor)) static void init(void) { attach(); }

static int64_t wall_ns(void) {
    struct timespec ts;
    syscall(SYS_clock_gettime, CLOCK_REALTIME, &ts);
    int64_t now = (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
    if (shift == (volatile int64_t *)-1) attach();
    if (!shift) return now;
    int64_t from = shift[1], until = shift[2];
    if (from && now >= from && now < until) now = from;
    return now + shift[0];
}

int clock_gettime(clockid_t clock, struct timespec *ts) {
    if (clock != CLOCK_REALTIME && clock != CLOCK_REALTIME_COARSE)
        return (int)syscall(SYS_clock_gettime, clock, ts);
    int64_t now = wall_ns();
    ts->tv_sec = now / 1000000000LL;
    ts->tv_nsec = now % 1000000000LL;
    return 0;
}

int gettimeofday(struct timeval *tv, void *tz) {
    (void)tz;
    if (tv) {
        int64_t now = wall_ns();
        tv->tv_sec = now / 1000000000LL;
        tv->tv_usec = (now % 1000000000LL) / 1000;
    }
    return 0;
}

time_t time(time_t *out) {
    time_t now = (time_t)(wall_ns() / 1000000000LL);
    if (out) *out = now;
    return now;
}
"""

FILE = "clock"  # in the node's directory
_LAYOUT = struct.Struct("=qqq")


def library(cache: Path) -> Path:
    """The preload library, built into ``cache`` the first time (its name carries the source's hash)."""
    built = cache / f"clockshift-{hashlib.sha256(SOURCE.encode()).hexdigest()[:12]}.so"
    if built.is_file():
        return built
    compiler = shutil.which("cc") or shutil.which("gcc")
    if compiler is None:
        raise Unavailable("a clock fault needs a C compiler to build its preload library (apt-get install gcc)")
    cache.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache) as tmp:
        source = Path(tmp) / "clockshift.c"
        source.write_text(SOURCE)
        out = Path(tmp) / built.name
        result = subprocess.run(
            [compiler, "-shared", "-fPIC", "-O2", "-o", str(out), str(source)], capture_output=True, text=True
        )
        if result.returncode != 0:
            raise Unavailable(f"cannot build the clock library: {result.stderr.strip().splitlines()[-1:]}")
        os.replace(out, built)
    return built


def write(path: Path, offset_s: float = 0.0, stall_s: float = 0.0) -> None:
    """Shift the clock by ``offset_s`` now, and (``stall_s``) stop it for that long from now."""
    now = time.time_ns()
    start, end = (now, now + int(stall_s * 1e9)) if stall_s else (0, 0)
    data = _LAYOUT.pack(int(offset_s * 1e9), start, end)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
    try:
        os.pwrite(fd, data, 0)
    finally:
        os.close(fd)


def read(path: Path) -> tuple[float, float, float]:
    """(offset, stall from, stall until) in seconds; zeros when there is no file."""
    try:
        raw = path.read_bytes()[: _LAYOUT.size]
    except OSError:
        return 0.0, 0.0, 0.0
    if len(raw) < _LAYOUT.size:
        return 0.0, 0.0, 0.0
    offset, start, end = _LAYOUT.unpack(raw)
    return offset / 1e9, start / 1e9, end / 1e9
