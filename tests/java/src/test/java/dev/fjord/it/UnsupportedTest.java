package dev.fjord.it;

import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTimeoutPreemptively;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.time.Duration;
import java.util.List;
import java.util.Properties;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.acl.AclBindingFilter;
import org.apache.kafka.common.errors.UnsupportedVersionException;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;

/**
 * What Fjord does not implement yet must fail fast with a clear Kafka error, never hang: every
 * call here runs under assertTimeoutPreemptively and with small client timeouts. (Transactions are
 * implemented: TransactionsTest; share groups: ShareConsumerTest.)
 */
class UnsupportedTest {
    @RegisterExtension
    static BrokerExtension broker = new BrokerExtension().fjordOnly();

    private static final Duration FAST = Duration.ofSeconds(15);

    private String bs() {
        return broker.bootstrap();
    }

    @Test
    void idempotentProducerWorks() throws Exception {
        String topic = K.topic("after-txn");
        assertTimeoutPreemptively(FAST, () -> {
            try (KafkaProducer<String, String> p = K.producer(bs())) {
                p.send(new ProducerRecord<>(topic, "k", "v")).get(10, TimeUnit.SECONDS);
            }
        });
    }

    @Test
    void consumerGroupProtocolIsRefusedClearly() {
        UnsupportedVersionException e = assertTimeoutPreemptively(FAST, () -> {
            try (KafkaConsumer<String, String> c = K.consumer(bs(), ConsumerConfig.GROUP_ID_CONFIG, K.group("kip848"),
                    ConsumerConfig.GROUP_PROTOCOL_CONFIG, "consumer")) {
                c.subscribe(List.of(K.topic("kip848")));
                return assertThrows(UnsupportedVersionException.class, () -> {
                    for (int i = 0; i < 100; i++) {
                        c.poll(Duration.ofMillis(100));
                    }
                });
            }
        });
        assertTrue(e.getMessage().contains("group.protocol=classic"), e.getMessage());
    }

    interface AdminCall {
        Object call(Admin a) throws Exception;
    }

    private void unsupportedAdmin(String api, AdminCall call) {
        assertTimeoutPreemptively(FAST, () -> {
            Properties p = new Properties();
            p.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bs());
            p.put(AdminClientConfig.REQUEST_TIMEOUT_MS_CONFIG, 5000);
            p.put(AdminClientConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, 10000);
            try (Admin a = Admin.create(p)) {
                ExecutionException e = assertThrows(ExecutionException.class, () -> call.call(a));
                assertInstanceOf(UnsupportedVersionException.class, e.getCause(), api + ": " + e.getCause());
                assertTrue(e.getCause().getMessage().contains(api), e.getCause().getMessage());
            }
        });
    }

    @Test
    void aclsUnsupported() {
        unsupportedAdmin("DESCRIBE_ACLS", a -> a.describeAcls(AclBindingFilter.ANY).values().get());
    }

    @Test
    void quotasScramQuorumElectionsUnsupported() {
        unsupportedAdmin("DESCRIBE_CLIENT_QUOTAS",
                a -> a.describeClientQuotas(org.apache.kafka.common.quota.ClientQuotaFilter.all()).entities().get());
        unsupportedAdmin("DESCRIBE_USER_SCRAM_CREDENTIALS", a -> a.describeUserScramCredentials().all().get());
        unsupportedAdmin("DESCRIBE_QUORUM", a -> a.describeMetadataQuorum().quorumInfo().get());
        unsupportedAdmin("ELECT_LEADERS",
                a -> a.electLeaders(org.apache.kafka.common.ElectionType.PREFERRED, null).partitions().get());
    }

    private void toolFailsFast(String main, String... args) {
        String[] full = new String[args.length + 2];
        full[0] = "--bootstrap-server";
        full[1] = bs();
        System.arraycopy(args, 0, full, 2, args.length);
        long start = System.nanoTime();
        Tool.Result r = Tool.run(main, full);
        long ms = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - start);
        assertTrue(ms < 30_000, "took " + ms + " ms: " + r);
        assertTrue(r.exit != 0 || (r.out + r.err).contains("Unsupported") || (r.out + r.err).contains("not support"),
                "a clear failure expected: " + r);
        assertTrue((r.out + r.err).contains("UnsupportedVersionException") || (r.out + r.err).contains("does not support"),
                "an UnsupportedVersionException expected: " + r);
    }

    @Test
    void unsupportedToolsFailFast() {
        toolFailsFast("org.apache.kafka.tools.AclCommand", "--list");
        toolFailsFast("org.apache.kafka.tools.LeaderElectionCommand", "--election-type", "preferred", "--all-topic-partitions");
        toolFailsFast("org.apache.kafka.tools.reassign.ReassignPartitionsCommand", "--list");
        toolFailsFast("org.apache.kafka.tools.MetadataQuorumCommand", "describe", "--status");
    }

    @Test
    void listOffsetsEarliestPendingUploadNeedsV11() throws Exception {
        // OffsetSpec.earliestPendingUpload() needs ListOffsets v11; Fjord serves up to v10
        String topic = K.topic("lo11");
        try (Admin a = broker.get().admin()) {
            K.createTopic(a, topic, 1);
        }
        unsupportedAdmin("LIST_OFFSETS", a -> a.listOffsets(java.util.Map.of(new TopicPartition(topic, 0),
                org.apache.kafka.clients.admin.OffsetSpec.earliestPendingUpload())).all().get());
    }
}
