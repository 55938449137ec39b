"""Fixtures of the remote cache tiers' tests: real servers (see servers.py), closed at teardown.

``redis_server`` and ``nginx_server`` are one server each; ``make_redis_server(**options)`` and
``make_nginx_server()`` make as many as a test needs (options: those of ``RedisServer``).
Without the program, the test goes through ``cannot_run`` (skips, fails under CI=true).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from skipping import cannot_run

from .servers import NginxDavServer, RedisServer, find_program


def _factory(tmp_path: Path, kind: type, program_name: str, package: str):
    """A fixture's factory of ``kind`` servers, and the servers it made (to close)."""
    program = find_program(program_name)
    servers: list = []

    def make(**options):
        if program is None:
            cannot_run(f"{program_name} is not installed (apt-get install {package})")
        server = kind(tmp_path / f"{program_name}-{len(servers)}", program=program, **options)
        servers.append(server)
        return server

    return make, servers


@pytest.fixture
def make_redis_server(tmp_path) -> Iterator[Callable[..., RedisServer]]:
    """``make_redis_server(maxmemory="2mb", policy="allkeys-lru")``: a new ``RedisServer``."""
    make, servers = _factory(tmp_path, RedisServer, "redis-server", "redis-server")
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
    make, servers = _factory(tmp_path, NginxDavServer, "nginx", "nginx")
    yield make
    for server in servers:
        server.close()


@pytest.fixture
def nginx_server(make_nginx_server) -> NginxDavServer:
    """An ``NginxDavServer``: WebDAV under ``.url``, 500 under ``.broken_url``."""
    return make_nginx_server()


WORKER = Path(__file__).with_name("worker.py")


def expected_values(count: int) -> list[list[float]]:
    """What the worker's kernel i computes from [1, 2, 3]."""
    return [[2.0 + i, 4.0 + i, 6.0 + i] for i in range(count)]


def remote_count(report: dict, what: str) -> float:
    """A remote tier's counter of a worker's report, summed over its tiers."""
    return sum(value for name, value in report["counters"].items()
               if name.startswith("remote ") and name.endswith(f" {what}"))


class Machine:
    """A cache directory standing for one machine, with an environment for its workers."""

    def __init__(self, root: Path, **env: str):
        self.cache = root
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("SOBUILD_")}
        self.env.update(env)

    def start(self, *args: str, **env: str) -> subprocess.Popen:
        return subprocess.Popen([sys.executable, str(WORKER), "--cache", str(self.cache), *args],
                                env={**self.env, **env}, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)

    def run(self, *args: str, **env: str) -> dict:
        """Run a worker to its end; its report (the test fails on a crash)."""
        process = self.start(*args, **env)
        out, err = process.communicate(timeout=600)
        assert process.returncode == 0, err
        return json.loads(out.strip().splitlines()[-1])


@pytest.fixture
def secret_file(tmp_path) -> Path:
    """A team secret: a file of this user, mode 600."""
    path = tmp_path / "team-secret"
    path.write_text(os.urandom(24).hex())
    path.chmod(0o600)
    return path


@pytest.fixture(params=["redis", "http"])
def remote_server(request, make_redis_server, make_nginx_server):
    """Each backend's real server in turn."""
    return make_redis_server() if request.param == "redis" else make_nginx_server()


@pytest.fixture
def machines(tmp_path, remote_server, secret_file) -> Callable[..., Machine]:
    """``machines(name, **env)``: a cache directory sharing only ``remote_server``."""
    def make(name: str, remote: str | None = None, **env: str) -> Machine:
        # a loaded test machine makes loopback answers slow at times, which would spend the
        # default 0.5 s budget: tests of sharing get a large one, tests of bounds set theirs
        settings = {"SOBUILD_REMOTE": remote_server.url if remote is None else remote,
                    "SOBUILD_REMOTE_SECRET_FILE": str(secret_file),
                    "SOBUILD_REMOTE_BUDGET": "60", **env}
        return Machine(tmp_path / name, **settings)
    return make


class StoredEntries:
    """The entries a remote server holds, read and written behind sobuild's back (as an
    attacker with write access to the server, or a faulty disk, would)."""

    def __init__(self, server):
        self.server = server
        if isinstance(server, RedisServer):
            import redis

            self._redis = redis.Redis.from_url(server.url)

    def names(self, kind: str) -> list[str]:
        """The names of stored entries of ``kind`` (kernel, artifact, data)."""
        pattern = f"sobuild/1/*/{kind}/*"  # under every key id
        if isinstance(self.server, RedisServer):
            return sorted(n.decode() for n in self._redis.keys(pattern))
        return sorted(str(p.relative_to(self.server.root)) for p in self.server.root.glob(pattern))

    def get(self, name: str) -> bytes:
        if isinstance(self.server, RedisServer):
            return self._redis.get(name)
        return (self.server.root / name).read_bytes()

    def put(self, name: str, value: bytes) -> None:
        if isinstance(self.server, RedisServer):
            self._redis.set(name, value)
        else:
            (self.server.root / name).write_bytes(value)
