#!/usr/bin/env python3
"""Writes docs/COMPATIBILITY.md from the case tables (tests/compat/test_*.py) and the answers
observed in the last full run (tests/compat/out/results.json, written by every pytest run).

    tests/compat/run && python3 tests/compat/gen_doc.py

Fails if a case has no observed answer (run the whole suite first).
"""

import importlib
import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(HERE))

import compat  # noqa: E402

MODULES = [("test_metadata", "ApiVersions, Metadata, DescribeCluster, malformed requests"),
           ("test_topics", "CreateTopics, DeleteTopics, CreatePartitions"),
           ("test_configs", "Topic configs: validation, DescribeConfigs rows, AlterConfigs, "
                            "IncrementalAlterConfigs"),
           ("test_records", "Produce, Fetch, ListOffsets, DeleteRecords, idempotence"),
           ("test_groups", "Consumer groups and committed offsets"),
           ("test_transactions", "Transactions: InitProducerId, AddPartitionsToTxn, transactional "
                                 "Produce, EndTxn, offsets in transactions, LSO, aborted lists, "
                                 "Describe/ListTransactions, DescribeProducers"),
           ("test_clients", "Through client libraries (confluent-kafka, kafka-python)"),
           ("test_zz_last", "Destructive cases (run last)")]

ERRORS = {
    -1: "UNKNOWN_SERVER_ERROR", 1: "OFFSET_OUT_OF_RANGE", 2: "CORRUPT_MESSAGE",
    3: "UNKNOWN_TOPIC_OR_PARTITION", 10: "MESSAGE_TOO_LARGE", 14: "COORDINATOR_LOAD_IN_PROGRESS",
    16: "NOT_COORDINATOR", 17: "INVALID_TOPIC_EXCEPTION", 21: "INVALID_REQUIRED_ACKS",
    22: "ILLEGAL_GENERATION", 23: "INCONSISTENT_GROUP_PROTOCOL", 24: "INVALID_GROUP_ID",
    25: "UNKNOWN_MEMBER_ID", 26: "INVALID_SESSION_TIMEOUT", 27: "REBALANCE_IN_PROGRESS",
    32: "INVALID_TIMESTAMP", 35: "UNSUPPORTED_VERSION", 36: "TOPIC_ALREADY_EXISTS",
    37: "INVALID_PARTITIONS", 38: "INVALID_REPLICATION_FACTOR", 39: "INVALID_REPLICA_ASSIGNMENT",
    40: "INVALID_CONFIG", 42: "INVALID_REQUEST", 44: "POLICY_VIOLATION",
    45: "OUT_OF_ORDER_SEQUENCE_NUMBER", 47: "INVALID_PRODUCER_EPOCH", 48: "INVALID_TXN_STATE",
    49: "INVALID_PRODUCER_ID_MAPPING", 50: "INVALID_TRANSACTION_TIMEOUT",
    51: "CONCURRENT_TRANSACTIONS", 53: "TRANSACTIONAL_ID_AUTHORIZATION_FAILED",
    29: "TOPIC_AUTHORIZATION_FAILED", 55: "OPERATION_NOT_ATTEMPTED", 59: "UNKNOWN_PRODUCER_ID",
    68: "NON_EMPTY_GROUP", 69: "GROUP_ID_NOT_FOUND", 79: "MEMBER_ID_REQUIRED",
    82: "FENCED_INSTANCE_ID", 87: "INVALID_RECORD", 88: "UNSTABLE_OFFSET_COMMIT",
    90: "PRODUCER_FENCED", 100: "UNKNOWN_TOPIC_ID", 105: "TRANSACTIONAL_ID_NOT_FOUND",
    114: "MISMATCHED_ENDPOINT_TYPE", 120: "TRANSACTION_ABORTABLE",
    128: "INVALID_REGULAR_EXPRESSION",
}

KIND = {"same": "same", "diff": "different (allowed)", "bug": "**different: FJORD BUG**",
        "gap": "**different: FJORD GAP**"}

HEADER = """\
# Compatibility with Apache Kafka 4.4.0

Fjord is compared with Apache Kafka 4.4.0 by **differential tests**: every scenario below runs
against a real single-node Kafka and against the real `fjord` binary, and what a client can
observe (error codes, offsets, field values, states) is compared. This file is generated from
the test tables and the answers observed in a run (`python3 tests/compat/gen_doc.py`); every
row is one test case.

## Running the comparison

```sh
SUITES=compat scripts/test-all       # as part of the whole suite (CI: bash .ci/run)
tests/compat/run                     # only this suite, against target/release/fjord
FJORD_BIN=path/to/fjord PYTEST_ARGS="-k records" tests/compat/run
python3 tests/compat/gen_doc.py      # regenerate this file from the last full run
```

`tests/compat/run` installs the pinned Python clients if missing (confluent-kafka 2.16.1,
kafka-python 3.0.12, pytest), resolves Kafka's jars, then runs
`python3 -m pytest -v -ra tests/compat`; it fails if no test was collected. One Kafka and one
Fjord are started per session (in parallel, about 10-15 s); the cases then take about 20 s.
Requests are encoded with kafka-python 3.0's protocol classes, which are generated from Kafka's
own JSON message schemas, and sent on raw sockets (`tests/compat/kw.py`), so every field of
every answer is visible; the same version of each API is sent to both brokers.

## The reference broker: `scripts/kafka-ref`

`scripts/kafka-ref` runs Apache Kafka the way users run it, without Docker:

* `scripts/kafka-ref classpath` resolves `org.apache.kafka:kafka_2.13:4.4.0`, `kafka-tools`
  (without Connect) and the log4j2 backend Kafka's distribution ships (log4j-slf4j-impl 2.25.5)
  with Maven (`scripts/kafka-ref.d/pom.xml`, `mvn dependency:build-classpath`) into `~/.m2`,
  and caches the classpath in `~/.cache/fjord/` (keyed by the pom's hash; re-resolved when a
  jar is missing). A download Maven Central refuses is reported with the artifact's coordinates.
* `scripts/kafka-ref start DIR [--port P] [--controller-port P] [--set key=value]` writes
  `DIR/server.properties` (KRaft, `process.roles=broker,controller`, `node.id=1`, free loopback
  ports, `log.dirs=DIR/data`, internal topics with replication factor 1,
  `group.initial.rebalance.delay.ms=0`) and a log4j2 config (logs in `DIR/logs/server.log`),
  formats the storage as the quickstart does (`kafka-storage format --standalone -t <id>`),
  starts `java -Xmx1G -Xms1G ... -cp CP kafka.Kafka DIR/server.properties` in the background,
  waits until a Metadata request lists the broker, writes `DIR/pid` and `DIR/bootstrap` and
  prints the bootstrap address. Starting again on the same DIR is a restart.
* `scripts/kafka-ref stop DIR` sends SIGTERM, waits (30 s), then SIGKILL.
* `scripts/kafka-ref run CLASS ARGS...` runs any Kafka class with that classpath, e.g.
  `org.apache.kafka.tools.ProducerPerformance`.

`tests/compat/kafka_ref.py` wraps it for Python (`KafkaRef().start()`, `.bootstrap`, `.stop()`,
`.log_tail()`), for these tests and for benchmarks.

## How to read the tables

* **same**: Fjord's answer equals Kafka's (and, where the table says so, a fixed expected value).
* **different (allowed)**: a deliberate or harmless difference; the test pins *both* answers, so
  it fails if either broker changes.
* **FJORD BUG** / **FJORD GAP**: a difference a client can trip over (gap: a missing feature).
  These tests are `xfail(strict=True)`: they pass while the bug is there and fail once it is
  fixed, so the table gets updated.

Error codes in the answers: {errors}.
"""


def fmt(v, limit=110):
    if isinstance(v, bytes):
        s = repr(v)
    elif isinstance(v, str) and v.startswith("EXC "):
        s = v
    else:
        s = repr(v)
    s = s.replace("|", "\\|").replace("\n", " ")
    if len(s) > limit:
        s = s[:limit - 3] + "..."
    return f"`{s}`" if s else ""


def main():
    res_path = HERE / "out" / "results.json"
    results = json.loads(res_path.read_text()) if res_path.exists() else {}
    sections = []
    counts = {"same": 0, "diff": 0, "bug": 0, "gap": 0}
    missing = []
    bugs = []
    for mod, title in MODULES:
        m = importlib.import_module(mod)
        rows = []
        for c in m.CASES:
            r = results.get(c.id)
            if r is None:
                missing.append(c.id)
                continue
            kind = c.kind()
            counts[kind] += 1
            why = c.bug or c.gap or (c.diff.why if c.diff else "")
            if kind in ("bug", "gap"):
                bugs.append((c, r))
            rows.append(f"| `{c.id}` | {c.what} | {fmt(r['kafka'])} | {fmt(r['fjord'])} | "
                        f"{KIND[kind]} | {why.replace('|', '/')} |")
        sections.append(f"## {title}\n\n| case | behaviour | Kafka 4.4.0 | Fjord | same? | "
                        f"why (deliberate?) |\n|---|---|---|---|---|---|\n" + "\n".join(rows))
    if missing:
        sys.exit(f"no observed answer for {len(missing)} cases (run the whole suite first): "
                 + ", ".join(missing[:10]))
    total = sum(counts.values())
    errors = ", ".join(f"{k} {v}" for k, v in sorted(ERRORS.items()))
    summary = (f"## Summary\n\n{total} compared behaviours: **{counts['same']} same**, "
               f"{counts['diff']} allowed differences, **{counts['bug']} Fjord bugs**, "
               f"**{counts['gap']} Fjord gaps**.\n\n")
    if bugs:
        summary += "Open bugs and gaps:\n\n" + "\n".join(
            f"* `{c.id}` ({c.what}): {c.bug or c.gap}" for c, _ in bugs) + "\n"
    out = HEADER.format(errors=errors) + "\n" + summary + "\n" + "\n\n".join(sections) + "\n"
    (REPO / "docs" / "COMPATIBILITY.md").write_text(out)
    print(f"docs/COMPATIBILITY.md: {total} cases ({counts})")


if __name__ == "__main__":
    main()
