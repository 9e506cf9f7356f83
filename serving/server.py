"""Start and stop the scoring service as a separate process (CLI, tests, demo, benchmarks).

``bentoml serve`` runs an arbiter that spawns the worker(s) in their own process groups, so
stopping it means: terminate the arbiter and every process it started, then wait.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING

from wattwise.errors import WattwiseError
from wattwise.paths import PACKAGE_DIR

if TYPE_CHECKING:
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
) -> RunningServer:
    """Start the service and wait until ``/readyz`` is 200 (or ``/healthz`` if not required)."""
    port = port or free_port(host)
    out: IO[bytes] | int = subprocess.DEVNULL
    if log_path is not None:
        log_path.parent.mkdir(parents=True, exist_ok=True)
        out = log_path.open("wb")
    # WATTWISE_BENCH_* name benchmark inputs, not settings: the settings model would refuse them
    base = {k: v for k, v in os.environ.items() if not k.startswith("WATTWISE_BENCH_")}
    proc = subprocess.Popen(
        serve_command(host, port),
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
        try:
            p.send_signal(signal.SIGTERM)
        except psutil.NoSuchProcess:
            continue
    _, alive = psutil.wait_procs(procs, timeout=timeout_s)
    for p in alive:
        try:
            p.kill()
        except psutil.NoSuchProcess:
            continue
    psutil.wait_procs(alive, timeout=5)
    if server.proc.poll() is None:
        server.proc.wait(timeout=5)


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
