"""Connection deadlines (serving.connection) on a real uvicorn server over real sockets.

Before them, a silent connection, half a request's headers, or headers with a body that
never comes held a connection (and its memory) for ever.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from serving.config import LimitsConfig
from serving.server import free_port

LIMITS = LimitsConfig(header_timeout_s=0.5, body_timeout_s=0.5, keep_alive_s=0.5)


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Reads the whole body, answers 200 (a disconnect ends it without an answer)."""
    if scope["type"] != "http":
        return
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return
        if not message.get("more_body"):
            break
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"ok"})


@pytest.fixture(scope="module")
def port() -> Iterator[int]:
    import uvicorn

    from serving.connection import GuardedHttpToolsProtocol

    GuardedHttpToolsProtocol.limits = LIMITS
    p = free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            app, host="127.0.0.1", port=p, http=GuardedHttpToolsProtocol, log_config=None
        )
    )
    t = threading.Thread(target=server.run, daemon=True)
    t.start()
    while not server.started:
        time.sleep(0.01)
    yield p
    server.should_exit = True
    t.join(10)


def until_closed(sock: socket.socket, send: bytes = b"") -> bytes:
    """What the server sends before it closes the connection (a timeout fails the test)."""
    sock.settimeout(10)
    if send:
        sock.sendall(send)
    out = b""
    while chunk := sock.recv(65536):
        out += chunk
    return out


def test_a_silent_connection_is_closed(port: int) -> None:
    with socket.create_connection(("127.0.0.1", port)) as s:
        assert until_closed(s) == b""


def test_half_a_request_s_headers_get_a_408_naming_the_limit(port: int) -> None:
    with socket.create_connection(("127.0.0.1", port)) as s:
        out = until_closed(s, b"POST /x HTTP/1.1\r\nHost: a\r\n")
    assert out.startswith(b"HTTP/1.1 408 ")
    assert b"header_timeout_s" in out


def test_a_body_that_does_not_come_gets_a_408_naming_the_limit(port: int) -> None:
    with socket.create_connection(("127.0.0.1", port)) as s:
        out = until_closed(s, b"POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 100\r\n\r\n{")
    assert out.startswith(b"HTTP/1.1 408 ")
    assert b"body_timeout_s" in out


def test_an_idle_kept_alive_connection_is_closed_after_its_answers(port: int) -> None:
    request = b"POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\n{}"
    with socket.create_connection(("127.0.0.1", port)) as s:
        s.sendall(request + request)  # two requests on one connection: both answered
        out = until_closed(s)
    assert out.count(b"HTTP/1.1 200 ") == 2
    assert b"408" not in out


def test_a_kept_alive_connection_s_next_request_has_its_own_header_deadline(port: int) -> None:
    request = b"POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\n{}"
    with socket.create_connection(("127.0.0.1", port)) as s:
        s.sendall(request + b"POST /x HTTP/1.1\r\n")
        out = until_closed(s)
    assert out.startswith(b"HTTP/1.1 200 ")
    assert b"HTTP/1.1 408 " in out


def test_install_makes_it_uvicorn_s_default_protocol() -> None:
    import uvicorn.config

    from serving.connection import PROTOCOL, GuardedHttpToolsProtocol, install

    before = uvicorn.config.HTTP_PROTOCOLS["auto"], GuardedHttpToolsProtocol.limits
    try:
        install(LimitsConfig(header_timeout_s=3))
        cfg = uvicorn.Config(app)
        cfg.load()
        assert cfg.http_protocol_class.__name__ == "GuardedHttpToolsProtocol"
        assert cfg.http_protocol_class.limits.header_timeout_s == 3
        assert PROTOCOL.endswith(":GuardedHttpToolsProtocol")
    finally:
        uvicorn.config.HTTP_PROTOCOLS["auto"], GuardedHttpToolsProtocol.limits = before
