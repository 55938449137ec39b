"""Two machines sharing only a remote tier (a real redis-server or nginx): what one builds,
the other loads without compiling; Brian2's cached code generation (data entries) travels too."""

from __future__ import annotations

from sobuild.remote.signing import Signer, read_secret_file

from .conftest import expected_values, remote_count


def test_second_machine_compiles_nothing(machines):
    first, second = machines("machine-a"), machines("machine-b")
    built = first.run("--kernels", "3", "--tag", "share", "--data", "d" * 32 + "=codegen")
    assert built["values"] == expected_values(3)
    assert built["counters"]["builds"] == 3
    assert remote_count(built, "uploads") >= 4  # 3 kernel records and the data entry

    fetched = second.run("--kernels", "3", "--tag", "share", "--data", "d" * 32 + "=unused")
    assert fetched["values"] == expected_values(3)
    assert "builds" not in fetched["counters"]  # nothing compiled on the second machine
    assert remote_count(fetched, "hits") == 3
    assert fetched["data"] == "codegen"
    assert fetched["warnings"] == []

    again = second.run("--kernels", "3", "--tag", "share")  # now warm locally
    assert again["values"] == expected_values(3)
    assert remote_count(again, "hits") == remote_count(fetched, "hits")  # not asked again
    assert "builds" not in again["counters"]


def test_a_process_without_remote_tiers_imports_no_client(tmp_path, machines, remote_server):
    local = machines("local", remote="")
    report = local.run("--kernels", "1", "--tag", "imports")
    assert report["modules"] == []
    remote = machines("remote").run("--kernels", "1", "--tag", "imports")
    client = "redis" if remote_server.url.startswith("redis") else "urllib3"
    assert client in remote["modules"] and "sobuild.remote" in remote["modules"]


def test_without_a_secret_a_remote_is_not_trusted_unless_marked(machines, remote_server,
                                                                secret_file):
    machines("a").run("--kernels", "2", "--tag", "nosecret")  # signed uploads
    no_secret = machines("b", SOBUILD_REMOTE_SECRET_FILE="")
    report = no_secret.run("--kernels", "2", "--tag", "nosecret")
    assert report["counters"]["builds"] == 2
    assert any("not used" in w and "secret" in w for w in report["warnings"])
    assert remote_count(report, "uploads") == 0

    key_id = Signer(read_secret_file(str(secret_file))).key_id  # what `sobuild doctor` shows
    trusting = machines("c", remote=f"{remote_server.url}|trust-unsigned|key-id={key_id}",
                        SOBUILD_REMOTE_SECRET_FILE="")
    report = trusting.run("--kernels", "2", "--tag", "nosecret")
    assert report["values"] == expected_values(2)
    assert remote_count(report, "hits") == 2 and "builds" not in report["counters"]
    extra = trusting.run("--kernels", "3", "--tag", "nosecret")  # one new kernel: built
    assert remote_count(extra, "uploads") == 0  # read-only without a secret
