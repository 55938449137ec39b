"""`sobuild prebuild SCRIPT`: a real Brian2 script run in build-only mode, then run for real
from the warm cache (or from the filled cache as a shared tier); a failing script; bad
arguments. Through CliRunner (in this process) and the real console script."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

pytestmark = pytest.mark.brian  # without Brian2: skipped, and failed under CI=true

# Two runs: the magic run() and an explicit Network.run. Neurons start above threshold, so a
# real simulation spikes at once; build-only mode must give t = 0 and no spikes.
SCRIPT = textwrap.dedent("""
    import json, sys
    from brian2 import *
    from brian2.core.magic import magic_network
    import sobuild.brian_adapter  # noqa: F401
    prefs.codegen.target = 'sobuild'  # what the cluster's jobs run

    G = NeuronGroup(8, 'dv/dt = -v/(10*ms) : 1', threshold='v > 1', reset='v = 0',
                    method='exact')
    G.v = 2
    M = SpikeMonitor(G)
    run(1*ms)
    H = NeuronGroup(4, 'dw/dt = -w/(5*ms) : 1', threshold='w > 0.5', reset='w = 0',
                    method='euler')
    H.w = 1
    N = SpikeMonitor(H)
    net = Network(H, N)
    net.run(1*ms)
    json.dump({"argv": sys.argv[1:], "t1": float(magic_network.t_), "t2": float(net.t_),
               "spikes": int(M.num_spikes) + int(N.num_spikes),
               "target": prefs.codegen.target}, open(sys.argv[1], "w"))
    """)


@pytest.fixture
def script(tmp_path):
    path = tmp_path / "model.py"
    path.write_text(SCRIPT)
    return path


def _stats(sobuild_cli, cache_dir) -> dict:
    return json.loads(sobuild_cli("stats", "--json", "--cache-dir", str(cache_dir)).stdout)


def test_prebuild_runs_the_script_and_simulates_nothing(script, cache_dir, tmp_path, cli_runner):
    """In this process, with the numpy target (no compiler): the mechanics of build-only mode."""
    report = tmp_path / "report.json"
    out = cli_runner("prebuild", "--target", "numpy", str(script), str(report), "--not-ours")
    assert out.exit_code == 0, out.stderr
    seen = json.loads(report.read_text())
    assert seen == {"argv": [str(report), "--not-ours"], "t1": 0.0, "t2": 0.0, "spikes": 0,
                    "target": "numpy"}
    assert "2 run(s), 8 code objects" in out.stdout
    stats = _stats(cli_runner, cache_dir)
    assert stats["builds"] == 0  # numpy: nothing for sobuild to compile
    assert stats["data"]["stored"] > 0  # but Brian2's code generation was cached


def test_prebuild_into_a_shared_tier_then_a_job_builds_nothing(script, cache_dir, tmp_path,
                                                               sobuild_process):
    """The console script, the 'sobuild' target: a prebuilt tier serves a job's every kernel."""
    shared = tmp_path / "shared"
    report = tmp_path / "report.json"
    out = sobuild_process("prebuild", "--into", str(shared), str(script), str(report))
    assert out.exit_code == 0, out.stderr
    assert f"cache: {shared}" in out.stdout and "2 run(s)" in out.stdout
    assert "translation unit(s)" in out.stderr and "built 1/" in out.stderr  # progress lines
    assert json.loads(report.read_text())["spikes"] == 0
    prebuilt = _stats(sobuild_process, shared)
    assert prebuilt["builds"] > 0 and prebuilt["build_errors"] == 0
    assert prebuilt["data"]["stored"] > 0
    assert not cache_dir.exists()  # --into wins over SOBUILD_CACHE_DIR
    # a cluster job: an empty local cache and the prebuilt tier, read only: nothing to build
    env = {**os.environ, "SOBUILD_SHARED_DIR": str(shared), "SOBUILD_CACHE_DIR": str(cache_dir)}
    subprocess.run([sys.executable, str(script), str(report)], check=True, cwd=tmp_path, env=env)
    local = _stats(sobuild_process, cache_dir)
    assert local["builds"] == 0 and local["misses"] == 0 and local["hits"] > 0
    assert json.loads(report.read_text())["spikes"] > 0  # the job did simulate


def test_prebuild_of_a_failing_script_keeps_what_was_built(tmp_path, cache_dir, sobuild_cli):
    failing = tmp_path / "failing.py"
    failing.write_text(textwrap.dedent("""
        from brian2 import *
        G = NeuronGroup(3, 'dv/dt = -v/(10*ms) : 1', method='exact')
        run(1*ms)
        raise RuntimeError("the analysis after the run broke")
        """))
    target = "numpy" if sobuild_cli.mode == "runner" else "sobuild"
    out = sobuild_cli("prebuild", "--target", target, str(failing))
    assert out.exit_code == 1
    assert 'failing.py", line 5' in out.stderr  # the script's traceback
    last = out.stderr.strip().splitlines()[-1]
    assert last.startswith("sobuild: error: ") and "RuntimeError: the analysis after the run" \
        in last and "kept" in last
    if target == "sobuild":
        assert _stats(sobuild_cli, cache_dir)["builds"] > 0
    assert _stats(sobuild_cli, cache_dir)["data"]["stored"] > 0


def test_prebuild_bad_arguments(tmp_path, sobuild_cli):
    missing = sobuild_cli("prebuild", str(tmp_path / "nope.py"))
    assert missing.exit_code == 2 and "no such script" in missing.stderr
    no_script = sobuild_cli("prebuild")
    assert no_script.exit_code == 2
    standalone = tmp_path / "standalone.py"
    standalone.write_text("from brian2 import *\nset_device('cpp_standalone', build_on_run=False)\n"
                          "G = NeuronGroup(1, 'v : 1')\nrun(1*ms)\n")
    out = sobuild_cli("prebuild", str(standalone))
    assert out.exit_code == 1 and "runtime device" in out.stderr


def test_prebuild_leaves_this_process_as_it_was(script, tmp_path, cache_dir):
    """In-process (as CliRunner runs it): Brian2's Network.run and prefs are restored."""
    from brian2 import Network, prefs

    from sobuild.brian_adapter.prebuild import prebuild

    run, target = Network.run, prefs.codegen.target
    result = prebuild(script, [str(tmp_path / "r.json")], target="numpy")
    assert result.ok, result.traceback
    assert json.loads((tmp_path / "r.json").read_text())["target"] == "numpy"
    # each group: state update, threshold, reset; each monitor: one
    assert result.runs == 2 and result.code_objects == 8
    assert Network.run is run and prefs.codegen.target == target
