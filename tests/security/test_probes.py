"""Compiler probe records (``<cache>/toolchains/probe-*.json``) say which command runs as the
compiler, under a name anyone can compute: only a trusted, regular record naming the very
compiler that was probed is used; anything else is probed again and replaced."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from cluster.conftest import (
    ALICE,
    GROUP_GID,
    MALLORY,
    expected_values,
    run_worker,
    setgid_dir,
    worker_env,
)

from sobuild.toolchains.detect import probe_fingerprint

GXX = shutil.which("g++")
ALICE_IN_GROUP = f"{ALICE}:{GROUP_GID}:{GROUP_GID}"


def evil_compiler(path: Path, marker: Path) -> str:
    """A script that leaves ``marker`` behind, then compiles like g++ (so nothing else shows)."""
    path.write_text(f"#!/bin/sh\necho ran >> '{marker}'\nexec '{GXX}' \"$@\"\n")
    path.chmod(0o755)
    return str(path)


# -- the attack: a group member names the compiler of a private cache in a group directory ----

#: Mallory's shell: write the record into toolchains/ if she may, else swap in a toolchains/
#: of her own if the cache directory lets her; exit 1 if neither.
PLANT = r"""
cd "$1" || exit 1
if printf '%s' "$3" > "toolchains/.new" 2>/dev/null && mv -f toolchains/.new "toolchains/$2"; then
    echo "in place"
elif mv toolchains toolchains.old 2>/dev/null && mkdir toolchains \
        && printf '%s' "$3" > "toolchains/$2"; then
    echo "in a directory of her own"
else
    exit 1
fi
"""


@pytest.mark.needs_root
@pytest.mark.parametrize("left_open", [False, True], ids=["fresh", "left-group-writable"])
def test_a_group_member_cannot_choose_the_compiler_of_a_private_cache(open_dir, user_tmp,
                                                                      left_open):
    """Alice (umask 002, no SOBUILD_TRUST_GROUP) keeps her cache in a group directory; Mallory,
    in the group too, plants a record naming her script as Alice's compiler. ``left_open``:
    toolchains/ and the record are group-writable, as sobuild before this fix made them, so
    the plant succeeds and the reader's checks are what stop it."""
    cache = setgid_dir(open_dir / "group") / "alice-cache"
    env = worker_env(home=user_tmp, TMPDIR=str(user_tmp), SOBUILD_JOBS="1", SOBUILD_CXX=GXX)
    first = run_worker(cache, env, kernels=2, tag="probe-victim", user=ALICE_IN_GROUP,
                       umask="002")
    assert first["values"] == expected_values(2)
    toolchains = cache / "toolchains"
    st = toolchains.lstat()
    assert stat.S_ISDIR(st.st_mode) and st.st_uid == ALICE
    assert not st.st_mode & 0o022, f"toolchains/ is {stat.filemode(st.st_mode)}"
    # The record's name, computed as Mallory would: from the compiler's path and status,
    # and Alice's PATH.
    command = (os.path.abspath(GXX),)
    name = f"probe-{probe_fingerprint(command, command, (), env['PATH'])}.json"
    record = toolchains / name
    assert not record.stat().st_mode & 0o022
    if left_open:
        for path in (cache, toolchains):
            path.chmod(0o2775)
        record.chmod(0o664)

    mallory_dir = open_dir / "mallory"
    mallory_dir.mkdir()
    marker = user_tmp / "mallory-ran"
    planted = {**json.loads(record.read_text()),
               "command": [evil_compiler(mallory_dir / "g++", marker)]}
    os.chown(mallory_dir / "g++", MALLORY, GROUP_GID)
    plant = subprocess.run(["/bin/sh", "-c", PLANT, "plant", str(cache), name,
                            json.dumps(planted)], capture_output=True, text=True, timeout=30,
                           user=MALLORY, group=GROUP_GID, extra_groups=[GROUP_GID], umask=0o002)
    if left_open:
        assert plant.stdout.strip() == "in place", plant.stderr
        assert record.stat().st_uid == MALLORY

    second = run_worker(cache, env, kernels=2, tag="probe-victim-again", user=ALICE_IN_GROUP,
                        umask="002")
    assert not marker.exists(), "Mallory's compiler ran as Alice"
    assert second["values"] == expected_values(2)
    if plant.returncode == 0:
        assert any(name in w for w in second["warnings"]), second["warnings"]
    if left_open:  # Alice's own directory: the record is hers again
        st = record.lstat()
        assert stat.S_ISREG(st.st_mode) and st.st_uid == ALICE and not st.st_mode & 0o022
        assert json.loads(record.read_text())["command"] == list(command)


# -- records that are links, FIFOs, or name another command ------------------------------------

DETECT = """
import json, os, sys, warnings
from pathlib import Path
from sobuild.toolchains import detect
from sobuild.toolchains.probes import ProbeRecords
os.umask(0o002)
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    toolchain = detect({"SOBUILD_CXX": sys.argv[2], "PATH": os.environ["PATH"]},
                       ProbeRecords(Path(sys.argv[1]), None))
print(json.dumps({"command": list(toolchain.command),
                  "warnings": [f"{w.category.__name__}: {w.message}" for w in caught]}))
"""


def detect_in_child(cache: Path, compiler: str) -> dict:
    """detect() with the cache's probe records, in a process that must answer within 60 s."""
    try:
        proc = subprocess.run([sys.executable, "-c", DETECT, str(cache), compiler],
                              capture_output=True, text=True, timeout=60)
    except subprocess.TimeoutExpired:
        pytest.fail("detect() hung on the probe record")
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


@pytest.mark.parametrize("kind, cause", [
    ("symlink", "symbolic link"),
    ("fifo", "not a regular file"),
    ("command", "names the command"),
])
def test_a_bad_record_is_probed_again_and_replaced(tmp_path, kind, cause):
    log = tmp_path / "probes.log"
    compiler = tmp_path / "g++"
    compiler.write_text(f"#!/bin/sh\necho \"$1\" >> '{log}'\nexec '{GXX}' \"$@\"\n")
    compiler.chmod(0o755)
    cache = tmp_path / "cache"
    first = detect_in_child(cache, str(compiler))
    assert first == {"command": [str(compiler)], "warnings": []}
    toolchains = cache / "toolchains"
    assert stat.S_IMODE(toolchains.stat().st_mode) == 0o755  # whatever the umask (002)
    (record,) = toolchains.glob("probe-*.json")
    assert stat.S_IMODE(record.stat().st_mode) == 0o644
    marker = tmp_path / "evil-ran"
    planted = {**json.loads(record.read_text()),
               "command": [evil_compiler(tmp_path / "evil-g++", marker)]}
    record.unlink()
    elsewhere = tmp_path / "elsewhere.json"
    elsewhere.write_text(json.dumps(planted))
    if kind == "symlink":
        record.symlink_to(elsewhere)
    elif kind == "fifo":
        os.mkfifo(record)
    else:
        record.write_text(json.dumps(planted))
    first_probe = log.read_text().split()  # what detecting this compiler runs
    assert first_probe, "the first detection ran no probe"
    log.unlink()

    second = detect_in_child(cache, str(compiler))
    assert second["command"] == [str(compiler)]
    assert log.exists(), "the bad record was used: the compiler was not probed again"
    assert log.read_text().split() == first_probe  # probed again, all of it
    (warning,) = second["warnings"]
    assert warning.startswith("RuntimeWarning") and record.name in warning and cause in warning
    st = record.lstat()
    assert stat.S_ISREG(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o644
    assert json.loads(record.read_text())["command"] == [str(compiler)]
    assert json.loads(elsewhere.read_text()) == planted  # nothing written through the link
    assert not marker.exists()

    log.unlink()
    assert detect_in_child(cache, str(compiler)) == first  # the replacement is used
    assert not log.exists()
