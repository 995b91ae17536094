package dev.fjord.it;

import java.time.Duration;
import java.util.ArrayList;
import java.util.Collection;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.UUID;
import java.util.concurrent.TimeUnit;
import java.util.function.BooleanSupplier;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.KafkaShareConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.kafka.common.serialization.StringSerializer;

/** Small helpers shared by the tests: names, clients, polling. */
public final class K {
    private K() {
    }

    public static String topic(String prefix) {
        return prefix + "-" + UUID.randomUUID().toString().substring(0, 12);
    }

    public static String group(String prefix) {
        return "g-" + prefix + "-" + UUID.randomUUID().toString().substring(0, 12);
    }

    public static Properties producerProps(String bootstrap, Object... kv) {
        Properties p = new Properties();
        p.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        p.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
        p.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
        p.put(ProducerConfig.DELIVERY_TIMEOUT_MS_CONFIG, "30000");
        p.put(ProducerConfig.REQUEST_TIMEOUT_MS_CONFIG, "10000");
        p.put(ProducerConfig.MAX_BLOCK_MS_CONFIG, "20000");
        for (int i = 0; i < kv.length; i += 2) {
            p.put(kv[i].toString(), kv[i + 1].toString());
        }
        return p;
    }

    public static KafkaProducer<String, String> producer(String bootstrap, Object... kv) {
        return new KafkaProducer<>(producerProps(bootstrap, kv));
    }

    public static Properties consumerProps(String bootstrap, Object... kv) {
        Properties p = new Properties();
        p.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        p.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
        p.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
        p.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
        p.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "false");
        p.put(ConsumerConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, "20000");
        p.put(ConsumerConfig.REQUEST_TIMEOUT_MS_CONFIG, "10000");
        for (int i = 0; i < kv.length; i += 2) {
            p.put(kv[i].toString(), kv[i + 1].toString());
        }
        return p;
    }

    public static KafkaConsumer<String, String> consumer(String bootstrap, Object... kv) {
        return new KafkaConsumer<>(consumerProps(bootstrap, kv));
    }

    /** A share consumer (KIP-932) of {@code group}, String keys and values, plus {@code kv} configs. */
    public static KafkaShareConsumer<String, String> shareConsumer(String bootstrap, String group, Object... kv) {
        Properties p = new Properties();
        p.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        p.put(ConsumerConfig.GROUP_ID_CONFIG, group);
        p.put(ConsumerConfig.REQUEST_TIMEOUT_MS_CONFIG, "10000");
        p.put(ConsumerConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, "20000");
        for (int i = 0; i < kv.length; i += 2) {
            p.put(kv[i].toString(), kv[i + 1].toString());
        }
        return new KafkaShareConsumer<>(p, new StringDeserializer(), new StringDeserializer());
    }

    public static void createTopic(Admin admin, String topic, int partitions) throws Exception {
        admin.createTopics(List.of(new NewTopic(topic, partitions, (short) 1))).all().get(30, TimeUnit.SECONDS);
        awaitTopic(admin, topic, partitions);
    }

    /**
     * Waits until the topic's partitions all have a leader. Fjord answers at once; Apache Kafka
     * (oracle mode) propagates new topics to its metadata cache asynchronously.
     */
    public static void awaitTopic(Admin admin, String topic, int partitions) {
        waitUntil("topic " + topic + " with " + partitions + " led partitions", Duration.ofSeconds(30), () -> {
            try {
                var d = admin.describeTopics(List.of(topic)).allTopicNames().get(10, TimeUnit.SECONDS).get(topic);
                return d.partitions().size() == partitions && d.partitions().stream().allMatch(p -> p.leader() != null);
            } catch (Exception e) {
                return false;
            }
        });
    }

    /** Sends value i ("v0", "v1", ...) with key "k" + i to one partition; returns their metadata. */
    public static List<RecordMetadata> produce(String bootstrap, String topic, Integer partition, int n) throws Exception {
        try (KafkaProducer<String, String> p = producer(bootstrap, ProducerConfig.LINGER_MS_CONFIG, 5)) {
            List<java.util.concurrent.Future<RecordMetadata>> fs = new ArrayList<>();
            for (int i = 0; i < n; i++) {
                fs.add(p.send(new ProducerRecord<>(topic, partition, "k" + i, "v" + i)));
            }
            p.flush();
            List<RecordMetadata> out = new ArrayList<>();
            for (var f : fs) {
                out.add(f.get(30, TimeUnit.SECONDS));
            }
            return out;
        }
    }

    /** Polls an assigned/subscribed consumer until n records arrived (or fails after timeout). */
    public static <Kt, V> List<ConsumerRecord<Kt, V>> pollN(KafkaConsumer<Kt, V> c, int n, Duration timeout) {
        List<ConsumerRecord<Kt, V>> out = new ArrayList<>();
        long deadline = System.nanoTime() + timeout.toNanos();
        while (out.size() < n) {
            if (System.nanoTime() > deadline) {
                throw new AssertionError("got " + out.size() + " of " + n + " records within " + timeout + ": " + out);
            }
            c.poll(Duration.ofMillis(200)).forEach(out::add);
        }
        return out;
    }

    /** Reads n records from the given partitions from the beginning with a fresh assign()ed consumer. */
    public static List<ConsumerRecord<String, String>> readAll(String bootstrap, Collection<TopicPartition> tps, int n, Object... kv) {
        try (KafkaConsumer<String, String> c = consumer(bootstrap, kv)) {
            c.assign(tps);
            c.seekToBeginning(tps);
            return pollN(c, n, Duration.ofSeconds(30));
        }
    }

    /**
     * Everything a consumer with this isolation level can read from the beginning of the partitions:
     * polls until its positions reach the end offsets it was given (the LSO for read_committed).
     */
    public static List<ConsumerRecord<String, String>> readToEnd(String bootstrap, Collection<TopicPartition> tps,
            String isolation, Duration timeout) {
        if (isolation.equals("read_committed")) {
            awaitNoOpenTransaction(bootstrap, tps, timeout);
        }
        return readToEndNow(bootstrap, tps, isolation, timeout);
    }

    /**
     * Waits until no transaction is open on the partitions (LSO = high watermark). EndTxn answers once the
     * coordinator has logged PrepareCommit/PrepareAbort; Kafka writes the markers to the partitions after that,
     * so a read right after commitTransaction() can still find the LSO before them.
     */
    public static void awaitNoOpenTransaction(String bootstrap, Collection<TopicPartition> tps, Duration timeout) {
        Properties p = new Properties();
        p.put("bootstrap.servers", bootstrap);
        try (Admin a = Admin.create(p)) {
            Map<TopicPartition, org.apache.kafka.clients.admin.OffsetSpec> latest = new java.util.HashMap<>();
            tps.forEach(tp -> latest.put(tp, org.apache.kafka.clients.admin.OffsetSpec.latest()));
            waitUntil("no open transaction on " + tps, timeout, () -> {
                try {
                    var rc = a.listOffsets(latest, new org.apache.kafka.clients.admin.ListOffsetsOptions(
                            org.apache.kafka.common.IsolationLevel.READ_COMMITTED)).all().get(10, TimeUnit.SECONDS);
                    var ru = a.listOffsets(latest, new org.apache.kafka.clients.admin.ListOffsetsOptions(
                            org.apache.kafka.common.IsolationLevel.READ_UNCOMMITTED)).all().get(10, TimeUnit.SECONDS);
                    return tps.stream().allMatch(tp -> rc.get(tp).offset() == ru.get(tp).offset());
                } catch (Exception e) {
                    throw new RuntimeException(e);
                }
            });
        }
    }

    /** {@link #readToEnd} without waiting for open transactions to end (read_committed stops at the LSO). */
    public static List<ConsumerRecord<String, String>> readToEndNow(String bootstrap, Collection<TopicPartition> tps,
            String isolation, Duration timeout) {
        try (KafkaConsumer<String, String> c = consumer(bootstrap, ConsumerConfig.ISOLATION_LEVEL_CONFIG, isolation)) {
            c.assign(tps);
            c.seekToBeginning(tps);
            Map<TopicPartition, Long> end = c.endOffsets(tps);
            List<ConsumerRecord<String, String>> out = new ArrayList<>();
            long deadline = System.nanoTime() + timeout.toNanos();
            while (!tps.stream().allMatch(tp -> c.position(tp) >= end.get(tp))) {
                if (System.nanoTime() > deadline) {
                    throw new AssertionError(isolation + ": positions did not reach " + end + " within " + timeout
                            + "; read " + out.size() + " records");
                }
                c.poll(Duration.ofMillis(200)).forEach(out::add);
            }
            return out;
        }
    }

    public static void waitUntil(String what, Duration timeout, BooleanSupplier cond) {
        long deadline = System.nanoTime() + timeout.toNanos();
        RuntimeException last = null;
        while (true) {
            try {
                if (cond.getAsBoolean()) {
                    return;
                }
            } catch (RuntimeException e) {
                last = e;
            }
            if (System.nanoTime() > deadline) {
                throw new AssertionError("timed out after " + timeout + " waiting for " + what
                        + (last != null ? " (last error: " + last + ")" : ""));
            }
            FjordBroker.sleepQuietly(50);
        }
    }

    public static <T> T get(org.apache.kafka.common.KafkaFuture<T> f) throws Exception {
        return f.get(30, TimeUnit.SECONDS);
    }

    public static Map<String, String> map(String... kv) {
        Map<String, String> m = new java.util.LinkedHashMap<>();
        for (int i = 0; i < kv.length; i += 2) {
            m.put(kv[i], kv[i + 1]);
        }
        return m;
    }
}
