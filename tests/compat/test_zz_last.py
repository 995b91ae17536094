"""Cases that disturb the shared brokers: collected last (file name), so nothing runs after them."""

import pytest

from compat import Case, D, check, params
from test_topics import consumer_offsets
from test_transactions import restart_with_transactions

CASES = [
    Case("txn/restart", "transactions across a graceful restart: an open txn (records + "
         "pending offsets) after a committed and an aborted one; then a new producer with the "
         "open one's id", restart_with_transactions),
    Case("delete/consumer-offsets", "DeleteTopics: __consumer_offsets (internal topic)",
         lambda s: s.delete_topics([consumer_offsets(s)]),
         diff=D([0], [44], "deliberate: Fjord refuses to delete its internal offsets topic "
                "(44 POLICY_VIOLATION) instead of dropping every group's committed offsets; "
                "Kafka 4.4 deletes it")),
]


@pytest.mark.parametrize("case", params(CASES, "last"))
def test_last(pair, case):
    check(pair, case)
