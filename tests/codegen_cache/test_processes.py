"""Fresh processes on one cache: a warm process computes nothing and matches a process
without the cache (abstract code, generated code, spikes, log messages)."""

from __future__ import annotations

import os
import stat


def _same_model_output(a: dict, b: dict, *, same_hash_seed: bool = True) -> None:
    # Brian2 orders some generated lines and blocks by iterating sets of names, which
    # depends on the process's string hashing: compare them only under one PYTHONHASHSEED
    parts = ("abstract", "spikes", "logs") + (("generated",) if same_hash_seed else ())
    for part in parts:
        assert a[part] == b[part], part


def test_warm_process_matches_a_process_without_the_cache(cache_dir, tmp_path, run_model):
    off = run_model(cache_dir, tmp_path / "off.json", enabled=False)
    assert off["counters"].get("data_stored", 0) == 0
    assert not any(cache_dir.glob("data/*/*")), "the cache was off: nothing may be stored"

    cold = run_model(cache_dir, tmp_path / "cold.json")
    assert cold["counters"]["data_stored"] > 10
    warm = run_model(cache_dir, tmp_path / "warm.json")
    assert warm["counters"]["data_hits"] > 10
    assert warm["counters"].get("data_misses", 0) == 0, "a warm process recomputed something"
    assert warm["counters"].get("data_stored", 0) == 0
    assert warm["counters"]["data_saved_seconds"] > 0
    _same_model_output(off, cold)
    _same_model_output(off, warm)
    # the 'exact' choice is logged by the warm process too (replayed from the entry)
    assert any("using method 'exact'" in msg for _, _, msg in warm["logs"])

    # another string hashing (set order) in the warm process: the keys must not depend on it
    other = run_model(cache_dir, tmp_path / "other.json", hash_seed="12345")
    assert other["counters"].get("data_misses", 0) == 0
    _same_model_output(off, other, same_hash_seed=False)


def test_preference_switches_the_cache_off(cache_dir, tmp_path, run_model):
    result = run_model(cache_dir, tmp_path / "pref.json", args=("--pref-off", "--euler"))
    assert result["counters"].get("data_stored", 0) == 0
    assert result["counters"].get("data_misses", 0) == 0
    assert not any(cache_dir.glob("data/*/*"))


def test_corrupt_entries_are_recomputed(cache_dir, tmp_path, run_model):
    cold = run_model(cache_dir, tmp_path / "cold.json", args=("--euler",))
    entries = sorted(cache_dir.glob("data/*/*"))
    assert entries
    for path in entries:  # flip the last byte of every payload
        blob = bytearray(path.read_bytes())
        blob[-1] ^= 0xFF
        os.chmod(path, 0o600)
        path.write_bytes(bytes(blob))
        os.chmod(path, 0o444)
    again = run_model(cache_dir, tmp_path / "again.json", args=("--euler",))
    assert again["counters"]["data_corrupt"] > 0
    assert again["counters"]["data_stored"] > 0, "corrupt entries are replaced"
    _same_model_output(cold, again)
    warm = run_model(cache_dir, tmp_path / "warm.json", args=("--euler",))
    assert warm["counters"].get("data_corrupt", 0) == 0
    assert warm["counters"].get("data_misses", 0) == 0
    _same_model_output(cold, warm)


def test_untrusted_entries_are_recomputed_with_a_warning(cache_dir, tmp_path, run_model):
    cold = run_model(cache_dir, tmp_path / "cold.json", args=("--euler",))
    for path in cache_dir.glob("data/*/*"):
        os.chmod(path, os.stat(path).st_mode | stat.S_IWOTH)  # writable by everyone
    again = run_model(cache_dir, tmp_path / "again.json", args=("--euler",))
    assert again["counters"].get("data_hits", 0) == 0
    assert again["counters"]["data_misses"] > 0
    assert again["stderr"].count("sobuild codegen cache") == 1, "warned once"
    assert "Recomputing instead" in again["stderr"]
    _same_model_output(cold, again)


def test_cpp_standalone_uses_the_cache_with_the_same_project(cache_dir, tmp_path, run_model):
    # one project directory: Brian2 rewrites only changed files, so make recompiles nothing
    # when the warm process generates the same code as the process without the cache
    project = tmp_path / "project"
    standalone = ("--standalone", str(project))
    off = run_model(cache_dir, tmp_path / "off.json", enabled=False, args=standalone)
    sources = {p: p.stat().st_mtime_ns for p in project.glob("code_objects/*.cpp")}
    assert sources
    cold = run_model(cache_dir, tmp_path / "cold.json", args=standalone)
    assert cold["counters"]["data_stored"] > 10
    warm = run_model(cache_dir, tmp_path / "warm.json", args=standalone)
    assert warm["counters"]["data_hits"] > 10
    assert warm["counters"].get("data_misses", 0) == 0
    _same_model_output(off, cold)
    _same_model_output(off, warm)
    assert {p: p.stat().st_mtime_ns for p in project.glob("code_objects/*.cpp")} == sources
