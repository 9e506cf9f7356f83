"""``wattwise serve start`` stops gracefully: SIGTERM or Ctrl+C (SIGINT) lets the request in
flight finish, stops every process the command started, frees the port and exits 0; what
outlives ``shutdown_grace_s``, or a second Ctrl+C, is killed (exit 130).

The real command, as a subprocess on a free port of 127.0.0.1, serving the models the serving
fixtures train and register (conftest.py). The request in flight is a slow client: its headers
and most of its body are sent before the signal, the rest after.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psutil
import pytest

from serving.server import RunningServer, free_port, settings_env, start_server
from tests.serving.conftest import Served

pytestmark = [pytest.mark.integration, pytest.mark.slow]
ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Serve:
    server: RunningServer  # server.proc is the wattwise process
    tree: list[psutil.Process]  # wattwise and every process under it, taken once ready

    def stopping(self) -> bool:
        """wattwise has taken the signal and passed it on (its own log line)."""
        return "stopping the service" in self.server.log_tail(200)

    def alive(self) -> list[str]:
        out = []
        for p in self.tree:
            try:
                if p.is_running() and p.status() != psutil.STATUS_ZOMBIE:
                    out.append(f"{p.pid} {' '.join(p.cmdline())[:120]}")
            except psutil.NoSuchProcess:
                continue
        return out


@contextmanager
def wattwise_serve(served: Served, tmp: Path, grace_s: float) -> Iterator[Serve]:
    """``wattwise serve start`` (the local config, auth off) ready on a free port; whatever
    the test does, every process it started is killed at the end."""
    port = free_port()
    env = {
        **settings_env(served.settings, served.dataset_dir),
        "PYTHONPATH": str(ROOT),  # this checkout's wattwise, wherever pytest runs from
        "WW_SERVING_RELOAD_INTERVAL_S": "3600",
        "WW_SERVING_PREDLOG__ROOT": str(tmp / "predlog"),
        "WW_SERVING_SHUTDOWN_GRACE_S": str(grace_s),
    }
    cmd = [sys.executable, "-m", "wattwise.app.cli", "serve", "start"]
    cmd += ["--host", "127.0.0.1", "--port", str(port)]
    server = start_server(env, port=port, log_path=tmp / "serve.log", command=cmd)
    tree = []
    for pid in server.pids():
        try:
            tree.append(psutil.Process(pid))
        except psutil.NoSuchProcess:
            continue
    try:
        yield Serve(server, tree)
    finally:
        for p in tree:
            try:
                p.kill()
            except psutil.NoSuchProcess:
                continue
        psutil.wait_procs(tree, timeout=10)
        server.proc.wait(timeout=10)


def start_request(served: Served, port: int) -> tuple[socket.socket, bytes]:
    """A ``/churn/score`` request whose headers and all but the last bytes of its body are
    sent; returns the socket and the bytes still to send."""
    f = served.frame
    newest = f[f.event_timestamp == f.event_timestamp.max()]
    ids = newest.dropna(subset=["usage_mean_daily_kwh_30d"]).customer_id.head(3).tolist()
    body = json.dumps({"customer_ids": ids}).encode()
    head = (
        f"POST /churn/score HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode()
    sock = socket.create_connection(("127.0.0.1", port), timeout=60)
    sock.sendall(head + body[:-5])
    time.sleep(1.0)  # the worker has read the headers: the request is in its hands
    return sock, body[-5:]


def finish_request(sock: socket.socket, rest: bytes) -> tuple[int, dict[str, object]]:
    """Send the rest of the body; the status and JSON of the answer (read to the close)."""
    sock.sendall(rest)
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    sock.close()
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), json.loads(body)


def wait_until(cond: Callable[[], bool], timeout_s: float) -> bool:
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(0.1)
    return False


def listens(p: psutil.Process, port: int) -> bool:
    """``p`` holds a listening socket on ``port``."""
    try:
        conns = p.net_connections("tcp")
    except psutil.NoSuchProcess:
        return False
    return any(c.status == psutil.CONN_LISTEN and c.laddr.port == port for c in conns)


def port_is_free(port: int) -> bool:
    """A new server could listen on it (with SO_REUSEADDR, as servers bind)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
            s.listen()
        except OSError:
            return False
    return True


def assert_all_gone(serve: Serve, rc: int | None, want_rc: int) -> None:
    log = serve.server.log_tail(60)
    assert rc == want_rc, f"exit code {rc}, want {want_rc}\n{log}"
    assert serve.alive() == [], f"processes left behind\n{log}"
    assert port_is_free(serve.server.port), f"port {serve.server.port} still held\n{log}"


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_stop_drains_the_request_in_flight_and_every_process(
    served_models: Served, tmp_path: Path, sig: signal.Signals
) -> None:
    with wattwise_serve(served_models, tmp_path, grace_s=30) as serve:
        cmdlines = {p.pid: " ".join(p.cmdline()) for p in serve.tree}
        arbiter = [pid for pid, c in cmdlines.items() if "bentoml serve" in c]
        workers = [p for p in serve.tree if "_bentoml_impl.worker" in cmdlines[p.pid]]
        port = serve.server.port
        assert len(arbiter) == 1 and workers, cmdlines
        assert all(listens(w, port) for w in workers), cmdlines
        # the arbiter is in a session of its own: only wattwise gets a terminal's Ctrl+C
        assert os.getsid(arbiter[0]) != os.getsid(serve.server.proc.pid)
        sock, rest = start_request(served_models, port)
        serve.server.proc.send_signal(sig)
        # the workers stop accepting (close their listening socket) with the request unfinished
        assert wait_until(lambda: not any(listens(w, port) for w in workers), 10), (
            serve.server.log_tail()
        )
        assert serve.stopping(), serve.server.log_tail()
        assert serve.server.proc.poll() is None, "exited with a request in flight"
        status, answer = finish_request(sock, rest)
        assert status == 200, answer
        results = answer["results"]
        assert isinstance(results, list) and len(results) == 3
        assert all(0 <= r["probability"] <= 1 for r in results), results
        t0 = time.monotonic()
        rc = serve.server.proc.wait(timeout=30)
        assert time.monotonic() - t0 < 20
        assert_all_gone(serve, rc, 0)


def test_a_request_that_outlives_the_grace_is_killed_with_the_service(
    served_models: Served, tmp_path: Path
) -> None:
    grace = 3.0
    with wattwise_serve(served_models, tmp_path, grace_s=grace) as serve:
        sock, _ = start_request(served_models, serve.server.port)  # never finished
        t0 = time.monotonic()
        serve.server.proc.send_signal(signal.SIGTERM)
        rc = serve.server.proc.wait(timeout=grace + 20)
        took = time.monotonic() - t0
        sock.close()
        assert grace - 0.5 <= took < grace + 10, took  # waited the grace, not much more
        assert_all_gone(serve, rc, 130)


def test_a_second_ctrl_c_kills_at_once(served_models: Served, tmp_path: Path) -> None:
    with wattwise_serve(served_models, tmp_path, grace_s=300) as serve:
        sock, _ = start_request(served_models, serve.server.port)  # holds the stop
        serve.server.proc.send_signal(signal.SIGINT)
        assert wait_until(serve.stopping, 10), serve.server.log_tail()
        t0 = time.monotonic()
        serve.server.proc.send_signal(signal.SIGINT)
        rc = serve.server.proc.wait(timeout=30)
        sock.close()
        assert time.monotonic() - t0 < 10
        assert_all_gone(serve, rc, 130)
