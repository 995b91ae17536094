"""Topic configs: validation in CreateTopics/AlterConfigs/IncrementalAlterConfigs and every row
DescribeConfigs answers for a new topic, Kafka vs Fjord."""

import time

import pytest

from compat import Case, D, check, params

E = "error_code"
SRC_DYNAMIC_TOPIC, SRC_DEFAULT = 1, 5


def create_with(configs):
    return lambda s: s.create(s.topic(), configs=configs)


# ----------------------------------------------------------------- CreateTopics config values
VALUE_CASES = [
    # (config, value, Kafka's error code)
    ("foo.bar.unknown", "1", 40),
    ("retention.ms", "abc", 40),
    ("retention.ms", "-2", 40),
    ("retention.ms", "", 40),
    ("retention.ms", "-1", 0),
    ("retention.bytes", "1.5", 40),
    ("cleanup.policy", "bogus", 40),
    ("cleanup.policy", "compact,delete", 0),
    ("cleanup.policy", "compact", 0),
    ("min.insync.replicas", "0", 40),
    ("min.insync.replicas", "2", 0),
    ("max.message.bytes", "-1", 40),
    ("max.message.bytes", "0", 0),
    ("segment.bytes", "1", 40),
    ("segment.bytes", "1048576", 0),
    ("segment.ms", "0", 40),
    ("compression.type", "bogus", 40),
    ("compression.type", "gzip", 0),
    ("compression.type", "snappy", 0),
    ("compression.type", "lz4", 0),
    ("compression.type", "zstd", 0),
    ("compression.type", "uncompressed", 0),
    ("message.timestamp.type", "bogus", 40),
    ("message.timestamp.type", "LogAppendTime", 0),
    ("min.cleanable.dirty.ratio", "2", 40),
    ("unclean.leader.election.enable", "maybe", 40),
    ("delete.retention.ms", "-1", 40),
    ("index.interval.bytes", "-1", 40),
    ("message.timestamp.before.max.ms", "-1", 40),
    ("compression.gzip.level", "5", 0),
    ("compression.gzip.level", "10", 40),
    ("compression.zstd.level", "23", 40),
    ("segment.jitter.ms", "-1", 40),
    ("preallocate", "true", 0),
    ("max.compaction.lag.ms", "0", 40),
    ("leader.replication.throttled.replicas", "0:1,1:1", 0),
    ("leader.replication.throttled.replicas", "x", 40),
]

# where Fjord answers differently: (config, value) -> keyword args of Case
VALUE_DIFFS = {}


def value_cases():
    out = []
    for name, value, err in VALUE_CASES:
        extra = VALUE_DIFFS.get((name, value), {})
        out.append(Case(f"config-value/{name}={value or '<empty>'}",
                        f"CreateTopics with {name}={value!r}", create_with({name: value}),
                        expect=err, **extra))
    return out


# ----------------------------------------------------------------- DescribeConfigs rows
# Kafka 4.4.0's rows for a new topic (name -> (value, source, read_only, sensitive));
# source 5 = DEFAULT_CONFIG, 3 = DYNAMIC_DEFAULT_BROKER_CONFIG
TS = "TIERED STORAGE"
ROW_DIFFS = {
    "flush.ms": D(("9223372036854775807", 5, False, False), ("1000", 5, False, False),
                  "deliberate: Fjord's default flush policy is a background fsync every "
                  "--flush-interval-ms (1000); Kafka leaves flushing to the OS"),
    "min.insync.replicas": D(("1", 3, False, False), ("1", 5, False, False),
                             "harmless: KRaft Kafka 4.x stores min.insync.replicas as a "
                             "cluster-level dynamic default (ELR, KIP-966); same value"),
}
ROW_BUGS = {}
ROW_GAPS = {}  # every Kafka topic config is described (some accepted without effect: config_inert.rs)
KAFKA_ROWS = {  # observed on Kafka 4.4.0 (the table of rows a new topic has)
    'cleanup.policy': ('delete', 5, False, False),
    'compression.gzip.level': ('-1', 5, False, False),
    'compression.lz4.level': ('9', 5, False, False),
    'compression.type': ('producer', 5, False, False),
    'compression.zstd.level': ('3', 5, False, False),
    'delete.retention.ms': ('86400000', 5, False, False),
    'errors.deadletterqueue.group.enable': ('false', 5, False, False),
    'file.delete.delay.ms': ('60000', 5, False, False),
    'flush.messages': ('9223372036854775807', 5, False, False),
    'flush.ms': ('9223372036854775807', 5, False, False),
    'follower.replication.throttled.replicas': ('', 5, False, False),
    'index.interval.bytes': ('4096', 5, False, False),
    'leader.replication.throttled.replicas': ('', 5, False, False),
    'local.retention.bytes': ('-2', 5, False, False),
    'local.retention.ms': ('-2', 5, False, False),
    'max.compaction.lag.ms': ('9223372036854775807', 5, False, False),
    'max.decompressed.message.bytes': ('2147483639', 5, False, False),
    'max.message.bytes': ('1048588', 5, False, False),
    'message.timestamp.after.max.ms': ('3600000', 5, False, False),
    'message.timestamp.before.max.ms': ('9223372036854775807', 5, False, False),
    'message.timestamp.type': ('CreateTime', 5, False, False),
    'min.cleanable.dirty.ratio': ('0.5', 5, False, False),
    'min.compaction.lag.ms': ('0', 5, False, False),
    'min.insync.replicas': ('1', 3, False, False),
    'preallocate': ('false', 5, False, False),
    'remote.copy.lag.bytes': ('-1', 5, False, False),
    'remote.copy.lag.ms': ('0', 5, False, False),
    'remote.log.copy.disable': ('false', 5, False, False),
    'remote.log.delete.on.disable': ('false', 5, False, False),
    'remote.storage.enable': ('false', 5, False, False),
    'retention.bytes': ('-1', 5, False, False),
    'retention.ms': ('604800000', 5, False, False),
    'segment.bytes': ('1073741824', 5, False, False),
    'segment.index.bytes': ('10485760', 5, False, False),
    'segment.jitter.ms': ('0', 5, False, False),
    'segment.ms': ('604800000', 5, False, False),
    'unclean.leader.election.enable': ('false', 5, False, False),
}
_rows = {}


def default_rows(s):
    if s.bs not in _rows:
        s.case = "rows"
        n = s.topic_t("defaults")
        _rows[s.bs] = {c["name"]: (c["value"], c["config_source"], c["read_only"],
                                   c["is_sensitive"])
                       for c in s.describe_configs(2, n)["configs"]}
    return _rows[s.bs]


def row(name):
    return lambda s: default_rows(s).get(name)


def row_cases():
    out = []
    for name in KAFKA_ROWS:
        what = f"DescribeConfigs row of a new topic: {name} (value, source, read-only, sensitive)"
        cid = f"describe-row/{name}"
        if name in ROW_DIFFS:
            out.append(Case(cid, what, row(name), diff=ROW_DIFFS[name]))
        elif name in ROW_GAPS:
            out.append(Case(cid, what, row(name),
                            diff=D(KAFKA_ROWS[name], None, "gap: " + ROW_GAPS[name])))
        elif name in ROW_BUGS:
            out.append(Case(cid, what, row(name), expect=KAFKA_ROWS[name], bug=ROW_BUGS[name]))
        else:
            out.append(Case(cid, what, row(name), expect=KAFKA_ROWS[name]))
    return out


def extra_rows(s):
    return sorted(set(default_rows(s)) - set(KAFKA_ROWS))


# ----------------------------------------------------------------- describe / alter scenarios
def set_config_row(s):
    n = s.topic_t(configs={"retention.ms": "12345"})
    c = s.topic_configs(n)["retention.ms"]
    return c["value"], c["config_source"], c["read_only"], c["is_sensitive"]


def describe_keys(keys):
    def fn(s):
        n = s.topic_t()
        r = s.describe_configs(2, n, keys=keys)
        return r[E], sorted(c["name"] for c in r["configs"])
    return fn


def synonyms(s):
    n = s.topic_t(configs={"retention.ms": "5000"})
    r = s.describe_configs(2, n, keys=["retention.ms", "segment.bytes"], synonyms=True)
    return sorted((c["name"], sorted((y["name"], y["source"]) for y in c["synonyms"]))
                  for c in r["configs"])


def documentation(s):
    n = s.topic_t()
    r = s.describe_configs(2, n, keys=["retention.ms"], docs=True)
    return [bool(c["documentation"]) for c in r["configs"]]


def broker_rows(s):
    r = s.describe_configs(4, "1")
    rows = {c["name"]: (c["value"], c["config_source"]) for c in r["configs"]}
    return r[E], {k: rows.get(k) for k in ("message.max.bytes", "log.retention.hours",
                                           "auto.create.topics.enable")}


def legacy_alter_resets_others(s):
    """AlterConfigs replaces the whole set: configs not given go back to their defaults."""
    n = s.topic_t(configs={"retention.ms": "1000", "segment.ms": "3600000"})
    err = s.alter_configs(n, {"cleanup.policy": "compact"})
    c = s.topic_configs(n)
    return err, [(k, c[k]["value"], c[k]["config_source"])
                 for k in ("cleanup.policy", "retention.ms", "segment.ms")]


def alter(configs, validate_only=False, topic=None):
    def fn(s):
        n = topic(s) if topic else s.topic_t()
        err = s.alter_configs(n, configs, validate_only=validate_only)
        if topic:
            return err
        c = s.topic_configs(n)
        return err, [(k, c[k]["value"]) for k in configs if k in c]
    return fn


def incremental(ops, validate_only=False, initial=None, show=None, topic=None):
    def fn(s):
        n = topic(s) if topic else s.topic_t(configs=initial)
        keys = show or [k for k, _, _ in ops]
        rows = lambda c: [(k, c[k]["value"], c[k]["config_source"]) for k in keys if k in c]
        before = None if topic else rows(s.topic_configs(n))
        err = s.incremental_alter(2, n, ops, validate_only=validate_only)
        if topic:
            return err
        # Kafka applies the change through its metadata log: a describe right after the answer
        # may still show the old value, so wait (up to 2 s) for it to move.
        after = rows(s.topic_configs(n))
        deadline = time.monotonic() + 2
        while err == 0 and not validate_only and after == before and time.monotonic() < deadline:
            time.sleep(0.05)
            after = rows(s.topic_configs(n))
        return err, after
    return fn


CASES = value_cases() + row_cases() + [
    Case("describe-row/fjord-only", "DescribeConfigs rows Fjord has and Kafka does not",
         extra_rows, diff=D([], ["flush.policy"], "deliberate: Fjord's per-topic flush policy "
                             "(async/sync), no Kafka equivalent")),
    Case("describe/set-row", "DescribeConfigs row of a config set at creation",
         set_config_row, expect=("12345", SRC_DYNAMIC_TOPIC, False, False)),
    Case("describe/unknown-topic", "DescribeConfigs: unknown topic",
         lambda s: s.describe_configs(2, s.topic())[E], expect=3),
    Case("describe/invalid-topic-name", "DescribeConfigs: invalid topic name",
         lambda s: s.describe_configs(2, "bad/name")[E], expect=17),
    Case("describe/keys", "DescribeConfigs with configuration_keys", describe_keys(
        ["retention.ms", "cleanup.policy"]), expect=(0, ["cleanup.policy", "retention.ms"])),
    Case("describe/unknown-key", "DescribeConfigs with an unknown configuration key",
         describe_keys(["no.such.config"]), expect=(0, [])),
    Case("describe/synonyms", "DescribeConfigs include_synonyms", synonyms,
         expect=[("retention.ms", [("retention.ms", 1)]),
                 ("segment.bytes", [("log.segment.bytes", 5)])]),
    Case("describe/documentation", "DescribeConfigs include_documentation", documentation,
         expect=[True]),
    Case("describe/broker", "DescribeConfigs of broker 1: some well-known rows", broker_rows,
         expect=(0, {"message.max.bytes": ("1048588", 5), "log.retention.hours": ("168", 5),
                     "auto.create.topics.enable": ("true", 5)})),
    Case("describe/other-broker", "DescribeConfigs of broker 2 (not this broker)",
         lambda s: s.describe_configs(4, "2")[E], expect=42),
    Case("describe/broker-bad-name", "DescribeConfigs of broker 'abc'",
         lambda s: s.describe_configs(4, "abc")[E], expect=42),
    Case("describe/unknown-resource-type", "DescribeConfigs of resource type 99",
         lambda s: s.describe_configs(99, "x")[E], expect=42),
    Case("alter/ok", "AlterConfigs: set retention.ms", alter({"retention.ms": "5000"}),
         expect=(0, [("retention.ms", "5000")])),
    Case("alter/resets-others", "AlterConfigs replaces the whole set (others -> default)",
         legacy_alter_resets_others),
    Case("alter/unknown-config", "AlterConfigs: unknown config", alter({"no.such": "1"}),
         expect=(40, [])),
    Case("alter/invalid-value", "AlterConfigs: retention.ms=abc", alter({"retention.ms": "abc"}),
         expect=(40, [("retention.ms", "604800000")])),
    Case("alter/validate-only", "AlterConfigs validate_only: accepted, not applied",
         alter({"retention.ms": "5000"}, validate_only=True),
         expect=(0, [("retention.ms", "604800000")])),
    Case("alter/unknown-topic", "AlterConfigs: unknown topic",
         alter({"retention.ms": "5000"}, topic=lambda s: s.topic("missing")), expect=3),
    Case("incremental/set", "IncrementalAlterConfigs SET retention.ms",
         incremental([("retention.ms", 0, "7000")]),
         expect=(0, [("retention.ms", "7000", SRC_DYNAMIC_TOPIC)])),
    Case("incremental/set-keeps-others", "IncrementalAlterConfigs SET keeps other overrides",
         incremental([("retention.ms", 0, "7000")], initial={"segment.ms": "3600000"},
                     show=["segment.ms"]), expect=(0, [("segment.ms", "3600000", 1)])),
    Case("incremental/delete", "IncrementalAlterConfigs DELETE -> back to the default",
         incremental([("retention.ms", 1, None)], initial={"retention.ms": "9000"}),
         expect=(0, [("retention.ms", "604800000", SRC_DEFAULT)])),
    Case("incremental/append-list", "IncrementalAlterConfigs APPEND compact to cleanup.policy",
         incremental([("cleanup.policy", 2, "compact")]),
         expect=(0, [("cleanup.policy", "delete,compact", SRC_DYNAMIC_TOPIC)])),
    Case("incremental/subtract-list", "IncrementalAlterConfigs SUBTRACT delete from "
         "cleanup.policy=compact,delete", incremental([("cleanup.policy", 3, "delete")],
                                                      initial={"cleanup.policy": "compact,delete"}),
         expect=(0, [("cleanup.policy", "compact", SRC_DYNAMIC_TOPIC)])),
    Case("incremental/append-non-list", "IncrementalAlterConfigs APPEND to retention.ms",
         incremental([("retention.ms", 2, "5")])),
    Case("incremental/bad-op", "IncrementalAlterConfigs operation 7",
         incremental([("retention.ms", 7, "5")]),
         diff=D((-1, [("retention.ms", "604800000", SRC_DEFAULT)]),
                (40, [("retention.ms", "604800000", SRC_DEFAULT)]),
                "deliberate: Kafka fails with -1 UNKNOWN_SERVER_ERROR (an unhandled exception); "
                "Fjord refuses the operation with 40 INVALID_CONFIG; nothing is changed in "
                "either")),
    Case("incremental/unknown-config", "IncrementalAlterConfigs SET unknown config",
         incremental([("no.such", 0, "1")]), expect=(40, [])),
    Case("incremental/invalid-value", "IncrementalAlterConfigs SET cleanup.policy=bogus",
         incremental([("cleanup.policy", 0, "bogus")]),
         expect=(40, [("cleanup.policy", "delete", SRC_DEFAULT)])),
    Case("incremental/validate-only", "IncrementalAlterConfigs validate_only",
         incremental([("retention.ms", 0, "7000")], validate_only=True),
         expect=(0, [("retention.ms", "604800000", SRC_DEFAULT)])),
    Case("incremental/unknown-topic", "IncrementalAlterConfigs: unknown topic",
         incremental([("retention.ms", 0, "7000")], topic=lambda s: s.topic("missing")),
         expect=3),
]


@pytest.mark.parametrize("case", params(CASES, "configs"))
def test_configs(pair, case):
    check(pair, case)
