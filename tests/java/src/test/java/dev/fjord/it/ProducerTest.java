package dev.fjord.it;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.stream.Collectors;
import java.util.stream.IntStream;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.header.Header;
import org.apache.kafka.common.header.internals.RecordHeaders;
import org.apache.kafka.common.utils.Utils;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

class ProducerTest {
    @RegisterExtension
    static BrokerExtension broker = new BrokerExtension();

    private String bs() {
        return broker.bootstrap();
    }

    @ParameterizedTest(name = "acks={0}")
    @ValueSource(strings = {"0", "1", "all"})
    void acks(String acks) throws Exception {
        String topic = K.topic("acks");
        try (Admin a = broker.get().admin()) {
            K.createTopic(a, topic, 1);
        }
        List<RecordMetadata> mds = new ArrayList<>();
        try (KafkaProducer<String, String> p = K.producer(bs(), ProducerConfig.ACKS_CONFIG, acks,
                // acks=0 and 1 are not allowed with idempotence (the 4.x default) enabled
                ProducerConfig.ENABLE_IDEMPOTENCE_CONFIG, acks.equals("all"))) {
            List<Future<RecordMetadata>> fs = new ArrayList<>();
            for (int i = 0; i < 20; i++) {
                fs.add(p.send(new ProducerRecord<>(topic, 0, "k" + i, acks + "-" + i)));
            }
            p.flush();
            for (var f : fs) {
                mds.add(f.get(30, TimeUnit.SECONDS));
            }
        }
        for (int i = 0; i < 20; i++) {
            RecordMetadata md = mds.get(i);
            assertEquals(0, md.partition());
            if (acks.equals("0")) {
                assertEquals(-1L, md.offset(), "acks=0 never learns the offset");
            } else {
                assertEquals(i, md.offset(), "offset of record " + i);
            }
        }
        List<ConsumerRecord<String, String>> got = K.readAll(bs(), List.of(new TopicPartition(topic, 0)), 20);
        assertEquals(IntStream.range(0, 20).mapToObj(i -> acks + "-" + i).collect(Collectors.toList()),
                got.stream().map(ConsumerRecord::value).collect(Collectors.toList()));
        assertEquals(IntStream.range(0, 20).mapToObj(Long::valueOf).collect(Collectors.toList()),
                got.stream().map(ConsumerRecord::offset).collect(Collectors.toList()));
    }

    @Test
    void idempotentProducerIsTheDefaultAndDeliversExactlyOnceInOrder() throws Exception {
        String topic = K.topic("idem");
        try (Admin a = broker.get().admin()) {
            K.createTopic(a, topic, 2);
        }
        double initsBefore = FjordBroker.isExternal() ? 0 : Metrics.apiRequests(broker.get(), "InitProducerId");
        int n = 2000;
        List<Future<RecordMetadata>> fs = new ArrayList<>();
        // no acks / idempotence settings: the 4.x defaults are acks=all + enable.idempotence=true
        try (KafkaProducer<String, String> p = K.producer(bs(),
                ProducerConfig.MAX_IN_FLIGHT_REQUESTS_PER_CONNECTION, 5,
                ProducerConfig.BATCH_SIZE_CONFIG, 1024, ProducerConfig.LINGER_MS_CONFIG, 0)) {
            for (int i = 0; i < n; i++) {
                fs.add(p.send(new ProducerRecord<>(topic, i % 2, null, "idem-" + i)));
            }
            p.flush();
            for (var f : fs) {
                f.get(30, TimeUnit.SECONDS);
            }
        }
        if (!FjordBroker.isExternal()) {
            assertTrue(Metrics.apiRequests(broker.get(), "InitProducerId") > initsBefore,
                    "the default producer must call InitProducerId (idempotence on by default)");
        }
        List<ConsumerRecord<String, String>> got = K.readAll(bs(),
                List.of(new TopicPartition(topic, 0), new TopicPartition(topic, 1)), n);
        assertEquals(n, got.size());
        for (int part = 0; part < 2; part++) {
            final int pp = part;
            List<ConsumerRecord<String, String>> inPart = got.stream().filter(r -> r.partition() == pp)
                    .collect(Collectors.toList());
            assertEquals(n / 2, inPart.size());
            for (int j = 0; j < inPart.size(); j++) {
                assertEquals(j, inPart.get(j).offset());
                assertEquals("idem-" + (2 * j + part), inPart.get(j).value(), "order in partition " + part);
            }
        }
    }

    @ParameterizedTest(name = "compression.type={0}")
    @ValueSource(strings = {"none", "gzip", "snappy", "lz4", "zstd"})
    void codecRoundTrip(String codec) throws Exception {
        String topic = K.topic("codec-" + codec);
        try (Admin a = broker.get().admin()) {
            K.createTopic(a, topic, 1);
        }
        int n = 500;
        String filler = "compressible-payload-".repeat(20);
        try (KafkaProducer<String, String> p = K.producer(bs(), ProducerConfig.COMPRESSION_TYPE_CONFIG, codec,
                ProducerConfig.LINGER_MS_CONFIG, 20, ProducerConfig.BATCH_SIZE_CONFIG, 256 * 1024)) {
            for (int i = 0; i < n; i++) {
                p.send(new ProducerRecord<>(topic, 0, "key-" + i, i + ":" + filler));
            }
            p.flush();
        }
        List<ConsumerRecord<String, String>> got = K.readAll(bs(), List.of(new TopicPartition(topic, 0)), n);
        for (int i = 0; i < n; i++) {
            assertEquals("key-" + i, got.get(i).key());
            assertEquals(i + ":" + filler, got.get(i).value());
            assertEquals(i, got.get(i).offset());
        }
        // Fjord stores batches as sent: a compressed topic takes far less disk than the raw bytes
        long onDisk = Metrics.logBytes(broker.get(), topic);
        long raw = (long) n * filler.length();
        if (codec.equals("none")) {
            assertTrue(onDisk >= raw, "uncompressed log " + onDisk + " < raw " + raw);
        } else {
            assertTrue(onDisk < raw / 3, codec + " log " + onDisk + " bytes is not compressed (raw " + raw + ")");
        }
    }

    @Test
    void headersRoundTrip() throws Exception {
        String topic = K.topic("headers");
        try (Admin a = broker.get().admin()) {
            K.createTopic(a, topic, 1);
        }
        RecordHeaders h = new RecordHeaders();
        h.add("trace-id", "abc-123".getBytes(StandardCharsets.UTF_8));
        h.add("dup", "one".getBytes(StandardCharsets.UTF_8));
        h.add("dup", "two".getBytes(StandardCharsets.UTF_8));
        h.add("empty", new byte[0]);
        h.add("null-value", null);
        h.add("binary", new byte[] {0, (byte) 0xff, 7});
        try (KafkaProducer<String, String> p = K.producer(bs())) {
            p.send(new ProducerRecord<>(topic, 0, "with-headers", "v", h)).get(30, TimeUnit.SECONDS);
            p.send(new ProducerRecord<>(topic, 0, "no-headers", "v")).get(30, TimeUnit.SECONDS);
            p.send(new ProducerRecord<>(topic, 0, null, null)).get(30, TimeUnit.SECONDS);
        }
        List<ConsumerRecord<String, String>> got = K.readAll(bs(), List.of(new TopicPartition(topic, 0)), 3);
        Header[] hs = got.get(0).headers().toArray();
        assertEquals(6, hs.length);
        assertEquals(List.of("trace-id", "dup", "dup", "empty", "null-value", "binary"),
                java.util.Arrays.stream(hs).map(Header::key).collect(Collectors.toList()));
        assertEquals("abc-123", new String(hs[0].value(), StandardCharsets.UTF_8));
        assertEquals("one", new String(hs[1].value(), StandardCharsets.UTF_8));
        assertEquals("two", new String(hs[2].value(), StandardCharsets.UTF_8));
        assertArrayEquals(new byte[0], hs[3].value());
        assertNull(hs[4].value());
        assertArrayEquals(new byte[] {0, (byte) 0xff, 7}, hs[5].value());
        assertEquals("two", new String(got.get(0).headers().lastHeader("dup").value(), StandardCharsets.UTF_8));
        assertEquals(0, got.get(1).headers().toArray().length);
        assertNull(got.get(2).key());
        assertNull(got.get(2).value());
    }

    @Test
    void keyedPartitioningSameKeySamePartition() throws Exception {
        String topic = K.topic("keyed");
        int partitions = 6;
        try (Admin a = broker.get().admin()) {
            K.createTopic(a, topic, partitions);
        }
        Map<String, Set<Integer>> partsByKey = new ConcurrentHashMap<>();
        int keys = 60;
        int rounds = 3;
        try (KafkaProducer<String, String> p = K.producer(bs())) {
            List<Future<RecordMetadata>> fs = new ArrayList<>();
            List<String> ks = new ArrayList<>();
            for (int r = 0; r < rounds; r++) {
                for (int k = 0; k < keys; k++) {
                    ks.add("user-" + k);
                    fs.add(p.send(new ProducerRecord<>(topic, "user-" + k, "r" + r)));
                }
                p.flush();
            }
            for (int i = 0; i < fs.size(); i++) {
                partsByKey.computeIfAbsent(ks.get(i), x -> new HashSet<>()).add(fs.get(i).get(30, TimeUnit.SECONDS).partition());
            }
        }
        Set<Integer> used = new HashSet<>();
        for (var e : partsByKey.entrySet()) {
            assertEquals(1, e.getValue().size(), "key " + e.getKey() + " went to " + e.getValue());
            int expected = Utils.toPositive(Utils.murmur2(e.getKey().getBytes(StandardCharsets.UTF_8))) % partitions;
            assertEquals(expected, e.getValue().iterator().next(), "default partitioner for " + e.getKey());
            used.addAll(e.getValue());
        }
        assertTrue(used.size() >= 4, "60 keys over 6 partitions used only " + used);
        // the consumer sees every key only in its partition, 3 times each
        List<TopicPartition> tps = IntStream.range(0, partitions).mapToObj(i -> new TopicPartition(topic, i)).collect(Collectors.toList());
        List<ConsumerRecord<String, String>> got = K.readAll(bs(), tps, keys * rounds);
        Map<String, Set<Integer>> seen = new HashMap<>();
        for (var r : got) {
            seen.computeIfAbsent(r.key(), x -> new HashSet<>()).add(r.partition());
        }
        assertEquals(partsByKey, seen);
        assertEquals(keys * rounds, got.size());
    }

    @Test
    void sendCallbacksReportOffsetsThatConsumerReadsBack() throws Exception {
        String topic = K.topic("callbacks");
        try (Admin a = broker.get().admin()) {
            K.createTopic(a, topic, 3);
        }
        int n = 90;
        Map<String, RecordMetadata> byValue = new ConcurrentHashMap<>();
        List<Exception> errors = java.util.Collections.synchronizedList(new ArrayList<>());
        CountDownLatch done = new CountDownLatch(n);
        try (KafkaProducer<String, String> p = K.producer(bs(), ProducerConfig.LINGER_MS_CONFIG, 10)) {
            for (int i = 0; i < n; i++) {
                String v = "cb-" + i;
                p.send(new ProducerRecord<>(topic, "key-" + (i % 7), v), (md, ex) -> {
                    if (ex != null) {
                        errors.add(ex);
                    } else {
                        byValue.put(v, md);
                    }
                    done.countDown();
                });
            }
            assertTrue(done.await(30, TimeUnit.SECONDS), "callbacks not all called");
        }
        assertEquals(List.of(), errors);
        assertEquals(n, byValue.size());
        List<TopicPartition> tps = List.of(new TopicPartition(topic, 0), new TopicPartition(topic, 1), new TopicPartition(topic, 2));
        for (var r : K.readAll(bs(), tps, n)) {
            RecordMetadata md = byValue.get(r.value());
            assertEquals(md.partition(), r.partition(), r.value());
            assertEquals(md.offset(), r.offset(), r.value());
            assertEquals(md.timestamp(), r.timestamp(), r.value());
            assertEquals(topic, md.topic());
        }
    }

    @Test
    void waitsForMetadataOfAutoCreatedTopic() throws Exception {
        // auto.create.topics.enable is Fjord's default, as in Kafka
        String topic = K.topic("autocreate");
        try (KafkaProducer<String, String> p = K.producer(bs())) {
            RecordMetadata md = p.send(new ProducerRecord<>(topic, "k", "v")).get(30, TimeUnit.SECONDS);
            assertEquals(0, md.offset());
        }
        try (Admin a = broker.get().admin()) {
            assertTrue(K.get(a.listTopics().names()).contains(topic));
        }
    }

    @Test
    void logAppendTimeTopicStampsBrokerTime() throws Exception {
        String topic = K.topic("logappend");
        try (Admin a = broker.get().admin()) {
            a.createTopics(List.of(new org.apache.kafka.clients.admin.NewTopic(topic, 1, (short) 1)
                    .configs(Map.of("message.timestamp.type", "LogAppendTime")))).all().get(30, TimeUnit.SECONDS);
        }
        long before = System.currentTimeMillis();
        RecordMetadata md;
        try (KafkaProducer<String, String> p = K.producer(bs())) {
            md = p.send(new ProducerRecord<>(topic, 0, 1000L, "k", "v")).get(30, TimeUnit.SECONDS);
        }
        long after = System.currentTimeMillis();
        assertTrue(md.timestamp() >= before - 1000 && md.timestamp() <= after + 1000, "broker time " + md.timestamp());
        ConsumerRecord<String, String> r = K.readAll(bs(), List.of(new TopicPartition(topic, 0)), 1).get(0);
        assertEquals(org.apache.kafka.common.record.TimestampType.LOG_APPEND_TIME, r.timestampType());
        assertEquals(md.timestamp(), r.timestamp());
    }

    @Test
    void createTimeIsKeptAsSent() throws Exception {
        String topic = K.topic("createtime");
        try (KafkaProducer<String, String> p = K.producer(bs())) {
            p.send(new ProducerRecord<>(topic, 0, 1234567L, "k", "v")).get(30, TimeUnit.SECONDS);
        }
        ConsumerRecord<String, String> r = K.readAll(bs(), List.of(new TopicPartition(topic, 0)), 1).get(0);
        assertEquals(org.apache.kafka.common.record.TimestampType.CREATE_TIME, r.timestampType());
        assertEquals(1234567L, r.timestamp());
    }

    @Test
    void brokerRefusesBatchesOverMaxMessageBytes() throws Exception {
        String topic = K.topic("toolarge");
        try (Admin a = broker.get().admin()) {
            a.createTopics(List.of(new org.apache.kafka.clients.admin.NewTopic(topic, 1, (short) 1)
                    .configs(Map.of("max.message.bytes", "20000")))).all().get(30, TimeUnit.SECONDS);
        }
        try (KafkaProducer<String, String> p = K.producer(bs(), ProducerConfig.COMPRESSION_TYPE_CONFIG, "none")) {
            var e = org.junit.jupiter.api.Assertions.assertThrows(java.util.concurrent.ExecutionException.class,
                    () -> p.send(new ProducerRecord<>(topic, 0, "k", "x".repeat(30_000))).get(30, TimeUnit.SECONDS));
            org.junit.jupiter.api.Assertions.assertInstanceOf(org.apache.kafka.common.errors.RecordTooLargeException.class, e.getCause());
            // a record under the limit still goes through on the same producer
            assertEquals(0, p.send(new ProducerRecord<>(topic, 0, "k", "x".repeat(1000))).get(30, TimeUnit.SECONDS).offset());
        }
    }

    @Test
    void timestampsTooFarInTheFutureAreRefused() throws Exception {
        // message.timestamp.after.max.ms defaults to one hour in Kafka 4.x
        String topic = K.topic("future");
        try (KafkaProducer<String, String> p = K.producer(bs())) {
            var e = org.junit.jupiter.api.Assertions.assertThrows(java.util.concurrent.ExecutionException.class, () ->
                    p.send(new ProducerRecord<>(topic, 0, System.currentTimeMillis() + 2 * 3600_000L, "k", "v")).get(30, TimeUnit.SECONDS));
            org.junit.jupiter.api.Assertions.assertInstanceOf(org.apache.kafka.common.errors.InvalidTimestampException.class, e.getCause());
            // old timestamps are fine (message.timestamp.before.max.ms is unlimited)
            long old = System.currentTimeMillis() - 30L * 24 * 3600_000L;
            RecordMetadata md = p.send(new ProducerRecord<>(topic, 0, old, "k", "v")).get(30, TimeUnit.SECONDS);
            assertEquals(old, md.timestamp());
        }
    }
}
