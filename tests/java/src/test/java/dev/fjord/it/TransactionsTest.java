package dev.fjord.it;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.time.Duration;
import java.util.ArrayList;
import java.util.Collection;
import java.util.Comparator;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.stream.Collectors;
import org.apache.kafka.clients.admin.AbortTransactionSpec;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.ListConsumerGroupOffsetsOptions;
import org.apache.kafka.clients.admin.ListConsumerGroupOffsetsSpec;
import org.apache.kafka.clients.admin.ListOffsetsOptions;
import org.apache.kafka.clients.admin.ListTransactionsOptions;
import org.apache.kafka.clients.admin.OffsetSpec;
import org.apache.kafka.clients.admin.ProducerState;
import org.apache.kafka.clients.admin.TransactionDescription;
import org.apache.kafka.clients.admin.TransactionListing;
import org.apache.kafka.clients.admin.TransactionState;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.IsolationLevel;
import org.apache.kafka.common.KafkaException;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.errors.ProducerFencedException;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;

/**
 * Kafka transactions through the Java client (kafka-clients 4.4.0, transaction version 1):
 * commit/abort across partitions and what read_committed / read_uncommitted consumers see, the
 * last stable offset, fencing, offsets committed inside a transaction, the timeout abort, the
 * transaction Admin APIs and the kafka-transactions tool. Every expectation is Apache Kafka
 * 4.4.0's (run --kafka).
 */
class TransactionsTest {
    // the timeout sweep every 200 ms (Kafka: transaction.abort.timed.out.transaction.cleanup.interval.ms=500 in run --kafka)
    @RegisterExtension
    static BrokerExtension broker = new BrokerExtension(FjordBroker.flagIfSupported("--transaction-abort-interval-ms", "200"));

    private static final Duration WAIT = Duration.ofSeconds(30);

    private String bs() {
        return broker.bootstrap();
    }

    private KafkaProducer<String, String> txProducer(String transactionalId, Object... kv) {
        Object[] all = new Object[kv.length + 2];
        all[0] = ProducerConfig.TRANSACTIONAL_ID_CONFIG;
        all[1] = transactionalId;
        System.arraycopy(kv, 0, all, 2, kv.length);
        KafkaProducer<String, String> p = K.producer(bs(), all);
        try {
            p.initTransactions();
        } catch (RuntimeException e) {
            p.close(Duration.ZERO);
            throw e;
        }
        return p;
    }

    private static RecordMetadata send(KafkaProducer<String, String> p, String topic, int partition, String value) throws Exception {
        return p.send(new ProducerRecord<>(topic, partition, "k", value)).get(30, TimeUnit.SECONDS);
    }

    private static List<TopicPartition> tps(String topic, int n) {
        List<TopicPartition> tps = new ArrayList<>();
        for (int i = 0; i < n; i++) {
            tps.add(new TopicPartition(topic, i));
        }
        return tps;
    }

    /**
     * Everything a consumer with this isolation level can read from the beginning: polls until its
     * position reaches the end offsets it was told (the LSO for read_committed), in offset order per partition.
     */
    private List<ConsumerRecord<String, String>> readToEnd(Collection<TopicPartition> tps, String isolation) {
        if (isolation.equals("read_committed")) {
            K.awaitNoOpenTransaction(bs(), tps, WAIT); // (Kafka writes the markers after EndTxn answers)
        }
        try (KafkaConsumer<String, String> c = K.consumer(bs(), ConsumerConfig.ISOLATION_LEVEL_CONFIG, isolation)) {
            c.assign(tps);
            c.seekToBeginning(tps);
            Map<TopicPartition, Long> end = c.endOffsets(tps);
            List<ConsumerRecord<String, String>> out = new ArrayList<>();
            long deadline = System.nanoTime() + WAIT.toNanos();
            while (!tps.stream().allMatch(tp -> c.position(tp) >= end.get(tp))) {
                if (System.nanoTime() > deadline) {
                    throw new AssertionError(isolation + ": positions " + tps.stream().collect(Collectors.toMap(tp -> tp, c::position))
                            + " did not reach " + end + "; read " + out);
                }
                c.poll(Duration.ofMillis(200)).forEach(out::add);
            }
            return out;
        }
    }

    private static List<String> values(List<ConsumerRecord<String, String>> rs) {
        return rs.stream().map(ConsumerRecord::value).collect(Collectors.toList());
    }

    private static Set<String> valueSet(List<ConsumerRecord<String, String>> rs) {
        return rs.stream().map(ConsumerRecord::value).collect(Collectors.toSet());
    }

    private long offset(Admin a, TopicPartition tp, OffsetSpec spec, IsolationLevel iso) throws Exception {
        return a.listOffsets(Map.of(tp, spec), new ListOffsetsOptions(iso)).partitionResult(tp).get(30, TimeUnit.SECONDS).offset();
    }

    /** The cluster's finalized transaction.version (Fjord: 1, not advertised; Kafka 4.4: 2 unless downgraded). */
    static int transactionVersion(Admin a) {
        try {
            var f = a.describeFeatures().featureMetadata().get(30, TimeUnit.SECONDS).finalizedFeatures().get("transaction.version");
            return f == null ? 1 : Math.max(1, f.maxVersionLevel());
        } catch (Exception e) {
            return 1;
        }
    }

    private long lso(Admin a, TopicPartition tp) throws Exception {
        return offset(a, tp, OffsetSpec.latest(), IsolationLevel.READ_COMMITTED);
    }

    private long hw(Admin a, TopicPartition tp) throws Exception {
        return offset(a, tp, OffsetSpec.latest(), IsolationLevel.READ_UNCOMMITTED);
    }

    @Test
    void commitAndAbortAcrossPartitions() throws Exception {
        String topic = K.topic("txn-multi");
        try (Admin a = broker.get().admin()) {
            K.createTopic(a, topic, 3);
        }
        List<TopicPartition> tps = tps(topic, 3);
        try (KafkaProducer<String, String> p = txProducer("tx-" + topic)) {
            p.beginTransaction();
            for (int part = 0; part < 3; part++) {
                for (int i = 0; i < 3; i++) {
                    p.send(new ProducerRecord<>(topic, part, "k", "c" + part + "-" + i));
                }
            }
            p.commitTransaction();
            p.beginTransaction();
            for (int part = 0; part < 3; part++) {
                for (int i = 0; i < 2; i++) {
                    p.send(new ProducerRecord<>(topic, part, "k", "a" + part + "-" + i));
                }
            }
            p.flush();
            p.abortTransaction();
            // and one more committed after the abort
            p.beginTransaction();
            p.send(new ProducerRecord<>(topic, 1, "k", "c1-last"));
            p.commitTransaction();
        }
        List<ConsumerRecord<String, String>> committed = readToEnd(tps, "read_committed");
        Set<String> want = new java.util.HashSet<>();
        for (int part = 0; part < 3; part++) {
            for (int i = 0; i < 3; i++) {
                want.add("c" + part + "-" + i);
            }
        }
        want.add("c1-last");
        assertEquals(10, committed.size(), "read_committed: " + values(committed));
        assertEquals(want, valueSet(committed));
        for (ConsumerRecord<String, String> r : committed) {
            assertTrue(r.value().startsWith("c" + r.partition()), "partition " + r.partition() + ": " + r.value());
        }

        List<ConsumerRecord<String, String>> all = readToEnd(tps, "read_uncommitted");
        assertEquals(16, all.size(), "read_uncommitted sees the aborted records too: " + values(all));
        assertTrue(valueSet(all).containsAll(want));
        assertTrue(valueSet(all).containsAll(Set.of("a0-0", "a0-1", "a1-0", "a1-1", "a2-0", "a2-1")), values(all).toString());

        // control records take offsets: 3 + COMMIT + 2 + ABORT (+ 1 + COMMIT on partition 1)
        try (Admin a = broker.get().admin()) {
            assertEquals(7, hw(a, tps.get(0)));
            assertEquals(9, hw(a, tps.get(1)));
            assertEquals(7, hw(a, tps.get(2)));
            for (TopicPartition tp : tps) {
                assertEquals(hw(a, tp), lso(a, tp), "no open transaction: LSO = high watermark on " + tp);
            }
        }
        // the aborted records sit at offsets 4 and 5 of partition 0 (after 3 records + the commit marker)
        List<Long> abortedOffsets = all.stream().filter(r -> r.partition() == 0 && r.value().startsWith("a"))
                .map(ConsumerRecord::offset).collect(Collectors.toList());
        assertEquals(List.of(4L, 5L), abortedOffsets);
    }

    @Test
    void interleavedPlainTransactionalAndAborted() throws Exception {
        String topic = K.topic("txn-interleave");
        try (Admin a = broker.get().admin()) {
            K.createTopic(a, topic, 1);
        }
        TopicPartition tp = new TopicPartition(topic, 0);
        Map<String, Long> at = new HashMap<>();
        try (KafkaProducer<String, String> plain = K.producer(bs());
             KafkaProducer<String, String> tx = txProducer("tx-" + topic)) {
            at.put("p0", send(plain, topic, 0, "p0").offset());
            tx.beginTransaction();
            at.put("t0", send(tx, topic, 0, "t0").offset());
            at.put("p1", send(plain, topic, 0, "p1").offset());
            at.put("t1", send(tx, topic, 0, "t1").offset());
            tx.commitTransaction();
            tx.beginTransaction();
            at.put("a0", send(tx, topic, 0, "a0").offset());
            at.put("p2", send(plain, topic, 0, "p2").offset());
            at.put("a1", send(tx, topic, 0, "a1").offset());
            tx.abortTransaction();
            at.put("p3", send(plain, topic, 0, "p3").offset());
        }
        List<ConsumerRecord<String, String>> rc = readToEnd(List.of(tp), "read_committed");
        assertEquals(List.of("p0", "t0", "p1", "t1", "p2", "p3"), values(rc), "read_committed in offset order");
        for (ConsumerRecord<String, String> r : rc) {
            assertEquals(at.get(r.value()), r.offset(), r.value() + " read at the offset its send returned");
        }
        List<ConsumerRecord<String, String>> ru = readToEnd(List.of(tp), "read_uncommitted");
        assertEquals(List.of("p0", "t0", "p1", "t1", "a0", "p2", "a1", "p3"), values(ru), "read_uncommitted in offset order");
        // p0 t0 p1 t1 COMMIT a0 p2 a1 ABORT p3
        assertEquals(List.of(0L, 1L, 2L, 3L, 5L, 6L, 7L, 9L), ru.stream().map(ConsumerRecord::offset).collect(Collectors.toList()));
    }

    @Test
    void twoTransactionalProducersInterleavedReadWithSmallFetchesAndFromInsideAnAbort() throws Exception {
        // Two transactional producers and a plain one interleave record by record on one partition; each round
        // one of them commits and the other aborts. Read with tiny fetches (a couple of batches each: the
        // aborted-transactions list of every Fetch must cover exactly its range) and from offsets inside an
        // aborted transaction (the abort began before the fetch offset and must still be filtered).
        String topic = K.topic("txn-two");
        TopicPartition tp = new TopicPartition(topic, 0);
        try (Admin a = broker.get().admin()) {
            K.createTopic(a, topic, 1);
        }
        List<String> expected = new ArrayList<>();
        Map<String, Long> at = new HashMap<>();
        List<Long> insideAborts = new ArrayList<>();
        try (KafkaProducer<String, String> pa = txProducer("tx-a-" + topic, ProducerConfig.COMPRESSION_TYPE_CONFIG, "lz4");
             KafkaProducer<String, String> pb = txProducer("tx-b-" + topic);
             KafkaProducer<String, String> plain = K.producer(bs())) {
            for (int r = 0; r < 8; r++) {
                pa.beginTransaction();
                pb.beginTransaction();
                List<String> aVals = new ArrayList<>();
                List<String> bVals = new ArrayList<>();
                for (int j = 0; j < 4; j++) {
                    String va = "A" + r + "-" + j;
                    String vb = "B" + r + "-" + j;
                    at.put(va, send(pa, topic, 0, va).offset());
                    at.put(vb, send(pb, topic, 0, vb).offset());
                    aVals.add(va);
                    bVals.add(vb);
                    if (j == 1) {
                        String vp = "P" + r;
                        at.put(vp, send(plain, topic, 0, vp).offset());
                    }
                }
                boolean aCommits = r % 2 == 0;
                if (aCommits) {
                    pa.commitTransaction();
                    pb.abortTransaction();
                } else {
                    pb.commitTransaction();
                    pa.abortTransaction();
                }
                expected.addAll(aCommits ? aVals : bVals);
                expected.add("P" + r);
                insideAborts.add(at.get((aCommits ? "B" : "A") + r + "-2"));
            }
        }
        expected.sort(Comparator.comparing(at::get));
        List<String> order = new ArrayList<>(at.keySet());
        order.sort(Comparator.comparing(at::get));

        Object[] tiny = {ConsumerConfig.MAX_PARTITION_FETCH_BYTES_CONFIG, 256, ConsumerConfig.FETCH_MAX_BYTES_CONFIG, 256,
            ConsumerConfig.MAX_POLL_RECORDS_CONFIG, 3};
        assertEquals(expected, values(readFrom(tp, 0, "read_committed", tiny)), "read_committed with tiny fetches");
        assertEquals(order, values(readFrom(tp, 0, "read_uncommitted", tiny)), "read_uncommitted with tiny fetches");
        for (long start : List.of(insideAborts.get(0), insideAborts.get(3), insideAborts.get(6))) {
            List<String> want = expected.stream().filter(v -> at.get(v) >= start).collect(Collectors.toList());
            assertEquals(want, values(readFrom(tp, start, "read_committed", tiny)), "read_committed from offset " + start
                    + " inside an aborted transaction (tiny fetches)");
            assertEquals(want, values(readFrom(tp, start, "read_committed")), "read_committed from offset " + start);
        }
    }

    private List<ConsumerRecord<String, String>> readFrom(TopicPartition tp, long start, String isolation, Object... kv) {
        if (isolation.equals("read_committed")) {
            K.awaitNoOpenTransaction(bs(), List.of(tp), WAIT);
        }
        Object[] all = new Object[kv.length + 2];
        all[0] = ConsumerConfig.ISOLATION_LEVEL_CONFIG;
        all[1] = isolation;
        System.arraycopy(kv, 0, all, 2, kv.length);
        try (KafkaConsumer<String, String> c = K.consumer(bs(), all)) {
            c.assign(List.of(tp));
            c.seek(tp, start);
            long end = c.endOffsets(List.of(tp)).get(tp);
            List<ConsumerRecord<String, String>> out = new ArrayList<>();
            long deadline = System.nanoTime() + WAIT.toNanos();
            while (c.position(tp) < end) {
                if (System.nanoTime() > deadline) {
                    throw new AssertionError(isolation + " from " + start + ": position " + c.position(tp) + " < " + end + "; read " + values(out));
                }
                c.poll(Duration.ofMillis(200)).forEach(out::add);
            }
            return out;
        }
    }

    @Test
    void abortedTransactionSpanningSegments() throws Exception {
        // segment.bytes = 1 MiB and a 2.5 MB aborted transaction: the abort covers three segments; read_committed
        // from the start and from the second segment (the transaction began in the first) drops all of it
        String topic = K.topic("txn-segments");
        TopicPartition tp = new TopicPartition(topic, 0);
        try (Admin a = broker.get().admin()) {
            a.createTopics(List.of(new org.apache.kafka.clients.admin.NewTopic(topic, 1, (short) 1)
                    .configs(Map.of("segment.bytes", "1048576")))).all().get(30, TimeUnit.SECONDS);
            K.awaitTopic(a, topic, 1);
        }
        String big = "x".repeat(1000);
        long firstAborted;
        long midAborted;
        try (KafkaProducer<String, String> plain = K.producer(bs());
             KafkaProducer<String, String> tx = txProducer("tx-" + topic, ProducerConfig.LINGER_MS_CONFIG, 5)) {
            send(plain, topic, 0, "p-before");
            tx.beginTransaction();
            firstAborted = send(tx, topic, 0, "a-0-" + big).offset();
            List<java.util.concurrent.Future<RecordMetadata>> fs = new ArrayList<>();
            for (int i = 1; i < 2500; i++) {
                fs.add(tx.send(new ProducerRecord<>(topic, 0, "k", "a-" + i + "-" + big)));
            }
            tx.flush();
            midAborted = fs.get(1500).get().offset();
            send(plain, topic, 0, "p-during");
            tx.abortTransaction();
            tx.beginTransaction();
            send(tx, topic, 0, "c-after");
            tx.commitTransaction();
            send(plain, topic, 0, "p-after");
        }
        assertEquals(1, firstAborted);
        if (broker.get().dataDir() != null) {
            try (var files = java.nio.file.Files.list(broker.get().dataDir().resolve(topic + "-0"))) {
                long segments = files.filter(f -> f.toString().endsWith(".log")).count();
                assertTrue(segments >= 3, segments + " segments");
            }
        }
        assertEquals(List.of("p-before", "p-during", "c-after", "p-after"), values(readToEnd(List.of(tp), "read_committed")));
        List<String> fromMid = values(readFrom(tp, midAborted, "read_committed"));
        assertEquals(List.of("p-during", "c-after", "p-after"), fromMid);
        assertEquals(2504, readToEnd(List.of(tp), "read_uncommitted").size());
    }

    @Test
    void openTransactionHoldsTheLastStableOffset() throws Exception {
        String topic = K.topic("txn-lso");
        TopicPartition tp = new TopicPartition(topic, 0);
        try (Admin a = broker.get().admin();
             KafkaProducer<String, String> plain = K.producer(bs());
             KafkaProducer<String, String> tx = txProducer("tx-" + topic)) {
            K.createTopic(a, topic, 1);
            assertEquals(0, send(plain, topic, 0, "before").offset());
            tx.beginTransaction();
            assertEquals(1, send(tx, topic, 0, "open").offset());
            assertEquals(2, send(plain, topic, 0, "after").offset());

            assertEquals(1, lso(a, tp), "Admin listOffsets(READ_COMMITTED) = the LSO = the open transaction's first offset");
            assertEquals(3, hw(a, tp), "Admin listOffsets(READ_UNCOMMITTED) = the high watermark");

            try (KafkaConsumer<String, String> rc = K.consumer(bs(), ConsumerConfig.ISOLATION_LEVEL_CONFIG, "read_committed");
                 KafkaConsumer<String, String> ru = K.consumer(bs())) {
                rc.assign(List.of(tp));
                rc.seekToBeginning(List.of(tp));
                ru.assign(List.of(tp));
                ru.seekToBeginning(List.of(tp));
                assertEquals(Map.of(tp, 1L), rc.endOffsets(List.of(tp)), "read_committed endOffsets = LSO");
                assertEquals(Map.of(tp, 3L), ru.endOffsets(List.of(tp)), "read_uncommitted endOffsets = high watermark");

                assertEquals(List.of("before", "open", "after"), values(K.pollN(ru, 3, WAIT)));
                List<ConsumerRecord<String, String>> got = K.pollN(rc, 1, WAIT);
                // the open transaction stops the read_committed consumer: nothing past the LSO, also not the
                // committed-by-itself record "after" (there is no way to wait for an absence but to look a while)
                long until = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(1500);
                while (System.nanoTime() < until) {
                    rc.poll(Duration.ofMillis(100)).forEach(got::add);
                }
                assertEquals(List.of("before"), values(got), "read_committed stops at the LSO");
                assertEquals(1, rc.position(tp));

                tx.commitTransaction();
                K.waitUntil("LSO past the commit marker", WAIT, () -> {
                    try {
                        return lso(a, tp) == 4;
                    } catch (Exception e) {
                        throw new RuntimeException(e);
                    }
                });
                got.addAll(K.pollN(rc, 2, WAIT));
                assertEquals(List.of("before", "open", "after"), values(got));
                assertEquals(List.of(0L, 1L, 2L), got.stream().map(ConsumerRecord::offset).collect(Collectors.toList()));
                assertEquals(Map.of(tp, 4L), rc.endOffsets(List.of(tp)));
                assertEquals(4, hw(a, tp));
            }
        }
    }

    @Test
    void listOffsetsByTimestampStopsAtTheLso() throws Exception {
        // Kafka answers a timestamp lookup (and max-timestamp) under READ_COMMITTED only with an offset below the LSO
        String topic = K.topic("txn-ts");
        TopicPartition tp = new TopicPartition(topic, 0);
        try (Admin a = broker.get().admin();
             KafkaProducer<String, String> plain = K.producer(bs());
             KafkaProducer<String, String> tx = txProducer("tx-" + topic)) {
            K.createTopic(a, topic, 1);
            long base = System.currentTimeMillis() - 60_000;
            plain.send(new ProducerRecord<>(topic, 0, base, "k", "plain")).get(30, TimeUnit.SECONDS);
            tx.beginTransaction();
            tx.send(new ProducerRecord<>(topic, 0, base + 1000, "k", "open")).get(30, TimeUnit.SECONDS);
            OffsetSpec at = OffsetSpec.forTimestamp(base + 500);
            assertEquals(1, offset(a, tp, at, IsolationLevel.READ_UNCOMMITTED));
            assertEquals(-1, offset(a, tp, at, IsolationLevel.READ_COMMITTED), "the offset found is not below the LSO");
            assertEquals(0, offset(a, tp, OffsetSpec.forTimestamp(base - 1), IsolationLevel.READ_COMMITTED));
            assertEquals(0, offset(a, tp, OffsetSpec.earliest(), IsolationLevel.READ_COMMITTED));
            assertEquals(1, offset(a, tp, OffsetSpec.maxTimestamp(), IsolationLevel.READ_UNCOMMITTED));
            assertEquals(-1, offset(a, tp, OffsetSpec.maxTimestamp(), IsolationLevel.READ_COMMITTED),
                    "the max-timestamp record is past the LSO");
            try (KafkaConsumer<String, String> rc = K.consumer(bs(), ConsumerConfig.ISOLATION_LEVEL_CONFIG, "read_committed")) {
                var found = rc.offsetsForTimes(Map.of(tp, base + 500));
                assertNull(found.get(tp), "read_committed offsetsForTimes: " + found);
            }
            tx.commitTransaction();
            K.waitUntil("LSO after the commit", WAIT, () -> {
                try {
                    return lso(a, tp) == 3;
                } catch (Exception e) {
                    throw new RuntimeException(e);
                }
            });
            assertEquals(1, offset(a, tp, at, IsolationLevel.READ_COMMITTED));
            // the COMMIT marker (offset 2) carries the coordinator's clock, later than both records
            assertEquals(2, offset(a, tp, OffsetSpec.maxTimestamp(), IsolationLevel.READ_COMMITTED));
        }
    }

    @Test
    void commitWakesALongPollingReadCommittedConsumer() throws Exception {
        // a read_committed fetch parked in the broker (fetch.max.wait.ms=5000) returns when the commit marker
        // moves the LSO, not when its wait runs out
        String topic = K.topic("txn-wake");
        TopicPartition tp = new TopicPartition(topic, 0);
        try (Admin a = broker.get().admin();
             KafkaProducer<String, String> tx = txProducer("tx-" + topic);
             KafkaConsumer<String, String> rc = K.consumer(bs(), ConsumerConfig.ISOLATION_LEVEL_CONFIG, "read_committed",
                     ConsumerConfig.FETCH_MAX_WAIT_MS_CONFIG, 5000, ConsumerConfig.FETCH_MIN_BYTES_CONFIG, 1,
                     ConsumerConfig.REQUEST_TIMEOUT_MS_CONFIG, 30000)) {
            K.createTopic(a, topic, 1);
            rc.assign(List.of(tp));
            rc.seekToBeginning(List.of(tp));
            tx.beginTransaction();
            send(tx, topic, 0, "held");
            // let the consumer park a fetch (it has nothing below the LSO)
            assertTrue(rc.poll(Duration.ofMillis(1500)).isEmpty());
            long t = System.nanoTime();
            tx.commitTransaction();
            List<ConsumerRecord<String, String>> got = K.pollN(rc, 1, Duration.ofSeconds(20));
            long ms = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - t);
            assertEquals(List.of("held"), values(got));
            System.err.println("commitWakesALongPollingReadCommittedConsumer: the record arrived " + ms + " ms after the commit");
            assertTrue(ms < 3000, "the committed record came only after " + ms + " ms (the parked fetch was not woken)");
            rc.close(Duration.ZERO); // (not waiting for the next parked fetch)
        }
    }

    @Test
    void offsetsOnlyTransactionsForTwoGroups() throws Exception {
        // a transaction with no records, only offsets, for two groups (two AddOffsetsToTxn): commit, then abort
        String in = K.topic("txn-offonly");
        String g1 = K.group("txn-offonly-1");
        String g2 = K.group("txn-offonly-2");
        TopicPartition tp = new TopicPartition(in, 0);
        try (Admin a = broker.get().admin();
             KafkaProducer<String, String> p = txProducer("tx-" + in)) {
            K.createTopic(a, in, 1);
            K.produce(bs(), in, 0, 5);
            p.beginTransaction();
            p.sendOffsetsToTransaction(Map.of(tp, new OffsetAndMetadata(2)), new org.apache.kafka.clients.consumer.ConsumerGroupMetadata(g1));
            p.sendOffsetsToTransaction(Map.of(tp, new OffsetAndMetadata(4)), new org.apache.kafka.clients.consumer.ConsumerGroupMetadata(g2));
            assertEquals(-1, groupOffset(a, g1, tp));
            p.commitTransaction();
            K.waitUntil("both groups' offsets", WAIT, () -> groupOffsetUnchecked(a, g1, tp) == 2 && groupOffsetUnchecked(a, g2, tp) == 4);
            assertEquals(5, hw(a, tp), "no marker in the data topic: it was not in the transaction");

            p.beginTransaction();
            p.sendOffsetsToTransaction(Map.of(tp, new OffsetAndMetadata(5)), new org.apache.kafka.clients.consumer.ConsumerGroupMetadata(g1));
            p.abortTransaction();
            assertEquals(2, groupOffset(a, g1, tp));
            assertEquals(2, stableOffsets(a, g1, tp).get(tp).offset(), "nothing pending after the abort");
        }
    }

    @Test
    void largeTransactionWithManyInFlightBatches() throws Exception {
        // 6000 small batches' worth of records over 3 partitions, 5 in flight, lz4, then abort + commit
        String topic = K.topic("txn-large");
        List<TopicPartition> tps = tps(topic, 3);
        try (Admin a = broker.get().admin()) {
            K.createTopic(a, topic, 3);
        }
        try (KafkaProducer<String, String> p = txProducer("tx-" + topic, ProducerConfig.BATCH_SIZE_CONFIG, 512,
                ProducerConfig.LINGER_MS_CONFIG, 0, ProducerConfig.COMPRESSION_TYPE_CONFIG, "lz4",
                ProducerConfig.MAX_IN_FLIGHT_REQUESTS_PER_CONNECTION, 5)) {
            p.beginTransaction();
            for (int i = 0; i < 3000; i++) {
                p.send(new ProducerRecord<>(topic, i % 3, "k" + i, "aborted-" + i));
            }
            p.flush(); // (abortTransaction drops the batches not sent yet)
            p.abortTransaction();
            p.beginTransaction();
            for (int i = 0; i < 3000; i++) {
                p.send(new ProducerRecord<>(topic, i % 3, "k" + i, "v-" + i));
            }
            p.commitTransaction();
        }
        List<ConsumerRecord<String, String>> rc = readToEnd(tps, "read_committed");
        assertEquals(3000, rc.size());
        assertEquals(3000, valueSet(rc).size());
        assertTrue(rc.stream().allMatch(r -> r.value().startsWith("v-")));
        for (TopicPartition tp : tps) {
            List<Integer> seq = rc.stream().filter(r -> r.partition() == tp.partition())
                    .map(r -> Integer.parseInt(r.value().substring(2))).collect(Collectors.toList());
            List<Integer> sorted = new ArrayList<>(seq);
            sorted.sort(Comparator.naturalOrder());
            assertEquals(sorted, seq, "in send order on " + tp);
        }
        assertEquals(6000, readToEnd(tps, "read_uncommitted").size());
    }

    @Test
    void transactionTimeoutAboveTheBrokerMaximumIsRefused() {
        // transaction.max.timeout.ms defaults to 15 minutes: InitProducerId answers INVALID_TRANSACTION_TIMEOUT
        try (KafkaProducer<String, String> p = K.producer(bs(), ProducerConfig.TRANSACTIONAL_ID_CONFIG, K.topic("tx-big-timeout"),
                ProducerConfig.TRANSACTION_TIMEOUT_CONFIG, 900_001)) {
            KafkaException e = assertThrows(KafkaException.class, p::initTransactions);
            // (the client wraps the error: "Unexpected error in InitProducerIdResponse; <INVALID_TRANSACTION_TIMEOUT's message>")
            assertTrue(e.getMessage().contains("The transaction timeout is larger than the maximum value allowed by the broker"), e.toString());
        }
    }

    @Test
    void sendOffsetsWithAStaleGenerationFailsAndTheTransactionCanBeAborted() throws Exception {
        // TxnOffsetCommit v3 carries the member id and generation: a stale one is ILLEGAL_GENERATION /
        // UNKNOWN_MEMBER_ID -> CommitFailedException, an abortable error
        String in = K.topic("txn-stale");
        String group = K.group("txn-stale");
        TopicPartition tp = new TopicPartition(in, 0);
        try (Admin a = broker.get().admin();
             KafkaConsumer<String, String> c = K.consumer(bs(), ConsumerConfig.GROUP_ID_CONFIG, group);
             KafkaProducer<String, String> p = txProducer("tx-" + in)) {
            K.createTopic(a, in, 1);
            K.produce(bs(), in, 0, 3);
            c.subscribe(List.of(in));
            K.pollN(c, 3, WAIT);
            var real = c.groupMetadata();
            var stale = new org.apache.kafka.clients.consumer.ConsumerGroupMetadata(group, real.generationId() + 5,
                    real.memberId(), real.groupInstanceId());
            p.beginTransaction();
            send(p, in, 0, "out");
            KafkaException e = assertThrows(KafkaException.class,
                    () -> p.sendOffsetsToTransaction(Map.of(tp, new OffsetAndMetadata(3)), stale));
            assertInstanceOf(org.apache.kafka.clients.consumer.CommitFailedException.class, e, e.toString());
            p.abortTransaction();
            assertEquals(-1, groupOffset(a, group, tp));
            // the producer is still usable, with the real metadata
            p.beginTransaction();
            p.sendOffsetsToTransaction(Map.of(tp, new OffsetAndMetadata(3)), c.groupMetadata());
            p.commitTransaction();
            K.waitUntil("the offset committed", WAIT, () -> groupOffsetUnchecked(a, group, tp) == 3);
        }
        assertEquals(List.of("v0", "v1", "v2"), values(readToEnd(List.of(tp), "read_committed")));
    }

    @Test
    void pendingTransactionalOffsetsBlockARequireStableFetch() throws Exception {
        // a read_committed consumer's committed() asks with require_stable: while the offsets are pending it
        // gets UNSTABLE_OFFSET_COMMIT, retries, and times out; after the commit it reads them
        String in = K.topic("txn-unstable");
        String group = K.group("txn-unstable");
        TopicPartition tp = new TopicPartition(in, 0);
        try (Admin a = broker.get().admin();
             KafkaProducer<String, String> p = txProducer("tx-" + in);
             KafkaConsumer<String, String> c = K.consumer(bs(), ConsumerConfig.GROUP_ID_CONFIG, group,
                     ConsumerConfig.ISOLATION_LEVEL_CONFIG, "read_committed")) {
            K.createTopic(a, in, 1);
            K.produce(bs(), in, 0, 6);
            p.beginTransaction();
            p.sendOffsetsToTransaction(Map.of(tp, new OffsetAndMetadata(4)), new org.apache.kafka.clients.consumer.ConsumerGroupMetadata(group));
            assertThrows(org.apache.kafka.common.errors.TimeoutException.class, () -> c.committed(Set.of(tp), Duration.ofSeconds(2)));
            p.commitTransaction();
            K.waitUntil("committed() = 4", WAIT, () -> {
                var m = c.committed(Set.of(tp), Duration.ofSeconds(5));
                return m.get(tp) != null && m.get(tp).offset() == 4;
            });
            // and a member of the group starts from there
            c.subscribe(List.of(in));
            List<ConsumerRecord<String, String>> got = K.pollN(c, 2, WAIT);
            assertEquals(List.of("v4", "v5"), values(got));
        }
    }

    @Test
    void manyShortTransactionsBackToBack() throws Exception {
        // 60 transactions on one transactional id without a pause (the next AddPartitionsToTxn can meet the last
        // one's markers still being written: CONCURRENT_TRANSACTIONS, retried by the client)
        String topic = K.topic("txn-many");
        List<TopicPartition> tps = tps(topic, 2);
        try (Admin a = broker.get().admin()) {
            K.createTopic(a, topic, 2);
        }
        List<String> want = new ArrayList<>();
        try (KafkaProducer<String, String> p = txProducer("tx-" + topic)) {
            for (int t = 0; t < 60; t++) {
                p.beginTransaction();
                p.send(new ProducerRecord<>(topic, t % 2, "k", "t" + t + "-a"));
                p.send(new ProducerRecord<>(topic, (t + 1) % 2, "k", "t" + t + "-b"));
                if (t % 3 == 2) {
                    p.flush();
                    p.abortTransaction();
                } else {
                    p.commitTransaction();
                    want.add("t" + t + "-a");
                    want.add("t" + t + "-b");
                }
            }
        }
        List<ConsumerRecord<String, String>> rc = readToEnd(tps, "read_committed");
        assertEquals(new java.util.TreeSet<>(want), new java.util.TreeSet<>(values(rc)));
        assertEquals(want.size(), rc.size());
        assertEquals(120, readToEnd(tps, "read_uncommitted").size());
        try (Admin a = broker.get().admin()) {
            for (TopicPartition tp : tps) {
                assertEquals(120, hw(a, tp), "60 records + 60 markers on " + tp);
            }
        }
    }

    @Test
    void deleteRecordsInsideAnAbortedTransaction() throws Exception {
        // the log start moves into an aborted transaction: read_committed from the new start must still drop
        // the rest of it (its abort is known although its first offset is gone)
        String topic = K.topic("txn-delrec");
        TopicPartition tp = new TopicPartition(topic, 0);
        try (Admin a = broker.get().admin();
             KafkaProducer<String, String> plain = K.producer(bs());
             KafkaProducer<String, String> tx = txProducer("tx-" + topic)) {
            K.createTopic(a, topic, 1);
            tx.beginTransaction();
            for (int i = 0; i < 4; i++) {
                send(tx, topic, 0, "a" + i);
            }
            send(plain, topic, 0, "p0");
            tx.abortTransaction();
            send(plain, topic, 0, "p1");
            a.deleteRecords(Map.of(tp, org.apache.kafka.clients.admin.RecordsToDelete.beforeOffset(2))).all().get(30, TimeUnit.SECONDS);
            assertEquals(2, offset(a, tp, OffsetSpec.earliest(), IsolationLevel.READ_COMMITTED));
        }
        assertEquals(List.of("p0", "p1"), values(readToEnd(List.of(tp), "read_committed")));
        assertEquals(List.of("a2", "a3", "p0", "p1"), values(readToEnd(List.of(tp), "read_uncommitted")));
    }

    @Test
    void secondProducerWithTheSameTransactionalIdFencesTheFirst() throws Exception {
        String topic = K.topic("txn-fence");
        String tid = "tx-" + topic;
        TopicPartition tp = new TopicPartition(topic, 0);
        try (Admin a = broker.get().admin()) {
            K.createTopic(a, topic, 1);
            KafkaProducer<String, String> first = txProducer(tid);
            try {
                first.beginTransaction();
                send(first, topic, 0, "zombie-0");
                send(first, topic, 0, "zombie-1");
                assertEquals(0, lso(a, tp), "the first producer's transaction is open");

                // the new instance's initTransactions() bumps the epoch and aborts the open transaction
                try (KafkaProducer<String, String> second = txProducer(tid)) {
                    K.waitUntil("the fenced transaction aborted (LSO = high watermark)", WAIT, () -> {
                        try {
                            return lso(a, tp) == hw(a, tp);
                        } catch (Exception e) {
                            throw new RuntimeException(e);
                        }
                    });
                    assertEquals(3, hw(a, tp), "2 records + the ABORT marker");

                    KafkaException e = assertThrows(KafkaException.class, first::commitTransaction);
                    assertInstanceOf(ProducerFencedException.class, e, "the old instance is fenced: " + e);

                    second.beginTransaction();
                    send(second, topic, 0, "live");
                    second.commitTransaction();
                }
            } finally {
                first.close(Duration.ofSeconds(5));
            }
        }
        assertEquals(List.of("live"), values(readToEnd(List.of(tp), "read_committed")));
        assertEquals(List.of("zombie-0", "zombie-1", "live"), values(readToEnd(List.of(tp), "read_uncommitted")));
    }

    @Test
    void offsetsCommittedInATransactionAppearOnlyOnCommit() throws Exception {
        String in = K.topic("txn-offsets-in");
        String out = K.topic("txn-offsets-out");
        String group = K.group("txn-offsets");
        TopicPartition inTp = new TopicPartition(in, 0);
        try (Admin a = broker.get().admin()) {
            K.createTopic(a, in, 1);
            K.createTopic(a, out, 1);
            K.produce(bs(), in, 0, 10);
            try (KafkaConsumer<String, String> c = K.consumer(bs(), ConsumerConfig.GROUP_ID_CONFIG, group,
                    ConsumerConfig.ISOLATION_LEVEL_CONFIG, "read_committed");
                 KafkaProducer<String, String> p = txProducer("tx-" + out)) {
                c.subscribe(List.of(in));
                List<ConsumerRecord<String, String>> got = K.pollN(c, 10, WAIT);
                assertEquals(10, got.size());
                c.commitSync(Map.of(inTp, new OffsetAndMetadata(3)));
                assertEquals(3, groupOffset(a, group, inTp));
                assertTrue(c.groupMetadata().generationId() > 0, "a member of the group: " + c.groupMetadata());

                // consume-transform-produce: output + input offset 7 in one transaction
                p.beginTransaction();
                send(p, out, 0, "out-7");
                p.sendOffsetsToTransaction(Map.of(inTp, new OffsetAndMetadata(7, "txn-meta")), c.groupMetadata());
                assertEquals(3, groupOffset(a, group, inTp), "a pending transactional offset is not visible before the commit");
                // require_stable: Kafka answers UNSTABLE_OFFSET_COMMIT (retriable) while the transaction is open
                // require_stable: the coordinator answers UNSTABLE_OFFSET_COMMIT for the partition while the
                // transaction is open, and Kafka's Admin leaves that partition out of the result
                assertNull(stableOffsets(a, group, inTp).get(inTp), "requireStable during the open transaction");
                p.commitTransaction();
                K.waitUntil("the transactional offset committed", WAIT, () -> groupOffsetUnchecked(a, group, inTp) == 7);
                OffsetAndMetadata om = a.listConsumerGroupOffsets(group).partitionsToOffsetAndMetadata().get(30, TimeUnit.SECONDS).get(inTp);
                assertEquals("txn-meta", om.metadata());
                assertEquals(7, stableOffsets(a, group, inTp).get(inTp).offset(), "requireStable after the commit");
                assertEquals(7, c.committed(Set.of(inTp)).get(inTp).offset(), "the member's committed() (require_stable) sees it too");

                // an aborted transaction leaves the committed offset alone
                p.beginTransaction();
                send(p, out, 0, "out-9");
                p.sendOffsetsToTransaction(Map.of(inTp, new OffsetAndMetadata(9)), c.groupMetadata());
                p.abortTransaction();
                assertEquals(7, c.committed(Set.of(inTp)).get(inTp).offset());
                assertEquals(7, groupOffset(a, group, inTp), "the abort left the committed offset");
            }
            assertEquals(List.of("out-7"), values(readToEnd(List.of(new TopicPartition(out, 0)), "read_committed")));
        }
    }

    private static Map<TopicPartition, OffsetAndMetadata> stableOffsets(Admin a, String group, TopicPartition tp) throws Exception {
        return a.listConsumerGroupOffsets(Map.of(group, new ListConsumerGroupOffsetsSpec().topicPartitions(List.of(tp))),
                new ListConsumerGroupOffsetsOptions().requireStable(true)).partitionsToOffsetAndMetadata(group).get(30, TimeUnit.SECONDS);
    }

    private static long groupOffset(Admin a, String group, TopicPartition tp) throws Exception {
        OffsetAndMetadata om = a.listConsumerGroupOffsets(group).partitionsToOffsetAndMetadata().get(30, TimeUnit.SECONDS).get(tp);
        return om == null ? -1 : om.offset();
    }

    private static long groupOffsetUnchecked(Admin a, String group, TopicPartition tp) {
        try {
            return groupOffset(a, group, tp);
        } catch (Exception e) {
            throw new RuntimeException(e);
        }
    }

    @Test
    void transactionTimeoutAbortsAndFences() throws Exception {
        String topic = K.topic("txn-timeout");
        String tid = "tx-" + topic;
        TopicPartition tp = new TopicPartition(topic, 0);
        try (Admin a = broker.get().admin();
             KafkaProducer<String, String> p = txProducer(tid, ProducerConfig.TRANSACTION_TIMEOUT_CONFIG, 2000)) {
            K.createTopic(a, topic, 1);
            TransactionDescription before = a.describeTransactions(List.of(tid)).description(tid).get(30, TimeUnit.SECONDS);
            assertEquals(2000, before.transactionTimeoutMs());
            p.beginTransaction();
            send(p, topic, 0, "never-committed");
            assertEquals(0, lso(a, tp));
            long start = System.nanoTime();
            // the coordinator's sweep aborts it after transaction.timeout.ms (+ the sweep interval)
            K.waitUntil("the timed-out transaction aborted", Duration.ofSeconds(25), () -> {
                try {
                    return lso(a, tp) == 2;
                } catch (Exception e) {
                    throw new RuntimeException(e);
                }
            });
            long ms = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - start);
            assertTrue(ms >= 1000, "aborted after " + ms + " ms, before its 2000 ms timeout");
            TransactionDescription d = a.describeTransactions(List.of(tid)).description(tid).get(30, TimeUnit.SECONDS);
            assertEquals(TransactionState.COMPLETE_ABORT, d.state(), d.toString());
            assertTrue(d.producerEpoch() > before.producerEpoch(), "the timeout abort bumps the epoch: " + before + " -> " + d);
            assertTrue(d.topicPartitions().isEmpty(), d.toString());
            // the producer's commit of the aborted transaction fails. Transaction version 1 (Fjord's; run --kafka
            // downgrades Kafka to it): its epoch is older than the bumped one, PRODUCER_FENCED. Under TV2 (Kafka
            // 4.4's default) Kafka takes the epoch + 1 as a retry and answers INVALID_TXN_STATE for a commit of
            // a CompleteAbort transaction.
            KafkaException e = assertThrows(KafkaException.class, p::commitTransaction);
            if (transactionVersion(a) >= 2) {
                assertInstanceOf(org.apache.kafka.common.errors.InvalidTxnStateException.class, e, e.toString());
            } else {
                assertInstanceOf(ProducerFencedException.class, e, e.toString());
            }
        }
        assertEquals(List.of(), values(readToEnd(List.of(tp), "read_committed")));
        assertEquals(List.of("never-committed"), values(readToEnd(List.of(tp), "read_uncommitted")));
    }

    @Test
    void adminListDescribeTransactionsAndProducers() throws Exception {
        String topic = K.topic("txn-admin");
        String tid = "tx-" + topic;
        TopicPartition tp0 = new TopicPartition(topic, 0);
        TopicPartition tp1 = new TopicPartition(topic, 1);
        try (Admin a = broker.get().admin();
             KafkaProducer<String, String> p = txProducer(tid, ProducerConfig.TRANSACTION_TIMEOUT_CONFIG, 45000)) {
            K.createTopic(a, topic, 2);
            TransactionDescription empty = a.describeTransactions(List.of(tid)).description(tid).get(30, TimeUnit.SECONDS);
            assertEquals(TransactionState.EMPTY, empty.state(), empty.toString());
            assertEquals(45000, empty.transactionTimeoutMs());
            assertTrue(empty.producerId() >= 0);
            assertTrue(empty.topicPartitions().isEmpty());
            assertFalse(empty.transactionStartTimeMs().isPresent(), empty.toString());
            long pid = empty.producerId();

            long t0 = System.currentTimeMillis();
            p.beginTransaction();
            send(p, topic, 0, "x");
            send(p, topic, 0, "y");
            long startOffset1 = send(p, topic, 1, "z").offset();

            TransactionDescription d = a.describeTransactions(List.of(tid)).description(tid).get(30, TimeUnit.SECONDS);
            assertEquals(TransactionState.ONGOING, d.state(), d.toString());
            assertEquals(pid, d.producerId());
            assertEquals(empty.producerEpoch(), d.producerEpoch());
            assertEquals(Set.of(tp0, tp1), d.topicPartitions());
            assertTrue(d.transactionStartTimeMs().isPresent(), d.toString());
            assertTrue(Math.abs(d.transactionStartTimeMs().getAsLong() - t0) < 60_000, d.toString());
            assertTrue(d.coordinatorId() >= 0);

            Map<String, TransactionListing> listed = a.listTransactions().all().get(30, TimeUnit.SECONDS).stream()
                    .collect(Collectors.toMap(TransactionListing::transactionalId, l -> l, (x, y) -> x));
            assertTrue(listed.containsKey(tid), "listTransactions: " + listed.keySet());
            assertEquals(pid, listed.get(tid).producerId());
            assertEquals(TransactionState.ONGOING, listed.get(tid).state());
            Collection<TransactionListing> ongoing = a.listTransactions(new ListTransactionsOptions()
                    .filterStates(List.of(TransactionState.ONGOING))).all().get(30, TimeUnit.SECONDS);
            assertTrue(ongoing.stream().anyMatch(l -> l.transactionalId().equals(tid)), ongoing.toString());
            assertTrue(ongoing.stream().allMatch(l -> l.state() == TransactionState.ONGOING), ongoing.toString());
            Collection<TransactionListing> byPid = a.listTransactions(new ListTransactionsOptions()
                    .filterProducerIds(List.of(pid))).all().get(30, TimeUnit.SECONDS);
            assertEquals(List.of(tid), byPid.stream().map(TransactionListing::transactionalId).collect(Collectors.toList()));
            Collection<TransactionListing> none = a.listTransactions(new ListTransactionsOptions()
                    .filterStates(List.of(TransactionState.PREPARE_COMMIT))
                    .filterProducerIds(List.of(pid))).all().get(30, TimeUnit.SECONDS);
            assertTrue(none.isEmpty(), none.toString());
            // KIP-994: only transactions running longer than the duration (an hour: not this one)
            Collection<TransactionListing> longRunning = a.listTransactions(new ListTransactionsOptions()
                    .filterOnDuration(3_600_000L)).all().get(30, TimeUnit.SECONDS);
            assertFalse(longRunning.stream().anyMatch(l -> l.transactionalId().equals(tid)), longRunning.toString());

            var producers = a.describeProducers(List.of(tp0, tp1)).all().get(30, TimeUnit.SECONDS);
            ProducerState s0 = only(producers.get(tp0).activeProducers(), pid);
            assertEquals(empty.producerEpoch(), s0.producerEpoch());
            assertEquals(1, s0.lastSequence(), "two records: sequences 0 and 1");
            assertEquals(0L, s0.currentTransactionStartOffset().orElse(-1), s0.toString());
            assertTrue(s0.lastTimestamp() >= t0 - 60_000, s0.toString());
            ProducerState s1 = only(producers.get(tp1).activeProducers(), pid);
            assertEquals(startOffset1, s1.currentTransactionStartOffset().orElse(-1), s1.toString());
            assertEquals(0, s1.lastSequence());

            p.commitTransaction();
            // EndTxn answers once PrepareCommit is logged; the markers complete it (CompleteCommit) asynchronously
            K.waitUntil("CompleteCommit", WAIT, () -> describeUnchecked(a, tid).state() == TransactionState.COMPLETE_COMMIT);
            TransactionDescription done = describeUnchecked(a, tid);
            assertTrue(done.topicPartitions().isEmpty(), done.toString());
            K.waitUntil("describeProducers: no open transaction after the commit", WAIT, () -> {
                try {
                    var after = a.describeProducers(List.of(tp0)).partitionResult(tp0).get(30, TimeUnit.SECONDS);
                    return !only(after.activeProducers(), pid).currentTransactionStartOffset().isPresent();
                } catch (Exception e) {
                    throw new RuntimeException(e);
                }
            });
            ProducerState marked = only(a.describeProducers(List.of(tp0)).partitionResult(tp0).get(30, TimeUnit.SECONDS).activeProducers(), pid);
            assertTrue(marked.coordinatorEpoch().isPresent(), "the marker's coordinator epoch is recorded: " + marked);
            Collection<TransactionListing> ongoingAfter = a.listTransactions(new ListTransactionsOptions()
                    .filterStates(List.of(TransactionState.ONGOING))).all().get(30, TimeUnit.SECONDS);
            assertFalse(ongoingAfter.stream().anyMatch(l -> l.transactionalId().equals(tid)), ongoingAfter.toString());
        }
        // an unknown transactional id
        try (Admin a = broker.get().admin()) {
            ExecutionException e = assertThrows(ExecutionException.class,
                    () -> a.describeTransactions(List.of("no-such-" + tid)).all().get(30, TimeUnit.SECONDS));
            assertInstanceOf(org.apache.kafka.common.errors.TransactionalIdNotFoundException.class, e.getCause(), e.toString());
        }
    }

    private static TransactionDescription describeUnchecked(Admin a, String tid) {
        try {
            return a.describeTransactions(List.of(tid)).description(tid).get(30, TimeUnit.SECONDS);
        } catch (Exception e) {
            throw new RuntimeException(e);
        }
    }

    private static ProducerState only(List<ProducerState> states, long pid) {
        List<ProducerState> m = states.stream().filter(s -> s.producerId() == pid).collect(Collectors.toList());
        assertEquals(1, m.size(), "producer " + pid + " in " + states);
        return m.get(0);
    }

    @Test
    void adminAbortTransactionOnAPartition() throws Exception {
        String topic = K.topic("txn-abort-admin");
        String tid = "tx-" + topic;
        TopicPartition tp = new TopicPartition(topic, 0);
        try (Admin a = broker.get().admin()) {
            K.createTopic(a, topic, 1);
            K.produce(bs(), topic, 0, 2);
            KafkaProducer<String, String> p = txProducer(tid);
            try {
                p.beginTransaction();
                assertEquals(2, send(p, topic, 0, "stuck").offset());
                assertEquals(2, lso(a, tp));
                ProducerState s = a.describeProducers(List.of(tp)).partitionResult(tp).get(30, TimeUnit.SECONDS).activeProducers()
                        .stream().filter(x -> x.currentTransactionStartOffset().isPresent()).findFirst().orElseThrow();
                assertEquals(2, s.currentTransactionStartOffset().getAsLong());
                // what `kafka-transactions abort` does: WriteTxnMarkers(ABORT) straight to the partition leader
                a.abortTransaction(new AbortTransactionSpec(tp, s.producerId(), (short) s.producerEpoch(),
                        s.coordinatorEpoch().orElse(0))).all().get(30, TimeUnit.SECONDS);
                assertEquals(4, hw(a, tp), "an ABORT marker was written");
                assertEquals(4, lso(a, tp), "the LSO moved past the aborted transaction");
                var after = a.describeProducers(List.of(tp)).partitionResult(tp).get(30, TimeUnit.SECONDS).activeProducers();
                assertTrue(after.stream().noneMatch(x -> x.currentTransactionStartOffset().isPresent()), after.toString());
            } finally {
                p.close(Duration.ofSeconds(5));
            }
        }
        assertEquals(List.of("v0", "v1"), values(readToEnd(List.of(tp), "read_committed")));
    }

    @Test
    void forceTerminateTransaction() throws Exception {
        // KIP-939's Admin.forceTerminateTransaction: an InitProducerId for the transactional id from the Admin,
        // which (as a new producer instance would) bumps the epoch and aborts the open transaction
        String topic = K.topic("txn-force");
        String tid = "tx-" + topic;
        TopicPartition tp = new TopicPartition(topic, 0);
        try (Admin a = broker.get().admin();
             KafkaProducer<String, String> p = txProducer(tid)) {
            K.createTopic(a, topic, 1);
            p.beginTransaction();
            send(p, topic, 0, "open");
            TransactionDescription before = a.describeTransactions(List.of(tid)).description(tid).get(30, TimeUnit.SECONDS);
            assertEquals(TransactionState.ONGOING, before.state());
            a.forceTerminateTransaction(tid).result().get(30, TimeUnit.SECONDS);
            TransactionDescription after = a.describeTransactions(List.of(tid)).description(tid).get(30, TimeUnit.SECONDS);
            assertEquals(TransactionState.EMPTY, after.state(), after.toString());
            assertEquals(before.producerId(), after.producerId());
            assertTrue(after.producerEpoch() > before.producerEpoch(), before + " -> " + after);
            assertEquals(2, hw(a, tp), "the record + the ABORT marker");
            assertEquals(2, lso(a, tp));
            KafkaException e = assertThrows(KafkaException.class, p::commitTransaction);
            assertInstanceOf(ProducerFencedException.class, e, e.toString());
        }
        assertEquals(List.of(), values(readToEnd(List.of(tp), "read_committed")));
    }

    @Test
    void fenceProducers() throws Exception {
        // Admin.fenceProducers (KIP-618, what Kafka Connect uses): bumps the epoch, aborting the open transaction
        String topic = K.topic("txn-fence-admin");
        String tid = "tx-" + topic;
        TopicPartition tp = new TopicPartition(topic, 0);
        try (Admin a = broker.get().admin();
             KafkaProducer<String, String> p = txProducer(tid)) {
            K.createTopic(a, topic, 1);
            p.beginTransaction();
            send(p, topic, 0, "open");
            int epoch = a.describeTransactions(List.of(tid)).description(tid).get(30, TimeUnit.SECONDS).producerEpoch();
            var r = a.fenceProducers(List.of(tid));
            r.all().get(30, TimeUnit.SECONDS);
            assertTrue(r.epochId(tid).get(30, TimeUnit.SECONDS) > epoch);
            K.waitUntil("the fenced transaction aborted", WAIT, () -> {
                try {
                    return lso(a, tp) == 2;
                } catch (Exception e) {
                    throw new RuntimeException(e);
                }
            });
            KafkaException e = assertThrows(KafkaException.class, p::commitTransaction);
            assertInstanceOf(ProducerFencedException.class, e, e.toString());
        }
        assertEquals(List.of(), values(readToEnd(List.of(tp), "read_committed")));
    }

    private Tool.Result txTool(String... args) {
        String[] full = new String[args.length + 2];
        full[0] = "--bootstrap-server";
        full[1] = bs();
        System.arraycopy(args, 0, full, 2, args.length);
        return Tool.run("org.apache.kafka.tools.TransactionsCommand", full).ok();
    }

    @Test
    void kafkaTransactionsTool() throws Exception {
        String topic = K.topic("txn-tool");
        String tid = "tx-" + topic;
        try (Admin a = broker.get().admin();
             KafkaProducer<String, String> p = txProducer(tid)) {
            K.createTopic(a, topic, 2);
            K.produce(bs(), topic, 1, 3);
            p.beginTransaction();
            send(p, topic, 1, "open-a");
            send(p, topic, 1, "open-b");
            long pid = a.describeTransactions(List.of(tid)).description(tid).get(30, TimeUnit.SECONDS).producerId();

            // list: TransactionalId Coordinator ProducerId TransactionState
            List<Map<String, String>> list = table(txTool("list"));
            Map<String, String> row = list.stream().filter(r -> tid.equals(r.get("TransactionalId"))).findFirst()
                    .orElseThrow(() -> new AssertionError("list: " + list));
            assertEquals(String.valueOf(pid), row.get("ProducerId"), row.toString());
            assertEquals("Ongoing", row.get("TransactionState"), row.toString());
            assertTrue(row.get("Coordinator").matches("\\d+"), row.toString());

            // describe: CoordinatorId TransactionalId ProducerId ProducerEpoch TransactionState TransactionTimeoutMs
            //           CurrentTransactionStartTimeMs TransactionDurationMs TopicPartitions
            List<Map<String, String>> desc = table(txTool("describe", "--transactional-id", tid));
            assertEquals(1, desc.size(), desc.toString());
            Map<String, String> d = desc.get(0);
            assertEquals(tid, d.get("TransactionalId"), d.toString());
            assertEquals(String.valueOf(pid), d.get("ProducerId"), d.toString());
            assertEquals("Ongoing", d.get("TransactionState"), d.toString());
            assertEquals("60000", d.get("TransactionTimeoutMs"), d.toString());
            assertEquals(topic + "-1", d.get("TopicPartitions"), d.toString());
            assertTrue(Long.parseLong(d.get("TransactionDurationMs")) >= 0, d.toString());

            // describe-producers: ProducerId ProducerEpoch LatestCoordinatorEpoch LastSequence LastTimestamp CurrentTransactionStartOffset
            List<Map<String, String>> prod = table(txTool("describe-producers", "--topic", topic, "--partition", "1"));
            Map<String, String> pr = prod.stream().filter(r -> String.valueOf(pid).equals(r.get("ProducerId"))).findFirst()
                    .orElseThrow(() -> new AssertionError("describe-producers: " + prod));
            assertEquals("1", pr.get("LastSequence"), pr.toString());
            assertEquals("3", pr.get("CurrentTransactionStartOffset"), pr.toString());

            // find-hanging (only a header when there are none): the open transaction is known to its coordinator,
            // so it is not hanging, even with a zero max timeout, which makes every open transaction a candidate
            // (ListTransactions by producer id + DescribeTransactions must vouch for it)
            Tool.Result hanging = txTool("find-hanging", "--topic", topic, "--max-transaction-timeout", "0");
            assertTrue(hanging.lines().get(0).startsWith("Topic"), hanging.toString());
            assertEquals(List.of(), table(hanging), hanging.toString());
            p.commitTransaction();

            K.waitUntil("describe: CompleteCommit", WAIT, () ->
                    "CompleteCommit".equals(table(txTool("describe", "--transactional-id", tid)).get(0).get("TransactionState")));
            Map<String, String> pa = table(txTool("describe-producers", "--topic", topic, "--partition", "1")).stream()
                    .filter(r -> String.valueOf(pid).equals(r.get("ProducerId"))).findFirst().orElseThrow();
            assertEquals("None", pa.get("CurrentTransactionStartOffset"), pa.toString());
        }
    }

    @Test
    void listTransactionsByTransactionalIdPattern() throws Exception {
        // KIP-1152: ListTransactions v2 filters by a transactional id regular expression (Admin
        // filterOnTransactionalIdPattern, kafka-transactions list --transactional-id-pattern)
        String topic = K.topic("txn-pattern");
        String tid = "tx-" + topic;
        try (Admin a = broker.get().admin();
             KafkaProducer<String, String> p = txProducer(tid);
             KafkaProducer<String, String> other = txProducer("other-" + topic)) {
            K.createTopic(a, topic, 1);
            p.beginTransaction();
            send(p, topic, 0, "x");
            other.beginTransaction();
            send(other, topic, 0, "y");
            FjordBug.expect("ListTransactions v2 (transactional id pattern, KIP-1152) is not served (Fjord has v0-1)", () -> {
                Collection<TransactionListing> byPattern = a.listTransactions(new ListTransactionsOptions()
                        .filterOnTransactionalIdPattern("tx-txn-pattern-.*")).all().get(30, TimeUnit.SECONDS);
                assertTrue(byPattern.stream().anyMatch(l -> l.transactionalId().equals(tid)), byPattern.toString());
                assertTrue(byPattern.stream().allMatch(l -> l.transactionalId().startsWith("tx-txn-pattern-")), byPattern.toString());
                List<Map<String, String>> listed = table(txTool("list", "--transactional-id-pattern", "tx-txn-pattern-.*"));
                assertTrue(listed.stream().anyMatch(r -> tid.equals(r.get("TransactionalId"))), listed.toString());
                assertTrue(listed.stream().allMatch(r -> r.get("TransactionalId").startsWith("tx-txn-pattern-")), listed.toString());
            });
            p.commitTransaction();
            other.commitTransaction();
        }
    }

    @Test
    void kafkaTransactionsToolAbortsByStartOffset() throws Exception {
        // kafka-transactions abort --topic T --partition P --start-offset O (brokers >= 3.0: the start offset is enough)
        String topic = K.topic("txn-tool-abort");
        TopicPartition tp = new TopicPartition(topic, 0);
        try (Admin a = broker.get().admin();
             KafkaProducer<String, String> p = txProducer("tx-" + topic)) {
            K.createTopic(a, topic, 1);
            K.produce(bs(), topic, 0, 1);
            p.beginTransaction();
            assertEquals(1, send(p, topic, 0, "hung").offset());
            assertEquals(1, lso(a, tp));
            txTool("abort", "--topic", topic, "--partition", "0", "--start-offset", "1");
            assertEquals(3, hw(a, tp), "an ABORT marker was written");
            assertEquals(3, lso(a, tp));
        }
        assertEquals(List.of("v0"), values(readToEnd(List.of(tp), "read_committed")));
    }

    @Test
    void dumpLogShowsTransactionalBatchesAndMarkers() throws Exception {
        // kafka-dump-log on the partition's segment: the data batches are transactional, the markers are
        // control batches with COMMIT / ABORT end-transaction markers
        org.junit.jupiter.api.Assumptions.assumeTrue(broker.get().dataDir() != null, "the broker's data dir is unknown");
        String topic = K.topic("txn-dump");
        String tid = "tx-" + topic;
        long pid;
        try (Admin a = broker.get().admin();
             KafkaProducer<String, String> p = txProducer(tid)) {
            K.createTopic(a, topic, 1);
            p.beginTransaction();
            send(p, topic, 0, "c0");
            p.commitTransaction();
            p.beginTransaction();
            send(p, topic, 0, "a0");
            p.abortTransaction();
            pid = a.describeTransactions(List.of(tid)).description(tid).get(30, TimeUnit.SECONDS).producerId();
        }
        java.nio.file.Path seg = broker.get().dataDir().resolve(topic + "-0").resolve("00000000000000000000.log");
        String[] out = new String[1];
        K.waitUntil("both markers in the segment", Duration.ofSeconds(20), () -> {
            if (!seg.toFile().isFile()) {
                return false;
            }
            out[0] = Tool.run("org.apache.kafka.tools.DumpLogSegments", "--files", seg.toString(),
                    "--print-data-log", "--deep-iteration").ok().out;
            return out[0].contains("endTxnMarker: ABORT");
        });
        String dump = out[0];
        assertTrue(dump.contains("endTxnMarker: COMMIT"), dump);
        assertTrue(!dump.contains("isvalid: false"), dump);
        java.util.regex.Matcher m = java.util.regex.Pattern.compile(
                "baseOffset: (\\d+) lastOffset: \\d+ count: \\d+ baseSequence: (-?\\d+) lastSequence: -?\\d+ producerId: (-?\\d+) "
                        + "producerEpoch: \\d+ partitionLeaderEpoch: -?\\d+ isTransactional: (\\w+) isControl: (\\w+)").matcher(dump);
        List<String> batches = new ArrayList<>();
        while (m.find()) {
            assertEquals(String.valueOf(pid), m.group(3), m.group());
            batches.add(m.group(1) + ":" + m.group(4) + "/" + m.group(5));
        }
        assertEquals(List.of("0:true/false", "1:true/true", "2:true/false", "3:true/true"), batches, dump);
        assertTrue(dump.contains("payload: c0"), dump);
        assertTrue(dump.contains("payload: a0"), dump);
    }

    private static final String COPIER = "org.apache.kafka.tools.TransactionalMessageCopier";

    private String[] copierArgs(String in, int partition, String out, String group, String tid) {
        return new String[] {"--broker-list", bs(), "--input-topic", in, "--input-partition", String.valueOf(partition),
            "--output-topic", out, "--consumer-group", group, "--transactional-id", tid, "--transaction-size", "50",
            "--enable-random-aborts", "--use-group-metadata"};
    }

    /** Input values "p<partition>-<i>", 1500 per partition. */
    private List<String> copierInput(String in, int partitions, int perPartition) throws Exception {
        List<String> all = new ArrayList<>();
        try (KafkaProducer<String, String> p = K.producer(bs(), ProducerConfig.LINGER_MS_CONFIG, 5)) {
            for (int part = 0; part < partitions; part++) {
                for (int i = 0; i < perPartition; i++) {
                    String v = "p" + part + "-" + i;
                    p.send(new ProducerRecord<>(in, part, "k" + i, v));
                    all.add(v);
                }
            }
            p.flush();
        }
        return all;
    }

    private void assertCopiedExactlyOnce(String out, String group, String in, List<String> input) throws Exception {
        List<ConsumerRecord<String, String>> got = readToEnd(tps(out, 2), "read_committed");
        Map<String, Long> dup = got.stream().collect(Collectors.groupingBy(ConsumerRecord::value, Collectors.counting()));
        List<String> twice = dup.entrySet().stream().filter(e -> e.getValue() > 1).map(Map.Entry::getKey).limit(10).collect(Collectors.toList());
        assertTrue(twice.isEmpty(), "copied twice: " + twice);
        assertEquals(new java.util.TreeSet<>(input), new java.util.TreeSet<>(dup.keySet()));
        assertEquals(input.size(), got.size());
        try (Admin a = broker.get().admin()) {
            var offs = a.listConsumerGroupOffsets(group).partitionsToOffsetAndMetadata().get(30, TimeUnit.SECONDS);
            for (int part = 0; part < 2; part++) {
                TopicPartition tp = new TopicPartition(in, part);
                assertEquals(hw(a, tp), offs.get(tp).offset(), "the copier's committed offset on " + tp);
            }
        }
        assertTrue(got.stream().allMatch(r -> r.value().startsWith("p" + r.partition() + "-")), "copied to the input's partition number");
        int raw = readToEnd(tps(out, 2), "read_uncommitted").size();
        System.err.println("TransactionalMessageCopier: read_committed " + got.size() + " = the input; read_uncommitted " + raw
                + " (the random aborts' copies included)");
    }

    @Test
    void transactionalMessageCopierWithRandomAborts() throws Exception {
        // Kafka's own EOS system-test tool: copies an input partition to an output topic in transactions with
        // the consumed offsets, aborting at random (and rewinding); one copier per input partition, same group
        String in = K.topic("copier-in");
        String out = K.topic("copier-out");
        String group = K.group("copier");
        try (Admin a = broker.get().admin()) {
            K.createTopic(a, in, 2);
            K.createTopic(a, out, 2); // (the copier writes input partition p to output partition p)
        }
        List<String> input = copierInput(in, 2, 1500);
        for (int part = 0; part < 2; part++) {
            Tool.Result r = Tool.run(COPIER, copierArgs(in, part, out, group, "copier-" + out + "-" + part)).ok();
            assertTrue(r.out.contains("ShutdownComplete"), r.toString());
        }
        assertCopiedExactlyOnce(out, group, in, input);
    }

    @Test
    void transactionalMessageCopierKilledAndRestarted() throws Exception {
        // the copier of partition 0 is killed with SIGKILL mid-way (an open transaction behind it); a new one with
        // the same transactional id fences it, aborts that transaction and resumes from the committed offsets
        String in = K.topic("copier-kill-in");
        String out = K.topic("copier-kill-out");
        String group = K.group("copier-kill");
        try (Admin a = broker.get().admin()) {
            K.createTopic(a, in, 2);
            K.createTopic(a, out, 2); // (the copier writes input partition p to output partition p)
        }
        List<String> input = copierInput(in, 2, 1500);
        String tid0 = "copier-" + out + "-0";
        List<String> argv = new ArrayList<>(List.of(java.nio.file.Paths.get(System.getProperty("java.home"), "bin", "java").toString(),
                "-Xmx256m", "-XX:TieredStopAtLevel=1", "-Dorg.slf4j.simpleLogger.defaultLogLevel=error", "-cp", Tool.classPath(), COPIER));
        argv.addAll(List.of(copierArgs(in, 0, out, group, tid0)));
        // slow it down: small transactions, so that the kill lands mid-way
        argv.set(argv.indexOf("--transaction-size") + 1, "10");
        // The copier reads its position (OffsetFetch, require_stable) before initTransactions
        // fences its predecessor, so a transaction the kill left open with pending offsets
        // blocks the restarted copier until the coordinator times it out: keep that well under
        // the restarted consumer's 60 s default.api.timeout.ms (as on Kafka).
        argv.addAll(List.of("--transaction-timeout", "10000"));
        Process first = new ProcessBuilder(argv).redirectErrorStream(true).redirectInput(ProcessBuilder.Redirect.from(new java.io.File("/dev/null"))).start();
        StringBuilder firstOut = new StringBuilder();
        try (var rd = new java.io.BufferedReader(new java.io.InputStreamReader(first.getInputStream(), java.nio.charset.StandardCharsets.UTF_8))) {
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
            java.util.regex.Pattern consumed = java.util.regex.Pattern.compile("\"consumed\":(\\d+)");
            String line;
            long seen = 0;
            while (seen < 400 && (line = rd.readLine()) != null) {
                firstOut.append(line).append('\n');
                var m = consumed.matcher(line);
                if (m.find()) {
                    seen = Long.parseLong(m.group(1));
                }
                assertTrue(System.nanoTime() < deadline, "the copier did not get going: " + firstOut);
            }
            assertTrue(seen >= 400 && seen < 1500, "killed at " + seen + " consumed: " + firstOut);
            first.destroyForcibly(); // SIGKILL
            assertTrue(first.waitFor(30, TimeUnit.SECONDS));
        }
        for (int part = 0; part < 2; part++) {
            Tool.Result r = Tool.run(COPIER, copierArgs(in, part, out, group, "copier-" + out + "-" + part)).ok();
            assertTrue(r.out.contains("ShutdownComplete"), r.toString());
        }
        assertCopiedExactlyOnce(out, group, in, input);
    }

    /** kafka-transactions' tab-separated, space-padded tables: one map (header -> cell) per row. */
    private static List<Map<String, String>> table(Tool.Result r) {
        String[] lines = r.out.split("\n");
        String[] header = lines[0].split("\t");
        List<Map<String, String>> rows = new ArrayList<>();
        for (int i = 1; i < lines.length; i++) {
            if (lines[i].isBlank()) {
                continue;
            }
            String[] cells = lines[i].split("\t");
            Map<String, String> m = new java.util.LinkedHashMap<>();
            for (int c = 0; c < header.length; c++) {
                m.put(header[c].strip(), c < cells.length ? cells[c].strip() : "");
            }
            rows.add(m);
        }
        return rows;
    }
}
