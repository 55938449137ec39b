"""A remote never makes a run fail, and never gets code run that its signer did not upload.

Each test fills a real server from one machine, then damages the server or what it holds,
and runs a second machine: its kernels are right, built locally where the remote could not
serve them, and the refusal or error is counted.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from .conftest import Machine, StoredEntries, expected_values, remote_count
from .servers import free_port


def _fill(machines, tag: str, kernels: int = 2) -> dict:
    report = machines("filler").run("--kernels", str(kernels), "--tag", tag)
    assert report["counters"]["builds"] == kernels
    return report


def _built_locally(report: dict, kernels: int = 2) -> None:
    assert report["values"] == expected_values(kernels)
    assert report["counters"]["builds"] == kernels
    assert remote_count(report, "hits") == 0


def test_a_flipped_byte_in_an_artifact_is_refused_and_repaired(machines, remote_server):
    _fill(machines, "flip")
    stored = StoredEntries(remote_server)
    for name in stored.names("artifact"):
        blob = bytearray(stored.get(name))
        blob[len(blob) // 2] ^= 0x01  # inside the shared object
        stored.put(name, bytes(blob))
    victim = machines("victim").run("--kernels", "2", "--tag", "flip")
    _built_locally(victim)
    assert remote_count(victim, "refused_corrupt") >= 1
    assert any("refused" in w and "altered" in w for w in victim["warnings"])
    # the victim's upload replaced the damaged artifacts: the next machine compiles nothing
    healed = machines("next").run("--kernels", "2", "--tag", "flip")
    assert "builds" not in healed["counters"] and remote_count(healed, "hits") == 2


def test_a_truncated_artifact_is_refused(machines, remote_server):
    _fill(machines, "truncate")
    stored = StoredEntries(remote_server)
    for name in stored.names("artifact"):
        stored.put(name, stored.get(name)[:-100])
    victim = machines("victim").run("--kernels", "2", "--tag", "truncate")
    _built_locally(victim)
    assert remote_count(victim, "refused_corrupt") >= 1


def test_unsigned_and_wrongly_signed_entries_are_refused(machines, remote_server, tmp_path):
    _fill(machines, "sign")
    stored = StoredEntries(remote_server)
    first, second = stored.names("kernel")
    unsigned = json.loads(stored.get(first))
    del unsigned["sig"]
    stored.put(first, json.dumps(unsigned).encode())
    # point the second key at the first key's artifact, as an attacker would, and sign it
    # with another secret than the team's
    forged = json.loads(stored.get(second))
    forged["artifact"] = unsigned["artifact"]
    forged["sig"] = "0" * 64
    stored.put(second, json.dumps(forged).encode())
    victim = machines("victim").run("--kernels", "2", "--tag", "sign")
    _built_locally(victim)
    assert remote_count(victim, "refused_unsigned") == 1
    assert remote_count(victim, "refused_bad_signature") == 1


def test_entries_signed_with_another_secret_are_refused(machines, remote_server, tmp_path):
    """Another secret's entries, copied under the team's key id (by anyone who can write to
    the server), are refused."""
    _fill(machines, "team")
    stored = StoredEntries(remote_server)
    (team_id,) = {name.split("/")[2] for name in stored.names("kernel")}
    other = tmp_path / "other-secret"
    other.write_text(os.urandom(24).hex())
    other.chmod(0o600)
    machines("other", SOBUILD_REMOTE_SECRET_FILE=str(other)).run("--kernels", "2", "--tag",
                                                                 "theirs")
    theirs = [name for name in stored.names("kernel") if name.split("/")[2] != team_id]
    assert len(theirs) == 2
    for name in theirs:  # their records and bundles, copied under the team's key id
        record = stored.get(name)
        digest = json.loads(record)["artifact"]
        bundle = stored.get(name.replace("/kernel/", "/artifact/").rsplit("/", 1)[0]
                            + f"/{digest}")
        stored.put(name.replace(name.split("/")[2], team_id, 1), record)
        stored.put(f"sobuild/1/{team_id}/artifact/{digest}", bundle)
    victim = machines("victim").run("--kernels", "2", "--tag", "theirs")
    _built_locally(victim)
    assert remote_count(victim, "refused_bad_signature") == 2


def test_a_machine_with_another_secret_keeps_to_its_own_entries(machines, tmp_path):
    """A stale secret (or another team) builds and uploads under its own key id: the team's
    entries are never overwritten, so no machine of the team recompiles."""
    _fill(machines, "stale")
    other = tmp_path / "stale-secret"
    other.write_text(os.urandom(24).hex())
    other.chmod(0o600)
    stale = machines("stale", SOBUILD_REMOTE_SECRET_FILE=str(other))
    report = stale.run("--kernels", "2", "--tag", "stale")
    _built_locally(report)
    assert remote_count(report, "uploads") == 2
    team = machines("team").run("--kernels", "2", "--tag", "stale")
    assert "builds" not in team["counters"] and remote_count(team, "hits") == 2


def test_a_secret_file_others_can_read_is_an_error(machines, secret_file):
    secret_file.chmod(0o644)
    process = machines("a").start("--kernels", "1", "--tag", "mode")
    _, err = process.communicate(timeout=300)
    assert process.returncode != 0
    assert "SOBUILD_REMOTE_SECRET_FILE" in err and "chmod 600" in err


def test_a_server_answering_500_costs_a_few_errors_then_is_switched_off(
        machines, make_nginx_server):
    broken = make_nginx_server().broken_url
    machine = machines("a", remote=broken, SOBUILD_REMOTE_BUDGET="0.5")
    report = machine.run("--kernels", "2", "--tag", "500")
    _built_locally(report)
    assert 1 <= remote_count(report, "errors") <= 3
    assert remote_count(report, "switched_off") <= 1
    assert report["budget_left"] > 0  # errors answered at once cost almost nothing


def test_an_unreachable_remote_is_switched_off(machines, remote_server):
    url = remote_server.url
    remote_server.kill9()  # nothing listens on its port any more
    machine = machines("a", remote=url, SOBUILD_REMOTE_BUDGET="0.5")
    report = machine.run("--kernels", "2", "--tag", "down")
    _built_locally(report)
    assert 1 <= remote_count(report, "errors") <= 3
    assert report["budget_left"] > 0.25  # a refused connection costs next to nothing


def test_a_hung_server_costs_at_most_the_wait_budget(machines, remote_server):
    _fill(machines, "hung")
    remote_server.stop()  # accepts connections (the kernel does), never answers
    try:
        victim = machines("victim", remote=f"{remote_server.url}|operation-timeout=5000",
                          SOBUILD_REMOTE_BUDGET="0.5")
        report = victim.run("--kernels", "2", "--tag", "hung")
    finally:
        remote_server.cont()
    _built_locally(report)
    assert remote_count(report, "switched_off") == 1
    # each operation's timeout was cut to what was left of the budget, so the wait ended at
    # the budget, give or take the process's own latency (the 5 s operation timeout alone
    # would have left it at -4.5 s or below)
    assert -2.0 < report["budget_left"] <= 0.05
    assert any("switched off" in w and "budget" in w for w in report["warnings"])


@pytest.fixture
def paused_compiler(tmp_path) -> tuple[Path, Path, Path]:
    """A g++ wrapper that writes ``started`` when it first builds a shared object (not when
    probed, nor for the linker probe's links), then waits for ``go``."""
    started, go = tmp_path / "started", tmp_path / "go"
    path = tmp_path / "paused-g++"
    path.write_text(textwrap.dedent(f"""\
        #!/bin/sh
        case " $* " in *sobuild-linker-*) ;; *" -shared "*)
          touch '{started}'
          while [ ! -e '{go}' ]; do sleep 0.01; done ;;
        esac
        exec g++ "$@"
        """))
    path.chmod(0o755)
    return path, started, go


def test_a_server_killed_in_the_middle_of_a_run(machines, remote_server, paused_compiler):
    compiler, started, go = paused_compiler
    machine = machines("victim", SOBUILD_CXX=str(compiler))
    process = machine.start("--kernels", "2", "--tag", "kill")
    deadline = time.monotonic() + 300  # guards against a hang only
    while not started.exists():  # looked the kernels up, now compiling
        assert process.poll() is None and time.monotonic() < deadline, process.stderr.read()
        time.sleep(0.01)
    remote_server.kill9()
    go.touch()
    out, err = process.communicate(timeout=300)
    assert process.returncode == 0, err
    report = json.loads(out.strip().splitlines()[-1])
    assert report["values"] == expected_values(2)
    assert remote_count(report, "misses") == 2  # the lookup before the kill worked
    assert remote_count(report, "errors") >= 1  # the upload after it did not
    assert report["counters"]["builds"] == 2


WARM_MODEL = textwrap.dedent("""
    import json, sys
    from brian2 import *
    import sobuild.brian_adapter  # noqa: F401
    prefs.codegen.target = 'sobuild'
    # CUBA's equations (Brian2's example) parse to a result that does not pickle back to
    # the same bytes (sympy reorders the sum), so it cannot be stored
    taum, El = 20*ms, -49*mV
    G = NeuronGroup(3, '''dv/dt = (ge+gi-(v-El))/taum : volt
                          dge/dt = -ge/(5*ms) : volt
                          dgi/dt = -gi/(10*ms) : volt''', threshold='v > -55*mV',
                    reset='v = -60*mV', method='linear')
    G.v = -60*mV
    M = SpikeMonitor(G)
    run(20*ms)
    json.dump({"spikes": int(M.num_spikes),
               "clients": sorted(m for m in ("redis", "urllib3") if m in sys.modules)},
              open(sys.argv[1], "w"))
    """)


def test_a_warm_brian2_process_never_asks_a_remote_that_is_down(secret_file, tmp_path):
    """Every lookup of a warm process is answered locally, even for a code-generation result
    that cannot be stored (a marker stands for it), so a remote that is down costs it
    nothing: not even importing the client library."""
    try:
        import brian2  # noqa: F401
    except ImportError:
        from skipping import cannot_run

        cannot_run("Brian2 is not installed (Python >= 3.13)")
    script = tmp_path / "warm_model.py"
    script.write_text(WARM_MODEL)
    machine = Machine(tmp_path / "a", SOBUILD_REMOTE=f"redis://127.0.0.1:{free_port()}/0",
                      SOBUILD_REMOTE_SECRET_FILE=str(secret_file))
    env = {**machine.env, "SOBUILD_CACHE_DIR": str(machine.cache)}
    reports = []
    for run in ("cold", "warm"):
        out = tmp_path / f"{run}.json"
        subprocess.run([sys.executable, str(script), str(out)], check=True, env=env,
                       cwd=tmp_path, timeout=600)
        reports.append(json.loads(out.read_text()))
    cold, warm = reports
    assert cold["clients"] == ["redis"]  # the cold process asked (and found nothing)
    assert warm["clients"] == []
    assert warm["spikes"] == cold["spikes"] > 0
