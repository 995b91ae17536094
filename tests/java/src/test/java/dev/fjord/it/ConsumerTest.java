package dev.fjord.it;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.time.Duration;
import java.util.ArrayList;
import java.util.Collection;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.function.BooleanSupplier;
import java.util.stream.Collectors;
import java.util.stream.IntStream;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRebalanceListener;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.ConsumerRecords;
import org.apache.kafka.clients.consumer.CooperativeStickyAssignor;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.NoOffsetForPartitionException;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.clients.consumer.OffsetAndTimestamp;
import org.apache.kafka.clients.consumer.RangeAssignor;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.TopicPartition;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;

/** The classic consumer-group protocol (group.protocol=classic) and the consumer's offset APIs. */
class ConsumerTest {
    @RegisterExtension
    static BrokerExtension broker = new BrokerExtension();

    private String bs() {
        return broker.bootstrap();
    }

    private static List<TopicPartition> tps(String topic, int n) {
        return IntStream.range(0, n).mapToObj(i -> new TopicPartition(topic, i)).collect(Collectors.toList());
    }

    /** Records every callback of one member. */
    static final class Recorder implements ConsumerRebalanceListener {
        final String name;
        final List<String> events = new ArrayList<>();
        final List<Set<TopicPartition>> revoked = new ArrayList<>();
        final List<Set<TopicPartition>> assigned = new ArrayList<>();

        Recorder(String name) {
            this.name = name;
        }

        @Override
        public synchronized void onPartitionsRevoked(Collection<TopicPartition> parts) {
            events.add("revoked" + parts);
            revoked.add(new HashSet<>(parts));
        }

        @Override
        public synchronized void onPartitionsAssigned(Collection<TopicPartition> parts) {
            events.add("assigned" + parts);
            assigned.add(new HashSet<>(parts));
        }
    }

    /** Polls every consumer in turn (short polls) until cond holds; collects the records. */
    private static List<ConsumerRecord<String, String>> pollAll(List<KafkaConsumer<String, String>> cs, String what,
                                                               BooleanSupplier cond) {
        List<ConsumerRecord<String, String>> out = new ArrayList<>();
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(45);
        while (!cond.getAsBoolean()) {
            if (System.nanoTime() > deadline) {
                StringBuilder sb = new StringBuilder("timed out waiting for " + what + "; assignments:");
                for (var c : cs) {
                    sb.append(' ').append(c.assignment());
                }
                throw new AssertionError(sb.toString());
            }
            for (var c : cs) {
                c.poll(Duration.ofMillis(100)).forEach(out::add);
            }
        }
        return out;
    }

    private KafkaConsumer<String, String> member(String group, String assignor) {
        return K.consumer(bs(), ConsumerConfig.GROUP_ID_CONFIG, group,
                ConsumerConfig.GROUP_PROTOCOL_CONFIG, "classic",
                ConsumerConfig.PARTITION_ASSIGNMENT_STRATEGY_CONFIG, assignor,
                ConsumerConfig.SESSION_TIMEOUT_MS_CONFIG, 10000,
                ConsumerConfig.HEARTBEAT_INTERVAL_MS_CONFIG, 500,
                ConsumerConfig.MAX_POLL_INTERVAL_MS_CONFIG, 30000);
    }

    private void rebalanceTwoMembers(String assignor, boolean cooperative) throws Exception {
        String topic = K.topic("rebal");
        String group = K.group("rebal");
        int parts = 4;
        try (Admin a = broker.get().admin()) {
            K.createTopic(a, topic, parts);
        }
        Set<TopicPartition> all = new HashSet<>(tps(topic, parts));
        Recorder ra = new Recorder("A");
        Recorder rb = new Recorder("B");
        try (KafkaConsumer<String, String> a = member(group, assignor);
             KafkaConsumer<String, String> b = member(group, assignor)) {
            a.subscribe(List.of(topic), ra);
            pollAll(List.of(a), "A owns all partitions", () -> a.assignment().equals(all));
            assertEquals(all, ra.assigned.get(ra.assigned.size() - 1));

            b.subscribe(List.of(topic), rb);
            pollAll(List.of(a, b), "A and B share the partitions", () -> {
                Set<TopicPartition> sa = a.assignment();
                Set<TopicPartition> sb = b.assignment();
                return sa.size() == 2 && sb.size() == 2 && union(sa, sb).equals(all);
            });
            Set<TopicPartition> sa = a.assignment();
            Set<TopicPartition> sb = b.assignment();
            assertTrue(java.util.Collections.disjoint(sa, sb), sa + " vs " + sb);
            if (cooperative) {
                // incremental: A gives up only what moves to B and never the partitions it keeps
                Set<TopicPartition> revokedFromA = new HashSet<>();
                ra.revoked.forEach(revokedFromA::addAll);
                assertEquals(sb, revokedFromA, "A's revocations " + ra.events);
                for (var r : ra.revoked) {
                    assertTrue(java.util.Collections.disjoint(r, sa), "A revoked a partition it kept: " + ra.events);
                }
            } else {
                // eager: A gives up everything before the new assignment
                assertTrue(ra.revoked.stream().anyMatch(r -> r.equals(all)), "eager revoke of all: " + ra.events);
                assertEquals(sa, ra.assigned.get(ra.assigned.size() - 1));
            }
            assertEquals(sb, union(rb.assigned.toArray(new Set[0])), "B's callbacks " + rb.events);

            // records produced now go to exactly the member owning each partition
            try (KafkaProducer<String, String> p = K.producer(bs())) {
                for (int i = 0; i < 40; i++) {
                    p.send(new ProducerRecord<>(topic, i % parts, "k", "m" + i));
                }
                p.flush();
            }
            List<ConsumerRecord<String, String>> fromA = new ArrayList<>();
            List<ConsumerRecord<String, String>> fromB = new ArrayList<>();
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
            while (fromA.size() + fromB.size() < 40 && System.nanoTime() < deadline) {
                a.poll(Duration.ofMillis(100)).forEach(fromA::add);
                b.poll(Duration.ofMillis(100)).forEach(fromB::add);
            }
            assertEquals(40, fromA.size() + fromB.size());
            for (var r : fromA) {
                assertTrue(sa.contains(new TopicPartition(r.topic(), r.partition())), "A got " + r);
            }
            for (var r : fromB) {
                assertTrue(sb.contains(new TopicPartition(r.topic(), r.partition())), "B got " + r);
            }
            assertEquals(20, fromA.size());
            a.commitSync();
            b.commitSync();

            // B leaves: A takes everything back
            b.close(Duration.ofSeconds(10));
            pollAll(List.of(a), "A owns all partitions after B left", () -> a.assignment().equals(all));
        }
    }

    @SafeVarargs
    private static Set<TopicPartition> union(Set<TopicPartition>... sets) {
        Set<TopicPartition> u = new HashSet<>();
        for (var s : sets) {
            u.addAll(s);
        }
        return u;
    }

    @Test
    void eagerRangeAssignorRebalance() throws Exception {
        rebalanceTwoMembers(RangeAssignor.class.getName(), false);
    }

    @Test
    void cooperativeStickyAssignorRebalance() throws Exception {
        rebalanceTwoMembers(CooperativeStickyAssignor.class.getName(), true);
    }

    @Test
    void manualAssignReadsOnlyThatPartition() throws Exception {
        String topic = K.topic("assign");
        try (Admin a = broker.get().admin()) {
            K.createTopic(a, topic, 3);
        }
        for (int p = 0; p < 3; p++) {
            K.produce(bs(), topic, p, 5);
        }
        try (KafkaConsumer<String, String> c = K.consumer(bs())) {
            c.assign(List.of(new TopicPartition(topic, 1)));
            List<ConsumerRecord<String, String>> got = K.pollN(c, 5, Duration.ofSeconds(20));
            assertTrue(got.stream().allMatch(r -> r.partition() == 1), got.toString());
            assertEquals(List.of(0L, 1L, 2L, 3L, 4L), got.stream().map(ConsumerRecord::offset).collect(Collectors.toList()));
            assertTrue(c.poll(Duration.ofMillis(300)).isEmpty());
            assertEquals(Set.of(new TopicPartition(topic, 1)), c.assignment());
            assertEquals(3, c.partitionsFor(topic).size());
            assertTrue(c.listTopics().containsKey(topic));
        }
    }

    @Test
    void seekSeekToBeginningSeekToEndAndPosition() throws Exception {
        String topic = K.topic("seek");
        try (Admin a = broker.get().admin()) {
            K.createTopic(a, topic, 1);
        }
        K.produce(bs(), topic, 0, 10);
        TopicPartition tp = new TopicPartition(topic, 0);
        try (KafkaConsumer<String, String> c = K.consumer(bs(), ConsumerConfig.MAX_POLL_RECORDS_CONFIG, 1)) {
            c.assign(List.of(tp));
            c.seekToEnd(List.of(tp));
            assertEquals(10, c.position(tp));
            assertTrue(c.poll(Duration.ofMillis(300)).isEmpty());
            c.seek(tp, 3);
            assertEquals(3, c.position(tp));
            ConsumerRecord<String, String> r = K.pollN(c, 1, Duration.ofSeconds(20)).get(0);
            assertEquals(3, r.offset());
            assertEquals("v3", r.value());
            assertEquals(4, c.position(tp));
            c.seekToBeginning(List.of(tp));
            assertEquals(0, c.position(tp));
            assertEquals("v0", K.pollN(c, 1, Duration.ofSeconds(20)).get(0).value());
            c.seek(tp, new OffsetAndMetadata(9));
            assertEquals("v9", K.pollN(c, 1, Duration.ofSeconds(20)).get(0).value());
            assertEquals(Map.of(tp, 0L), c.beginningOffsets(List.of(tp)));
            assertEquals(Map.of(tp, 10L), c.endOffsets(List.of(tp)));
            // a seek past the end with auto.offset.reset=earliest resets to the beginning
            c.seek(tp, 1000);
            assertEquals("v0", K.pollN(c, 1, Duration.ofSeconds(20)).get(0).value());
        }
    }

    @Test
    void outOfRangeWithResetNoneThrows() throws Exception {
        String topic = K.topic("oor");
        K.produce(bs(), topic, 0, 3);
        TopicPartition tp = new TopicPartition(topic, 0);
        try (KafkaConsumer<String, String> c = K.consumer(bs(), ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "none")) {
            c.assign(List.of(tp));
            c.seek(tp, 50);
            var ex = assertThrows(org.apache.kafka.clients.consumer.OffsetOutOfRangeException.class, () -> {
                long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(20);
                while (System.nanoTime() < deadline) {
                    c.poll(Duration.ofMillis(200));
                }
            });
            assertEquals(Map.of(tp, 50L), ex.offsetOutOfRangePartitions());
        }
    }

    @Test
    void commitSyncAndAsyncReadBackWithCommitted() throws Exception {
        String topic = K.topic("commit");
        String group = K.group("commit");
        try (Admin a = broker.get().admin()) {
            K.createTopic(a, topic, 2);
        }
        K.produce(bs(), topic, 0, 10);
        K.produce(bs(), topic, 1, 10);
        TopicPartition p0 = new TopicPartition(topic, 0);
        TopicPartition p1 = new TopicPartition(topic, 1);
        try (KafkaConsumer<String, String> c = K.consumer(bs(), ConsumerConfig.GROUP_ID_CONFIG, group,
                ConsumerConfig.GROUP_PROTOCOL_CONFIG, "classic")) {
            c.assign(List.of(p0, p1));
            assertEquals(java.util.Collections.singletonMap(p0, null), c.committed(Set.of(p0)));
            c.commitSync(Map.of(p0, new OffsetAndMetadata(5, "sync-meta")));
            OffsetAndMetadata got = c.committed(Set.of(p0)).get(p0);
            assertEquals(5, got.offset());
            assertEquals("sync-meta", got.metadata());

            CompletableFuture<Exception> cb = new CompletableFuture<>();
            c.commitAsync(Map.of(p0, new OffsetAndMetadata(7), p1, new OffsetAndMetadata(3, "async")),
                    (offsets, ex) -> cb.complete(ex));
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(20);
            while (!cb.isDone() && System.nanoTime() < deadline) {
                c.poll(Duration.ofMillis(50)); // async commit callbacks run inside poll
            }
            assertTrue(cb.isDone(), "commitAsync callback never called");
            assertNull(cb.get(), "commitAsync failed");
            Map<TopicPartition, OffsetAndMetadata> both = c.committed(Set.of(p0, p1));
            assertEquals(7, both.get(p0).offset());
            assertEquals(3, both.get(p1).offset());
            assertEquals("async", both.get(p1).metadata());

            // commitSync() with no arguments commits the consumed positions
            c.seek(p0, 8);
            c.seek(p1, 9);
            K.pollN(c, 3, Duration.ofSeconds(20)); // 8,9 of p0 and 9 of p1
            c.commitSync();
            Map<TopicPartition, OffsetAndMetadata> pos = c.committed(Set.of(p0, p1));
            assertEquals(10, pos.get(p0).offset());
            assertEquals(10, pos.get(p1).offset());
        }
        // a new member of the group starts from the committed offsets, not the reset policy
        try (KafkaConsumer<String, String> c = K.consumer(bs(), ConsumerConfig.GROUP_ID_CONFIG, group,
                ConsumerConfig.GROUP_PROTOCOL_CONFIG, "classic", ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "none")) {
            c.assign(List.of(p0, p1));
            c.commitSync(Map.of(p0, new OffsetAndMetadata(4), p1, new OffsetAndMetadata(8)));
        }
        try (KafkaConsumer<String, String> c = K.consumer(bs(), ConsumerConfig.GROUP_ID_CONFIG, group,
                ConsumerConfig.GROUP_PROTOCOL_CONFIG, "classic", ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "none")) {
            c.subscribe(List.of(topic));
            List<ConsumerRecord<String, String>> got = K.pollN(c, 8, Duration.ofSeconds(30));
            assertEquals(6, got.stream().filter(r -> r.partition() == 0).count());
            assertEquals(2, got.stream().filter(r -> r.partition() == 1).count());
            assertEquals(4, got.stream().filter(r -> r.partition() == 0).mapToLong(ConsumerRecord::offset).min().getAsLong());
            assertEquals(8, got.stream().filter(r -> r.partition() == 1).mapToLong(ConsumerRecord::offset).min().getAsLong());
        }
    }

    @Test
    void noCommittedOffsetWithResetNoneThrows() throws Exception {
        String topic = K.topic("nocommit");
        K.produce(bs(), topic, 0, 2);
        try (KafkaConsumer<String, String> c = K.consumer(bs(), ConsumerConfig.GROUP_ID_CONFIG, K.group("nocommit"),
                ConsumerConfig.GROUP_PROTOCOL_CONFIG, "classic", ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "none")) {
            c.assign(List.of(new TopicPartition(topic, 0)));
            assertThrows(NoOffsetForPartitionException.class, () -> c.poll(Duration.ofSeconds(10)));
        }
    }

    @Test
    void autoCommitCommitsConsumedOffsets() throws Exception {
        String topic = K.topic("autocommit");
        String group = K.group("autocommit");
        K.produce(bs(), topic, 0, 6);
        TopicPartition tp = new TopicPartition(topic, 0);
        try (KafkaConsumer<String, String> c = K.consumer(bs(), ConsumerConfig.GROUP_ID_CONFIG, group,
                ConsumerConfig.GROUP_PROTOCOL_CONFIG, "classic",
                ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, true, ConsumerConfig.AUTO_COMMIT_INTERVAL_MS_CONFIG, 100)) {
            c.subscribe(List.of(topic));
            K.pollN(c, 6, Duration.ofSeconds(30));
            K.waitUntil("auto commit of offset 6", Duration.ofSeconds(20), () -> {
                c.poll(Duration.ofMillis(50));
                OffsetAndMetadata om = c.committed(Set.of(tp)).get(tp);
                return om != null && om.offset() == 6;
            });
        }
    }

    @Test
    void offsetsForTimes() throws Exception {
        String topic = K.topic("times");
        try (Admin a = broker.get().admin()) {
            K.createTopic(a, topic, 1);
        }
        long base = System.currentTimeMillis() - 60_000;
        try (KafkaProducer<String, String> p = K.producer(bs())) {
            for (int i = 0; i < 5; i++) {
                p.send(new ProducerRecord<>(topic, 0, base + i * 1000L, "k", "t" + i)).get(30, TimeUnit.SECONDS);
            }
        }
        TopicPartition tp = new TopicPartition(topic, 0);
        try (KafkaConsumer<String, String> c = K.consumer(bs())) {
            Map<TopicPartition, OffsetAndTimestamp> r = c.offsetsForTimes(Map.of(tp, base + 2500));
            assertNotNull(r.get(tp));
            assertEquals(3, r.get(tp).offset());
            assertEquals(base + 3000, r.get(tp).timestamp());
            assertEquals(0, c.offsetsForTimes(Map.of(tp, 0L)).get(tp).offset());
            assertEquals(2, c.offsetsForTimes(Map.of(tp, base + 2000)).get(tp).offset());
            assertNull(c.offsetsForTimes(Map.of(tp, base + 10_000)).get(tp), "no record that late");
            c.assign(List.of(tp));
            c.seek(tp, r.get(tp).offset());
            ConsumerRecord<String, String> rec = K.pollN(c, 1, Duration.ofSeconds(20)).get(0);
            assertEquals("t3", rec.value());
            assertEquals(base + 3000, rec.timestamp());
        }
    }

    @Test
    void pauseAndResume() throws Exception {
        String topic = K.topic("pause");
        try (Admin a = broker.get().admin()) {
            K.createTopic(a, topic, 2);
        }
        K.produce(bs(), topic, 0, 5);
        K.produce(bs(), topic, 1, 5);
        TopicPartition p0 = new TopicPartition(topic, 0);
        TopicPartition p1 = new TopicPartition(topic, 1);
        try (KafkaConsumer<String, String> c = K.consumer(bs())) {
            c.assign(List.of(p0, p1));
            c.pause(List.of(p0));
            assertEquals(Set.of(p0), c.paused());
            List<ConsumerRecord<String, String>> got = K.pollN(c, 5, Duration.ofSeconds(20));
            assertTrue(got.stream().allMatch(r -> r.partition() == 1), got.toString());
            ConsumerRecords<String, String> more = c.poll(Duration.ofMillis(500));
            assertTrue(more.isEmpty(), "paused partition delivered " + more.count());
            assertEquals(0, c.position(p0));
            c.resume(List.of(p0));
            assertTrue(c.paused().isEmpty());
            List<ConsumerRecord<String, String>> after = K.pollN(c, 5, Duration.ofSeconds(20));
            assertTrue(after.stream().allMatch(r -> r.partition() == 0), after.toString());
            assertEquals(5, c.position(p0));
            assertEquals(5, c.position(p1));
        }
    }

    @Test
    void readCommittedSeesEverythingWithoutTransactions() throws Exception {
        String topic = K.topic("readcommitted");
        K.produce(bs(), topic, 0, 7);
        TopicPartition tp = new TopicPartition(topic, 0);
        try (KafkaConsumer<String, String> c = K.consumer(bs(), ConsumerConfig.ISOLATION_LEVEL_CONFIG, "read_committed")) {
            // the last stable offset equals the high watermark when there are no transactions
            assertEquals(Map.of(tp, 7L), c.endOffsets(List.of(tp)));
            c.assign(List.of(tp));
            assertEquals(7, K.pollN(c, 7, Duration.ofSeconds(20)).size());
        }
    }

    @Test
    void recordsLargerThanTheFetchSizesStillArrive() throws Exception {
        // KIP-74: the first batch is returned even when it exceeds fetch.max.bytes / max.partition.fetch.bytes
        String topic = K.topic("bigfetch");
        String big = "x".repeat(10_000);
        try (KafkaProducer<String, String> p = K.producer(bs(), "linger.ms", 0, "batch.size", 1)) {
            for (int i = 0; i < 5; i++) {
                p.send(new ProducerRecord<>(topic, 0, "k" + i, i + big)).get(30, TimeUnit.SECONDS);
            }
        }
        try (KafkaConsumer<String, String> c = K.consumer(bs(), ConsumerConfig.MAX_PARTITION_FETCH_BYTES_CONFIG, 1000,
                ConsumerConfig.FETCH_MAX_BYTES_CONFIG, 1000)) {
            c.assign(List.of(new TopicPartition(topic, 0)));
            List<ConsumerRecord<String, String>> got = K.pollN(c, 5, Duration.ofSeconds(30));
            for (int i = 0; i < 5; i++) {
                assertEquals(i + big, got.get(i).value());
            }
        }
    }

    @Test
    void staticMemberIsReplacedWithoutWaitingForItsSession() throws Exception {
        String topic = K.topic("static");
        String group = K.group("static");
        try (Admin a = broker.get().admin()) {
            K.createTopic(a, topic, 3);
        }
        Set<TopicPartition> all = new HashSet<>(tps(topic, 3));
        Object[] cfg = {ConsumerConfig.GROUP_ID_CONFIG, group, ConsumerConfig.GROUP_PROTOCOL_CONFIG, "classic",
                ConsumerConfig.GROUP_INSTANCE_ID_CONFIG, "instance-1",
                ConsumerConfig.SESSION_TIMEOUT_MS_CONFIG, 45000, ConsumerConfig.MAX_POLL_INTERVAL_MS_CONFIG, 45000,
                ConsumerConfig.HEARTBEAT_INTERVAL_MS_CONFIG, 1000};
        try (KafkaConsumer<String, String> c1 = K.consumer(bs(), cfg)) {
            c1.subscribe(List.of(topic));
            pollAll(List.of(c1), "static member assigned", () -> c1.assignment().equals(all));
            try (Admin a = broker.get().admin()) {
                var d = K.get(a.describeConsumerGroups(List.of(group)).all()).get(group);
                assertEquals(java.util.Optional.of("instance-1"), d.members().iterator().next().groupInstanceId());
            }
        } // a static member does not send LeaveGroup on close: the group keeps it for session.timeout.ms
        long start = System.nanoTime();
        try (KafkaConsumer<String, String> c2 = K.consumer(bs(), cfg)) {
            c2.subscribe(List.of(topic));
            pollAll(List.of(c2), "replacement static member assigned", () -> c2.assignment().equals(all));
        }
        long ms = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - start);
        assertTrue(ms < 20_000, "the same group.instance.id took over in " + ms + " ms (session timeout 45 s)");
    }

    @Test
    void patternSubscription() throws Exception {
        String prefix = K.topic("pat");
        try (Admin a = broker.get().admin()) {
            K.createTopic(a, prefix + "-a", 1);
            K.createTopic(a, prefix + "-b", 1);
            K.createTopic(a, "other-" + prefix, 1);
        }
        K.produce(bs(), prefix + "-a", 0, 2);
        K.produce(bs(), prefix + "-b", 0, 3);
        K.produce(bs(), "other-" + prefix, 0, 4);
        try (KafkaConsumer<String, String> c = member(K.group("pattern"), RangeAssignor.class.getName())) {
            c.subscribe(java.util.regex.Pattern.compile(java.util.regex.Pattern.quote(prefix) + "-.*"));
            List<ConsumerRecord<String, String>> got = K.pollN(c, 5, Duration.ofSeconds(30));
            assertEquals(Set.of(prefix + "-a", prefix + "-b"), got.stream().map(ConsumerRecord::topic).collect(Collectors.toSet()));
            assertTrue(c.poll(Duration.ofMillis(500)).isEmpty());
        }
    }

    @Test
    void seekIntoTheMiddleOfACompressedBatch() throws Exception {
        String topic = K.topic("midbatch");
        try (KafkaProducer<String, String> p = K.producer(bs(), "compression.type", "lz4", "linger.ms", 50,
                "batch.size", 1 << 20)) {
            for (int i = 0; i < 100; i++) {
                p.send(new ProducerRecord<>(topic, 0, "k", "m" + i));
            }
            p.flush();
        }
        TopicPartition tp = new TopicPartition(topic, 0);
        try (KafkaConsumer<String, String> c = K.consumer(bs())) {
            c.assign(List.of(tp));
            c.seek(tp, 57);
            List<ConsumerRecord<String, String>> got = K.pollN(c, 43, Duration.ofSeconds(20));
            assertEquals(57, got.get(0).offset());
            assertEquals("m57", got.get(0).value());
            assertEquals(99, got.get(42).offset());
        }
    }

    @Test
    void addedPartitionsAreAssignedAfterARebalance() throws Exception {
        String topic = K.topic("grow");
        String group = K.group("grow");
        try (Admin a = broker.get().admin()) {
            K.createTopic(a, topic, 2);
            Recorder rec = new Recorder("A");
            try (KafkaConsumer<String, String> c = K.consumer(bs(), ConsumerConfig.GROUP_ID_CONFIG, group,
                    ConsumerConfig.GROUP_PROTOCOL_CONFIG, "classic", ConsumerConfig.METADATA_MAX_AGE_CONFIG, 500)) {
                c.subscribe(List.of(topic), rec);
                pollAll(List.of(c), "2 partitions", () -> c.assignment().size() == 2);
                a.createPartitions(Map.of(topic, org.apache.kafka.clients.admin.NewPartitions.increaseTo(4)))
                        .all().get(30, TimeUnit.SECONDS);
                pollAll(List.of(c), "4 partitions after createPartitions", () -> c.assignment().size() == 4);
                assertEquals(new HashSet<>(tps(topic, 4)), c.assignment());
            }
        }
    }

    @Test
    void crashedMemberIsExpiredAfterItsSessionTimeout() throws Exception {
        String topic = K.topic("crash");
        String group = K.group("crash");
        try (Admin a = broker.get().admin()) {
            K.createTopic(a, topic, 2);
        }
        Set<TopicPartition> all = new HashSet<>(tps(topic, 2));
        try (KafkaConsumer<String, String> a = member(group, RangeAssignor.class.getName());
             Admin admin = broker.get().admin()) {
            a.subscribe(List.of(topic));
            pollAll(List.of(a), "A owns both", () -> a.assignment().equals(all));
            // a second member in another JVM (session.timeout.ms=6000), killed with SIGKILL once it owns a partition
            Process other = new ProcessBuilder(java.nio.file.Paths.get(System.getProperty("java.home"), "bin", "java").toString(),
                    "-cp", Tool.classPath(), "-Dorg.slf4j.simpleLogger.defaultLogLevel=error", Tool.CONSOLE_CONSUMER,
                    "--bootstrap-server", bs(), "--topic", topic, "--group", group,
                    "--command-property", "group.protocol=classic", "--command-property", "session.timeout.ms=6000",
                    "--command-property", "heartbeat.interval.ms=500")
                    .redirectErrorStream(true).redirectOutput(ProcessBuilder.Redirect.DISCARD).start();
            long spawned = System.nanoTime();
            try {
                pollAll(List.of(a), "the other member takes a partition", () -> a.assignment().size() == 1);
                System.err.println("crashed member: joined after " + TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - spawned) + " ms");
                var d = K.get(admin.describeConsumerGroups(List.of(group)).all()).get(group);
                assertEquals(2, d.members().size());
            } finally {
                other.destroyForcibly();
                other.waitFor(10, TimeUnit.SECONDS);
            }
            long killed = System.nanoTime();
            pollAll(List.of(a), "A owns both again after the crash", () -> a.assignment().equals(all));
            long ms = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - killed);
            System.err.println("crashed member: partitions back after " + ms + " ms");
            assertTrue(ms >= 4000, "expired after " + ms + " ms, before its 6 s session timeout");
            assertTrue(ms < 20_000, "expired after " + ms + " ms, long after its 6 s session timeout");
            var d = K.get(admin.describeConsumerGroups(List.of(group)).all()).get(group);
            assertEquals(1, d.members().size());
        }
    }

    @Test
    void recordsCarryThePartitionLeaderEpoch() throws Exception {
        String topic = K.topic("epoch");
        String group = K.group("epoch");
        K.produce(bs(), topic, 0, 3);
        TopicPartition tp = new TopicPartition(topic, 0);
        try (KafkaConsumer<String, String> c = K.consumer(bs(), ConsumerConfig.GROUP_ID_CONFIG, group,
                ConsumerConfig.GROUP_PROTOCOL_CONFIG, "classic")) {
            c.assign(List.of(tp));
            List<ConsumerRecord<String, String>> got = K.pollN(c, 3, Duration.ofSeconds(20));
            c.commitSync();
            // an explicit epoch is stored and returned as sent
            TopicPartition other = new TopicPartition(topic, 0);
            assertEquals(3, c.committed(Set.of(other)).get(other).offset());
            // Kafka stamps the leader's epoch into appended batches, so records carry leaderEpoch 0 and
            // consumers commit it (KIP-320). (Was a Fjord bug, fixed in 1f5baba: batches kept the producer's -1.)
            assertEquals(java.util.Optional.of(0), got.get(0).leaderEpoch());
            assertEquals(java.util.Optional.of(0), c.committed(Set.of(tp)).get(tp).leaderEpoch());
        }
    }

    @Test
    void explicitCommittedLeaderEpochRoundTrips() throws Exception {
        String topic = K.topic("epoch-commit");
        try (Admin a = broker.get().admin()) {
            K.createTopic(a, topic, 1);
        }
        TopicPartition tp = new TopicPartition(topic, 0);
        try (KafkaConsumer<String, String> c = K.consumer(bs(), ConsumerConfig.GROUP_ID_CONFIG, K.group("epoch-commit"),
                ConsumerConfig.GROUP_PROTOCOL_CONFIG, "classic")) {
            c.commitSync(Map.of(tp, new OffsetAndMetadata(0, java.util.Optional.of(7), "m")));
            OffsetAndMetadata om = c.committed(Set.of(tp)).get(tp);
            assertEquals(java.util.Optional.of(7), om.leaderEpoch());
            assertEquals("m", om.metadata());
        }
    }

    @Test
    void longPollWakesOnProduceAndHonoursFetchMaxWait() throws Exception {
        String topic = K.topic("longpoll");
        K.produce(bs(), topic, 0, 1);
        TopicPartition tp = new TopicPartition(topic, 0);
        try (KafkaConsumer<String, String> c = K.consumer(bs(), ConsumerConfig.FETCH_MAX_WAIT_MS_CONFIG, 6000)) {
            c.assign(List.of(tp));
            c.seekToEnd(List.of(tp));
            assertEquals(1, c.position(tp));
            c.poll(Duration.ofMillis(200)); // a fetch is now parked at the log end
            CompletableFuture<Long> producedAt = CompletableFuture.supplyAsync(() -> {
                FjordBroker.sleepQuietly(500);
                try {
                    K.produce(bs(), topic, 0, 1);
                } catch (Exception e) {
                    throw new RuntimeException(e);
                }
                return System.nanoTime();
            });
            List<ConsumerRecord<String, String>> got = K.pollN(c, 1, Duration.ofSeconds(5));
            long now = System.nanoTime();
            long lag = TimeUnit.NANOSECONDS.toMillis(now - producedAt.get(10, TimeUnit.SECONDS));
            assertEquals(1, got.get(0).offset());
            assertTrue(lag < 2500, "the parked fetch returned " + lag + " ms after the produce (fetch.max.wait.ms=6000)");
        }
        // fetch.min.bytes larger than the log: the broker answers after fetch.max.wait.ms with what it has
        try (KafkaConsumer<String, String> c = K.consumer(bs(), ConsumerConfig.FETCH_MIN_BYTES_CONFIG, 1_000_000,
                ConsumerConfig.FETCH_MAX_WAIT_MS_CONFIG, 1500)) {
            c.assign(List.of(tp));
            c.seekToBeginning(List.of(tp));
            c.position(tp);
            long start = System.nanoTime();
            List<ConsumerRecord<String, String>> got = K.pollN(c, 2, Duration.ofSeconds(15));
            long ms = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - start);
            assertEquals(2, got.size());
            assertTrue(ms >= 1000, "fetch.min.bytes not honoured: answered after " + ms + " ms");
        }
    }

    @Test
    void sessionTimeoutBelowTheBrokerMinimumIsRefused() throws Exception {
        String topic = K.topic("badsession");
        K.produce(bs(), topic, 0, 1);
        // group.min.session.timeout.ms is 6000 on both Kafka and Fjord
        try (KafkaConsumer<String, String> c = K.consumer(bs(), ConsumerConfig.GROUP_ID_CONFIG, K.group("badsession"),
                ConsumerConfig.GROUP_PROTOCOL_CONFIG, "classic", ConsumerConfig.SESSION_TIMEOUT_MS_CONFIG, 3000,
                ConsumerConfig.HEARTBEAT_INTERVAL_MS_CONFIG, 1000)) {
            c.subscribe(List.of(topic));
            assertThrows(org.apache.kafka.common.errors.InvalidSessionTimeoutException.class, () -> {
                for (int i = 0; i < 100; i++) {
                    c.poll(Duration.ofMillis(100));
                }
            });
        }
    }

    @Test
    void membersWithoutACommonAssignorAreRefused() throws Exception {
        String topic = K.topic("protocols");
        String group = K.group("protocols");
        try (Admin a = broker.get().admin()) {
            K.createTopic(a, topic, 2);
        }
        try (KafkaConsumer<String, String> ra = member(group, RangeAssignor.class.getName());
             KafkaConsumer<String, String> rr = member(group, org.apache.kafka.clients.consumer.RoundRobinAssignor.class.getName())) {
            ra.subscribe(List.of(topic));
            pollAll(List.of(ra), "range member assigned", () -> ra.assignment().size() == 2);
            rr.subscribe(List.of(topic));
            assertThrows(org.apache.kafka.common.errors.InconsistentGroupProtocolException.class, () -> {
                for (int i = 0; i < 100; i++) {
                    rr.poll(Duration.ofMillis(100));
                    ra.poll(Duration.ofMillis(10));
                }
            });
            // the first member keeps its partitions
            ra.poll(Duration.ofMillis(100));
            assertEquals(2, ra.assignment().size());
        }
    }

    @Test
    void offsetMetadataTooLargeIsRefused() throws Exception {
        String topic = K.topic("bigmeta");
        try (Admin a = broker.get().admin()) {
            K.createTopic(a, topic, 1);
        }
        TopicPartition tp = new TopicPartition(topic, 0);
        try (KafkaConsumer<String, String> c = K.consumer(bs(), ConsumerConfig.GROUP_ID_CONFIG, K.group("bigmeta"),
                ConsumerConfig.GROUP_PROTOCOL_CONFIG, "classic")) {
            // offset.metadata.max.bytes is 4096 by default
            assertThrows(org.apache.kafka.common.errors.OffsetMetadataTooLarge.class,
                    () -> c.commitSync(Map.of(tp, new OffsetAndMetadata(0, "m".repeat(5000)))));
            c.commitSync(Map.of(tp, new OffsetAndMetadata(0, "m".repeat(4000))));
            assertEquals(4000, c.committed(Set.of(tp)).get(tp).metadata().length());
        }
    }
}
