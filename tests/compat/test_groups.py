"""Classic consumer groups: FindCoordinator, Join/Sync/Heartbeat/Leave, Describe/List/Delete,
OffsetCommit/Fetch/Delete — states, member fields and error codes, Kafka vs Fjord."""

import time

import pytest

from compat import Case, D, check, params

E = "error_code"
META = b"\x00\x01"  # opaque protocol metadata (the broker must not parse it)


# ----------------------------------------------------------------- helpers
def stable(s, tag="g", **kw_):
    """a group with one member that joined and synced -> (conn, group, member, generation)"""
    g = s.group(tag)
    s.coordinator(g)
    c = s.conn()
    m, gen = s.join_full(c, g, **kw_)
    return c, g, m, gen


def member_view(m, member_id):
    return {"member_id_matches": m["member_id"] == member_id,
            "group_instance_id": m["group_instance_id"], "client_id": m["client_id"],
            "client_host": m["client_host"], "member_metadata": m["member_metadata"],
            "member_assignment": m["member_assignment"]}


def group_view(d, member_id=None):
    return (d[E], d["group_state"], d["protocol_type"], d["protocol_data"],
            [member_view(m, member_id) for m in d["members"]])


# ----------------------------------------------------------------- scenarios
def join_first(s, **kw_):
    g = s.group()
    s.coordinator(g)
    with s.conn() as c:
        r = s.join(c, g, **kw_)
    return r[E], bool(r["member_id"]), r["generation_id"], r["members"]


def join_second(s):
    g = s.group()
    s.coordinator(g)
    with s.conn() as c:
        r1 = s.join(c, g)
        r = s.join(c, g, member_id=r1["member_id"])
    m = r["member_id"]
    return (r[E], r["generation_id"], r["protocol_type"], r["protocol_name"], r["leader"] == m,
            [(x["member_id"] == m, x["group_instance_id"], x["metadata"]) for x in r["members"]])


def state_after_join(s):
    g = s.group()
    s.coordinator(g)
    with s.conn() as c:
        r1 = s.join(c, g)
        r = s.join(c, g, member_id=r1["member_id"])
        return group_view(s.describe_group(g), r["member_id"])


def sync_answer(s):
    g = s.group()
    s.coordinator(g)
    with s.conn() as c:
        r1 = s.join(c, g)
        r = s.join(c, g, member_id=r1["member_id"])
        m = r["member_id"]
        sy = c.call("SyncGroup", 5, group_id=g, generation_id=r["generation_id"], member_id=m,
                    group_instance_id=None, protocol_type="consumer", protocol_name="range",
                    assignments=[{"member_id": m, "assignment": b"abc"}])
        return sy[E], sy["protocol_type"], sy["protocol_name"], sy["assignment"]


def state_stable(s):
    c, g, m, gen = stable(s)
    with c:
        return group_view(s.describe_group(g), m)


def leave(s):
    c, g, m, gen = stable(s)
    with c:
        r = c.call("LeaveGroup", 5, group_id=g, members=[
            {"member_id": m, "group_instance_id": None, "reason": "bye"}])
        return r[E], [(x["member_id"] == m, x[E]) for x in r["members"]], \
            group_view(s.describe_group(g))


def describe_unknown(version):
    def fn(s):
        d = s.describe_group(s.group("unknown"), version=version)
        return group_view(d)
    return fn


def heartbeat(member=None, gen_delta=0):
    def fn(s):
        c, g, m, gen = stable(s)
        with c:
            r = c.call("Heartbeat", 4, group_id=g, generation_id=gen + gen_delta,
                       member_id=m if member is None else member, group_instance_id=None)
            return r[E]
    return fn


def heartbeat_during_rebalance(s):
    c, g, m, gen = stable(s)
    with c, s.conn() as c2:
        pending = c2.send("JoinGroup", 7, group_id=g, session_timeout_ms=30000,
                          rebalance_timeout_ms=30000, member_id="", group_instance_id="static-2",
                          protocol_type="consumer",
                          protocols=[{"name": "range", "metadata": META}], reason=None)
        import time
        deadline = time.monotonic() + 10
        while True:  # the second member's join moves the group to PreparingRebalance
            if s.describe_group(g)["group_state"] == "PreparingRebalance" or \
                    time.monotonic() > deadline:
                break
            time.sleep(0.05)
        r = c.call("Heartbeat", 4, group_id=g, generation_id=gen, member_id=m,
                   group_instance_id=None)
        state = s.describe_group(g)["group_state"]
        # rejoin: the rebalance completes with both members
        j = s.join(c, g, member_id=m)
        p = pending()
        return r[E], state, j[E], p[E], j["generation_id"]


def sync(member=None, gen_delta=0):
    def fn(s):
        g = s.group()
        s.coordinator(g)
        with s.conn() as c:
            r1 = s.join(c, g)
            r = s.join(c, g, member_id=r1["member_id"])
            m = r["member_id"]
            sy = c.call("SyncGroup", 5, group_id=g, generation_id=r["generation_id"] + gen_delta,
                        member_id=m if member is None else member, group_instance_id=None,
                        protocol_type="consumer", protocol_name="range",
                        assignments=[{"member_id": m, "assignment": b""}])
            return sy[E]
    return fn


def join_with(group=None, **kw_):
    # `group` is a parameter, not popped from kw_: fn runs once per broker.
    def fn(s):
        g = s.group() if group is None else group
        if g:
            s.coordinator(g)
        with s.conn() as c:
            r = s.join(c, g, **kw_)
            if r[E] == 79:
                r = s.join(c, g, member_id=r["member_id"], **kw_)
            return r[E]
    return fn


def join_mismatch(**second):
    def fn(s):
        c, g, m, gen = stable(s)
        with c, s.conn() as c2:
            r = s.join(c2, g, **second)
            if r[E] == 79:
                r = s.join(c2, g, member_id=r["member_id"], **second)
            return r[E]
    return fn


def static_join(s):
    g = s.group()
    s.coordinator(g)
    with s.conn() as c:
        r = s.join(c, g, instance_id="inst-1")
        return r[E], bool(r["member_id"]), r["generation_id"] > 0


def static_fenced(s):
    g = s.group()
    s.coordinator(g)
    with s.conn() as c, s.conn() as c2:
        m1, gen1 = s.join_full(c, g, instance_id="inst-1")
        r = s.join(c2, g, instance_id="inst-1")  # same instance id, new member: replaces m1
        hb = c.call("Heartbeat", 4, group_id=g, generation_id=gen1, member_id=m1,
                    group_instance_id="inst-1")
        return r[E], r["member_id"] != m1, hb[E]


def commit_simple(topic_exists=True):
    def fn(s):
        n = s.topic_t() if topic_exists else s.topic("missing")
        err = s.commit(s.group(), n, 0, 5)
        return err
    return fn


def commit_in_group(member=None, gen_delta=0, generation=None):
    def fn(s):
        n = s.topic_t()
        c, g, m, gen = stable(s)
        with c:
            return s.commit(g, n, 0, 5, generation=gen + gen_delta if generation is None
                            else generation, member=m if member is None else member)
    return fn


def commit_unknown_member_new_group(s):
    n = s.topic_t()
    return s.commit(s.group(), n, 0, 5, generation=1, member="ghost")


def offset_fetch_unknown(s):
    g = s.offset_fetch(s.group("unknown"), s.topic("t"), partitions=(0, 1))
    return g[E], [(t["name"] == s.topic("t"), [(p["partition_index"], p["committed_offset"],
                                               p["committed_leader_epoch"], p["metadata"], p[E])
                                              for p in t["partitions"]]) for t in g["topics"]]


def offset_fetch_unknown_all(s):
    g = s.offset_fetch(s.group("unknown"))
    return g[E], g["topics"]


def commit_then_fetch(all_topics=False):
    def fn(s):
        n = s.topic_t(partitions=2)
        g = s.group()
        s.coordinator(g)
        r = s.call("OffsetCommit", 8, group_id=g, generation_id_or_member_epoch=-1, member_id="",
                   group_instance_id=None, topics=[{"name": n, "partitions": [
                       {"partition_index": 0, "committed_offset": 7, "committed_leader_epoch": 3,
                        "committed_metadata": "meta-x"}]}])
        assert r["topics"][0]["partitions"][0][E] == 0, r
        f = s.offset_fetch(g, None if all_topics else n, partitions=(0, 1))
        return f[E], [(t["name"] == n, sorted((p["partition_index"], p["committed_offset"],
                                               p["committed_leader_epoch"], p["metadata"], p[E])
                                              for p in t["partitions"])) for t in f["topics"]]
    return fn


def commit_metadata_too_large(s):
    n = s.topic_t()
    g = s.group()
    s.coordinator(g)
    r = s.call("OffsetCommit", 8, group_id=g, generation_id_or_member_epoch=-1, member_id="",
               group_instance_id=None, topics=[{"name": n, "partitions": [
                   {"partition_index": 0, "committed_offset": 1, "committed_leader_epoch": -1,
                    "committed_metadata": "x" * 5000}]}])
    return r["topics"][0]["partitions"][0][E], \
        s.offset_fetch(g, n)["topics"][0]["partitions"][0]["committed_offset"]


def commit_negative(s):
    n = s.topic_t()
    g = s.group()
    err = s.commit(g, n, 0, -5)
    return err, s.offset_fetch(g, n)["topics"][0]["partitions"][0]["committed_offset"]


def delete_groups(kind):
    def fn(s):
        if kind == "unknown":
            g = s.group("unknown")
            s.coordinator(g)
        elif kind == "non-empty":
            c, g, m, gen = stable(s)
        else:  # empty group with committed offsets
            n = s.topic_t()
            g = s.group()
            assert s.commit(g, n, 0, 3) == 0
        r = s.call("DeleteGroups", 2, groups_names=[g])
        err = r["results"][0][E]
        if kind == "empty":
            return err, s.offset_fetch(g, n)["topics"][0]["partitions"][0]["committed_offset"], \
                group_view(s.describe_group(g))
        if kind == "non-empty":
            c.close()
        return err
    return fn


def list_groups(states=None):
    def fn(s):
        c, g, m, gen = stable(s)
        n = s.topic_t()
        g2 = s.group("empty")
        assert s.commit(g2, n, 0, 1) == 0
        with c:
            r = s.call("ListGroups", 4, states_filter=states or [])
            found = {x["group_id"]: (x["protocol_type"], x["group_state"]) for x in r["groups"]
                     if x["group_id"] in (g, g2)}
            return r[E], sorted(found.values())
    return fn


def list_groups_v5_types(s):
    c, g, m, gen = stable(s)
    with c:
        r = s.call("ListGroups", 5, states_filter=[], types_filter=["classic"])
        return r[E], [(x["group_state"], x["group_type"]) for x in r["groups"]
                      if x["group_id"] == g]


def offset_delete(kind):
    def fn(s):
        n = s.topic_t()
        g = s.group()
        if kind == "empty":
            assert s.commit(g, n, 0, 3) == 0
        else:
            s.coordinator(g)
        r = s.call("OffsetDelete", 0, group_id=g, topics=[{"name": n, "partitions": [
            {"partition_index": 0}]}])
        parts = [(p["partition_index"], p[E]) for t in r["topics"] for p in t["partitions"]]
        if kind == "empty":
            return r[E], parts, s.offset_fetch(g, n)["topics"][0]["partitions"][0][
                "committed_offset"]
        return r[E], parts
    return fn


def find_coordinator(version, key_type=0, key=None):
    def fn(s):
        k = s.group() if key is None else key
        if version >= 4:
            r = s.call("FindCoordinator", version, key_type=key_type, coordinator_keys=[k])
            c = r["coordinators"][0]
            return c[E], c["node_id"], c["host"], c["port"] == int(s.bs.rsplit(":", 1)[1])
        kwargs = {"key": k}
        if version >= 1:
            kwargs["key_type"] = key_type
        r = s.call("FindCoordinator", version, **kwargs)
        return r[E], r["node_id"], r["host"], r["port"] == int(s.bs.rsplit(":", 1)[1])
    return fn


def find_coordinator_retrying(version, key_type):
    def fn(s):
        deadline = time.monotonic() + 30
        while True:
            r = find_coordinator(version, key_type)(s)
            if r[0] != 15 or time.monotonic() > deadline:
                return r
            time.sleep(0.1)
    return fn


def leave_unknown(group_exists):
    def fn(s):
        if group_exists:
            c, g, m, gen = stable(s)
        else:
            g = s.group("unknown")
            s.coordinator(g)
            c = None
        r = s.call("LeaveGroup", 5, group_id=g, members=[
            {"member_id": "ghost", "group_instance_id": None, "reason": None}])
        if c:
            c.close()
        return r[E], [x[E] for x in r["members"]]
    return fn


CASES = [
    Case("group/join-member-id-required", "JoinGroup v7 with an empty member id (KIP-394)",
         join_first, expect=(79, True, -1, [])),
    Case("group/join-v3", "JoinGroup v3 with an empty member id (before KIP-394)",
         lambda s: join_first(s, version=3)[:3], expect=(0, True, 1)),
    Case("group/join-ok", "JoinGroup v7 again with the given member id: generation, leader, "
         "protocol, members", join_second,
         expect=(0, 1, "consumer", "range", True, [(True, None, META)])),
    Case("group/state-completing", "DescribeGroups after the join: CompletingRebalance",
         state_after_join),
    Case("group/sync", "SyncGroup v5 by the leader: protocol and own assignment", sync_answer,
         expect=(0, "consumer", "range", b"abc")),
    Case("group/state-stable", "DescribeGroups after sync: Stable, protocol, member fields "
         "(client id/host, metadata, assignment)", state_stable),
    Case("group/leave", "LeaveGroup v5 of the only member, then DescribeGroups: Empty", leave),
    Case("group/describe-unknown-v5", "DescribeGroups v5 of an unknown group",
         describe_unknown(5)),
    Case("group/describe-unknown-v6", "DescribeGroups v6 of an unknown group",
         describe_unknown(6)),
    Case("group/heartbeat-ok", "Heartbeat of a stable member", heartbeat(), expect=0),
    Case("group/heartbeat-unknown-member", "Heartbeat with an unknown member id",
         heartbeat(member="ghost"), expect=25),
    Case("group/heartbeat-bad-generation", "Heartbeat with generation+1",
         heartbeat(gen_delta=1), expect=22),
    Case("group/heartbeat-rebalancing", "Heartbeat while a second member joins; rejoin",
         heartbeat_during_rebalance, expect=(27, "PreparingRebalance", 0, 0, 2)),
    Case("group/sync-bad-generation", "SyncGroup with generation+1", sync(gen_delta=1),
         expect=22),
    Case("group/sync-unknown-member", "SyncGroup with an unknown member id",
         sync(member="ghost"), expect=25),
    Case("group/join-empty-group-id", "JoinGroup with an empty group id",
         join_with(group=""), expect=24),
    Case("group/join-session-too-small", "JoinGroup with session timeout 1000 ms (< 6000)",
         join_with(session_timeout=1000), expect=26),
    Case("group/join-session-too-large", "JoinGroup with session timeout 4000000 ms (> 1800000)",
         join_with(session_timeout=4_000_000), expect=26),
    Case("group/join-protocol-type-mismatch", "JoinGroup 'connect' into a 'consumer' group",
         join_mismatch(protocol_type="connect"), expect=23),
    Case("group/join-no-common-protocol", "JoinGroup with only 'roundrobin' into a 'range' "
         "group", join_mismatch(protocols=(("roundrobin", META),)), expect=23),
    Case("group/join-static", "JoinGroup v7 with group_instance_id: no member-id round trip",
         static_join),
    Case("group/static-fenced", "Static member replaced by a new join with its instance id: "
         "old member's heartbeat", static_fenced),
    Case("commit/simple", "OffsetCommit (generation -1, no member) to a new group",
         commit_simple(), expect=0),
    Case("commit/unknown-topic", "OffsetCommit for a topic that does not exist",
         commit_simple(topic_exists=False)),
    Case("commit/unknown-member-new-group", "OffsetCommit generation 1, member 'ghost', "
         "group does not exist", commit_unknown_member_new_group),
    Case("commit/member-ok", "OffsetCommit by the stable member", commit_in_group(),
         expect=0),
    Case("commit/illegal-generation", "OffsetCommit by the member with generation+5",
         commit_in_group(gen_delta=5), expect=22),
    Case("commit/unknown-member", "OffsetCommit with member 'ghost' in a stable group",
         commit_in_group(member="ghost"), expect=25),
    Case("commit/simple-into-active-group", "OffsetCommit generation -1, no member, into a "
         "group with a stable member", commit_in_group(member="", generation=-1)),
    Case("commit/metadata-too-large", "OffsetCommit with 5000 chars of metadata (> 4096)",
         commit_metadata_too_large, expect=(12, -1)),
    Case("commit/negative-offset", "OffsetCommit of offset -5", commit_negative),
    Case("fetch-offsets/unknown-group", "OffsetFetch v8 of an unknown group, 2 partitions",
         offset_fetch_unknown,
         expect=(0, [(True, [(0, -1, -1, "", 0), (1, -1, -1, "", 0)])])),
    Case("fetch-offsets/unknown-group-all", "OffsetFetch v8 of an unknown group, all topics",
         offset_fetch_unknown_all, expect=(0, [])),
    Case("fetch-offsets/after-commit", "OffsetFetch after a commit: offset, leader epoch, "
         "metadata; uncommitted partition -1", commit_then_fetch(),
         expect=(0, [(True, [(0, 7, 3, "meta-x", 0), (1, -1, -1, "", 0)])])),
    Case("fetch-offsets/after-commit-all", "OffsetFetch (all topics) after a commit",
         commit_then_fetch(all_topics=True), expect=(0, [(True, [(0, 7, 3, "meta-x", 0)])])),
    Case("delete-groups/non-empty", "DeleteGroups of a group with a member",
         delete_groups("non-empty"), expect=68),
    Case("delete-groups/unknown", "DeleteGroups of an unknown group", delete_groups("unknown"),
         expect=69),
    Case("delete-groups/empty", "DeleteGroups of an empty group with offsets: then offsets "
         "gone, state Dead", delete_groups("empty")),
    Case("list-groups/all", "ListGroups v4: a Stable and an Empty group (protocol type, state)",
         list_groups()),
    Case("list-groups/filter", "ListGroups v4 states_filter=[Stable]", list_groups(["Stable"])),
    Case("list-groups/v5-types", "ListGroups v5 types_filter=[classic]", list_groups_v5_types,
         expect=(0, [("Stable", "classic")])),
    Case("offset-delete/empty-group", "OffsetDelete in an empty group: then OffsetFetch -1",
         offset_delete("empty"), expect=(0, [(0, 0)], -1)),
    Case("offset-delete/unknown-group", "OffsetDelete in an unknown group",
         offset_delete("unknown")),
    Case("find-coordinator/v4", "FindCoordinator v4 (batched) for a group",
         find_coordinator(4), expect=(0, 1, "127.0.0.1", True)),
    Case("find-coordinator/v0", "FindCoordinator v0 for a group", find_coordinator(0),
         expect=(0, 1, "127.0.0.1", True)),
    Case("find-coordinator/v3", "FindCoordinator v3 for a group", find_coordinator(3),
         expect=(0, 1, "127.0.0.1", True)),
    Case("find-coordinator/transaction", "FindCoordinator v4 key_type=1 (transaction; a fresh "
         "Kafka answers 15 until it has created __transaction_state: retried like a client)",
         find_coordinator_retrying(4, key_type=1), expect=(0, 1, "127.0.0.1", True)),
    Case("find-coordinator/bad-key-type", "FindCoordinator v4 key_type=7",
         find_coordinator(4, key_type=7)),
    Case("find-coordinator/empty-key", "FindCoordinator v4 for group ''",
         find_coordinator(4, key=""), expect=(0, 1, "127.0.0.1", True)),
    Case("leave/unknown-member", "LeaveGroup v5 of member 'ghost' in a stable group",
         leave_unknown(True)),
    Case("leave/unknown-group", "LeaveGroup v5 in an unknown group", leave_unknown(False)),
]


@pytest.mark.parametrize("case", params(CASES, "groups"))
def test_groups(pair, case):
    check(pair, case)
