"""Cases that disturb the shared brokers: collected last (file name), so nothing runs after them."""

import pytest

from compat import Case, D, check, params
from test_topics import consumer_offsets

CASES = [
    Case("delete/consumer-offsets", "DeleteTopics: __consumer_offsets (internal topic)",
         lambda s: s.delete_topics([consumer_offsets(s)]),
         diff=D([0], [44], "deliberate: Fjord refuses to delete its internal offsets topic "
                "(44 POLICY_VIOLATION) instead of dropping every group's committed offsets; "
                "Kafka 4.4 deletes it")),
]


@pytest.mark.parametrize("case", params(CASES, "last"))
def test_last(pair, case):
    check(pair, case)
