"""CreateTopics, DeleteTopics, CreatePartitions: error codes and answers, Kafka vs Fjord."""

import time

import pytest

from compat import Case, D, check, params

E = "error_code"


def create(name, **kw):
    return lambda s: s.create(name(s) if callable(name) else name, **kw)


def fresh(**kw):
    """creates this case's own topic with create(**kw) -> error code"""
    return lambda s: s.create(s.topic(), **kw)


def created_then(**kw):
    """the topic is created once, then created again -> error code of the second"""
    def fn(s):
        n = s.topic_t()
        return s.create(n, **kw)
    return fn


def view_over_new_source(s):
    src = s.topic_t("src")
    return s.create(s.topic("view"), configs={"fjord.view.source": src,
                                             "fjord.view.filter.type": "tag",
                                             "fjord.view.filter.expression": "a || b"})


def validate_only_not_created(s):
    n = s.topic()
    err = s.create(n, validate_only=True)
    md = s.metadata([n])["topics"][0]
    return err, md[E]


def create_answer_fields(s):
    t = s.create_raw(s.topic(), partitions=3)
    return {k: t[k] for k in ("error_code", "num_partitions", "replication_factor",
                              "topic_config_error_code")} | {"topic_id_set": t["topic_id"] not in
                                                             (None, "00000000-0000-0000-0000-000000000000")}


def create_default_partitions(s):
    t = s.create_raw(s.topic(), partitions=-1, rf=-1)
    return t[E], t["num_partitions"], t["replication_factor"]


def duplicate_in_request(s):
    n = s.topic()
    topic = {"name": n, "num_partitions": 1, "replication_factor": 1, "assignments": [],
             "configs": []}
    r = s.call("CreateTopics", 7, topics=[topic, topic], timeout_ms=10000, validate_only=False)
    return sorted(t[E] for t in r["topics"])


def collision(s):
    """'a.b' collides with an existing 'a_b' (metric names)"""
    base = s.topic()
    assert s.create(base + "_x") == 0
    return s.create(base + ".x")


def create_configs_in_answer(s):
    t = s.create_raw(s.topic(), configs={"retention.ms": "12345"})
    rows = {c["name"]: c for c in t["configs"]}
    r = rows.get("retention.ms")
    return t[E], r and (r["value"], r["config_source"], r["read_only"], r["is_sensitive"])


def delete_then_metadata(s):
    n = s.topic_t()
    errs = s.delete_topics([n])
    import time
    deadline = time.monotonic() + 10
    while True:
        e = s.metadata([n])["topics"][0][E]
        if e == 3 or time.monotonic() > deadline:
            return errs, e
        time.sleep(0.05)


def delete_unknown_id(s):
    r = s.call("DeleteTopics", 6, topics=[{"name": None,
                                           "topic_id": "11111111-2222-3333-4444-555555555555"}],
               timeout_ms=5000)
    return [t[E] for t in r["responses"]]


def delete_by_id(s):
    n = s.topic_t()
    tid = s.metadata([n])["topics"][0]["topic_id"]
    r = s.call("DeleteTopics", 6, topics=[{"name": None, "topic_id": tid}], timeout_ms=10000)
    return [(t[E], t["name"] == n) for t in r["responses"]]


def recreate(s):
    """delete, then create the same name again: a new topic id, an empty log"""
    n = s.topic_t()
    s.fill(n, 2)
    a = s.metadata([n])["topics"][0]["topic_id"]
    assert s.delete_topics([n]) == [0]
    deadline = time.monotonic() + 15
    while True:  # Kafka may answer 36 until the deletion is applied
        e = s.create(n)
        if e != 36 or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    b = s.metadata([n])["topics"][0]["topic_id"]
    return e, a != b, s.list_offsets(n, 0, -1)


def create_partitions(count, validate_only=False, assignments=None, initial=2, topic=None):
    def fn(s):
        n = topic(s) if topic else s.topic_t(partitions=initial)
        r = s.call("CreatePartitions", 3, topics=[{"name": n, "count": count,
                                                   "assignments": assignments}],
                   timeout_ms=10000, validate_only=validate_only)
        err = r["results"][0][E]
        if topic:
            return err
        if err == 0 and not validate_only:  # Kafka's metadata catches up asynchronously
            deadline = time.monotonic() + 10
            while len(s.wait_topic(n)["partitions"]) != count and time.monotonic() < deadline:
                time.sleep(0.05)
        return err, len(s.metadata([n])["topics"][0]["partitions"])
    return fn


def consumer_offsets(s):
    # a commit makes the group coordinator create __consumer_offsets on both brokers
    n = s.topic_t()
    assert s.commit(s.group(), n, 0, 1) == 0
    return "__consumer_offsets"


CASES = [
    Case("create/ok", "CreateTopics: valid topic (1 partition, RF 1)", fresh(), expect=0),
    Case("create/fjord-view", "CreateTopics with fjord.view.source/filter.type/filter.expression "
         "over an existing topic", view_over_new_source,
         diff=D(40, 0, "Fjord extension (docs/FILTERS.md): the fjord.view.* configs create a "
                "filtered view; Kafka has no such configs")),
    Case("create/empty-name", "CreateTopics: empty name", create(""), expect=17),
    Case("create/dot", "CreateTopics: name '.'", create("."), expect=17),
    Case("create/dotdot", "CreateTopics: name '..'", create(".."), expect=17),
    Case("create/249-chars", "CreateTopics: name of 249 chars (the maximum)",
         create(lambda s: (s.topic() + "x" * 249)[:249]), expect=0),
    Case("create/250-chars", "CreateTopics: name of 250 chars", create("y" * 250), expect=17),
    Case("create/slash", "CreateTopics: name with '/'", create("a/b"), expect=17),
    Case("create/space", "CreateTopics: name with a space", create("a b"), expect=17),
    Case("create/colon", "CreateTopics: name with ':'", create("a:b"), expect=17),
    Case("create/unicode", "CreateTopics: non-ASCII name", create("caf\u00e9"), expect=17),
    Case("create/legal-chars", "CreateTopics: name using every legal char class [a-zA-Z0-9._-]",
         create(lambda s: "Az09._-" + s.topic()), expect=0),
    Case("create/collision", "CreateTopics: 'x.y' when 'x_y' exists (metric-name collision)",
         collision, expect=17),
    Case("create/exists", "CreateTopics: topic already exists", created_then(), expect=36),
    Case("create/partitions-0", "CreateTopics: num_partitions 0", fresh(partitions=0), expect=37),
    Case("create/partitions-neg", "CreateTopics: num_partitions -5", fresh(partitions=-5),
         expect=37),
    Case("create/defaults", "CreateTopics: num_partitions -1 and RF -1 take the broker defaults",
         create_default_partitions, expect=(0, 1, 1)),
    Case("create/rf-0", "CreateTopics: replication_factor 0", fresh(rf=0), expect=38),
    Case("create/rf-neg", "CreateTopics: replication_factor -2", fresh(rf=-2), expect=38),
    Case("create/rf-3", "CreateTopics: replication_factor 3 on a single node", fresh(rf=3),
         expect=38),
    Case("create/assignment-ok", "CreateTopics: manual assignment [[1],[1]]",
         lambda s: s.create(s.topic(), partitions=-1, rf=-1, assignments=[[1], [1]]), expect=0),
    Case("create/assignment-unknown-broker", "CreateTopics: manual assignment to broker 7",
         lambda s: s.create(s.topic(), partitions=-1, rf=-1, assignments=[[7]]), expect=39),
    Case("create/assignment-and-count", "CreateTopics: assignment and num_partitions both set",
         lambda s: s.create(s.topic(), partitions=2, rf=-1, assignments=[[1]]), expect=42),
    Case("create/duplicate-in-request", "CreateTopics: the same name twice in one request",
         duplicate_in_request, expect=[42]),
    Case("create/answer-fields", "CreateTopics v7 answer: num_partitions, RF, topic id",
         create_answer_fields),
    Case("create/answer-configs", "CreateTopics v7 answer: the topic's configs with a set one",
         create_configs_in_answer),
    Case("create/validate-only", "CreateTopics validate_only: ok and not created",
         validate_only_not_created, expect=(0, 3)),
    Case("create/validate-only-exists", "CreateTopics validate_only: existing topic",
         created_then(validate_only=True), expect=36),
    Case("create/validate-only-bad-partitions", "CreateTopics validate_only: 0 partitions",
         fresh(partitions=0, validate_only=True), expect=37),
    Case("create/internal-consumer-offsets", "CreateTopics: __consumer_offsets (exists)",
         lambda s: s.create(consumer_offsets(s)), expect=36),
    Case("delete/unknown", "DeleteTopics: unknown topic name",
         lambda s: s.delete_topics([s.topic()]), expect=[3]),
    Case("delete/ok", "DeleteTopics: existing topic, then Metadata says unknown",
         delete_then_metadata, expect=([0], 3)),
    Case("delete/unknown-id", "DeleteTopics v6: unknown topic id", delete_unknown_id,
         expect=[100]),
    Case("delete/by-id", "DeleteTopics v6: by topic id (answer names the topic)", delete_by_id,
         expect=[(0, True)]),
    Case("delete/recreate", "DeleteTopics then CreateTopics of the same name: new id, empty",
         recreate, expect=(0, True, (0, 0, -1))),
    Case("partitions/increase", "CreatePartitions: 2 -> 4", create_partitions(4),
         expect=(0, 4)),
    Case("partitions/same", "CreatePartitions: 2 -> 2", create_partitions(2), expect=(37, 2)),
    Case("partitions/decrease", "CreatePartitions: 2 -> 1", create_partitions(1),
         expect=(37, 2)),
    Case("partitions/validate-only", "CreatePartitions validate_only: 2 -> 4 (unchanged)",
         create_partitions(4, validate_only=True), expect=(0, 2)),
    Case("partitions/unknown-topic", "CreatePartitions: unknown topic",
         create_partitions(3, topic=lambda s: s.topic("missing")), expect=3),
    Case("partitions/assignment-ok", "CreatePartitions: 2 -> 3 with assignment [[1]]",
         create_partitions(3, assignments=[{"broker_ids": [1]}]), expect=(0, 3)),
    Case("partitions/assignment-wrong-count", "CreatePartitions: 2 -> 4 with one assignment",
         create_partitions(4, assignments=[{"broker_ids": [1]}]), expect=(39, 2)),
]


@pytest.mark.parametrize("case", params(CASES, "topics"))
def test_topics(pair, case):
    check(pair, case)
