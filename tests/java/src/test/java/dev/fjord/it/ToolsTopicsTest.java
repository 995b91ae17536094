package dev.fjord.it;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import java.util.Map;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.common.config.ConfigResource;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;

/** kafka-topics.sh (org.apache.kafka.tools.TopicCommand). */
class ToolsTopicsTest {
    @RegisterExtension
    static BrokerExtension broker = new BrokerExtension();

    private Tool.Result topics(String... args) {
        String[] full = new String[args.length + 2];
        full[0] = "--bootstrap-server";
        full[1] = broker.bootstrap();
        System.arraycopy(args, 0, full, 2, args.length);
        return Tool.run(Tool.TOPICS, full);
    }

    @Test
    void createListDescribeAlterDelete() throws Exception {
        String t = K.topic("cli-topic");
        Tool.Result r = topics("--create", "--topic", t, "--partitions", "3", "--replication-factor", "1",
                "--config", "retention.ms=3600000", "--config", "cleanup.policy=compact").ok();
        assertEquals("Created topic " + t + ".", r.out.strip());

        assertTrue(topics("--list").ok().lines().contains(t));

        r = topics("--describe", "--topic", t).ok();
        String header = r.lines().get(0);
        assertTrue(header.startsWith("Topic: " + t + "\tTopicId: "), header);
        assertTrue(header.contains("PartitionCount: 3\t"), header);
        assertTrue(header.contains("ReplicationFactor: 1\t"), header);
        String configs = header.substring(header.indexOf("Configs: ") + "Configs: ".length());
        assertTrue(List.of(configs.split(",")).containsAll(List.of("cleanup.policy=compact", "retention.ms=3600000")), header);
        List<String[]> parts = Tool.rows(r.out, "Topic:");
        assertEquals(4, parts.size(), r.out); // header + 3 partitions
        for (int i = 0; i < 3; i++) {
            String line = r.lines().get(i + 1);
            assertTrue(line.contains("Partition: " + i + "\tLeader: 1\tReplicas: 1\tIsr: 1"), line);
        }
        try (Admin a = broker.get().admin()) {
            assertEquals(3, K.get(a.describeTopics(List.of(t)).allTopicNames()).get(t).partitions().size());
            var cfg = K.get(a.describeConfigs(List.of(new ConfigResource(ConfigResource.Type.TOPIC, t))).all());
            assertEquals("3600000", cfg.values().iterator().next().get("retention.ms").value());
        }

        topics("--alter", "--topic", t, "--partitions", "5").ok();
        r = topics("--describe", "--topic", t).ok();
        assertTrue(r.lines().get(0).contains("PartitionCount: 5\t"), r.out);
        assertTrue(r.out.contains("Partition: 4\tLeader: 1"), r.out);

        // shrinking is refused by the broker
        r = topics("--alter", "--topic", t, "--partitions", "2");
        assertNotEquals(0, r.exit, r.toString());
        assertTrue(r.out.contains("InvalidPartitionsException") || r.err.contains("InvalidPartitionsException")
                || r.out.contains("partition") , r.toString());

        r = topics("--delete", "--topic", t).ok();
        K.waitUntil("topic deleted", java.time.Duration.ofSeconds(20), () -> !topics("--list").ok().lines().contains(t));
        r = topics("--describe", "--topic", t);
        assertNotEquals(0, r.exit);
        assertTrue((r.out + r.err).contains("does not exist") || (r.out + r.err).contains("UnknownTopicOrPartition"), r.toString());
    }

    @Test
    void createErrorsAndIfNotExists() {
        String t = K.topic("cli-dup");
        topics("--create", "--topic", t, "--partitions", "1").ok();
        Tool.Result dup = topics("--create", "--topic", t, "--partitions", "1");
        assertEquals(1, dup.exit, dup.toString());
        assertTrue((dup.out + dup.err).contains("already exists"), dup.toString());
        topics("--create", "--if-not-exists", "--topic", t, "--partitions", "1").ok();

        Tool.Result bad = topics("--create", "--topic", "bad/name", "--partitions", "1");
        assertEquals(1, bad.exit, bad.toString());
        Tool.Result missing = topics("--delete", "--topic", K.topic("never"));
        assertEquals(1, missing.exit, missing.toString());
        topics("--delete", "--if-exists", "--topic", K.topic("never")).ok();
    }

    @Test
    void listExcludesInternalTopicsOnRequest() throws Exception {
        // __consumer_offsets exists once a group has committed
        String t = K.topic("cli-internal");
        K.produce(broker.bootstrap(), t, 0, 1);
        try (var c = K.consumer(broker.bootstrap(), "group.id", K.group("internal"), "group.protocol", "classic")) {
            c.assign(List.of(new org.apache.kafka.common.TopicPartition(t, 0)));
            c.commitSync(Map.of(new org.apache.kafka.common.TopicPartition(t, 0),
                    new org.apache.kafka.clients.consumer.OffsetAndMetadata(1)));
        }
        List<String> all = topics("--list").ok().lines();
        assertTrue(all.contains(t));
        assertTrue(all.contains("__consumer_offsets"), all.toString());
        List<String> external = topics("--list", "--exclude-internal").ok().lines();
        assertTrue(external.contains(t));
        assertFalse(external.contains("__consumer_offsets"), external.toString());
        Tool.Result d = topics("--describe", "--topic", "__consumer_offsets").ok();
        assertTrue(d.lines().get(0).contains("PartitionCount: 50"), d.out);
        // no partition of a single-node broker is under-replicated or unavailable
        assertEquals("", topics("--describe", "--under-replicated-partitions").ok().out.strip());
        assertEquals("", topics("--describe", "--unavailable-partitions").ok().out.strip());
    }
}
