package dev.fjord.it;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.OffsetSpec;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.config.ConfigResource;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;

/** kafka-configs, kafka-get-offsets, kafka-delete-records, kafka-log-dirs, kafka-*-perf-test. */
class ToolsMiscTest {
    @RegisterExtension
    static BrokerExtension broker = new BrokerExtension();

    private String bs() {
        return broker.bootstrap();
    }

    private Tool.Result tool(String main, String... args) {
        String[] full = new String[args.length + 2];
        full[0] = "--bootstrap-server";
        full[1] = bs();
        System.arraycopy(args, 0, full, 2, args.length);
        return Tool.run(main, full);
    }

    /** "name=value sensitive=..." lines of kafka-configs --describe. */
    private static Map<String, String> describedConfigs(Tool.Result r) {
        Map<String, String> m = new HashMap<>();
        Matcher x = Pattern.compile("(?m)^\\s+([a-z0-9.]+)=(\\S*) sensitive=").matcher(r.out);
        while (x.find()) {
            m.put(x.group(1), x.group(2));
        }
        return m;
    }

    @Test
    void configsTopicDescribeAlterDelete() throws Exception {
        String t = K.topic("cfg-cli");
        try (Admin a = broker.get().admin()) {
            K.createTopic(a, t, 1);
        }
        Tool.Result r = tool(Tool.CONFIGS, "--describe", "--entity-type", "topics", "--entity-name", t).ok();
        assertTrue(r.out.contains("Dynamic configs for topic " + t + " are:"), r.out);
        assertEquals(Map.of(), describedConfigs(r));

        r = tool(Tool.CONFIGS, "--alter", "--entity-type", "topics", "--entity-name", t,
                "--add-config", "retention.ms=86400000,max.message.bytes=65536,cleanup.policy=[compact,delete]").ok();
        assertTrue(r.out.contains("Completed updating config for topic " + t + "."), r.out);
        r = tool(Tool.CONFIGS, "--describe", "--entity-type", "topics", "--entity-name", t).ok();
        assertEquals(Map.of("retention.ms", "86400000", "max.message.bytes", "65536", "cleanup.policy", "compact,delete"),
                describedConfigs(r), r.out);
        try (Admin a = broker.get().admin()) {
            ConfigResource res = new ConfigResource(ConfigResource.Type.TOPIC, t);
            assertEquals("65536", K.get(a.describeConfigs(List.of(res)).all()).get(res).get("max.message.bytes").value());
        }

        r = tool(Tool.CONFIGS, "--alter", "--entity-type", "topics", "--entity-name", t,
                "--delete-config", "retention.ms,cleanup.policy").ok();
        r = tool(Tool.CONFIGS, "--describe", "--entity-type", "topics", "--entity-name", t).ok();
        assertEquals(Map.of("max.message.bytes", "65536"), describedConfigs(r), r.out);

        // --all lists the defaults too
        r = tool(Tool.CONFIGS, "--describe", "--entity-type", "topics", "--entity-name", t, "--all").ok();
        Map<String, String> all = describedConfigs(r);
        assertEquals("delete", all.get("cleanup.policy"), r.out);
        assertEquals("65536", all.get("max.message.bytes"), r.out);
        assertEquals("604800000", all.get("retention.ms"), r.out);

        // an invalid value is refused with a non-zero exit
        Tool.Result bad = tool(Tool.CONFIGS, "--alter", "--entity-type", "topics", "--entity-name", t,
                "--add-config", "retention.ms=forever");
        assertNotEquals(0, bad.exit, bad.toString());
        assertTrue((bad.out + bad.err).contains("InvalidConfigurationException") || (bad.out + bad.err).contains("Invalid"), bad.toString());
    }

    @Test
    void configsBrokersDescribe() throws Exception {
        Tool.Result r = tool(Tool.CONFIGS, "--describe", "--entity-type", "brokers", "--entity-name", "1").ok();
        assertTrue(r.out.contains("Dynamic configs for broker 1 are:"), r.out);
        r = tool(Tool.CONFIGS, "--describe", "--entity-type", "brokers", "--entity-default").ok();
        assertTrue(r.out.contains("Default configs for brokers in the cluster are:"), r.out);
        Tool.Result all = tool(Tool.CONFIGS, "--describe", "--entity-type", "brokers", "--entity-name", "1", "--all").ok();
        assertTrue(all.out.contains("All configs for broker 1 are:"), all.out);
        if (!FjordBroker.isExternal()) {
            // broker configs are static in Fjord: altering them is refused, not silently ignored
            Tool.Result alter = tool(Tool.CONFIGS, "--alter", "--entity-type", "brokers", "--entity-name", "1",
                    "--add-config", "log.retention.ms=1000");
            assertNotEquals(0, alter.exit, alter.toString());
        }
        // Kafka lists every broker config with --all (was a Fjord gap, fixed in 1f5baba)
        Map<String, String> m = describedConfigs(all);
        assertEquals("1", m.get("num.partitions"), all.out);
    }

    @Test
    void getOffsets() throws Exception {
        String t = K.topic("getoffsets");
        long base = System.currentTimeMillis() - 50_000;
        try (Admin a = broker.get().admin()) {
            K.createTopic(a, t, 3);
        }
        try (KafkaProducer<String, String> p = K.producer(bs())) {
            long[] ts = {base, base + 30, base + 10, base + 20};
            for (int i = 0; i < ts.length; i++) {
                p.send(new ProducerRecord<>(t, 0, ts[i], "k", "v")).get(30, TimeUnit.SECONDS);
            }
            for (int i = 0; i < 7; i++) {
                p.send(new ProducerRecord<>(t, 1, base + i, "k", "v")).get(30, TimeUnit.SECONDS);
            }
        }
        Tool.Result r = tool(Tool.GET_OFFSETS, "--topic", t).ok();
        assertEquals(List.of(t + ":0:4", t + ":1:7", t + ":2:0"), r.lines());
        r = tool(Tool.GET_OFFSETS, "--topic", t, "--time", "-1").ok();
        assertEquals(List.of(t + ":0:4", t + ":1:7", t + ":2:0"), r.lines());
        r = tool(Tool.GET_OFFSETS, "--topic", t, "--time", "earliest").ok();
        assertEquals(List.of(t + ":0:0", t + ":1:0", t + ":2:0"), r.lines());
        r = tool(Tool.GET_OFFSETS, "--topic-partitions", t + ":0", "--time", "max-timestamp").ok();
        assertEquals(List.of(t + ":0:1"), r.lines(), "the record with the largest timestamp is offset 1");
        r = tool(Tool.GET_OFFSETS, "--topic-partitions", t + ":0-2", "--time", String.valueOf(base + 5)).ok();
        // (a partition range is end-exclusive: 0-2 = partitions 0 and 1)
        assertEquals(List.of(t + ":0:1", t + ":1:5"), r.lines(), "first offsets with timestamp >= base+5");
        // no record that late in any partition: nothing printed
        r = tool(Tool.GET_OFFSETS, "--topic", t, "--time", String.valueOf(base + 10_000)).ok();
        assertEquals(List.of(), r.lines());
        r = tool(Tool.GET_OFFSETS, "--topic", t, "--partitions", "1").ok();
        assertEquals(List.of(t + ":1:7"), r.lines());
    }

    @Test
    void deleteRecordsWithJsonFile() throws Exception {
        String t = K.topic("delrec-cli");
        try (Admin a = broker.get().admin()) {
            K.createTopic(a, t, 2);
        }
        K.produce(bs(), t, 0, 10);
        K.produce(bs(), t, 1, 5);
        Path json = Files.createTempFile("fjord-delete-records", ".json");
        try {
            Files.writeString(json, "{\"partitions\":[{\"topic\":\"" + t + "\",\"partition\":0,\"offset\":4},"
                    + "{\"topic\":\"" + t + "\",\"partition\":1,\"offset\":-1}],\"version\":1}");
            Tool.Result r = tool(Tool.DELETE_RECORDS, "--offset-json-file", json.toString()).ok();
            assertTrue(r.out.contains("partition: " + t + "-0\tlow_watermark: 4"), r.out);
            assertTrue(r.out.contains("partition: " + t + "-1\tlow_watermark: 5"), r.out);
            try (Admin a = broker.get().admin()) {
                var e = K.get(a.listOffsets(Map.of(new TopicPartition(t, 0), OffsetSpec.earliest(),
                        new TopicPartition(t, 1), OffsetSpec.earliest())).all());
                assertEquals(4, e.get(new TopicPartition(t, 0)).offset());
                assertEquals(5, e.get(new TopicPartition(t, 1)).offset());
            }
            assertEquals(List.of(t + ":0:4", t + ":1:5"), tool(Tool.GET_OFFSETS, "--topic", t, "--time", "-2").ok().lines());
            // an offset past the end is reported per partition
            Files.writeString(json, "{\"partitions\":[{\"topic\":\"" + t + "\",\"partition\":0,\"offset\":99}],\"version\":1}");
            Tool.Result bad = tool(Tool.DELETE_RECORDS, "--offset-json-file", json.toString());
            assertTrue((bad.out + bad.err).contains("OffsetOutOfRangeException") || (bad.out + bad.err).contains("error"), bad.toString());
        } finally {
            Files.deleteIfExists(json);
        }
    }

    @Test
    void logDirsDescribe() throws Exception {
        String t = K.topic("logdirs-cli");
        try (Admin a = broker.get().admin()) {
            K.createTopic(a, t, 2);
        }
        K.produce(bs(), t, 0, 25);
        Tool.Result r = tool(Tool.LOG_DIRS, "--describe", "--topic-list", t).ok();
        String jsonLine = r.lines().stream().filter(l -> l.startsWith("{")).findFirst().orElseThrow(() -> new AssertionError(r.out));
        JsonNode root = new ObjectMapper().readTree(jsonLine);
        JsonNode brokers = root.get("brokers");
        assertEquals(1, brokers.size());
        assertEquals(1, brokers.get(0).get("broker").asInt());
        JsonNode dirs = brokers.get(0).get("logDirs");
        assertEquals(1, dirs.size());
        assertTrue(dirs.get(0).get("error").isNull(), jsonLine);
        if (broker.get().dataDir() != null) {
            assertEquals(broker.get().dataDir().toRealPath(), Path.of(dirs.get(0).get("logDir").asText()).toRealPath());
        }
        Map<String, Long> sizes = new HashMap<>();
        for (JsonNode p : dirs.get(0).get("partitions")) {
            sizes.put(p.get("partition").asText(), p.get("size").asLong());
            assertEquals(0, p.get("offsetLag").asLong());
            assertFalse(p.get("isFuture").asBoolean());
        }
        assertEquals(2, sizes.size(), jsonLine);
        assertEquals(0L, sizes.get(t + "-1"));
        assertEquals(Metrics.logBytes(broker.get(), t), sizes.get(t + "-0"));
        assertTrue(sizes.get(t + "-0") > 25 * 4, jsonLine);
    }

    @Test
    void producerAndConsumerPerformance() throws Exception {
        String t = K.topic("perf");
        try (Admin a = broker.get().admin()) {
            K.createTopic(a, t, 2);
        }
        Tool.Result p = Tool.run(Tool.PRODUCER_PERF, "--topic", t, "--num-records", "5000", "--record-size", "100",
                "--throughput", "-1", "--command-property", "bootstrap.servers=" + bs(), "acks=all", "compression.type=lz4").ok();
        Matcher m = Pattern.compile("(?m)^5000 records sent, [0-9.]+ records/sec .*avg latency").matcher(p.out);
        assertTrue(m.find(), p.out);
        try (Admin a = broker.get().admin()) {
            var latest = K.get(a.listOffsets(Map.of(new TopicPartition(t, 0), OffsetSpec.latest(),
                    new TopicPartition(t, 1), OffsetSpec.latest())).all());
            assertEquals(5000, latest.get(new TopicPartition(t, 0)).offset() + latest.get(new TopicPartition(t, 1)).offset());
        }

        Tool.Result c = tool(Tool.CONSUMER_PERF, "--topic", t, "--num-records", "5000", "--timeout", "30000").ok();
        // start.time, end.time, data.consumed.in.MB, MB.sec, data.consumed.in.nMsg, nMsg.sec, ...
        String header = c.lines().stream().filter(l -> l.startsWith("start.time")).findFirst().orElseThrow(() -> new AssertionError(c.out));
        List<String> cols = List.of(header.split(",\\s*"));
        String data = c.lines().get(c.lines().indexOf(header) + 1);
        // the date columns contain ", " free text? no: "yyyy-MM-dd HH:mm:ss:SSS"
        List<String> vals = List.of(data.split(",\\s*"));
        assertEquals(cols.size(), vals.size(), c.out);
        assertEquals(5000, Long.parseLong(vals.get(cols.indexOf("data.consumed.in.nMsg"))), c.out);
        double mb = Double.parseDouble(vals.get(cols.indexOf("data.consumed.in.MB")));
        assertEquals(5000 * 100 / (1024.0 * 1024.0), mb, 0.01, c.out);
    }

    @Test
    void brokerApiVersionsAndGroupsList() throws Exception {
        Tool.Result r = tool("org.apache.kafka.tools.BrokerApiVersionsCommand").ok();
        assertTrue(r.out.startsWith(bs() + " (id: 1 rack: null"), r.out);
        assertTrue(r.out.contains("JoinGroup(11): 0 to 9 [usable: 9]"), r.out);
        if (!FjordBroker.isExternal()) {
            assertTrue(r.out.contains("Produce(0): 3 to 13 [usable: 13]"), r.out);
            assertTrue(r.out.contains("Fetch(1): 4 to 17 [usable: 17]"), r.out);
            assertTrue(r.out.contains("ConsumerGroupHeartbeat(68): UNSUPPORTED"), r.out);
        }

        String g = K.group("groups-cmd");
        String t = K.topic("groups-cmd");
        K.produce(bs(), t, 0, 1);
        // a group that joined (protocol type "consumer"), then left
        try (var c = K.consumer(bs(), "group.id", g, "group.protocol", "classic")) {
            c.subscribe(List.of(t));
            K.pollN(c, 1, java.time.Duration.ofSeconds(30));
            c.commitSync();
        }
        Tool.Result groups = tool("org.apache.kafka.tools.GroupsCommand", "--list").ok();
        List<String[]> rows = Tool.rows(groups.out, g);
        assertEquals(1, rows.size(), groups.out);
        assertEquals(3, rows.get(0).length, groups.out);
        assertEquals("Classic", rows.get(0)[1]);
        assertEquals("consumer", rows.get(0)[2]);
    }
}
