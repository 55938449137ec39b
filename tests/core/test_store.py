"""The store: atomic artifacts, key files, digests, the index, data entries, across processes."""

from __future__ import annotations

import json
import os
import sqlite3
import stat
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import xxhash

import sobuild
from sobuild.store.index import Index
from sobuild.store.publish import publish_dir

from .kernels import family, scale_spec

TESTS_DIR = str(Path(__file__).parents[1])


def artifact_dirs(cache_dir: Path) -> list[Path]:
    return sorted(p for p in (cache_dir / "artifacts").glob("??/*") if p.is_dir())


def run_in_fresh_process(code: str, cache_dir: Path) -> dict:
    """Run ``code`` (which prints one JSON line) in a new interpreter on ``cache_dir``."""
    prelude = f"import sys, json; sys.path.insert(0, {TESTS_DIR!r})\n"
    out = subprocess.run([sys.executable, "-c", prelude + code], capture_output=True, text=True,
                         env={**os.environ, "SOBUILD_CACHE_DIR": str(cache_dir)})
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_a_batch_is_built_once_and_loaded_from_the_cache_in_later_processes(cache_dir):
    code = (
        "import numpy as np, sobuild\n"
        "from core.kernels import family\n"
        "cache = sobuild.Cache()\n"
        "kernels = cache.load_many(family(6))\n"
        "v = np.full(3, 16.0)\n"
        "kernels[2](v, 3)\n"
        "cache.flush()\n"
        "print(json.dumps({'v': v.tolist(), 'counters': cache.store.counters()}))\n"
    )
    cold = run_in_fresh_process(code, cache_dir)
    assert cold["v"] == [12.0, 12.0, 12.0]  # sqrt(16) * 3
    assert cold["counters"]["builds"] == 6 and cold["counters"]["misses"] == 6
    units = artifact_dirs(cache_dir)
    assert 1 <= len(units) <= os.cpu_count()  # a few translation units, not one per kernel
    warm = run_in_fresh_process(code, cache_dir)
    assert warm["v"] == [12.0, 12.0, 12.0]
    assert warm["counters"]["builds"] == 6  # nothing built again
    assert warm["counters"]["hits"] == 6
    assert artifact_dirs(cache_dir) == units


def test_an_artifact_holds_its_library_source_meta_and_log(cache, cache_dir):
    specs = family(3)
    cache.load_many(specs)
    directory = artifact_dirs(cache_dir)[0]
    meta = json.loads((directory / "meta.json").read_text())
    library = directory / "lib.so"
    assert meta["digest"] == directory.name == xxhash.xxh3_128_hexdigest(library.read_bytes())
    assert meta["size"] == library.stat().st_size
    assert meta["toolchain"]["family"] in ("gcc", "clang")
    assert meta["flags"] == ["-O2"]
    assert meta["build_seconds"] > 0
    assert {k["key"] for k in meta["kernels"]} <= {cache.key(s) for s in specs}
    assert "sobuild_lookup" in (directory / "lib.cpp").read_text()
    assert (directory / "build.log").exists()
    # published files are read-only: nobody rewrites a library another process has mapped
    assert not library.stat().st_mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH)
    key_file = cache_dir / "kernels" / cache.key(specs[0])[:2] / cache.key(specs[0])
    assert json.loads(key_file.read_text())["artifact"] in {d.name for d in artifact_dirs(cache_dir)}


def test_a_published_artifact_is_never_overwritten(tmp_path):
    final = tmp_path / "artifacts" / "ab" / "abc"
    first, second = tmp_path / "first", tmp_path / "second"
    for directory, text in ((first, "one"), (second, "two")):
        directory.mkdir()
        (directory / "lib.so").write_text(text)
    assert publish_dir(first, final) is True
    assert publish_dir(second, final) is False
    assert (final / "lib.so").read_text() == "one"
    assert not second.exists()  # the loser's staging dir is cleaned up


def test_nothing_is_left_in_tmp_after_a_build(cache, cache_dir):
    cache.load_many(family(4))
    assert list((cache_dir / "tmp").iterdir()) == []


def test_duplicate_specs_in_one_batch_are_built_once(cache):
    spec = scale_spec(5.0)
    a, b = cache.load_many([spec, spec])
    cache.flush()
    assert cache.store.counters()["builds"] == 1
    v = np.array([4.0])
    a(v, 1)
    b(v, 1)
    assert v[0] == pytest.approx(np.sqrt(10.0) * 5.0)


def test_a_corrupt_artifact_is_caught_before_dlopen_rebuilt_and_counted(cache_dir):
    spec_code = "from core.kernels import scale_spec\nspec = scale_spec(7.0)\n"
    code = spec_code + (
        "import numpy as np, sobuild, warnings\n"
        "warnings.simplefilter('always')\n"
        "cache = sobuild.Cache()\n"
        "with warnings.catch_warnings(record=True) as caught:\n"
        "    k = cache.load(spec)\n"
        "v = np.array([4.0]); k(v, 1); cache.flush()\n"
        "print(json.dumps({'v': v[0], 'counters': cache.store.counters(),\n"
        "                  'warnings': [str(w.message) for w in caught]}))\n"
    )
    run_in_fresh_process(code, cache_dir)
    (directory,) = artifact_dirs(cache_dir)
    library = directory / "lib.so"
    data = bytearray(library.read_bytes())
    data[len(data) // 2] ^= 0xFF
    os.chmod(library, 0o644)
    library.write_bytes(bytes(data))
    result = run_in_fresh_process(code, cache_dir)
    assert result["v"] == 14.0
    assert result["counters"]["corrupt"] == 1
    assert result["counters"]["builds"] == 2
    assert any("does not match its digest" in w for w in result["warnings"])
    (rebuilt,) = artifact_dirs(cache_dir)
    assert xxhash.xxh3_128_hexdigest((rebuilt / "lib.so").read_bytes()) == rebuilt.name


def test_a_missing_index_never_stops_a_lookup_and_is_rebuilt_from_the_files(cache, cache_dir):
    specs = family(3)
    cache.load_many(specs)
    cache.flush()
    before = Index(cache.layout).query("SELECT id, bytes FROM artifacts ORDER BY id")
    (cache_dir / "index.sqlite").unlink()
    fresh = sobuild.Cache(cache_dir)
    assert all(fresh.lookup(s) is not None for s in specs)
    counts = Index(fresh.layout).rebuild()
    assert counts == {"artifacts": len(before), "keys": 3}
    after = Index(fresh.layout).query("SELECT id, bytes FROM artifacts ORDER BY id")
    assert [tuple(r) for r in after] == [tuple(r) for r in before]


def test_a_corrupt_index_never_stops_a_lookup(cache, cache_dir):
    specs = family(2)
    cache.load_many(specs)
    cache.flush()
    (cache_dir / "index.sqlite").write_bytes(b"this is not a database" * 100)
    fresh = sobuild.Cache(cache_dir)
    with pytest.warns(RuntimeWarning, match="could not be updated"):
        kernels = fresh.load_many(specs)
        fresh.flush()
    v = np.array([9.0])
    kernels[1](v, 1)
    assert v[0] == 6.0
    with pytest.raises(sqlite3.DatabaseError):
        Index(fresh.layout).counters()
    Index(fresh.layout).rebuild()
    assert Index(fresh.layout).query("SELECT COUNT(*) FROM keys")[0][0] == 2


def test_the_index_records_entries_and_use(cache):
    specs = family(3)
    cache.load_many(specs)
    cache.load_many(specs)
    cache.flush()
    counters = cache.store.counters()
    assert counters["misses"] == 3 and counters["hits"] == 3 and counters["builds"] == 3
    assert counters["build_seconds"] > 0
    rows = cache.store.index.query("SELECT kind, namespace, hits, kernels, build_seconds, bytes "
                             "FROM artifacts")
    assert sum(r["kernels"] for r in rows) == 3
    assert sum(r["hits"] for r in rows) == 3
    assert all(r["kind"] == "shared_object" and r["bytes"] > 0 for r in rows)


def test_data_entries_round_trip_and_a_corrupt_one_is_a_counted_miss(cache, cache_dir):
    key = sobuild.keys.data_key("some", b"value")
    assert cache.get_data(key) is None
    cache.put_data(key, b"payload \x00 bytes", namespace="brian2", seconds=1.5)
    assert cache.get_data(key) == b"payload \x00 bytes"
    path = cache.layout.data_file(key)
    os.chmod(path, 0o644)
    path.write_bytes(path.read_bytes()[:-1] + b"X")
    assert cache.get_data(key) is None
    cache.flush()
    counters = cache.store.counters()
    assert counters["data_hits"] == 1 and counters["data_misses"] == 2  # the corrupt read too
    assert counters["data_corrupt"] == 1 and counters["data_saved_seconds"] == 1.5
    assert not path.exists()  # a corrupt entry is removed, so it is recomputed


def test_a_relative_cache_directory_hits_in_the_next_process(tmp_path, monkeypatch):
    """Entries are opened relative to the root's handle: a relative root was once applied
    twice, so every lookup missed (and set the artifact aside as corrupt)."""
    monkeypatch.chdir(tmp_path)
    script = ("import sys, sobuild; sys.path.insert(0, sys.argv[1]); from kernels import family; "
              "c = sobuild.Cache('relative-cache'); c.load_many(family(2)); c.flush(); "
              "n = c.store.counters(); print(int(n.get('hits', 0)), int(n.get('corrupt', 0)))")
    core = str(Path(__file__).parent)
    first, second = (subprocess.run([sys.executable, "-W", "error::RuntimeWarning", "-c", script,
                                     core], capture_output=True, text=True, check=True).stdout
                     for _ in range(2))
    assert first.split() == ["0", "0"]
    assert second.split() == ["2", "0"]
