"""A full remote: Redis with ``maxmemory`` and ``allkeys-lru`` evicts; that is a miss, never an
error, and a record whose artifact was evicted is a miss too."""

from __future__ import annotations

import os

import redis

from .conftest import Machine, expected_values, remote_count


def test_a_full_redis_evicts_and_runs_go_on(make_redis_server, secret_file, tmp_path):
    server = make_redis_server(maxmemory="2mb", policy="allkeys-lru")
    env = {"SOBUILD_REMOTE": server.url, "SOBUILD_REMOTE_SECRET_FILE": str(secret_file)}
    Machine(tmp_path / "a", **env).run("--kernels", "4", "--tag", "evict")
    client = redis.Redis.from_url(server.url)
    artifacts = client.keys("sobuild/1/*/artifact/*")
    assert artifacts
    for i in range(40):  # other users' entries fill the server: ours are least recent
        client.set(f"other/{i}", os.urandom(64 * 1024))
    assert int(client.info("stats")["evicted_keys"]) > 0
    survivors = client.keys("sobuild/1/*")

    report = Machine(tmp_path / "b", **env).run("--kernels", "4", "--tag", "evict")
    assert report["values"] == expected_values(4)
    assert remote_count(report, "errors") == 0
    assert not any(name.startswith("remote ") and "refused" in name for name in report["counters"])
    built = report["counters"].get("builds", 0)
    assert built + remote_count(report, "hits") == 4
    assert built > 0, f"nothing was evicted from the entries ({survivors})"
    assert remote_count(report, "uploads") >= built  # uploads into a full server evict others
