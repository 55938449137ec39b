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
       "SOBUILD_SQLITE_TIMEOUT": "10 seconds", "SOBUILD_SQLITE_WAL": "perhaps",
       "SOBUILD_REMOTE": "ftp://cache.lan/", "SOBUILD_REMOTE_BUDGET": "half a second",
       "SOBUILD_PCH": "sometimes", "SOBUILD_BRIAN_PREWARM": "later"}


def test_every_variable_has_a_refused_value_here():
    assert set(BAD) == set(VARIABLES)


@pytest.mark.parametrize("name", sorted(BAD))
def test_a_bad_value_names_its_variable(monkeypatch, cache_dir, name):
    monkeypatch.setenv(name, BAD[name])
    with pytest.raises(ConfigError, match=name) as raised:
        setting(name)
    assert BAD[name] in str(raised.value)
    assert isinstance(raised.value, ValueError) and isinstance(raised.value, sobuild.SobuildError)


@pytest.mark.parametrize("value, problem", [
    ("redis://team:hunter2@cache.lan:6379/0|bogus", "'bogus'"),
    ("http://team:hunter2@cache.lan/|operation-timeout=0", "operation-timeout=0"),
    ("memcached://team:hunter2@cache.lan/", "not a remote tier")])
def test_a_bad_remote_names_its_problem_and_hides_its_password(monkeypatch, value, problem):
    monkeypatch.setenv("SOBUILD_REMOTE", value)
    with pytest.raises(ConfigError, match="SOBUILD_REMOTE") as raised:
        setting("SOBUILD_REMOTE")
    assert problem in str(raised.value) and "hunter2" not in str(raised.value)


def test_remote_urls_and_their_attributes(monkeypatch):
    monkeypatch.setenv("SOBUILD_REMOTE", "redis://u:p@a:1/2|read-only|connect-timeout=250 "
                                         "https://b/c/|trust-unsigned|reshare")
    first, second = setting("SOBUILD_REMOTE")
    assert (first.name, first.read_only, first.connect_timeout) == ("redis://a:1/2", True, 0.25)
    assert first.operation_timeout == 1.0 and not first.trust_unsigned
    assert (second.name, second.trust_unsigned, second.reshare) == ("https://b/c/", True, True)
    assert "p@" not in repr(first)


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
