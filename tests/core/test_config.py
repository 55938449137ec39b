"""Settings: each SOBUILD_* variable is parsed in one place; a bad value names its variable;
jobs follow the CPUs the process may use, as SLURM and taskset set them."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

import sobuild
from sobuild.config import VARIABLES, Settings, parse_flag, setting
from sobuild.errors import ConfigError

#: A value each kind of variable refuses.
BAD = {"SOBUILD_MAX_SIZE": "lots", "SOBUILD_JOBS": "two", "SOBUILD_TRUST_GROUP": "maybe",
       "SOBUILD_LOCKS": "posix", "SOBUILD_LOCK_TIMEOUT": "soon", "SOBUILD_LOCK_WAIT": "-1",
       "SOBUILD_BUILD_TIMEOUT": "1 hour", "SOBUILD_RETRY_FAILED": "please",
       "SOBUILD_SQLITE_TIMEOUT": "10 seconds", "SOBUILD_SQLITE_WAL": "perhaps"}


def test_every_variable_has_a_refused_value_here():
    assert set(BAD) == set(VARIABLES)


@pytest.mark.parametrize("name", sorted(BAD))
def test_a_bad_value_names_its_variable(monkeypatch, cache_dir, name):
    monkeypatch.setenv(name, BAD[name])
    with pytest.raises(ConfigError, match=name) as raised:
        setting(name)
    assert BAD[name] in str(raised.value)
    assert isinstance(raised.value, ValueError) and isinstance(raised.value, sobuild.SobuildError)


@pytest.mark.parametrize("text, value", [("1", True), ("yes", True), ("ON", True), ("true", True),
                                         ("0", False), ("no", False), ("off", False), ("", False)])
def test_one_parser_for_every_switch(text, value):
    assert parse_flag(text) is value


def test_settings_read_the_variables(monkeypatch, cache_dir):
    monkeypatch.setenv("SOBUILD_TRUST_GROUP", "yes")
    monkeypatch.setenv("SOBUILD_BUILD_TIMEOUT", "2m")
    monkeypatch.setenv("SOBUILD_LOCK_WAIT", "90s")
    settings = Settings.from_env()
    assert settings.trust_group is True
    assert (settings.build_timeout, settings.lock_wait) == (120.0, 90.0)


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="no CPU affinity on this OS")
def test_jobs_follow_the_cpus_this_process_may_use(cache_dir):
    code = ("import os, sobuild; os.sched_setaffinity(0, {min(os.sched_getaffinity(0))}); "
            "print(sobuild.Cache(os.environ['SOBUILD_CACHE_DIR']).jobs)")
    env = {k: v for k, v in os.environ.items() if k != "SOBUILD_JOBS"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "1"
