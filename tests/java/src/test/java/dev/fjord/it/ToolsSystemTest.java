package dev.fjord.it;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.OffsetSpec;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.TopicPartition;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;

/**
 * The tools of Kafka's own system tests (kafka-verifiable-producer/-consumer, kafka-e2e-latency)
 * and kafka-dump-log reading Fjord's segment files.
 */
class ToolsSystemTest {
    @RegisterExtension
    static BrokerExtension broker = new BrokerExtension();

    private String bs() {
        return broker.bootstrap();
    }

    private static List<JsonNode> events(Tool.Result r) throws Exception {
        ObjectMapper m = new ObjectMapper();
        List<JsonNode> out = new ArrayList<>();
        for (String l : r.lines()) {
            if (l.startsWith("{")) {
                out.add(m.readTree(l));
            }
        }
        return out;
    }

    @Test
    void verifiableProducerAndConsumer() throws Exception {
        String t = K.topic("verifiable");
        String g = K.group("verifiable");
        try (Admin a = broker.get().admin()) {
            K.createTopic(a, t, 3);
        }
        int n = 1500;
        Tool.Result p = Tool.run("org.apache.kafka.tools.VerifiableProducer", "--bootstrap-server", bs(), "--topic", t,
                "--max-messages", String.valueOf(n), "--acks", "-1").ok();
        Map<Integer, List<Long>> offsets = new HashMap<>();
        JsonNode toolData = null;
        for (JsonNode e : events(p)) {
            switch (e.get("name").asText()) {
                case "producer_send_success" -> offsets.computeIfAbsent(e.get("partition").asInt(), x -> new ArrayList<>())
                        .add(e.get("offset").asLong());
                case "producer_send_error" -> throw new AssertionError("send error: " + e);
                case "tool_data" -> toolData = e;
                default -> { }
            }
        }
        assertEquals(n, toolData.get("sent").asInt(), p.out);
        assertEquals(n, toolData.get("acked").asInt(), p.out);
        long total = 0;
        for (var e : offsets.entrySet()) {
            List<Long> os = new ArrayList<>(e.getValue());
            os.sort(Long::compare);
            for (int i = 0; i < os.size(); i++) {
                assertEquals(i, os.get(i), "partition " + e.getKey() + " offsets are dense from 0");
            }
            total += os.size();
        }
        assertEquals(n, total);

        Tool.Result c = Tool.run("org.apache.kafka.tools.VerifiableConsumer", "--bootstrap-server", bs(), "--topic", t,
                "--group-id", g, "--group-protocol", "classic", "--max-messages", String.valueOf(n),
                "--reset-policy", "earliest").ok();
        long consumed = 0;
        Map<Integer, Long> lastCommit = new HashMap<>();
        boolean assigned = false;
        for (JsonNode e : events(c)) {
            switch (e.get("name").asText()) {
                case "partitions_assigned" -> assigned = assigned || e.get("partitions").size() == 3;
                case "records_consumed" -> {
                    for (JsonNode part : e.get("partitions")) {
                        consumed += part.get("count").asLong();
                    }
                }
                case "offsets_committed" -> {
                    assertTrue(e.get("success").asBoolean(), e.toString());
                    for (JsonNode o : e.get("offsets")) {
                        lastCommit.put(o.get("partition").asInt(), o.get("offset").asLong());
                    }
                }
                default -> { }
            }
        }
        assertTrue(assigned, c.out);
        assertEquals(n, consumed, c.out);
        Map<Integer, Long> expected = new HashMap<>();
        offsets.forEach((part, os) -> expected.put(part, (long) os.size()));
        assertEquals(expected, lastCommit, c.out);
        try (Admin a = broker.get().admin()) {
            Map<Integer, Long> committed = new HashMap<>();
            K.get(a.listConsumerGroupOffsets(g).partitionsToOffsetAndMetadata())
                    .forEach((tp, om) -> committed.put(tp.partition(), om.offset()));
            assertEquals(expected, committed);
        }
    }

    @Test
    void endToEndLatency() throws Exception {
        String t = K.topic("e2e");
        Tool.Result r = Tool.run("org.apache.kafka.tools.EndToEndLatency", "--bootstrap-server", bs(), "--topic", t,
                "--num-records", "200", "--producer-acks", "all", "--record-size", "100").ok();
        Matcher m = Pattern.compile("(?m)^Avg latency: ([0-9.]+) ms").matcher(r.out);
        assertTrue(m.find(), r.toString());
        assertTrue(Double.parseDouble(m.group(1)) < 1000, r.out);
        assertTrue(r.out.contains("Percentiles: 50th = "), r.out);
        try (Admin a = broker.get().admin()) {
            TopicPartition tp = new TopicPartition(t, 0);
            assertEquals(200, K.get(a.listOffsets(Map.of(tp, OffsetSpec.latest())).all()).get(tp).offset());
        }
    }

    @Test
    void dumpLogReadsFjordSegments() throws Exception {
        String t = K.topic("dumplog");
        try (KafkaProducer<String, String> p = K.producer(bs(), "compression.type", "gzip", "linger.ms", 20)) {
            for (int i = 0; i < 5; i++) {
                p.send(new ProducerRecord<>(t, 0, 1_700_000_000_000L + i, "key" + i, "value" + i));
            }
            p.flush();
        }
        org.junit.jupiter.api.Assumptions.assumeTrue(broker.get().dataDir() != null, "the broker's data dir is unknown");
        Path seg = broker.get().dataDir().resolve(t + "-0").resolve("00000000000000000000.log");
        K.waitUntil("segment file written", java.time.Duration.ofSeconds(10), () -> seg.toFile().length() > 0);
        Tool.Result r = Tool.run("org.apache.kafka.tools.DumpLogSegments", "--files", seg.toString(),
                "--print-data-log", "--deep-iteration").ok();
        assertTrue(r.out.contains("Log starting offset: 0"), r.out);
        assertTrue(r.out.contains("magic: 2 compresscodec: gzip"), r.out);
        assertTrue(r.out.contains("isvalid: true"), r.out);
        assertTrue(!r.out.contains("isvalid: false"), r.out);
        for (int i = 0; i < 5; i++) {
            assertTrue(r.out.contains("| offset: " + i + " CreateTime: " + (1_700_000_000_000L + i)), r.out);
            assertTrue(r.out.contains("key: key" + i + " payload: value" + i), r.out);
        }
    }
}
