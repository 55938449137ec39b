"""The real servers of the remote tiers' tests work: Redis stores, evicts and dies; nginx stores
nested PUTs, answers 404 and 500, and hangs while stopped."""

from __future__ import annotations

import re
import socket
import urllib.error
import urllib.request

import pytest


def redis_info(server, section: str) -> dict[str, str]:
    reply = server.command("INFO", section).decode()
    return dict(re.findall(r"^(\w+):(.*?)\r$", reply, re.MULTILINE))


def http(method: str, url: str, data: bytes | None = None, timeout: float = 10):
    """(status, body) of a request; HTTP errors are answers too."""
    request = urllib.request.Request(url, data=data, method=method)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def test_redis_set_then_get(redis_server):
    assert redis_server.url == f"redis://127.0.0.1:{redis_server.port}/0"
    assert redis_server.command("SET", "key", b"\x00value\r\n") == b"+OK\r\n"
    assert redis_server.command("GET", "key") == b"$8\r\n\x00value\r\n\r\n"
    assert redis_server.command("GET", "missing") == b"$-1\r\n"


def test_redis_kill9_refuses_connections(redis_server):
    redis_server.kill9()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", redis_server.port), timeout=5)
    redis_server.close()  # nothing left to do, no error


def test_redis_maxmemory_evicts(make_redis_server):
    # An empty redis-server already uses ~0.95 MB: with maxmemory 1mb, a SET is refused (OOM)
    # as there is nothing to evict.
    server = make_redis_server(maxmemory="2mb", policy="allkeys-lru")
    value = b"x" * 100_000
    for i in range(30):  # 3 MB
        assert server.command("SET", f"key{i}", value) == b"+OK\r\n"
    assert int(redis_info(server, "stats")["evicted_keys"]) > 0
    assert server.command("GET", "key0") == b"$-1\r\n"


def test_redis_stopped_hangs_until_continued(redis_server):
    redis_server.stop()
    with pytest.raises(TimeoutError):
        redis_server.command("PING", timeout=0.5)
    redis_server.cont()
    assert redis_server.command("PING") == b"+PONG\r\n"


def test_nginx_put_nested_then_get(nginx_server):
    data = bytes(range(256)) * 100
    status, _ = http("PUT", nginx_server.url + "a/b/c", data)
    assert status == 201
    assert http("GET", nginx_server.url + "a/b/c") == (200, data)
    assert (nginx_server.root / "a" / "b" / "c").read_bytes() == data


def test_nginx_head_missing_is_404(nginx_server):
    assert http("HEAD", nginx_server.url + "missing")[0] == 404


def test_nginx_broken_url_answers_500(nginx_server):
    assert http("GET", nginx_server.broken_url + "x")[0] == 500
    assert http("PUT", nginx_server.broken_url + "x", b"data")[0] == 500


def test_nginx_stopped_hangs_until_continued(nginx_server):
    nginx_server.stop()
    # urlopen raises TimeoutError waiting for the answer (URLError only around the request)
    with pytest.raises(TimeoutError):
        http("GET", nginx_server.url + "missing", timeout=0.5)
    nginx_server.cont()
    assert http("GET", nginx_server.url + "missing", timeout=5)[0] == 404


def test_close_is_idempotent_after_stop(redis_server, nginx_server):
    for server in (redis_server, nginx_server):
        server.stop()
        server.close()
        server.close()
        assert server.proc.returncode is not None
