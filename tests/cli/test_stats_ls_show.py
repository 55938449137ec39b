"""`sobuild stats`, `ls` and `show` against a cache filled by real builds, a missing cache and
bad arguments; each test runs through CliRunner and as a real subprocess."""

from __future__ import annotations

import json

import pytest

import sobuild


def test_stats_counts_what_the_builds_did(filled, sobuild_cli):
    out = sobuild_cli("stats", "--json")
    assert out.exit_code == 0, out.stderr
    s = json.loads(out.stdout)
    assert s["entries"] == len(filled.artifacts) + 1  # shared objects and the data entry
    assert s["kernels"] == 4 and s["data_entries"] == 1
    assert (s["hits"], s["misses"], s["builds"]) == (2, 4, 4)
    assert s["hit_rate"] == pytest.approx(2 / 6)
    assert s["build_seconds"] > 0
    assert 0 < s["saved_seconds"] < s["build_seconds"]  # 2 of 4 kernels were hit once
    on_disk = sum(f.stat().st_size for f in filled.path.glob("artifacts/*/*/*")) + \
        sum(f.stat().st_size for f in filled.path.glob("data/*/*"))
    assert s["bytes"] == on_disk
    (toolchain,) = s["toolchains"]
    assert toolchain["kernels"] == 4 and toolchain["hits"] == 2
    assert s["data"]["entries"] == 1 and s["data"]["stored"] == 1
    (namespace,) = s["data"]["namespaces"]
    assert namespace["entries"] == 1 and namespace["bytes"] > 0
    (local,) = s["tiers"]  # no shared or remote tier
    assert (local["tier"], local["hits"], local["misses"]) == ("local", 2, 4)

    text = sobuild_cli("stats")
    assert text.exit_code == 0
    assert "hit rate" in text.stdout and "33.3 %" in text.stdout
    assert "data entries" in text.stdout and f"{namespace['namespace']} 1" in text.stdout
    assert "per toolchain" not in text.stdout  # piped: plain
    assert toolchain["toolchain"] in text.stdout


def test_stats_zero_resets_counters_and_keeps_entries(filled, sobuild_cli):
    out = sobuild_cli("stats", "--zero")
    assert out.exit_code == 0 and "counters reset" in out.stdout
    s = json.loads(sobuild_cli("stats", "--json").stdout)
    assert (s["hits"], s["misses"], s["builds"], s["saved_seconds"]) == (0, 0, 0, 0)
    assert s["entries"] == len(filled.artifacts) + 1
    cache = sobuild.Cache(filled.path)  # the entries still serve hits
    assert cache.lookup(filled.specs[3]) is not None


def test_missing_cache_is_reported_not_created(tmp_path, sobuild_cli):
    missing = tmp_path / "nowhere"
    env = {"SOBUILD_CACHE_DIR": str(missing)}
    for args in (["stats"], ["ls"], ["verify"], ["prune"], ["clear", "--yes"], ["stats", "--zero"]):
        out = sobuild_cli(*args, env=env)
        assert out.exit_code == 0, (args, out.stderr)
        assert str(missing) in out.stdout
    s = json.loads(sobuild_cli("stats", "--json", env=env).stdout)
    assert s["exists"] is False and s["entries"] == 0 and s["hit_rate"] == 0.0
    assert json.loads(sobuild_cli("ls", "--json", env=env).stdout) == []
    show = sobuild_cli("show", "abcd", env=env)
    assert show.exit_code == 1 and "no sobuild cache" in show.stdout
    assert not missing.exists()


def test_cache_dir_option_wins_over_the_environment(filled, tmp_path, sobuild_cli):
    out = sobuild_cli("ls", "--json", "--cache-dir", str(filled.path),
                      env={"SOBUILD_CACHE_DIR": str(tmp_path / "other")})
    assert {e["id"] for e in json.loads(out.stdout)} == {*filled.artifacts, filled.data_key}


def test_bad_setting_in_the_environment_is_one_line(filled, sobuild_cli):
    out = sobuild_cli("stats", env={"SOBUILD_MAX_SIZE": "lots"})
    assert out.exit_code == 2
    assert out.stderr.count("\n") == 1 and "SOBUILD_MAX_SIZE" not in out.stdout
    assert out.stderr.startswith("sobuild: error: bad sobuild setting") and "'lots'" in out.stderr


def test_ls_lists_every_entry_most_recent_first(filled, sobuild_cli):
    entries = json.loads(sobuild_cli("ls", "--json").stdout)
    assert {e["id"] for e in entries} == {*filled.artifacts, filled.data_key}
    assert [e["last_use"] for e in entries] == sorted((e["last_use"] for e in entries),
                                                      reverse=True)
    plain = sobuild_cli("ls")
    lines = plain.stdout.splitlines()
    assert lines[0].split()[:3] == ["entry", "kind", "size"]
    assert {line.split()[0] for line in lines[1:]} == {*filled.artifacts, filled.data_key}


def test_ls_of_an_empty_cache(cache_dir, sobuild_cli):
    sobuild.Cache(cache_dir)  # creates the directory, builds nothing
    out = sobuild_cli("ls")
    assert out.exit_code == 0 and "is empty" in out.stdout


def test_show_an_artifact_by_prefix(filled, sobuild_cli):
    digest = filled.artifacts[0]
    out = sobuild_cli("show", digest[:6])
    assert out.exit_code == 0, out.stderr
    assert f"shared object {digest}: meta.json" in out.stdout
    meta = json.loads((filled.path / "artifacts" / digest[:2] / digest / "meta.json").read_text())
    held = {k["key"] for k in meta["kernels"]}
    assert all(k in out.stdout for k in held)
    assert "== source lib.cpp" in out.stdout and "v[j] +=" in out.stdout
    assert "== build log" in out.stdout


def test_show_a_kernel_key_and_a_data_entry(filled, sobuild_cli):
    out = sobuild_cli("show", filled.keys[2])
    assert out.exit_code == 0 and f"kernel {filled.keys[2]}" in out.stdout
    assert "held by shared object" in out.stdout and "== source lib.cpp" in out.stdout
    data = sobuild_cli("show", filled.data_key[:8])
    assert data.exit_code == 0 and '"namespace": "brian2"' in data.stdout
    assert "not shown" in data.stdout


def test_show_a_failed_build(cache_dir, sobuild_cli):
    cache = sobuild.Cache(cache_dir)
    broken = sobuild.KernelSpec(source="void run(double* v, int32_t n) { v[0] = nope; }",
                                entry="void run(double* v, int32_t n)")
    with pytest.raises(sobuild.BuildError):
        cache.load(broken)
    out = sobuild_cli("show", cache.key(broken)[:10])
    assert out.exit_code == 0
    assert "failed build" in out.stdout and "nope" in out.stdout and "error" in out.stdout


def test_show_bad_unknown_and_ambiguous_keys(filled, sobuild_cli):
    bad = sobuild_cli("show", "xyz")
    assert bad.exit_code == 2 and "not a key prefix" in bad.stderr
    unknown_prefix = next(p for p in (f"{i:02x}" for i in range(256))
                          if not any(e.startswith(p) for e in
                                     [*filled.artifacts, *filled.keys, filled.data_key]))
    unknown = sobuild_cli("show", unknown_prefix)
    assert unknown.exit_code == 1 and "no entry starts with" in unknown.stderr
    # a data entry whose key starts like an artifact's digest: the prefix is then ambiguous
    digest = filled.artifacts[0]
    cache = sobuild.Cache(filled.path)
    cache.put_data(digest[:4] + "0" * 28 if digest[4] != "0" else digest[:4] + "1" * 28, b"x")
    ambiguous = sobuild_cli("show", digest[:4])
    assert ambiguous.exit_code == 1 and "ambiguous" in ambiguous.stderr
    assert ambiguous.stderr.count("\n") == 1
    assert sobuild_cli("show", digest[:5]).exit_code == 0


def test_terminal_output_is_a_rich_table(filled, sobuild_process):
    out = sobuild_process("ls", env={"TTY_COMPATIBLE": "1", "COLUMNS": "160"})
    assert out.exit_code == 0
    assert "┃" in out.stdout or "│" in out.stdout  # drawn by rich
    assert filled.artifacts[0][:12] in out.stdout and filled.artifacts[0] not in out.stdout


def test_version_help_and_unknown_commands(sobuild_cli):
    version = sobuild_cli("--version")
    assert version.exit_code == 0 and version.stdout.strip() == f"sobuild {sobuild.__version__}"
    helped = sobuild_cli("--help")
    assert helped.exit_code == 0
    for command in ("stats", "prune", "prebuild", "doctor", "ls", "show", "verify", "clear"):
        assert command in helped.stdout
    unknown = sobuild_cli("statz")
    assert unknown.exit_code == 2 and "statz" in unknown.stderr
    bad_option = sobuild_cli("ls", "--colour")
    assert bad_option.exit_code == 2 and "--colour" in bad_option.stderr


def test_every_command_on_an_empty_cache(cache_dir, sobuild_cli):
    sobuild.Cache(cache_dir)  # the directory exists; nothing was built
    s = json.loads(sobuild_cli("stats", "--json").stdout)
    assert s["exists"] and (s["entries"], s["bytes"], s["hits"], s["hit_rate"]) == (0, 0, 0, 0.0)
    assert "entries          0 (0 shared objects" in sobuild_cli("stats").stdout
    assert "removed 0 entries, freeing 0 B" in sobuild_cli("prune").stdout
    verified = sobuild_cli("verify")
    assert verified.exit_code == 0 and "no problems found" in verified.stdout
    cleared = sobuild_cli("clear", "--yes")
    assert cleared.exit_code == 0 and "removed 0 shared objects" in cleared.stdout
    assert sobuild_cli("doctor").exit_code == 0
    shown = sobuild_cli("show", "abcd")
    assert shown.exit_code == 1 and "no entry starts with abcd" in shown.stderr
