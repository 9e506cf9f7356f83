"""Start and stop the scoring service as a separate process (CLI, tests, demo, benchmarks).

``bentoml serve`` runs an arbiter that spawns the worker(s) in their own process groups, so
stopping it means: terminate the arbiter and every process it started, then wait.
:func:`run_supervised` does that for ``wattwise serve start`` when it is asked to stop.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING

from wattwise.errors import EXIT_INTERRUPTED, EXIT_OK, WattwiseError
from wattwise.paths import PACKAGE_DIR

if TYPE_CHECKING:
    import psutil

    from wattwise.settings import Settings

log = logging.getLogger(__name__)
SERVICE = "serving.service:Wattwise"
REPO_ROOT = PACKAGE_DIR.parent


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def serve_command(host: str, port: int) -> list[str]:
    return [
        sys.executable,
        "-m",
        "bentoml",
        "serve",
        SERVICE,
        "--host",
        host,
        "--port",
        str(port),
        "--working-dir",
        str(REPO_ROOT),
    ]


@dataclass
class RunningServer:
    proc: subprocess.Popen[bytes]
    host: str
    port: int
    log_path: Path | None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def log_tail(self, n: int = 40) -> str:
        if self.log_path is None or not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])

    def pids(self) -> list[int]:
        """The arbiter and every process under it."""
        import psutil

        try:
            p = psutil.Process(self.proc.pid)
            return [self.proc.pid, *(c.pid for c in p.children(recursive=True))]
        except psutil.NoSuchProcess:
            return []


def _get(url: str, timeout: float = 2.0) -> int:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return int(r.status)
    except urllib.error.HTTPError as e:
        return int(e.code)
    except (urllib.error.URLError, OSError):
        return 0


def start_server(
    env: dict[str, str] | None = None,
    *,
    host: str = "127.0.0.1",
    port: int | None = None,
    log_path: Path | None = None,
    timeout_s: float = 240.0,
    require_ready: bool = True,
    command: Sequence[str] | None = None,
) -> RunningServer:
    """Start the service and wait until ``/readyz`` is 200 (or ``/healthz`` if not required).

    ``command`` runs instead of ``bentoml serve`` (a ``wattwise serve start`` on ``host`` and
    ``port``, say); it is started the same way, in its own session."""
    port = port or free_port(host)
    out: IO[bytes] | int = subprocess.DEVNULL
    if log_path is not None:
        log_path.parent.mkdir(parents=True, exist_ok=True)
        out = log_path.open("wb")
    # WATTWISE_BENCH_* name benchmark inputs, not settings: the settings model would refuse them
    base = {k: v for k, v in os.environ.items() if not k.startswith("WATTWISE_BENCH_")}
    proc = subprocess.Popen(
        list(command) if command is not None else serve_command(host, port),
        env={**base, **(env or {})},
        stdout=out,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    server = RunningServer(proc, host, port, log_path)
    probe = "/readyz" if require_ready else "/healthz"
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise WattwiseError(
                f"scoring service exited with {proc.returncode} during start:\n{server.log_tail()}"
            )
        if _get(server.url + probe) == 200:
            log.info("scoring service ready at %s (pid %d)", server.url, proc.pid)
            return server
        time.sleep(0.25)
    stop_server(server)
    raise WattwiseError(f"scoring service not ready within {timeout_s:.0f} s:\n{server.log_tail()}")


def stop_server(server: RunningServer, timeout_s: float = 20.0) -> None:
    """Terminate the arbiter and its workers (SIGTERM, then SIGKILL after ``timeout_s``)."""
    import psutil

    procs = []
    for pid in server.pids():
        try:
            procs.append(psutil.Process(pid))
        except psutil.NoSuchProcess:
            continue
    for p in procs:
        _send(p, signal.SIGTERM)
    _kill(_wait_gone(procs, timeout_s))
    if server.proc.poll() is None:
        server.proc.wait(timeout=5)


# what stops ``wattwise serve start``: a terminal's Ctrl+C, a process manager's SIGTERM, and
# the terminal going away (SIGHUP; the child, in its own session, would not see it)
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)


def run_supervised(cmd: Sequence[str], env: Mapping[str, str] | None, grace_s: float) -> int:
    """Run the service ``cmd`` in the foreground until it exits or this process is told to stop.

    The child starts in its own session (so its own process group): a terminal's Ctrl+C
    reaches this process only, and the stop is ours to run. On SIGTERM, SIGINT or SIGHUP the
    child's process group gets SIGTERM: the bentoml arbiter then stops its workers (each in a
    session of its own), which stop accepting connections, finish the requests in flight and
    exit. The child and every process under it (tracked while they run) get ``grace_s``
    seconds to exit; a second signal, or the end of the grace, SIGKILLs all that are left.

    Returns 0 after a stop within the grace, 130 when something had to be killed (requests
    in flight may have been cut), else the child's own exit status (128 + N when signal N
    ended it), with any process it left behind stopped the same way. Call from the main
    thread: it sets signal handlers, and restores them on return.
    """
    asked: list[int] = []

    def on_signal(signum: int, _frame: object) -> None:
        asked.append(signum)

    previous = {s: signal.signal(s, on_signal) for s in STOP_SIGNALS}
    try:
        proc = subprocess.Popen(
            list(cmd), env=None if env is None else dict(env), start_new_session=True
        )
        return _supervise(proc, asked, grace_s)
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


def _supervise(proc: subprocess.Popen[bytes], asked: list[int], grace_s: float) -> int:
    import psutil

    tree: dict[int, psutil.Process] = {}  # the child and every process seen under it

    def track() -> None:  # only while ``proc`` is not reaped: its pid is still its own
        try:
            root = psutil.Process(proc.pid)
            tree.update({p.pid: p for p in (root, *root.children(recursive=True))})
        except psutil.NoSuchProcess:
            pass

    deadline: float | None = None  # set when the stop begins
    # a re-read scans every process of the machine: often at start, while the workers
    # appear, then every 10 s
    next_track, track_every = 0.0, 0.5
    while proc.poll() is None:
        now = time.monotonic()
        if deadline is None and asked:
            track()
            log.info(
                "%s: stopping the service; requests in flight have %g s to finish",
                signal.Signals(asked[0]).name,
                grace_s,
            )
            _signal_group(proc.pid, signal.SIGTERM)
            deadline = now + grace_s
        elif deadline is not None and (len(asked) > 1 or now >= deadline):
            track()
            _signal_group(proc.pid, signal.SIGKILL)
            _kill(tree.values())
            proc.wait()
            why = "a second signal" if len(asked) > 1 else f"not stopped within {grace_s:g} s"
            log.warning("killed the service: %s", why)
            return EXIT_INTERRUPTED
        elif now >= next_track:
            track()
            next_track, track_every = now + track_every, min(2 * track_every, 10.0)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=0.1)
    rc = proc.returncode
    left = [p for p in tree.values() if p.pid != proc.pid and _running(p)]
    if left:  # the child is gone and processes under it are not (it died, or was killed)
        log.warning("the service left %d process(es) behind: stopping them", len(left))
        for p in left:
            _send(p, signal.SIGTERM)
        end = deadline if deadline is not None else time.monotonic() + grace_s
        left = _wait_gone(left, end - time.monotonic())
        _kill(left)
    if not asked:
        return _status(rc)
    return EXIT_INTERRUPTED if left else EXIT_OK


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, sig)


def _send(p: psutil.Process, sig: signal.Signals) -> None:
    import psutil

    with contextlib.suppress(psutil.NoSuchProcess):
        p.send_signal(sig)  # psutil checks the pid still names the same process


def _kill(procs: Iterable[psutil.Process]) -> None:
    procs = list(procs)
    for p in procs:
        _send(p, signal.SIGKILL)
    _wait_gone(procs, 5.0)


def _running(p: psutil.Process) -> bool:
    """Alive, and not a zombie (which holds no port or memory, only its exit status)."""
    import psutil

    try:
        return p.is_running() and p.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _wait_gone(procs: Iterable[psutil.Process], timeout_s: float) -> list[psutil.Process]:
    """Wait up to ``timeout_s`` for ``procs`` to end; those still running."""
    end = time.monotonic() + timeout_s
    alive = [p for p in procs if _running(p)]
    while alive and time.monotonic() < end:
        time.sleep(0.05)
        alive = [p for p in alive if _running(p)]
    return alive


def _status(rc: int) -> int:
    """A child's exit status as a shell reports it (killed by signal N: 128 + N)."""
    return 128 - rc if rc < 0 else rc


def settings_env(settings: Settings, dataset_dir: Path | None = None) -> dict[str, str]:
    """Environment that makes a service process use these settings (and this dataset)."""
    env = {
        "WATTWISE_PATHS__DATA_DIR": str(settings.data_dir),
        "WATTWISE_PATHS__MLRUNS_DIR": str(settings.mlruns_dir),
        "WATTWISE_MLFLOW__TRACKING_URI": settings.tracking_uri,
        "WATTWISE_MLFLOW__ARTIFACT_ROOT": str(settings.artifact_root),
    }
    if settings.kinds:
        import json

        env["WATTWISE_KINDS"] = json.dumps(settings.kinds)
    if dataset_dir is not None:
        env["WATTWISE_PATHS__DATA_DIR"] = str(dataset_dir.parent)
        env["WW_SERVING_DATASET"] = dataset_dir.name
    return env
