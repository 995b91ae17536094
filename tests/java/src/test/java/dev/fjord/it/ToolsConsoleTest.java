package dev.fjord.it;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.stream.Collectors;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.utils.Utils;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;

/** kafka-console-producer.sh and kafka-console-consumer.sh. */
class ToolsConsoleTest {
    @RegisterExtension
    static BrokerExtension broker = new BrokerExtension();

    private String bs() {
        return broker.bootstrap();
    }

    @Test
    void consoleProducerWithKeysThenJavaConsumer() throws Exception {
        String t = K.topic("console-keys");
        try (Admin a = broker.get().admin()) {
            K.createTopic(a, t, 3);
        }
        String input = "alpha:1\nbeta:2\ngamma:3\nalpha:4\nbeta:5\n";
        Tool.runWithInput(Tool.CONSOLE_PRODUCER, input, "--bootstrap-server", bs(), "--topic", t,
                "--reader-property", "parse.key=true", "--reader-property", "key.separator=:").ok();
        List<TopicPartition> tps = List.of(new TopicPartition(t, 0), new TopicPartition(t, 1), new TopicPartition(t, 2));
        List<ConsumerRecord<String, String>> got = K.readAll(bs(), tps, 5);
        assertEquals(5, got.size());
        for (var r : got) {
            int expected = Utils.toPositive(Utils.murmur2(r.key().getBytes(StandardCharsets.UTF_8))) % 3;
            assertEquals(expected, r.partition(), "key " + r.key());
        }
        assertEquals(List.of("1", "4"), got.stream().filter(r -> r.key().equals("alpha")).map(ConsumerRecord::value)
                .collect(Collectors.toList()));
        assertEquals(List.of("2", "5"), got.stream().filter(r -> r.key().equals("beta")).map(ConsumerRecord::value)
                .collect(Collectors.toList()));
    }

    @Test
    void consoleProducerHeadersAndCompression() throws Exception {
        String t = K.topic("console-headers");
        String input = "h1:v1,h2:v2\tk1\tvalue-one\n";
        Tool.runWithInput(Tool.CONSOLE_PRODUCER, input, "--bootstrap-server", bs(), "--topic", t,
                "--compression-codec", "zstd",
                "--reader-property", "parse.key=true", "--reader-property", "parse.headers=true").ok();
        ConsumerRecord<String, String> r = K.readAll(bs(), List.of(new TopicPartition(t, 0)), 1).get(0);
        assertEquals("k1", r.key());
        assertEquals("value-one", r.value());
        assertEquals("v1", new String(r.headers().lastHeader("h1").value(), StandardCharsets.UTF_8));
        assertEquals("v2", new String(r.headers().lastHeader("h2").value(), StandardCharsets.UTF_8));
    }

    @Test
    void consoleConsumerFromBeginningMaxMessagesWithKeys() throws Exception {
        String t = K.topic("console-consume");
        try (Admin a = broker.get().admin()) {
            K.createTopic(a, t, 1);
        }
        K.produce(bs(), t, 0, 8); // k0:v0 ... k7:v7
        Tool.Result r = Tool.run(Tool.CONSOLE_CONSUMER, "--bootstrap-server", bs(), "--topic", t,
                "--from-beginning", "--max-messages", "5",
                "--formatter-property", "print.key=true", "--formatter-property", "key.separator=|",
                "--formatter-property", "print.offset=true", "--formatter-property", "print.partition=true").ok();
        // key.separator separates every printed field
        assertEquals(List.of(
                "Partition:0|Offset:0|k0|v0",
                "Partition:0|Offset:1|k1|v1",
                "Partition:0|Offset:2|k2|v2",
                "Partition:0|Offset:3|k3|v3",
                "Partition:0|Offset:4|k4|v4"), r.lines(), r.toString());
        assertTrue(r.err.contains("Processed a total of 5 messages"), r.err);
    }

    @Test
    void consoleConsumerPartitionAndOffset() throws Exception {
        String t = K.topic("console-offset");
        try (Admin a = broker.get().admin()) {
            K.createTopic(a, t, 2);
        }
        K.produce(bs(), t, 1, 6);
        Tool.Result r = Tool.run(Tool.CONSOLE_CONSUMER, "--bootstrap-server", bs(), "--topic", t,
                "--partition", "1", "--offset", "3", "--max-messages", "3").ok();
        assertEquals(List.of("v3", "v4", "v5"), r.lines());
    }

    @Test
    void consoleConsumerInAGroupCommitsItsOffsets() throws Exception {
        String t = K.topic("console-group");
        String g = K.group("console");
        K.produce(bs(), t, 0, 4);
        Tool.Result r = Tool.run(Tool.CONSOLE_CONSUMER, "--bootstrap-server", bs(), "--topic", t, "--group", g,
                "--from-beginning", "--max-messages", "4", "--command-property", "group.protocol=classic").ok();
        assertEquals(List.of("v0", "v1", "v2", "v3"), r.lines());
        try (Admin a = broker.get().admin()) {
            Map<TopicPartition, OffsetAndMetadata> offs = K.get(a.listConsumerGroupOffsets(g).partitionsToOffsetAndMetadata());
            assertEquals(4, offs.get(new TopicPartition(t, 0)).offset());
        }
        // a second run of the same group has nothing left: it times out with 0 messages
        Tool.Result again = Tool.run(Tool.CONSOLE_CONSUMER, "--bootstrap-server", bs(), "--topic", t, "--group", g,
                "--max-messages", "1", "--timeout-ms", "3000");
        assertEquals("", again.out.strip(), again.toString());
        assertTrue(again.err.contains("Processed a total of 0 messages"), again.toString());
    }

    @Test
    void consoleRoundTripProducerToConsumer() {
        String t = K.topic("console-rt");
        String input = IntStreamLines.of(20);
        Tool.runWithInput(Tool.CONSOLE_PRODUCER, input, "--bootstrap-server", bs(), "--topic", t,
                "--command-property", "acks=all", "--command-property", "linger.ms=0").ok();
        Tool.Result r = Tool.run(Tool.CONSOLE_CONSUMER, "--bootstrap-server", bs(), "--topic", t,
                "--from-beginning", "--max-messages", "20").ok();
        assertEquals(input.strip(), String.join("\n", r.lines()));
    }

    static final class IntStreamLines {
        static String of(int n) {
            StringBuilder sb = new StringBuilder();
            for (int i = 0; i < n; i++) {
                sb.append("line-").append(i).append('\n');
            }
            return sb.toString();
        }
    }
}
