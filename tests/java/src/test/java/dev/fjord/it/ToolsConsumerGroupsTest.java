package dev.fjord.it;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.time.ZoneOffset;
import java.time.format.DateTimeFormatter;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.TopicPartition;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;

/** kafka-consumer-groups.sh (org.apache.kafka.tools.consumer.group.ConsumerGroupCommand). */
class ToolsConsumerGroupsTest {
    @RegisterExtension
    static BrokerExtension broker = new BrokerExtension();

    private String bs() {
        return broker.bootstrap();
    }

    private Tool.Result groups(String... args) {
        String[] full = new String[args.length + 2];
        full[0] = "--bootstrap-server";
        full[1] = bs();
        System.arraycopy(args, 0, full, 2, args.length);
        return Tool.run(Tool.CONSUMER_GROUPS, full);
    }

    /** A topic with 2 partitions (10 and 4 records) and a group that committed p0=6, p1=4. */
    private String[] setup() throws Exception {
        String t = K.topic("cg");
        String g = K.group("cg");
        try (Admin a = broker.get().admin()) {
            K.createTopic(a, t, 2);
        }
        K.produce(bs(), t, 0, 10);
        K.produce(bs(), t, 1, 4);
        commit(g, t, 6, 4);
        return new String[] {t, g};
    }

    private void commit(String g, String t, long p0, long p1) {
        try (KafkaConsumer<String, String> c = K.consumer(bs(), ConsumerConfig.GROUP_ID_CONFIG, g,
                ConsumerConfig.GROUP_PROTOCOL_CONFIG, "classic")) {
            c.commitSync(Map.of(new TopicPartition(t, 0), new OffsetAndMetadata(p0), new TopicPartition(t, 1), new OffsetAndMetadata(p1)));
        }
    }

    private Map<Integer, Long> committed(String g, String t) throws Exception {
        try (Admin a = broker.get().admin()) {
            Map<Integer, Long> out = new HashMap<>();
            K.get(a.listConsumerGroupOffsets(g).partitionsToOffsetAndMetadata()).forEach((tp, om) -> {
                if (tp.topic().equals(t) && om != null) {
                    out.put(tp.partition(), om.offset());
                }
            });
            return out;
        }
    }

    /** NEW-OFFSET per partition from a --reset-offsets table. */
    private static Map<Integer, Long> newOffsets(Tool.Result r, String g) {
        Map<Integer, Long> out = new HashMap<>();
        for (String[] row : Tool.rows(r.out, g)) {
            out.put(Integer.parseInt(row[2]), Long.parseLong(row[3]));
        }
        return out;
    }

    @Test
    void listAndDescribeShowsLag() throws Exception {
        String[] tg = setup();
        String t = tg[0];
        String g = tg[1];
        assertTrue(groups("--list").ok().lines().contains(g));
        Tool.Result r = groups("--describe", "--group", g).ok();
        assertTrue(r.out.contains("CURRENT-OFFSET  LOG-END-OFFSET  LAG"), r.out);
        List<String[]> rows = Tool.rows(r.out, g);
        assertEquals(2, rows.size(), r.out);
        Map<Integer, String[]> byPart = new HashMap<>();
        for (String[] row : rows) {
            assertEquals(t, row[1]);
            byPart.put(Integer.parseInt(row[2]), row);
        }
        // GROUP TOPIC PARTITION CURRENT-OFFSET LOG-END-OFFSET LAG CONSUMER-ID HOST CLIENT-ID
        String[] p0 = byPart.get(0);
        String[] p1 = byPart.get(1);
        assertEquals(List.of("6", "10", "4"), List.of(p0[3], p0[4], p0[5]), r.out);
        assertEquals(List.of("4", "4", "0"), List.of(p1[3], p1[4], p1[5]), r.out);
        assertTrue(r.err.contains("has no active members") || r.out.contains("has no active members"), r.toString());

        Tool.Result state = groups("--describe", "--group", g, "--state").ok();
        String[] srow = Tool.rows(state.out, g).get(0);
        assertEquals("Empty", srow[srow.length - 2], state.out);
        assertEquals("0", srow[srow.length - 1], state.out);

        Tool.Result missing = groups("--describe", "--group", K.group("missing"));
        assertNotEquals("", missing.out + missing.err);
        assertTrue((missing.out + missing.err).contains("GroupIdNotFoundException"), missing.toString());
    }

    @Test
    void describeLiveMembers() throws Exception {
        String[] tg = setup();
        String t = tg[0];
        String g = tg[1];
        AtomicBoolean stop = new AtomicBoolean();
        AtomicBoolean assigned = new AtomicBoolean();
        Thread member = new Thread(() -> {
            try (KafkaConsumer<String, String> c = K.consumer(bs(), ConsumerConfig.GROUP_ID_CONFIG, g,
                    ConsumerConfig.GROUP_PROTOCOL_CONFIG, "classic", ConsumerConfig.CLIENT_ID_CONFIG, "cli-member")) {
                c.subscribe(List.of(t));
                while (!stop.get()) {
                    c.poll(Duration.ofMillis(100));
                    if (c.assignment().size() == 2) {
                        assigned.set(true);
                    }
                }
            }
        });
        member.start();
        try {
            K.waitUntil("member assigned", Duration.ofSeconds(30), assigned::get);
            Tool.Result r = groups("--describe", "--group", g).ok();
            List<String[]> rows = Tool.rows(r.out, g);
            assertEquals(2, rows.size(), r.out);
            for (String[] row : rows) {
                assertTrue(row[6].startsWith("cli-member-"), "CONSUMER-ID " + row[6]);
                assertEquals("cli-member", row[8], r.out);
            }
            Tool.Result m = groups("--describe", "--group", g, "--members").ok();
            String[] mrow = Tool.rows(m.out, g).get(0);
            assertEquals("cli-member", mrow[3], m.out);
            assertEquals("2", mrow[4], m.out);
            Tool.Result s = groups("--describe", "--group", g, "--state").ok();
            String[] srow = Tool.rows(s.out, g).get(0);
            assertEquals("range", srow[3], s.out);
            assertEquals("Stable", srow[4], s.out);
            assertEquals("1", srow[5], s.out);
            // a live group cannot be reset or deleted
            Tool.Result reset = groups("--reset-offsets", "--group", g, "--topic", t, "--to-earliest", "--execute");
            assertTrue((reset.out + reset.err).contains("inactive"), reset.toString());
            assertEquals(Map.of(0, 6L, 1, 4L), committed(g, t));
            Tool.Result del = groups("--delete", "--group", g);
            assertTrue((del.out + del.err).contains("not empty") || (del.out + del.err).contains("NonEmpty"), del.toString());
        } finally {
            stop.set(true);
            member.join(30_000);
        }
    }

    @Test
    void resetToEarliestLatestOffsetShiftCurrent() throws Exception {
        String[] tg = setup();
        String t = tg[0];
        String g = tg[1];
        try (Admin a = broker.get().admin()) {
            a.deleteRecords(Map.of(new TopicPartition(t, 0), org.apache.kafka.clients.admin.RecordsToDelete.beforeOffset(2)))
                    .all().get(30, TimeUnit.SECONDS);
        }
        // --dry-run prints the plan and changes nothing
        Tool.Result dry = groups("--reset-offsets", "--group", g, "--topic", t, "--to-earliest", "--dry-run").ok();
        assertEquals(Map.of(0, 2L, 1, 0L), newOffsets(dry, g));
        assertEquals(Map.of(0, 6L, 1, 4L), committed(g, t));
        // without --execute or --dry-run it is a dry run too
        assertEquals(Map.of(0, 2L, 1, 0L), newOffsets(groups("--reset-offsets", "--group", g, "--topic", t, "--to-earliest").ok(), g));
        assertEquals(Map.of(0, 6L, 1, 4L), committed(g, t));

        Tool.Result r = groups("--reset-offsets", "--group", g, "--topic", t, "--to-earliest", "--execute").ok();
        assertEquals(Map.of(0, 2L, 1, 0L), newOffsets(r, g));
        assertEquals(Map.of(0, 2L, 1, 0L), committed(g, t));

        r = groups("--reset-offsets", "--group", g, "--topic", t, "--to-latest", "--execute").ok();
        assertEquals(Map.of(0, 10L, 1, 4L), newOffsets(r, g));
        assertEquals(Map.of(0, 10L, 1, 4L), committed(g, t));

        r = groups("--reset-offsets", "--group", g, "--topic", t + ":0", "--to-offset", "5", "--execute").ok();
        assertEquals(Map.of(0, 5L), newOffsets(r, g));
        assertEquals(Map.of(0, 5L, 1, 4L), committed(g, t));

        // out-of-range targets are clamped to the log's start/end
        r = groups("--reset-offsets", "--group", g, "--topic", t + ":0", "--to-offset", "1", "--execute").ok();
        assertEquals(Map.of(0, 2L), newOffsets(r, g));

        r = groups("--reset-offsets", "--group", g, "--topic", t, "--shift-by", "3", "--execute").ok();
        assertEquals(Map.of(0, 5L, 1, 4L), newOffsets(r, g), "2+3 and 4+3 clamped to 4");
        r = groups("--reset-offsets", "--group", g, "--topic", t, "--shift-by", "-2", "--execute").ok();
        assertEquals(Map.of(0, 3L, 1, 2L), newOffsets(r, g));
        assertEquals(Map.of(0, 3L, 1, 2L), committed(g, t));

        r = groups("--reset-offsets", "--group", g, "--topic", t, "--to-current", "--execute").ok();
        assertEquals(Map.of(0, 3L, 1, 2L), newOffsets(r, g));

        // --describe shows the lag that follows
        Tool.Result d = groups("--describe", "--group", g).ok();
        for (String[] row : Tool.rows(d.out, g)) {
            if (row[2].equals("0")) {
                assertEquals(List.of("3", "10", "7"), List.of(row[3], row[4], row[5]), d.out);
            } else {
                assertEquals(List.of("2", "4", "2"), List.of(row[3], row[4], row[5]), d.out);
            }
        }
    }

    @Test
    void resetByTimeToDatetimeAndByDuration() throws Exception {
        String t = K.topic("cg-time");
        String g = K.group("cg-time");
        try (Admin a = broker.get().admin()) {
            K.createTopic(a, t, 1);
        }
        long now = System.currentTimeMillis();
        long old = now - 3 * 3600_000L; // three hours ago
        try (KafkaProducer<String, String> p = K.producer(bs())) {
            for (int i = 0; i < 10; i++) {
                long ts = i < 5 ? old + i * 60_000L : now + (i - 5);
                p.send(new ProducerRecord<>(t, 0, ts, "k", "v" + i)).get(30, TimeUnit.SECONDS);
            }
        }
        try (KafkaConsumer<String, String> c = K.consumer(bs(), ConsumerConfig.GROUP_ID_CONFIG, g,
                ConsumerConfig.GROUP_PROTOCOL_CONFIG, "classic")) {
            c.commitSync(Map.of(new TopicPartition(t, 0), new OffsetAndMetadata(10)));
        }
        // --by-duration PT1H: records younger than one hour start at offset 5
        Tool.Result r = groups("--reset-offsets", "--group", g, "--topic", t, "--by-duration", "PT1H", "--execute").ok();
        assertEquals(Map.of(0, 5L), newOffsets(r, g));
        assertEquals(Map.of(0, 5L), committed(g, t));
        // --to-datetime between the 3rd (old+2min) and 4th (old+3min) record
        String dt = DateTimeFormatter.ofPattern("yyyy-MM-dd'T'HH:mm:ss.SSS").withZone(ZoneOffset.UTC)
                .format(Instant.ofEpochMilli(old + 150_000L));
        r = groups("--reset-offsets", "--group", g, "--topic", t, "--to-datetime", dt + "Z", "--execute").ok();
        assertEquals(Map.of(0, 3L), newOffsets(r, g), r.toString());
        assertEquals(Map.of(0, 3L), committed(g, t));
        // a datetime after every record: the log end
        String future = DateTimeFormatter.ofPattern("yyyy-MM-dd'T'HH:mm:ss.SSS").withZone(ZoneOffset.UTC)
                .format(Instant.ofEpochMilli(now + 3600_000L));
        r = groups("--reset-offsets", "--group", g, "--topic", t, "--to-datetime", future + "Z", "--execute").ok();
        assertEquals(Map.of(0, 10L), newOffsets(r, g), r.toString());
    }

    @Test
    void resetExportThenFromFile() throws Exception {
        String[] tg = setup();
        String t = tg[0];
        String g = tg[1];
        Tool.Result export = groups("--reset-offsets", "--group", g, "--topic", t, "--to-offset", "1", "--export", "--dry-run").ok();
        List<String> csv = export.lines();
        assertEquals(List.of(t + ",0,1", t + ",1,1"), csv.stream().sorted().toList(), export.out);
        Path f = Files.createTempFile("fjord-reset", ".csv");
        try {
            Files.writeString(f, t + ",0,7\n" + t + ",1,2\n");
            Tool.Result r = groups("--reset-offsets", "--group", g, "--from-file", f.toString(), "--execute").ok();
            assertEquals(Map.of(0, 7L, 1, 2L), newOffsets(r, g));
            assertEquals(Map.of(0, 7L, 1, 2L), committed(g, t));
        } finally {
            Files.deleteIfExists(f);
        }
    }

    @Test
    void deleteOffsetsAndDeleteGroup() throws Exception {
        String[] tg = setup();
        String t = tg[0];
        String g = tg[1];
        Tool.Result r = groups("--delete-offsets", "--group", g, "--topic", t + ":1").ok();
        assertTrue(r.out.contains("Request succeeded for deleting offsets from group " + g), r.out);
        List<String[]> rows = Tool.rows(r.out, t);
        assertEquals(1, rows.size(), r.out);
        assertEquals("1", rows.get(0)[1]);
        assertEquals("Successful", rows.get(0)[2]);
        assertEquals(Map.of(0, 6L), committed(g, t));

        // the whole topic
        r = groups("--delete-offsets", "--group", g, "--topic", t).ok();
        assertEquals(Map.of(), committed(g, t));

        commit(g, t, 1, 1);
        r = groups("--delete", "--group", g).ok();
        assertTrue(r.out.contains("Deletion of requested consumer groups ('" + g + "') was successful."), r.out);
        assertFalse(groups("--list").ok().lines().contains(g));
        Tool.Result again = groups("--delete", "--group", g);
        assertTrue((again.out + again.err).contains("does not exist") || (again.out + again.err).contains("GroupIdNotFound"),
                again.toString());
    }

    @Test
    void listWithStateAndDescribeAllGroups() throws Exception {
        String[] a = setup();
        String[] b = setup();
        Tool.Result r = groups("--list", "--state").ok();
        for (String g : List.of(a[1], b[1])) {
            List<String[]> rows = Tool.rows(r.out, g);
            assertEquals(1, rows.size(), r.out);
            assertEquals("Empty", rows.get(0)[1], r.out);
        }
        Tool.Result only = groups("--list", "--state", "Stable").ok();
        assertTrue(Tool.rows(only.out, a[1]).isEmpty(), only.out);
        Tool.Result all = groups("--describe", "--all-groups").ok();
        assertEquals(2, Tool.rows(all.out, a[1]).size(), all.out);
        assertEquals(2, Tool.rows(all.out, b[1]).size(), all.out);
        // --all-topics resets every committed partition of the group
        Tool.Result reset = groups("--reset-offsets", "--group", a[1], "--all-topics", "--to-earliest", "--execute").ok();
        assertEquals(Map.of(0, 0L, 1, 0L), newOffsets(reset, a[1]));
        assertEquals(Map.of(0, 0L, 1, 0L), committed(a[1], a[0]));
    }
}
