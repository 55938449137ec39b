"""`sobuild prune`, `verify` and `clear` on caches filled by real builds: what they remove,
what they keep, what a later load does; bad arguments. Through CliRunner and a subprocess."""

from __future__ import annotations

import json
import os
import sqlite3
import time

import pytest

import sobuild
from sobuild.store.index import Index

from .conftest import corrupt_index, kernel_spec


def _ids(cli) -> set[str]:
    return {e["id"] for e in json.loads(cli("ls", "--json").stdout)}


def test_prune_dry_run_removes_nothing(filled, sobuild_cli):
    out = sobuild_cli("prune", "--max-size", "1", "--dry-run")
    assert out.exit_code == 0, out.stderr
    assert "would remove 3 entries" in out.stdout
    assert _ids(sobuild_cli) == {*filled.artifacts, filled.data_key}


def test_prune_by_size_evicts_least_recently_used(cache_dir, sobuild_cli):
    cache = sobuild.Cache(cache_dir)
    old, middle, new = kernel_spec(10), kernel_spec(11), kernel_spec(12)
    for spec in (old, middle, new):  # three shared objects, built one after the other
        cache.load(spec)
    cache.flush()
    time.sleep(0.05)
    cache.load(old)  # a hit makes `old` the most recently used
    cache.flush()
    entries = json.loads(sobuild_cli("ls", "--json").stdout)
    by_key = {cache.key(s): s for s in (old, middle, new)}
    digest = {name: json.loads(cache.layout.kernel_file(cache.key(s)).read_text())["artifact"]
              for name, s in (("old", old), ("middle", middle), ("new", new))}
    sizes = {e["id"]: e["bytes"] for e in entries}
    limit = sizes[digest["old"]] + sizes[digest["new"]]
    out = sobuild_cli("prune", "--max-size", str(limit))
    assert out.exit_code == 0, out.stderr
    assert digest["middle"] in out.stdout and "removed 1 entry," in out.stdout
    assert f"freeing {sobuild.config.format_size(sizes[digest['middle']])}" in out.stdout
    assert _ids(sobuild_cli) == {digest["old"], digest["new"]}
    assert not cache.layout.artifact_dir(digest["middle"]).exists()
    assert not cache.layout.kernel_file(cache.key(middle)).exists()  # its key went with it
    fresh = sobuild.Cache(cache_dir)
    assert fresh.lookup(old) is not None and fresh.lookup(middle) is None
    assert len(by_key) == 3


def test_prune_by_age_keeps_what_was_used_recently(filled, sobuild_cli):
    # the fill happened two hours ago: its entries' creation and last use move back as time
    # would have moved them (no sleep, so no race with the command's own start-up time)
    conn = sqlite3.connect(filled.path / "index.sqlite")
    with conn:
        conn.execute("UPDATE artifacts SET created = created - 7200, last_use = last_use - 7200")
    conn.close()
    cache = sobuild.Cache(filled.path)
    cache.load(filled.specs[0])  # used now: a hit must record this use
    cache.flush()
    kept = json.loads(cache.layout.kernel_file(filled.keys[0]).read_text())["artifact"]
    out = sobuild_cli("prune", "--older-than", "1h")
    assert out.exit_code == 0, out.stderr
    assert "reason" in out.stdout and " age" in out.stdout
    assert _ids(sobuild_cli) == {kept}, (out.stdout,
                                         Index(cache.layout).query("SELECT * FROM artifacts"))
    assert sobuild.Cache(filled.path).lookup(filled.specs[0]) is not None


def test_prune_json_and_the_default_limit(filled, sobuild_cli):
    out = sobuild_cli("prune", "--json", env={"SOBUILD_MAX_SIZE": "100"})
    result = json.loads(out.stdout)
    assert len(result["removed"]) == 3 and result["after"] == 0
    assert result["freed"] == result["before"] > 0


@pytest.mark.parametrize("args, message", [
    (["--max-size", "2Q"], "--max-size: '2Q' is not a size"),
    (["--max-size", "-5"], "is not a size"),
    (["--older-than", "soon"], "--older-than: 'soon' is not a duration"),
])
def test_prune_bad_arguments(filled, sobuild_cli, args, message):
    out = sobuild_cli("prune", *args)
    assert out.exit_code == 2
    assert message in out.stderr and out.stderr.count("\n") == 1
    assert _ids(sobuild_cli) == {*filled.artifacts, filled.data_key}


def test_prune_with_a_corrupt_index_says_how_to_repair(filled, sobuild_cli):
    corrupt_index(filled.path)
    out = sobuild_cli("prune", "--max-size", "1")
    assert out.exit_code == 1 and out.stderr.count("\n") == 1
    assert "index.sqlite is corrupt" in out.stderr and "sobuild verify --repair" in out.stderr
    assert (filled.path / "artifacts").is_dir() and len(list((filled.path / "artifacts").glob("*/*"))) == 2
    zero = sobuild_cli("stats", "--zero")
    assert zero.exit_code == 1 and "sobuild verify --repair" in zero.stderr
    stats = sobuild_cli("stats", "--json")  # reading falls back to the files, with a warning
    assert stats.exit_code == 0 and json.loads(stats.stdout)["entries"] == 3
    assert "verify --repair" in stats.stderr


def test_verify_clean_cache(filled, sobuild_cli):
    out = sobuild_cli("verify")
    assert out.exit_code == 0, out.stdout
    assert "checked 2 shared objects, 4 kernel keys, 1 data entry in" in out.stdout
    assert "no problems found" in out.stdout


def test_verify_finds_and_repair_removes_what_is_broken(filled, sobuild_cli):
    layout = sobuild.Cache(filled.path).layout
    corrupt, other = (layout.artifact_dir(d) for d in filled.artifacts)
    library = corrupt / "lib.so"
    os.chmod(library, 0o644)
    blob = bytearray(library.read_bytes())
    blob[len(blob) // 2] ^= 0xFF
    library.write_bytes(bytes(blob))
    os.chmod(library, 0o444)
    orphan = layout.tmp / "build-999999-crashed"
    orphan.mkdir(parents=True)
    (orphan / "unit0.cpp").write_text("// left by a kill -9")
    old = time.time() - 2 * 3600
    os.utime(orphan / "unit0.cpp", (old, old))
    os.utime(orphan, (old, old))
    data = layout.data_file(filled.data_key)
    os.chmod(data, 0o644)
    data.write_bytes(data.read_bytes()[:-3])

    out = sobuild_cli("verify")
    assert out.exit_code == 1
    for problem in ("corrupt artifact", "dangling key", "orphan temp", "corrupt data"):
        assert problem in out.stdout, problem
    assert "sobuild verify --repair" in out.stderr and out.stderr.count("\n") == 1

    repaired = sobuild_cli("verify", "--repair")
    assert repaired.exit_code == 0, repaired.stderr
    assert "index was rebuilt" in repaired.stdout
    assert not corrupt.exists() and other.exists() and not orphan.exists() and not data.exists()
    assert "no problems found" in sobuild_cli("verify").stdout
    assert _ids(sobuild_cli) == {other.name}
    cache = sobuild.Cache(filled.path)  # the broken kernels are built again
    v = __import__("numpy").zeros(2)
    for spec in filled.specs:
        cache.load(spec)(v, 2)


def test_verify_repairs_a_lost_or_corrupt_index(filled, sobuild_cli):
    index = filled.path / "index.sqlite"
    corrupt_index(filled.path)
    out = sobuild_cli("verify")
    assert out.exit_code == 1 and "index corrupt" in out.stdout
    assert sobuild_cli("verify", "--repair").exit_code == 0
    assert _ids(sobuild_cli) == {*filled.artifacts, filled.data_key}
    index.unlink()
    missing = sobuild_cli("verify")
    assert missing.exit_code == 1 and "index missing" in missing.stdout
    # read-only commands still read the files when the index is gone
    assert _ids(sobuild_cli) == {*filled.artifacts, filled.data_key}
    assert not index.exists()
    assert sobuild_cli("verify", "--repair").exit_code == 0 and index.exists()


def test_clear_asks_first(filled, sobuild_cli):
    out = sobuild_cli("clear", input="n\n")
    assert out.exit_code == 1 and "nothing removed" in out.stderr
    assert _ids(sobuild_cli) == {*filled.artifacts, filled.data_key}
    no_answer = sobuild_cli("clear")  # stdin empty (a script, a pipe): nothing removed
    assert no_answer.exit_code != 0
    assert _ids(sobuild_cli) == {*filled.artifacts, filled.data_key}


def test_clear_removes_every_entry_and_keeps_counters(filled, sobuild_cli):
    out = sobuild_cli("clear", "--yes")
    assert out.exit_code == 0, out.stderr
    assert "removed 2 shared objects, 4 kernel keys, 1 data entry and 0 failed builds" in out.stdout
    assert json.loads(sobuild_cli("ls", "--json").stdout) == []
    s = json.loads(sobuild_cli("stats", "--json").stdout)
    assert s["entries"] == 0 and s["bytes"] == 0 and s["hits"] == 2
    cache = sobuild.Cache(filled.path)
    assert cache.lookup(filled.specs[0]) is None
    cache.load(filled.specs[0])
    cache.flush()
    assert sobuild_cli("clear", "-y").exit_code == 0


READER = """
import os, sys, numpy as np, sobuild
cache = sobuild.Cache(sys.argv[1], jobs=1)
ready, stop = sys.argv[2], sys.argv[3]
specs = [sobuild.KernelSpec(source=f"void run(double* v, int32_t n) {{ v[0] += {i}; }}",
                            entry="void run(double* v, int32_t n)") for i in range(4)]
v = np.zeros(1)
loops = 0
while not os.path.exists(stop):
    for kernel in cache.load_many(specs):
        kernel(v, 1)
    cache.flush()
    loops += 1
    if loops == 1:
        open(ready, "w").close()
print(loops, v[0])
"""
#: Prunes that must each evict entries the reader (re)built and keeps loading.
EVICTIONS = 3
#: Guards against a hang only: the test waits for events, not for a time.
HANG = 600


def test_prune_while_another_process_loads(cache_dir, tmp_path, sobuild_process):
    """Evicting entries under a process that keeps loading them: it never sees half of one.

    The reader loads and calls its four kernels until told to stop; prunes run until
    EVICTIONS of them removed what the reader had built again since the last one."""
    import subprocess
    import sys

    ready, stop = tmp_path / "ready", tmp_path / "stop"
    reader = subprocess.Popen([sys.executable, "-c", READER, str(cache_dir), str(ready), str(stop)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    evictions, removed = 0, 0
    deadline = time.monotonic() + HANG
    try:
        while not ready.exists() and reader.poll() is None:
            assert time.monotonic() < deadline, "the reader never finished its first loop"
            time.sleep(0.05)
        while evictions < EVICTIONS and reader.poll() is None:
            assert time.monotonic() < deadline, f"only {evictions} prunes evicted anything"
            out = sobuild_process("prune", "--max-size", "1", "--json")
            if out.exit_code != 0:  # the reader held the index for longer than the timeout
                assert "locked" in out.stderr, out.stderr
                continue
            gone = len(json.loads(out.stdout)["removed"])
            evictions += gone > 0
            removed += gone
    finally:
        stop.touch()
        stdout, stderr = reader.communicate(timeout=HANG)
    assert reader.returncode == 0, stderr  # it never loaded half an entry
    loops, total = stdout.split()
    assert float(total) == int(loops) * (0 + 1 + 2 + 3)  # every call of every loop ran
    assert evictions == EVICTIONS and removed >= EVICTIONS
