"""Fixtures of the remote cache tiers' tests: real servers (see servers.py), closed at teardown.

``redis_server`` and ``nginx_server`` are one server each; ``make_redis_server(**options)`` and
``make_nginx_server()`` make as many as a test needs (options: those of ``RedisServer``).
Without the program, the test goes through ``cannot_run`` (skips, fails under CI=true).
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from .servers import NginxDavServer, RedisServer, find_program


def _root_conftest():
    """tests/conftest.py, loaded by its path: ``import conftest`` gives whichever conftest.py
    outside a package pytest loaded last (they all have that module name)."""
    spec = importlib.util.spec_from_file_location("_tests_root_conftest",
                                                  Path(__file__).parents[1] / "conftest.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


cannot_run = _root_conftest().cannot_run


@pytest.fixture
def make_redis_server(tmp_path) -> Iterator[Callable[..., RedisServer]]:
    """``make_redis_server(maxmemory="2mb", policy="allkeys-lru")``: a new ``RedisServer``."""
    program = find_program("redis-server")
    servers: list[RedisServer] = []

    def make(**options) -> RedisServer:
        if program is None:
            cannot_run("redis-server is not installed (apt-get install redis-server)")
        server = RedisServer(tmp_path / f"redis-{len(servers)}", program=program, **options)
        servers.append(server)
        return server

    yield make
    for server in servers:
        server.close()


@pytest.fixture
def redis_server(make_redis_server) -> RedisServer:
    """A ``RedisServer`` without a memory limit."""
    return make_redis_server()


@pytest.fixture
def make_nginx_server(tmp_path) -> Iterator[Callable[[], NginxDavServer]]:
    """``make_nginx_server()``: a new ``NginxDavServer``."""
    program = find_program("nginx")
    servers: list[NginxDavServer] = []

    def make() -> NginxDavServer:
        if program is None:
            cannot_run("nginx is not installed (apt-get install nginx)")
        server = NginxDavServer(tmp_path / f"nginx-{len(servers)}", program=program)
        servers.append(server)
        return server

    yield make
    for server in servers:
        server.close()


@pytest.fixture
def nginx_server(make_nginx_server) -> NginxDavServer:
    """An ``NginxDavServer``: WebDAV under ``.url``, 500 under ``.broken_url``."""
    return make_nginx_server()
