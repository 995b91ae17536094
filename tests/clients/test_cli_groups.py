"""End-to-end tests of the consumer-group side of the `fjord` CLI (`consume --group`,
`group list|describe|reset-offsets|delete`) against the real broker binary.

Every wait polls a condition; nothing sleeps as synchronisation.
"""

import json
import os
import signal
import subprocess
import uuid

import pytest
from confluent_kafka import Consumer

from conftest import fjord, fjord_bin, wait_until

PARTITIONS = 3
TOTAL = 90


def gid():
    return f"g-{uuid.uuid4().hex[:10]}"


def setup_topic(broker, topic, n=TOTAL):
    """A 3-partition topic with n keyed records spread over every partition."""
    fjord(broker, "topic", "create", topic, "-p", str(PARTITIONS), check=0)
    lines = "".join(f"k{i}:v{i}\n" for i in range(n))
    fjord(broker, "produce", topic, "--key-separator", ":", stdin=lines, check=0)


def describe(broker, group):
    return json.loads(fjord(broker, "group", "describe", group, "--json", check=0).out)


def committed(desc, topic):
    return {
        r["partition"]: r["committed"] for r in desc["partitions"] if r["topic"] == topic
    }


def librdkafka_member(broker, group, topic):
    c = Consumer(
        {
            "bootstrap.servers": broker.bootstrap,
            "group.id": group,
            "client.id": "confluent-member",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            "session.timeout.ms": 6000,
            "heartbeat.interval.ms": 300,
            "log_level": 0,
        }
    )
    c.subscribe([topic])

    def is_assigned():
        c.poll(0.1)
        return c.assignment()

    wait_until(is_assigned, timeout=30, msg="the confluent consumer's assignment")
    return c


def test_group_commands_have_examples():
    for cmd in (["group"], ["group", "list"], ["group", "describe"],
                ["group", "reset-offsets"], ["group", "delete"], ["consume"]):
        h = subprocess.run([fjord_bin(), *cmd, "--help"], capture_output=True, text=True)
        assert h.returncode == 0, cmd
        assert "Example: fjord " in h.stdout, cmd
    h = subprocess.run([fjord_bin(), "consume", "--help"], capture_output=True, text=True)
    assert "--group" in h.stdout and "--from-beginning" in h.stdout


def test_consume_with_group_commits_and_describe_shows_lag(broker, topic_name):
    setup_topic(broker, topic_name)
    g = gid()
    half = TOTAL // 2
    first = fjord(broker, "consume", topic_name, "--group", g, "--from-beginning",
                  "--count", str(half), check=0).out.splitlines()
    assert len(first) == half

    d = describe(broker, g)
    assert d["group"] == g and d["state"] == "Empty" and d["members"] == []
    assert d["protocol_type"] == "consumer"
    rows = [r for r in d["partitions"] if r["topic"] == topic_name]
    assert sum(r["committed"] or 0 for r in rows) == half
    assert sum(r["log_end"] for r in rows) == TOTAL
    assert sum(r["lag"] for r in rows if r["lag"] is not None) == TOTAL - half
    for r in rows:
        if r["committed"] is not None:
            assert r["lag"] == r["log_end"] - r["committed"]

    listing = fjord(broker, "group", "list", check=0).out.splitlines()
    assert listing[0].split() == ["GROUP", "STATE", "PROTOCOL", "TYPE", "MEMBERS"]
    row = next(line.split() for line in listing[1:] if line.split()[0] == g)
    assert row[1:] == ["Empty", "consumer", "0"]
    listed = json.loads(fjord(broker, "group", "list", "--json", check=0).out)
    assert {"group": g, "state": "Empty", "protocol_type": "consumer", "members": 0} in listed
    stable = json.loads(fjord(broker, "group", "list", "--state", "Stable", "--json",
                              check=0).out)
    assert g not in [x["group"] for x in stable]

    # The next run resumes at the committed offsets: together the runs read every record once.
    second = fjord(broker, "consume", topic_name, "--group", g, check=0).out.splitlines()
    assert len(second) == TOTAL - half
    assert sorted(first + second) == sorted(f"v{i}" for i in range(TOTAL))
    d = describe(broker, g)
    assert all(r["lag"] == 0 for r in d["partitions"] if r["topic"] == topic_name)

    table = fjord(broker, "group", "describe", g, check=0).out
    assert "State:     Empty" in table
    assert table.splitlines()[5].split()[:5] == ["TOPIC", "PARTITION", "COMMITTED", "LOG",
                                                 "END"]


def test_reset_offsets_dry_run_then_execute(broker, topic_name):
    setup_topic(broker, topic_name)
    g = gid()
    fjord(broker, "consume", topic_name, "--group", g, "--from-beginning", "--count", "30",
          check=0)
    before = committed(describe(broker, g), topic_name)
    assert sum(v or 0 for v in before.values()) == 30

    dry = fjord(broker, "group", "reset-offsets", g, "--topic", topic_name, "--to-earliest",
                check=0)
    assert "Dry run" in dry.out
    assert dry.out.splitlines()[0].split() == ["TOPIC", "PARTITION", "CURRENT", "NEW"]
    assert committed(describe(broker, g), topic_name) == before

    fjord(broker, "group", "reset-offsets", g, "--topic", topic_name, "--to-earliest",
          "--execute", check=0)
    after = committed(describe(broker, g), topic_name)
    assert after == {p: 0 for p in range(PARTITIONS)}

    # --shift-by clamps into [log start, log end]; --partition limits the change.
    fjord(broker, "group", "reset-offsets", g, "--topic", topic_name, "--shift-by", "5",
          "--partition", "1", "--execute", check=0)
    fjord(broker, "group", "reset-offsets", g, "--topic", topic_name, "--shift-by", "-9",
          "--partition", "2", "--execute", check=0)
    d = describe(broker, g)
    ends = {r["partition"]: r["log_end"] for r in d["partitions"]}
    c = committed(d, topic_name)
    assert c == {0: 0, 1: min(5, ends[1]), 2: 0}

    fjord(broker, "group", "reset-offsets", g, "--topic", topic_name, "--to-latest",
          "--execute", check=0)
    assert committed(describe(broker, g), topic_name) == ends

    # Before every record: the log start; far in the future: the log end.
    fjord(broker, "group", "reset-offsets", g, "--topic", topic_name, "--to-datetime",
          "2000-01-01T00:00:00Z", "--execute", check=0)
    assert committed(describe(broker, g), topic_name) == {p: 0 for p in range(PARTITIONS)}
    fjord(broker, "group", "reset-offsets", g, "--topic", topic_name, "--to-datetime",
          "2999-01-01T00:00:00+02:00", "--execute", check=0)
    assert committed(describe(broker, g), topic_name) == ends

    bad = fjord(broker, "group", "reset-offsets", g, "--topic", topic_name, "--to-datetime",
                "yesterday")
    assert bad.returncode == 2 and "ISO-8601" in bad.err
    none = fjord(broker, "group", "reset-offsets", g, "--topic", topic_name)
    assert none.returncode == 2


def test_reset_and_delete_are_refused_while_a_member_is_active(broker, topic_name):
    setup_topic(broker, topic_name)
    g = gid()
    fjord(broker, "consume", topic_name, "--group", g, "--from-beginning", "--count", "20",
          check=0)
    before = committed(describe(broker, g), topic_name)

    c = librdkafka_member(broker, g, topic_name)
    try:
        d = wait_until(lambda: (lambda d: d if d["state"] == "Stable" else None)(
            describe(broker, g)), timeout=30, msg="a Stable group")
        assert [m["client_id"] for m in d["members"]] == ["confluent-member"]
        owned = {r["partition"] for r in d["partitions"] if r["client_id"] == "confluent-member"}
        assert owned == set(range(PARTITIONS))

        r = fjord(broker, "group", "reset-offsets", g, "--topic", topic_name, "--to-earliest",
                  "--execute")
        assert r.returncode == 1, r.err
        lines = r.err.strip().splitlines()
        assert len(lines) == 1, r.err
        assert "active members" in lines[0] and "stop its consumers first" in lines[0]
        assert "confluent-member" in lines[0]
        assert committed(describe(broker, g), topic_name) == before

        # A dry run still shows the plan, with a warning.
        dry = fjord(broker, "group", "reset-offsets", g, "--topic", topic_name,
                    "--to-earliest", check=0)
        assert "Dry run" in dry.out and "warning" in dry.err

        r = fjord(broker, "group", "delete", g)
        assert r.returncode == 1
        assert "has active members" in r.err and "stop its consumers first" in r.err
        assert g in fjord(broker, "group", "list", check=0).out
    finally:
        c.close()

    wait_until(lambda: describe(broker, g)["state"] == "Empty", timeout=30,
               msg="the group to become Empty")
    fjord(broker, "group", "delete", g, check=0)
    assert g not in fjord(broker, "group", "list", check=0).out
    gone = fjord(broker, "group", "describe", g)
    assert gone.returncode == 1 and "does not exist" in gone.err
    assert fjord(broker, "group", "delete", g).returncode == 1


def test_two_fjord_members_share_the_partitions(broker, topic_name):
    setup_topic(broker, topic_name)
    g = gid()
    env = dict(os.environ, FJORD_BOOTSTRAP=broker.bootstrap)
    procs = [
        subprocess.Popen(
            [fjord_bin(), "consume", topic_name, "--group", g, "--from-beginning", "--follow",
             "--assignor", assignor],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
        )
        for assignor in ("range", "roundrobin")
    ]
    try:
        def split():
            d = describe(broker, g)
            owners = [r["member_id"] for r in d["partitions"] if r["member_id"]]
            if (d["state"] == "Stable" and len(d["members"]) == 2
                    and len(owners) == PARTITIONS and len(set(owners)) == 2):
                return d
            return None

        d = wait_until(split, timeout=60, msg="two members splitting the partitions")
        assert d["protocol"] in ("range", "roundrobin")
        wait_until(lambda: sum(committed(describe(broker, g), topic_name).values()) == TOTAL,
                   timeout=30, msg="every record committed")
    finally:
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGINT)
        outs = [p.communicate(timeout=30) for p in procs]
    for p, (_, err) in zip(procs, outs):
        assert p.returncode == 0, err.decode(errors="replace")
    values = [line for out, _ in outs for line in out.decode().splitlines()]
    # At least once: every record, and duplicates only from a rebalance.
    assert set(values) == {f"v{i}" for i in range(TOTAL)}
    # Both left the group on SIGINT: it is Empty at once, not after the session timeout.
    assert describe(broker, g)["state"] == "Empty"


def test_group_commands_on_unknown_things_fail_cleanly(broker, topic_name):
    g = gid()
    r = fjord(broker, "group", "describe", g)
    assert r.returncode == 1 and "does not exist" in r.err and "panicked" not in r.err
    r = fjord(broker, "group", "reset-offsets", g, "--topic", topic_name, "--to-earliest")
    assert r.returncode == 1 and "does not exist" in r.err
    fjord(broker, "topic", "create", topic_name, "-p", "1", check=0)
    r = fjord(broker, "group", "reset-offsets", g, "--topic", topic_name, "--to-earliest",
              "--partition", "7")
    assert r.returncode == 1 and "no partition 7" in r.err
    r = fjord(broker, "group", "reset-offsets", g, "--topic", topic_name, "--shift-by", "1")
    assert r.returncode == 1 and "no committed offset" in r.err
    r = fjord(broker, "consume", topic_name, "--group", g, "--partition", "0")
    assert r.returncode == 2


def test_fjord_leader_assigns_a_librdkafka_member(broker, topic_name):
    setup_topic(broker, topic_name)
    g = gid()
    env = dict(os.environ, FJORD_BOOTSTRAP=broker.bootstrap)
    proc = subprocess.Popen(
        [fjord_bin(), "consume", topic_name, "--group", g, "--from-beginning", "--follow"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
    )
    c = None
    try:
        # The fjord member is alone, so it leads; it keeps leading when librdkafka joins and
        # computes the assignment for both.
        wait_until(lambda: describe(broker, g)["state"] == "Stable", timeout=30,
                   msg="the fjord member alone in a Stable group")
        c = librdkafka_member(broker, g, topic_name)

        def split():
            d = describe(broker, g)
            owners = {r["partition"]: r["client_id"] for r in d["partitions"]}
            if d["state"] == "Stable" and set(owners.values()) == {"fjord-cli",
                                                                   "confluent-member"}:
                return owners
            return None

        owners = wait_until(split, timeout=60, msg="fjord and librdkafka sharing partitions")
        assert sorted(owners) == list(range(PARTITIONS))
        mine = {tp.partition for tp in c.assignment()}
        assert mine == {p for p, who in owners.items() if who == "confluent-member"}
    finally:
        if c is not None:
            c.close()
    # librdkafka left: the fjord member rejoins and takes every partition back.
    wait_until(lambda: {r["client_id"] for r in describe(broker, g)["partitions"]}
               == {"fjord-cli"}, timeout=60, msg="the fjord member owning every partition")
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err.decode(errors="replace")
    assert describe(broker, g)["state"] == "Empty"
