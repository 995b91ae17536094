package dev.fjord.it;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collections;
import java.util.Comparator;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.TreeMap;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.stream.Collectors;
import java.util.stream.Stream;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.Serdes;
import org.apache.kafka.streams.KafkaStreams;
import org.apache.kafka.streams.StreamsBuilder;
import org.apache.kafka.streams.StreamsConfig;
import org.apache.kafka.streams.errors.StreamsUncaughtExceptionHandler;
import org.apache.kafka.streams.kstream.KStream;
import org.apache.kafka.streams.kstream.Materialized;
import org.apache.kafka.streams.state.Stores;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.extension.RegisterExtension;

/**
 * A Kafka Streams 4.4.0 application with processing.guarantee=exactly_once_v2 (transactions with
 * the consumer group's offsets in them, a changelog, read_committed restore) over 2000 input
 * records: a stateless mapValues to one output topic and a count per key (in-memory store,
 * changelogged) to another. Read read_committed, every input appears exactly once and every key's
 * counts are exactly 1..n in order. The second test kills the broker with SIGKILL mid-processing,
 * restarts it on the same data dir and port, and expects the same exactly-once output after
 * Streams recovers.
 */
class StreamsExactlyOnceTest {
    @RegisterExtension
    static BrokerExtension broker = new BrokerExtension(FjordBroker.flagIfSupported("--transaction-abort-interval-ms", "200"));

    private static final int N = 2000;
    private static final int KEYS = 20;
    private static final int PARTITIONS = 2;

    @Test
    @Timeout(150)
    void exactlyOnceV2() throws Exception {
        run(false);
    }

    @Test
    @Timeout(180)
    void exactlyOnceV2AcrossBrokerSigkill() throws Exception {
        Assumptions.assumeTrue(broker.get().canKill(), "the external broker cannot be killed by this harness");
        run(true);
    }

    @Test
    @Timeout(150)
    void exactlyOnceV2WithAZombieInstance() throws Exception {
        // Two instances of the application. A stalls inside a record for longer than max.poll.interval.ms: its
        // consumer leaves the group, B takes A's task over and reprocesses from the last committed offsets. When A
        // wakes it still holds an open transaction and tries to commit it with its old group generation:
        // TxnOffsetCommit must refuse that (EOS v2 fences zombies through the group, not the transactional id),
        // so A's transaction is aborted and nothing is doubled.
        String bs = broker.bootstrap();
        String in = K.topic("eos-in");
        String out = K.topic("eos-out");
        String counts = K.topic("eos-counts");
        String appId = "eos-app-" + K.topic("zombie");
        List<TopicPartition> inTps = tps(in);
        try (Admin a = broker.get().admin()) {
            K.createTopic(a, in, PARTITIONS);
            K.createTopic(a, out, PARTITIONS);
            K.createTopic(a, counts, PARTITIONS);
        }
        try (KafkaProducer<String, String> p = K.producer(bs, "linger.ms", 5)) {
            for (int i = 0; i < N; i++) {
                p.send(new ProducerRecord<>(in, "k" + (i % KEYS), String.valueOf(i)));
            }
            p.flush();
        }
        Map<String, Object> extra = Map.of(StreamsConfig.consumerPrefix(ConsumerConfig.MAX_POLL_INTERVAL_MS_CONFIG), 4000);
        Path dirA = Files.createTempDirectory("fjord-streams-a-");
        Path dirB = Files.createTempDirectory("fjord-streams-b-");
        List<Throwable> errors = Collections.synchronizedList(new ArrayList<>());
        List<KafkaStreams.State> statesA = Collections.synchronizedList(new ArrayList<>());
        List<KafkaStreams.State> statesB = Collections.synchronizedList(new ArrayList<>());
        java.util.concurrent.atomic.AtomicInteger seenA = new java.util.concurrent.atomic.AtomicInteger();
        AtomicBoolean stalled = new AtomicBoolean();
        AtomicBoolean bRunning = new AtomicBoolean();
        KafkaStreams b = app(appId, in, out, counts, dirB, v -> FjordBroker.sleepQuietly(3), errors, statesB, extra);
        KafkaStreams a = app(appId, in, out, counts, dirA, v -> {
            FjordBroker.sleepQuietly(3);
            // once both instances share the work, A stalls on its 100th record for 9 s (> max.poll.interval.ms)
            if (bRunning.get() && seenA.incrementAndGet() == 100 && stalled.compareAndSet(false, true)) {
                System.err.println("StreamsExactlyOnceTest: instance A stalls for 9 s");
                FjordBroker.sleepQuietly(9000);
                System.err.println("StreamsExactlyOnceTest: instance A wakes up");
            }
        }, errors, statesA, extra);
        try (Admin admin = broker.get().admin()) {
            b.start();
            a.start();
            K.waitUntil("both instances RUNNING", Duration.ofSeconds(60),
                    () -> a.state() == KafkaStreams.State.RUNNING && b.state() == KafkaStreams.State.RUNNING);
            bRunning.set(true);
            K.waitUntil("Streams committed all " + N + " input records (errors: " + errors + ", A: " + statesA + ", B: " + statesB + ")",
                    Duration.ofSeconds(100), () -> committed(admin, appId, inTps) == N);
            assertTrue(stalled.get(), "instance A never got a task to stall in (A saw " + seenA.get() + " records)");
        } finally {
            a.close(Duration.ofSeconds(30));
            b.close(Duration.ofSeconds(30));
            a.cleanUp();
            b.cleanUp();
            deleteTree(dirA);
            deleteTree(dirB);
        }
        List<ConsumerRecord<String, String>> outRecs = verifyExactlyOnce(bs, out, counts, errors);
        List<ConsumerRecord<String, String>> raw = K.readToEnd(bs, tps(out), "read_uncommitted", Duration.ofSeconds(30));
        System.err.println("StreamsExactlyOnceTest: with a zombie, read_uncommitted holds " + raw.size()
                + " output records (aborted included), read_committed exactly " + outRecs.size() + "; A's states " + statesA);
    }

    private void run(boolean kill) throws Exception {
        String bs = broker.bootstrap();
        String in = K.topic("eos-in");
        String out = K.topic("eos-out");
        String counts = K.topic("eos-counts");
        String appId = "eos-app-" + K.topic(kill ? "kill" : "plain");
        List<TopicPartition> inTps = tps(in);
        try (Admin a = broker.get().admin()) {
            K.createTopic(a, in, PARTITIONS);
            K.createTopic(a, out, PARTITIONS);
            K.createTopic(a, counts, PARTITIONS);
        }
        try (KafkaProducer<String, String> p = K.producer(bs, "linger.ms", 5)) {
            for (int i = 0; i < N; i++) {
                p.send(new ProducerRecord<>(in, "k" + (i % KEYS), String.valueOf(i)));
            }
            p.flush();
        }

        Path stateDir = Files.createTempDirectory("fjord-streams-");
        AtomicBoolean slow = new AtomicBoolean(kill);
        List<Throwable> errors = Collections.synchronizedList(new ArrayList<>());
        List<KafkaStreams.State> states = Collections.synchronizedList(new ArrayList<>());
        KafkaStreams streams = app(appId, in, out, counts, stateDir, v -> {
            if (slow.get()) {
                FjordBroker.sleepQuietly(2); // ~4 s for the whole input: the kill comes in the middle
            }
        }, errors, states, Map.of());
        try (Admin a = broker.get().admin()) {
            streams.start();
            if (kill) {
                K.waitUntil("Streams committed some input", Duration.ofSeconds(60), () -> committed(a, appId, inTps) >= 300);
                long before = committed(a, appId, inTps);
                assertTrue(before < N, "processing finished before the kill: " + before);
                broker.get().kill9();
                System.err.println("StreamsExactlyOnceTest: broker killed (SIGKILL) at " + before + " committed input records");
                broker.get().restart();
                slow.set(false);
            }
            K.waitUntil("Streams committed all " + N + " input records (errors: " + errors + ", states: " + states + ")",
                    Duration.ofSeconds(90), () -> committed(a, appId, inTps) == N);
        } finally {
            streams.close(Duration.ofSeconds(30));
            streams.cleanUp();
            deleteTree(stateDir);
        }

        List<ConsumerRecord<String, String>> outRecs = verifyExactlyOnce(bs, out, counts, errors);
        if (kill) {
            List<ConsumerRecord<String, String>> raw = K.readToEnd(bs, tps(out), "read_uncommitted", Duration.ofSeconds(30));
            System.err.println("StreamsExactlyOnceTest: after the kill, read_uncommitted holds " + raw.size()
                    + " output records (aborted included), read_committed exactly " + outRecs.size()
                    + "; Streams thread errors: " + errors.size());
        }
    }

    interface Hook {
        void onRecord(String value);
    }

    /** The application: input -> mapValues -> out, and input -> count per key (in memory, changelogged) -> counts. */
    private static KafkaStreams app(String appId, String in, String out, String counts, Path stateDir, Hook hook,
            List<Throwable> errors, List<KafkaStreams.State> states, Map<String, Object> extra) {
        Properties props = new Properties();
        props.put(StreamsConfig.APPLICATION_ID_CONFIG, appId);
        props.put(StreamsConfig.BOOTSTRAP_SERVERS_CONFIG, broker.bootstrap());
        props.put(StreamsConfig.PROCESSING_GUARANTEE_CONFIG, StreamsConfig.EXACTLY_ONCE_V2);
        props.put(StreamsConfig.COMMIT_INTERVAL_MS_CONFIG, 100);
        props.put(StreamsConfig.STATESTORE_CACHE_MAX_BYTES_CONFIG, 0); // every update of a count is emitted
        props.put(StreamsConfig.REPLICATION_FACTOR_CONFIG, 1);
        props.put(StreamsConfig.NUM_STREAM_THREADS_CONFIG, 1);
        props.put(StreamsConfig.STATE_DIR_CONFIG, stateDir.toString());
        props.put(StreamsConfig.DEFAULT_KEY_SERDE_CLASS_CONFIG, Serdes.StringSerde.class);
        props.put(StreamsConfig.DEFAULT_VALUE_SERDE_CLASS_CONFIG, Serdes.StringSerde.class);
        props.put(StreamsConfig.consumerPrefix(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG), "earliest");
        // small polls, so that a kill lands mid-processing with several transactions behind and ahead
        props.put(StreamsConfig.consumerPrefix(ConsumerConfig.MAX_POLL_RECORDS_CONFIG), 50);
        props.putAll(extra);

        StreamsBuilder b = new StreamsBuilder();
        KStream<String, String> s = b.stream(in);
        s.mapValues(v -> {
            hook.onRecord(v);
            return "seen-" + v;
        }).to(out);
        s.groupByKey()
                .count(Materialized.<String, Long>as(Stores.inMemoryKeyValueStore("counts"))
                        .withKeySerde(Serdes.String()).withValueSerde(Serdes.Long()))
                .toStream().mapValues(String::valueOf).to(counts);

        KafkaStreams streams = new KafkaStreams(b.build(), props);
        streams.setUncaughtExceptionHandler(e -> {
            errors.add(e);
            return StreamsUncaughtExceptionHandler.StreamThreadExceptionResponse.REPLACE_THREAD;
        });
        streams.setStateListener((now, old) -> states.add(now));
        return streams;
    }

    /** read_committed: every input exactly once in per-key order, every key's counts exactly 1..n. */
    private static List<ConsumerRecord<String, String>> verifyExactlyOnce(String bs, String out, String counts, List<Throwable> errors) {
        // every input exactly once, in input order per key
        List<ConsumerRecord<String, String>> outRecs = K.readToEnd(bs, tps(out), "read_committed", Duration.ofSeconds(30));
        Map<String, List<Integer>> perKey = new TreeMap<>();
        for (ConsumerRecord<String, String> r : outRecs) {
            assertTrue(r.value().startsWith("seen-"), r.toString());
            perKey.computeIfAbsent(r.key(), k -> new ArrayList<>()).add(Integer.parseInt(r.value().substring(5)));
        }
        List<Integer> all = perKey.values().stream().flatMap(List::stream).sorted().collect(Collectors.toList());
        List<Integer> want = Stream.iterate(0, i -> i + 1).limit(N).collect(Collectors.toList());
        if (!all.equals(want)) {
            throw new AssertionError("read_committed output is not every input exactly once: " + outRecs.size()
                    + " records, " + all.stream().distinct().count() + " distinct; duplicates "
                    + duplicates(all) + "; missing " + missing(all) + (errors.isEmpty() ? "" : "; Streams errors " + errors));
        }
        perKey.forEach((k, vs) -> {
            List<Integer> sorted = new ArrayList<>(vs);
            sorted.sort(Comparator.naturalOrder());
            assertEquals(sorted, vs, "key " + k + " out of input order");
        });

        // each key's count went 1, 2, ..., N/KEYS: no update lost, none repeated
        List<ConsumerRecord<String, String>> countRecs = K.readToEnd(bs, tps(counts), "read_committed", Duration.ofSeconds(30));
        Map<String, List<Long>> countsPerKey = new TreeMap<>();
        for (ConsumerRecord<String, String> r : countRecs) {
            countsPerKey.computeIfAbsent(r.key(), k -> new ArrayList<>()).add(Long.parseLong(r.value()));
        }
        List<Long> oneToN = Stream.iterate(1L, i -> i + 1).limit(N / KEYS).collect(Collectors.toList());
        assertEquals(KEYS, countsPerKey.size(), countsPerKey.keySet().toString());
        countsPerKey.forEach((k, vs) -> assertEquals(oneToN, vs, "counts of " + k));

        return outRecs;
    }

    private static List<TopicPartition> tps(String topic) {
        List<TopicPartition> tps = new ArrayList<>();
        for (int i = 0; i < PARTITIONS; i++) {
            tps.add(new TopicPartition(topic, i));
        }
        return tps;
    }

    /** The application's committed input offsets, summed (0 while none, -1 if the broker cannot answer). */
    private static long committed(Admin a, String appId, List<TopicPartition> tps) {
        try {
            Map<TopicPartition, OffsetAndMetadata> m = a.listConsumerGroupOffsets(appId).partitionsToOffsetAndMetadata()
                    .get(5, TimeUnit.SECONDS);
            return tps.stream().mapToLong(tp -> m.get(tp) == null ? 0 : m.get(tp).offset()).sum();
        } catch (Exception e) {
            return -1;
        }
    }

    private static List<Integer> duplicates(List<Integer> sorted) {
        List<Integer> d = new ArrayList<>();
        for (int i = 1; i < sorted.size() && d.size() < 20; i++) {
            if (sorted.get(i).equals(sorted.get(i - 1))) {
                d.add(sorted.get(i));
            }
        }
        return d;
    }

    private static List<Integer> missing(List<Integer> sorted) {
        java.util.Set<Integer> have = new java.util.HashSet<>(sorted);
        List<Integer> m = new ArrayList<>();
        for (int i = 0; i < N && m.size() < 20; i++) {
            if (!have.contains(i)) {
                m.add(i);
            }
        }
        return m;
    }

    private static void deleteTree(Path p) {
        try (Stream<Path> walk = Files.walk(p)) {
            walk.sorted(Comparator.reverseOrder()).forEach(f -> f.toFile().delete());
        } catch (Exception ignored) {
            // best effort
        }
    }
}
