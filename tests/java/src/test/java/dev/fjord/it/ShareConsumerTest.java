package dev.fjord.it;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collection;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.TreeMap;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.BooleanSupplier;
import java.util.function.Consumer;
import java.util.stream.Collectors;
import java.util.stream.IntStream;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AlterConfigOp;
import org.apache.kafka.clients.admin.Config;
import org.apache.kafka.clients.admin.ConfigEntry;
import org.apache.kafka.clients.admin.GroupListing;
import org.apache.kafka.clients.admin.ListGroupsOptions;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.admin.ShareGroupDescription;
import org.apache.kafka.clients.admin.ShareMemberDescription;
import org.apache.kafka.clients.consumer.AcknowledgeType;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaShareConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.GroupState;
import org.apache.kafka.common.GroupType;
import org.apache.kafka.common.KafkaException;
import org.apache.kafka.common.TopicIdPartition;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.config.ConfigResource;
import org.apache.kafka.common.errors.GroupIdNotFoundException;
import org.apache.kafka.common.errors.InvalidConfigurationException;
import org.apache.kafka.common.errors.InvalidRecordStateException;
import org.apache.kafka.common.header.Header;
import org.apache.kafka.common.header.internals.RecordHeader;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * Share groups (KIP-932) through the Apache Kafka 4.4 {@link KafkaShareConsumer}: implicit and
 * explicit acknowledgement, redelivery counts, dead letters (KIP-1191), several members on one
 * partition, the acquisition lock, and the Admin client's group configs, ListGroups and
 * DescribeShareGroups. Every expectation is Kafka 4.4's (share groups are on by default there:
 * share.version=2), so {@code run --kafka} runs the class too. Two adjustments: the lock duration
 * (Kafka bounds the group config by its broker's group.share.min.record.lock.duration.ms, 15 s by
 * default; Fjord takes 1 s), and the dead letters' original headers and timestamp, which only Fjord
 * copies (asserted against Fjord only). Known differences are FjordBug markers.
 */
@Timeout(value = 90, unit = TimeUnit.SECONDS)
class ShareConsumerTest {
    @RegisterExtension
    static BrokerExtension broker = new BrokerExtension();

    private static final Duration WAIT = Duration.ofSeconds(30);

    private String bs() {
        return broker.bootstrap();
    }

    // ------------------------------------------------------------------ helpers

    private KafkaShareConsumer<String, String> share(String group, Object... kv) {
        return K.shareConsumer(bs(), group, kv);
    }

    private KafkaShareConsumer<String, String> explicit(String group, Object... kv) {
        Object[] all = new Object[kv.length + 2];
        all[0] = "share.acknowledgement.mode";
        all[1] = "explicit";
        System.arraycopy(kv, 0, all, 2, kv.length);
        return share(group, all);
    }

    private static ConfigResource groupResource(String group) {
        return new ConfigResource(ConfigResource.Type.GROUP, group);
    }

    private static Config describeGroupConfigs(Admin a, String group) throws Exception {
        return a.describeConfigs(List.of(groupResource(group))).all().get(30, TimeUnit.SECONDS).get(groupResource(group));
    }

    /**
     * Sets group configs (share.auto.offset.reset=earliest plus kv) with IncrementalAlterConfigs
     * and waits until DescribeConfigs shows them (Kafka propagates them through its metadata log).
     */
    private void groupConfigs(String group, String... kv) throws Exception {
        Map<String, String> want = new java.util.LinkedHashMap<>();
        want.put("share.auto.offset.reset", "earliest");
        want.putAll(K.map(kv));
        try (Admin a = broker.get().admin()) {
            List<AlterConfigOp> ops = want.entrySet().stream()
                    .map(e -> new AlterConfigOp(new ConfigEntry(e.getKey(), e.getValue()), AlterConfigOp.OpType.SET))
                    .collect(Collectors.toList());
            a.incrementalAlterConfigs(Map.of(groupResource(group), ops)).all().get(30, TimeUnit.SECONDS);
            K.waitUntil("group configs " + want + " of " + group, WAIT, () -> {
                try {
                    Config c = describeGroupConfigs(a, group);
                    return want.entrySet().stream().allMatch(e -> c.get(e.getKey()) != null
                            && e.getValue().equals(c.get(e.getKey()).value()));
                } catch (Exception e) {
                    throw new RuntimeException(e);
                }
            });
        }
    }

    private String topic(String prefix, int partitions) throws Exception {
        String t = K.topic(prefix);
        try (Admin a = broker.get().admin()) {
            K.createTopic(a, t, partitions);
        }
        return t;
    }

    /** Polls until done holds (each record handed to each), failing after timeout. */
    private static void pollUntil(KafkaShareConsumer<String, String> c, String what, Duration timeout,
            BooleanSupplier done, Consumer<ConsumerRecord<String, String>> each) {
        long deadline = System.nanoTime() + timeout.toNanos();
        while (!done.getAsBoolean()) {
            if (System.nanoTime() > deadline) {
                throw new AssertionError("timed out after " + timeout + " waiting for " + what);
            }
            for (ConsumerRecord<String, String> r : c.poll(Duration.ofMillis(200))) {
                each.accept(r);
            }
        }
    }

    private static void assertNoCommitErrors(Map<TopicIdPartition, Optional<KafkaException>> result) {
        result.forEach((tp, e) -> assertTrue(e.isEmpty(), "commitSync: " + tp + " -> " + e));
    }

    private static short deliveries(ConsumerRecord<?, ?> r) {
        Optional<Short> d = r.deliveryCount();
        assertTrue(d.isPresent(), "a share consumer's record has a delivery count: " + r);
        return d.get();
    }

    /**
     * Nothing but a fresh sentinel record reaches the group any more: produces it and polls (in
     * the given consumer, accepting everything) until it arrives; fails if anything else arrives
     * first. A record that was accepted, rejected or archived must never come back.
     */
    private void onlySentinelArrives(KafkaShareConsumer<String, String> c, String topic, boolean explicitAcks) throws Exception {
        String marker = "sentinel-" + System.nanoTime();
        try (KafkaProducer<String, String> p = K.producer(bs())) {
            p.send(new ProducerRecord<>(topic, 0, marker, marker)).get(30, TimeUnit.SECONDS);
        }
        List<String> others = new ArrayList<>();
        boolean[] seen = {false};
        pollUntil(c, "the sentinel record", WAIT, () -> seen[0], r -> {
            if (marker.equals(r.key())) {
                seen[0] = true;
            } else {
                others.add(r.offset() + ":" + r.value() + " (delivery " + r.deliveryCount().orElse((short) -1) + ")");
            }
            if (explicitAcks) {
                c.acknowledge(r, AcknowledgeType.ACCEPT);
            }
        });
        assertNoCommitErrors(c.commitSync());
        assertEquals(List.of(), others, "records delivered again after they were settled");
    }

    // ------------------------------------------------------------------ a. implicit acknowledgement

    @Test
    void implicitAcknowledgementDeliversEachRecordOnce() throws Exception {
        String topic = topic("share-implicit", 1);
        String group = K.group("share-implicit");
        groupConfigs(group);
        int n = 50;
        K.produce(bs(), topic, 0, n);
        Map<Long, Integer> got = new TreeMap<>();
        List<String> bad = new ArrayList<>();
        try (KafkaShareConsumer<String, String> c = share(group)) {
            c.subscribe(List.of(topic));
            pollUntil(c, n + " records", WAIT, () -> got.size() >= n, r -> {
                if (got.merge(r.offset(), 1, Integer::sum) > 1) {
                    bad.add("offset " + r.offset() + " delivered twice");
                }
                if (!("v" + r.offset()).equals(r.value()) || !("k" + r.offset()).equals(r.key())) {
                    bad.add("offset " + r.offset() + " is " + r.key() + "=" + r.value());
                }
                if (deliveries(r) != 1) {
                    bad.add("offset " + r.offset() + " delivery count " + r.deliveryCount());
                }
            });
            assertNoCommitErrors(c.commitSync());
        }
        assertEquals(List.of(), bad);
        assertEquals(IntStream.range(0, n).mapToObj(Long::valueOf).collect(Collectors.toSet()), got.keySet());
        // the records were accepted: a new member of the group gets none of them
        try (KafkaShareConsumer<String, String> c = share(group)) {
            c.subscribe(List.of(topic));
            onlySentinelArrives(c, topic, false);
        }
    }

    // ------------------------------------------------------------------ b. explicit acknowledgement

    @Test
    void explicitAcceptReleaseReject() throws Exception {
        String topic = topic("share-explicit", 1);
        String group = K.group("share-explicit");
        groupConfigs(group);
        int n = 12;
        K.produce(bs(), topic, 0, n);
        // offset % 3: 0 accept, 1 release (then accept the redelivery), 2 reject
        Map<Long, List<Short>> deliveries = new TreeMap<>();
        try (KafkaShareConsumer<String, String> c = explicit(group)) {
            c.subscribe(List.of(topic));
            BooleanSupplier done = () -> deliveries.size() == n && IntStream.range(0, n).filter(i -> i % 3 == 1)
                    .allMatch(i -> deliveries.get((long) i).size() >= 2);
            pollUntil(c, "every record, and the released ones again", WAIT, done, r -> {
                List<Short> d = deliveries.computeIfAbsent(r.offset(), o -> new ArrayList<>());
                d.add(deliveries(r));
                AcknowledgeType t = switch ((int) (r.offset() % 3)) {
                    case 0 -> AcknowledgeType.ACCEPT;
                    case 1 -> d.size() == 1 ? AcknowledgeType.RELEASE : AcknowledgeType.ACCEPT;
                    default -> AcknowledgeType.REJECT;
                };
                c.acknowledge(r, t);
            });
            assertNoCommitErrors(c.commitSync());
            for (int i = 0; i < n; i++) {
                List<Short> want = i % 3 == 1 ? List.of((short) 1, (short) 2) : List.of((short) 1);
                assertEquals(want, deliveries.get((long) i), "delivery counts of offset " + i);
            }
            // accepted and rejected records never come back, nor the accepted redeliveries
            onlySentinelArrives(c, topic, true);
        }
    }

    @Test
    void explicitModeRefusesAPollBeforeEveryRecordIsAcknowledged() throws Exception {
        String topic = topic("share-unacked", 1);
        String group = K.group("share-unacked");
        groupConfigs(group);
        K.produce(bs(), topic, 0, 3);
        try (KafkaShareConsumer<String, String> c = explicit(group)) {
            c.subscribe(List.of(topic));
            List<ConsumerRecord<String, String>> got = new ArrayList<>();
            pollUntil(c, "a record", WAIT, () -> !got.isEmpty(), got::add);
            assertThrows(IllegalStateException.class, () -> c.poll(Duration.ofMillis(100)));
            got.forEach(r -> c.acknowledge(r, AcknowledgeType.ACCEPT));
            assertNoCommitErrors(c.commitSync());
        }
    }

    // ------------------------------------------------------------------ c. dead letters

    private static final String COPY_RECORD = "errors.deadletterqueue.copy.record.enable";

    /** A dead-letter topic as Kafka wants it: existing, "dlq."-prefixed, errors.deadletterqueue.group.enable=true. */
    private String deadLetterTopic() throws Exception {
        // Kafka: the DLQ topic must exist (errors.deadletterqueue.auto.create.topics.enable=false),
        // carry errors.deadletterqueue.group.enable=true and start with "dlq." (the default prefix)
        String dlq = "dlq." + K.topic("share");
        try (Admin a = broker.get().admin()) {
            a.createTopics(List.of(new NewTopic(dlq, 1, (short) 1)
                    .configs(Map.of("errors.deadletterqueue.group.enable", "true")))).all().get(30, TimeUnit.SECONDS);
            K.awaitTopic(a, dlq, 1);
        }
        return dlq;
    }

    /** What one dead-letter run produced: the source records' offsets and the DLQ's records by key. */
    private record DeadLetters(String topic, String group, long ts, long releasedOffset, long rejectedOffset,
            Map<String, ConsumerRecord<String, String>> byKey) {
    }

    /**
     * Two records with a header and an old timestamp; a limit of 2 deliveries; the first released
     * until it stops coming back, the second rejected. Returns the two dead letters (keyed by the
     * source record's value, since a header-only dead letter has no key).
     */
    private DeadLetters releaseAndReject(String group, String dlq) throws Exception {
        String topic = topic("share-dlq-src", 1);
        long ts = System.currentTimeMillis() - 60_000;
        long releasedOffset;
        long rejectedOffset;
        try (KafkaProducer<String, String> p = K.producer(bs())) {
            releasedOffset = p.send(new ProducerRecord<>(topic, 0, ts, "key-released", "value-released",
                    List.<Header>of(new RecordHeader("app", "h1".getBytes(StandardCharsets.UTF_8))))).get(30, TimeUnit.SECONDS).offset();
            rejectedOffset = p.send(new ProducerRecord<>(topic, 0, ts + 1, "key-rejected", "value-rejected",
                    List.<Header>of(new RecordHeader("app", "h2".getBytes(StandardCharsets.UTF_8))))).get(30, TimeUnit.SECONDS).offset();
        }
        Map<Long, List<Short>> deliveries = new TreeMap<>();
        try (KafkaShareConsumer<String, String> c = explicit(group)) {
            c.subscribe(List.of(topic));
            // the released record comes back once (delivery 2 = the limit) and is archived at its second release
            pollUntil(c, "the released record twice and the rejected one", WAIT,
                    () -> deliveries.getOrDefault(releasedOffset, List.of()).size() >= 2 && deliveries.containsKey(rejectedOffset),
                    r -> {
                        deliveries.computeIfAbsent(r.offset(), o -> new ArrayList<>()).add(deliveries(r));
                        c.acknowledge(r, r.offset() == rejectedOffset ? AcknowledgeType.REJECT : AcknowledgeType.RELEASE);
                    });
            assertNoCommitErrors(c.commitSync());
            assertEquals(Map.of(releasedOffset, List.of((short) 1, (short) 2), rejectedOffset, List.of((short) 1)), deliveries);
            // archived: neither comes back
            onlySentinelArrives(c, topic, true);
        }
        List<ConsumerRecord<String, String>> dead = K.readAll(bs(), List.of(new TopicPartition(dlq, 0)), 2);
        Map<String, ConsumerRecord<String, String>> byOffset = new HashMap<>();
        for (ConsumerRecord<String, String> r : dead) {
            String o = header(r, "__dlq.errors.offset");
            String key = Long.toString(releasedOffset).equals(o) ? "released" : Long.toString(rejectedOffset).equals(o) ? "rejected" : null;
            assertNotNull(key, "a dead letter for neither record: " + r);
            assertNull(byOffset.put(key, r), "two dead letters for one record: " + dead);
        }
        return new DeadLetters(topic, group, ts, releasedOffset, rejectedOffset, byOffset);
    }

    /** The __dlq.errors.* context headers of both dead letters, except the delivery count. */
    private static void checkContextHeaders(DeadLetters d) {
        for (String kind : List.of("released", "rejected")) {
            ConsumerRecord<String, String> r = d.byKey().get(kind);
            String what = kind + " dead letter " + r + " " + headers(r);
            assertEquals(d.topic(), header(r, "__dlq.errors.topic"), what);
            assertEquals("0", header(r, "__dlq.errors.partition"), what);
            assertEquals(Long.toString(kind.equals("released") ? d.releasedOffset() : d.rejectedOffset()),
                    header(r, "__dlq.errors.offset"), what);
            assertEquals(d.group(), header(r, "__dlq.errors.group"), what);
            String msg = header(r, "__dlq.errors.message");
            assertTrue(msg != null && !msg.isBlank(), what);
        }
    }

    /** __dlq.errors.delivery.count: 2 for the record released up to the limit, 1 for the rejected one. */
    private static void checkDeliveryCountHeaders(DeadLetters d) throws Exception {
        FjordBug.fixed("a dead letter's __dlq.errors.delivery.count was 0 when the record was at the start of the "
                + "share-partition's window (the released-past-the-limit record at offset 0 here: read after the "
                + "window had moved past it); Kafka sends its delivery count (2)", () -> {
                    assertEquals("2", header(d.byKey().get("released"), "__dlq.errors.delivery.count"),
                            "released: " + headers(d.byKey().get("released")));
                    assertEquals("1", header(d.byKey().get("rejected"), "__dlq.errors.delivery.count"),
                            "rejected: " + headers(d.byKey().get("rejected")));
                });
    }

    @Test
    void deadLettersCopyTheRecordWithCopyRecordEnabled() throws Exception {
        String dlq = deadLetterTopic();
        String group = K.group("share-dlq-copy");
        groupConfigs(group, "share.delivery.count.limit", "2", "errors.deadletterqueue.topic.name", dlq);
        try {
            groupConfigs(group, COPY_RECORD, "true");
        } catch (ExecutionException e) {
            // FJORD BUG (deadLetterCopyRecordConfigIsAGroupConfig): Fjord refuses the key, and always copies
            if (FjordBroker.isExternal() || !(e.getCause() instanceof InvalidConfigurationException)) {
                throw e;
            }
        }
        DeadLetters d = releaseAndReject(group, dlq);
        for (String kind : List.of("released", "rejected")) {
            ConsumerRecord<String, String> r = d.byKey().get(kind);
            String what = kind + " dead letter " + r + " " + headers(r);
            assertEquals("key-" + kind, r.key(), what);
            assertEquals("value-" + kind, r.value(), what);
            if (!FjordBroker.isExternal()) {
                // Fjord also copies the original headers and timestamp; Kafka 4.4 copies key and value
                // only (its dead letter has just the __dlq.errors.* headers and the time it was written)
                assertEquals(kind.equals("released") ? "h1" : "h2", header(r, "app"), what);
                assertEquals(kind.equals("released") ? d.ts() : d.ts() + 1, r.timestamp(), "the original timestamp: " + what);
            }
        }
        checkContextHeaders(d);
        checkDeliveryCountHeaders(d);
    }

    @Test
    void deadLetterCopyRecordConfigIsAGroupConfig() throws Exception {
        String group = K.group("share-dlq-conf");
        try (Admin a = broker.get().admin()) {
            FjordBug.fixed("the group config " + COPY_RECORD + " (Kafka 4.4, default false) is unknown: "
                    + "DescribeConfigs GROUP does not list it, IncrementalAlterConfigs SET " + COPY_RECORD
                    + "=true fails with INVALID_CONFIG 'unknown group config'", () -> {
                        ConfigEntry e = describeGroupConfigs(a, group).get(COPY_RECORD);
                        assertNotNull(e, COPY_RECORD + " described");
                        assertEquals("false", e.value());
                        groupConfigs(group, COPY_RECORD, "true");
                    });
        }
    }

    @Test
    void deadLettersCarryOnlyTheContextHeadersByDefault() throws Exception {
        String dlq = deadLetterTopic();
        String group = K.group("share-dlq");
        groupConfigs(group, "share.delivery.count.limit", "2", "errors.deadletterqueue.topic.name", dlq);
        DeadLetters d = releaseAndReject(group, dlq);
        checkContextHeaders(d);
        FjordBug.fixed("with " + COPY_RECORD + " at its default (false) a dead letter still copies the original "
                + "key, value and headers; Kafka writes a record with null key and value and only the "
                + "__dlq.errors.* headers", () -> {
                    for (String kind : List.of("released", "rejected")) {
                        ConsumerRecord<String, String> r = d.byKey().get(kind);
                        String what = kind + " dead letter " + r + " " + headers(r);
                        assertNull(r.key(), what);
                        assertNull(r.value(), what);
                        assertNull(r.headers().lastHeader("app"), what);
                    }
                });
        checkDeliveryCountHeaders(d);
    }

    private static String header(ConsumerRecord<?, ?> r, String key) {
        Header h = r.headers().lastHeader(key);
        return h == null || h.value() == null ? null : new String(h.value(), StandardCharsets.UTF_8);
    }

    private static String headers(ConsumerRecord<?, ?> r) {
        List<String> out = new ArrayList<>();
        r.headers().forEach(h -> out.add(h.key() + "=" + (h.value() == null ? null : new String(h.value(), StandardCharsets.UTF_8))));
        return out.toString();
    }

    // ------------------------------------------------------------------ d. concurrent members

    @ParameterizedTest(name = "{0} members")
    @ValueSource(ints = {2, 4})
    void membersShareOnePartitionWithoutDuplicates(int members) throws Exception {
        String topic = topic("share-many", 1);
        String group = K.group("share-many");
        groupConfigs(group);
        int n = 600;
        Map<Long, String> owner = new ConcurrentHashMap<>();
        List<String> duplicates = java.util.Collections.synchronizedList(new ArrayList<>());
        Map<String, AtomicInteger> perMember = new ConcurrentHashMap<>();
        CountDownLatch polling = new CountDownLatch(members);
        ExecutorService pool = Executors.newFixedThreadPool(members);
        try {
            List<Future<?>> fs = new ArrayList<>();
            for (int m = 0; m < members; m++) {
                String name = "m" + m;
                perMember.put(name, new AtomicInteger());
                fs.add(pool.submit(() -> {
                    try (KafkaShareConsumer<String, String> c = share(group, ConsumerConfig.CLIENT_ID_CONFIG, name,
                            ConsumerConfig.MAX_POLL_RECORDS_CONFIG, 20)) {
                        c.subscribe(List.of(topic));
                        c.poll(Duration.ofMillis(100)).forEach(r -> duplicates.add("before the producer: " + r));
                        polling.countDown();
                        pollUntil(c, "all " + n + " records in the group", WAIT, () -> owner.size() >= n, r -> {
                            perMember.get(name).incrementAndGet();
                            String before = owner.putIfAbsent(r.offset(), name);
                            if (before != null || deliveries(r) != 1) {
                                duplicates.add("offset " + r.offset() + " to " + name + " (delivery "
                                        + r.deliveryCount() + ", first to " + before + ")");
                            }
                        });
                        assertNoCommitErrors(c.commitSync());
                    }
                    return null;
                }));
            }
            assertTrue(polling.await(30, TimeUnit.SECONDS), "members polling");
            K.produce(bs(), topic, 0, n);
            for (Future<?> f : fs) {
                try {
                    f.get(60, TimeUnit.SECONDS);
                } catch (ExecutionException e) {
                    throw new AssertionError("a member failed: " + e.getCause(), e.getCause());
                }
            }
        } finally {
            pool.shutdownNow();
        }
        assertEquals(List.of(), duplicates, "per member " + perMember);
        assertEquals(LongSet.range(n), owner.keySet(), "per member " + perMember);
        try (KafkaShareConsumer<String, String> c = share(group)) {
            c.subscribe(List.of(topic));
            onlySentinelArrives(c, topic, false);
        }
    }

    private static final class LongSet {
        static Set<Long> range(int n) {
            return IntStream.range(0, n).mapToObj(Long::valueOf).collect(Collectors.toSet());
        }
    }

    // ------------------------------------------------------------------ e. Admin client

    @Test
    void adminGroupConfigsListAndDescribe() throws Exception {
        String topic = topic("share-admin", 1);
        String group = K.group("share-admin");
        try (Admin a = broker.get().admin()) {
            for (String[] bad : new String[][] {
                    {"share.delivery.count.limit", "1"},
                    {"share.delivery.count.limit", "11"},
                    {"share.record.lock.duration.ms", "abc"},
                    {"share.auto.offset.reset", "middle"},
            }) {
                ExecutionException e = assertThrows(ExecutionException.class, () -> a.incrementalAlterConfigs(Map.of(
                        groupResource(group), List.of(new AlterConfigOp(new ConfigEntry(bad[0], bad[1]), AlterConfigOp.OpType.SET))))
                        .all().get(30, TimeUnit.SECONDS), bad[0] + "=" + bad[1]);
                assertInstanceOf(InvalidConfigurationException.class, e.getCause(), bad[0] + "=" + bad[1]);
            }
            groupConfigs(group, "share.delivery.count.limit", "3");
            Config c = describeGroupConfigs(a, group);
            assertEquals("3", c.get("share.delivery.count.limit").value());
            assertEquals(ConfigEntry.ConfigSource.DYNAMIC_GROUP_CONFIG, c.get("share.delivery.count.limit").source());
            assertEquals("earliest", c.get("share.auto.offset.reset").value());
            assertNotNull(c.get("share.record.lock.duration.ms"), "every group config is described: " + c);
            assertEquals("30000", c.get("share.record.lock.duration.ms").value());

            // one invalid entry refuses the whole request: nothing of it is applied
            ExecutionException e = assertThrows(ExecutionException.class, () -> a.incrementalAlterConfigs(Map.of(
                    groupResource(group), List.of(
                            new AlterConfigOp(new ConfigEntry("share.record.lock.duration.ms", "20000"), AlterConfigOp.OpType.SET),
                            new AlterConfigOp(new ConfigEntry("share.delivery.count.limit", "1"), AlterConfigOp.OpType.SET))))
                    .all().get(30, TimeUnit.SECONDS));
            assertInstanceOf(InvalidConfigurationException.class, e.getCause());
            c = describeGroupConfigs(a, group);
            assertEquals("3", c.get("share.delivery.count.limit").value());
            assertEquals("30000", c.get("share.record.lock.duration.ms").value());

            String never = K.group("share-never");
            ExecutionException missing = assertThrows(ExecutionException.class,
                    () -> a.describeShareGroups(List.of(never)).describedGroups().get(never).get(30, TimeUnit.SECONDS));
            assertInstanceOf(GroupIdNotFoundException.class, missing.getCause());

            K.produce(bs(), topic, 0, 3);
            try (KafkaShareConsumer<String, String> sc = share(group, ConsumerConfig.CLIENT_ID_CONFIG, "share-admin-client")) {
                sc.subscribe(List.of(topic));
                List<ConsumerRecord<String, String>> got = new ArrayList<>();
                pollUntil(sc, "3 records", WAIT, () -> got.size() >= 3, got::add);
                assertNoCommitErrors(sc.commitSync());

                ShareGroupDescription[] d = new ShareGroupDescription[1];
                K.waitUntil("a stable share group with its member", WAIT, () -> {
                    try {
                        d[0] = a.describeShareGroups(List.of(group)).describedGroups().get(group).get(10, TimeUnit.SECONDS);
                    } catch (Exception x) {
                        throw new RuntimeException(x);
                    }
                    return d[0].groupState() == GroupState.STABLE && d[0].members().size() == 1
                            && !d[0].members().iterator().next().assignment().topicPartitions().isEmpty();
                });
                assertEquals(group, d[0].groupId());
                assertNotNull(d[0].coordinator());
                assertTrue(d[0].groupEpoch() > 0, d[0].toString());
                ShareMemberDescription m = d[0].members().iterator().next();
                assertEquals("share-admin-client", m.clientId());
                assertFalse(m.consumerId().isEmpty(), m.toString());
                assertTrue(m.memberEpoch() > 0, m.toString());
                assertEquals(Set.of(new TopicPartition(topic, 0)), m.assignment().topicPartitions());

                Collection<GroupListing> shares = a.listGroups(ListGroupsOptions.forShareGroups()).all().get(30, TimeUnit.SECONDS);
                GroupListing l = shares.stream().filter(g -> g.groupId().equals(group)).findFirst()
                        .orElseThrow(() -> new AssertionError(group + " not in " + shares));
                assertEquals(Optional.of(GroupType.SHARE), l.type());
                assertEquals(Optional.of(GroupState.STABLE), l.groupState());
                assertEquals("share", l.protocol());
                assertTrue(a.listGroups().all().get(30, TimeUnit.SECONDS).stream()
                        .anyMatch(g -> g.groupId().equals(group) && g.type().equals(Optional.of(GroupType.SHARE))));
                assertTrue(a.listGroups(ListGroupsOptions.forConsumerGroups()).all().get(30, TimeUnit.SECONDS).stream()
                        .noneMatch(g -> g.groupId().equals(group)), "a share group is not a consumer group");
            }
            // the member left with close(): the group is empty
            K.waitUntil("the member gone", WAIT, () -> {
                try {
                    ShareGroupDescription d = a.describeShareGroups(List.of(group)).describedGroups().get(group).get(10, TimeUnit.SECONDS);
                    return d.members().isEmpty() && d.groupState() == GroupState.EMPTY;
                } catch (Exception x) {
                    throw new RuntimeException(x);
                }
            });
            Collection<GroupListing> empty = a.listGroups(ListGroupsOptions.forShareGroups()
                    .inGroupStates(Set.of(GroupState.EMPTY))).all().get(30, TimeUnit.SECONDS);
            assertTrue(empty.stream().anyMatch(g -> g.groupId().equals(group)), group + " not listed as empty: " + empty);
        }
    }

    @Test
    void groupConfigsAloneDoNotMakeAShareGroup() throws Exception {
        String group = K.group("share-conf-only");
        String refused = K.group("share-conf-refused");
        try (Admin a = broker.get().admin()) {
            groupConfigs(group, "share.delivery.count.limit", "3");
            assertThrows(ExecutionException.class, () -> a.incrementalAlterConfigs(Map.of(groupResource(refused),
                    List.of(new AlterConfigOp(new ConfigEntry("share.delivery.count.limit", "1"), AlterConfigOp.OpType.SET))))
                    .all().get(30, TimeUnit.SECONDS));
            FjordBug.fixed("IncrementalAlterConfigs on a GROUP resource creates an empty share group (even when the "
                    + "alteration is refused): ShareGroupDescribe answers it as Empty and ListGroups lists it; in Kafka "
                    + "group configs exist without a group (GROUP_ID_NOT_FOUND, not listed)", () -> {
                        for (String g : List.of(group, refused)) {
                            ExecutionException e = assertThrows(ExecutionException.class,
                                    () -> a.describeShareGroups(List.of(g)).describedGroups().get(g).get(30, TimeUnit.SECONDS),
                                    g + " described");
                            assertInstanceOf(GroupIdNotFoundException.class, e.getCause());
                            assertTrue(a.listGroups().all().get(30, TimeUnit.SECONDS).stream()
                                    .noneMatch(l -> l.groupId().equals(g)), g + " listed");
                        }
                    });
        }
    }

    // ------------------------------------------------------------------ f. acquisition lock

    @Test
    void anExpiredAcquisitionLockHandsTheRecordsToAnotherMember() throws Exception {
        // Kafka bounds the group's lock duration by group.share.min.record.lock.duration.ms (15 s by default)
        int lockMs = FjordBroker.isExternal() ? 15_000 : 1_000;
        String topic = topic("share-lock", 1);
        String group = K.group("share-lock");
        groupConfigs(group, "share.record.lock.duration.ms", Integer.toString(lockMs));
        int n = 5;
        K.produce(bs(), topic, 0, n);
        try (KafkaShareConsumer<String, String> a = explicit(group, ConsumerConfig.CLIENT_ID_CONFIG, "lock-a");
                KafkaShareConsumer<String, String> b = explicit(group, ConsumerConfig.CLIENT_ID_CONFIG, "lock-b")) {
            a.subscribe(List.of(topic));
            List<ConsumerRecord<String, String>> held = new ArrayList<>();
            pollUntil(a, "records for A", WAIT, () -> !held.isEmpty(), held::add);
            long acquiredAt = System.nanoTime();
            assertEquals(Optional.of(lockMs), a.acquisitionLockTimeoutMs());
            held.forEach(r -> assertEquals((short) 1, deliveries(r), r.toString()));
            // A stays a member (its heartbeats run in the background) but never acknowledges
            b.subscribe(List.of(topic));
            Map<Long, Short> toB = new HashMap<>();
            Map<Long, Long> toBAtMs = new HashMap<>();
            Set<Long> heldOffsets = held.stream().map(ConsumerRecord::offset).collect(Collectors.toSet());
            pollUntil(b, "every record at B", Duration.ofMillis(lockMs).plus(WAIT), () -> toB.size() >= n, r -> {
                assertTrue(toB.put(r.offset(), deliveries(r)) == null, "offset " + r.offset() + " twice at B");
                toBAtMs.put(r.offset(), TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - acquiredAt));
                b.acknowledge(r, AcknowledgeType.ACCEPT);
            });
            assertNoCommitErrors(b.commitSync());
            for (long o : heldOffsets) {
                // Usually 2. A's client may fetch once more in the background after its last poll and
                // hold the record again for a lock duration: each delivery beyond the 2nd costs one more.
                String what = "offset " + o + " held by A, then delivered to B: " + toBAtMs.get(o) + " ms after A acquired it"
                        + " (lock " + lockMs + " ms), delivery " + toB.get(o) + "; all at B " + toB;
                assertTrue(toB.get(o) >= 2, what);
                assertTrue(toBAtMs.get(o) >= lockMs - 200, what);
                assertTrue(toB.get(o) - 1 <= toBAtMs.get(o) / (lockMs - 200), what);
            }
            // A's late acknowledgement changes nothing: the records are B's (and B accepted them). Kafka's
            // commitSync reports no error for it (observed with 4.4); an error may only be INVALID_RECORD_STATE
            held.forEach(r -> a.acknowledge(r, AcknowledgeType.ACCEPT));
            Map<TopicIdPartition, Optional<KafkaException>> late = a.commitSync();
            late.forEach((tp, e) -> e.ifPresent(x -> assertInstanceOf(InvalidRecordStateException.class, x, tp + ": " + x)));
            onlySentinelArrives(b, topic, true);
        }
    }
}
