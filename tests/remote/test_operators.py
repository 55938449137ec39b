"""What operators see of a remote tier: `sobuild stats` per tier, `sobuild doctor`'s checks of
each remote, and `sobuild prebuild --into URL` filling one for a cluster's jobs."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

from skipping import cannot_run

SOBUILD = Path(sys.executable).with_name("sobuild")


def _cli(machine, *args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(SOBUILD), *args, "--cache-dir", str(machine.cache)],
                          env={**machine.env, **env}, capture_output=True, text=True,
                          timeout=600)


def test_stats_show_each_tier(machines):
    machines("a").run("--kernels", "2", "--tag", "stats")
    b = machines("b")
    b.run("--kernels", "2", "--tag", "stats")
    stats = json.loads(_cli(b, "stats", "--json").stdout)
    local, remote = stats["tiers"]
    assert (local["tier"], local["hits"], local["misses"]) == ("local", 0, 0)
    assert remote["tier"] == b.env["SOBUILD_REMOTE"]
    assert remote["hits"] == 2 and remote["bytes_in"] > 0 and remote["errors"] == 0
    text = _cli(b, "stats").stdout
    assert remote["tier"] in text  # the per-tier table (plain when piped)


def test_doctor_checks_each_remote(machines, remote_server, tmp_path):
    a = machines("a")
    a.run("--kernels", "2", "--tag", "doctor")
    out = _cli(a, "doctor")
    assert out.returncode == 0, out.stdout + out.stderr
    lines = {line.split()[2]: line for line in out.stdout.splitlines()
             if line.startswith("remote ") and len(line.split()) > 3}
    assert "ok" in lines["reachable"] and "ok" in lines["writable"]
    assert "2 of 2 entries" in lines["signatures"]

    other = tmp_path / "other-secret"
    other.write_text("another team's secret, long enough")
    other.chmod(0o600)
    out = _cli(a, "doctor", SOBUILD_REMOTE_SECRET_FILE=str(other))  # another key id
    assert "none of this cache's kernels" in out.stdout

    remote_server.kill9()
    out = _cli(a, "doctor")
    assert out.returncode != 0 and "reachable" in out.stdout and "FAIL" in out.stdout


MODEL = textwrap.dedent("""
    import json, sys
    from brian2 import *
    import sobuild.brian_adapter  # noqa: F401
    prefs.codegen.target = 'sobuild'
    G = NeuronGroup(5, 'dv/dt = (1.5 - v)/(10*ms) : 1', threshold='v > 1', reset='v = 0',
                    method='exact')
    M = SpikeMonitor(G)
    run(20*ms)
    json.dump({"spikes": int(M.num_spikes)}, open(sys.argv[1], "w"))
    """)


def test_prebuild_into_a_remote_then_a_job_elsewhere_compiles_nothing(machines, tmp_path):
    try:
        import brian2  # noqa: F401
    except ImportError:
        cannot_run("Brian2 is not installed (Python >= 3.13)")
    script = tmp_path / "model.py"
    script.write_text(MODEL)
    report = tmp_path / "report.json"
    operator = machines("operator", remote="")
    url = machines("any").env["SOBUILD_REMOTE"]
    out = _cli(operator, "prebuild", "--into", url, str(script), str(report))
    assert out.returncode == 0, out.stderr
    assert "uploads" in out.stdout

    job = machines("job")
    subprocess.run([sys.executable, str(script), str(report)], check=True, env={
        **job.env, "SOBUILD_CACHE_DIR": str(job.cache)}, cwd=tmp_path, timeout=600)
    stats = json.loads(_cli(job, "stats", "--json").stdout)
    assert stats["builds"] == 0 and stats["misses"] == 0
    assert stats["tiers"][1]["hits"] > 0 and stats["tiers"][1]["data_hits"] > 0
    assert json.loads(report.read_text())["spikes"] > 0
