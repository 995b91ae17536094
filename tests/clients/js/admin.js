// Usage: node admin.js BOOTSTRAP TOPIC
// Exercises the kafkajs 2.2.4 admin API and prints one JSON line with what it saw.
// Each step records {ok, value} or {ok:false, error:{type, code, message}} so that
// pytest can assert Kafka semantics step by step.
'use strict';
const { Kafka, ConfigResourceTypes, logLevel } = require('kafkajs');

// Collect every Kafka error type reachable from e (wrapped/aggregate errors).
function errorTypes(e, seen = new Set()) {
  if (!e || typeof e !== 'object' || seen.has(e)) return [];
  seen.add(e);
  const own = e.type ? [e.type] : [];
  const kids = [e.originalError, e.cause, ...(e.errors || [])].flatMap((x) => errorTypes(x, seen));
  return [...new Set([...own, ...kids])];
}

async function step(out, name, fn) {
  try {
    out[name] = { ok: true, value: await fn() };
  } catch (e) {
    const nested = (e.errors || []).map((x) => ({ type: x.type || null, code: x.code ?? null, message: String(x.message) }));
    out[name] = { ok: false, error: { type: e.type || null, code: e.code ?? null, name: e.name, message: String(e.message), errors: nested, types: errorTypes(e) } };
  }
}

async function main() {
  const [bootstrap, topic] = process.argv.slice(2);
  const kafka = new Kafka({ clientId: 'fjord-kafkajs-admin', brokers: [bootstrap], logLevel: logLevel.NOTHING, retry: { retries: 2 } });
  const admin = kafka.admin();
  const producer = kafka.producer({ allowAutoTopicCreation: false });
  await admin.connect();
  await producer.connect();
  const out = {};
  const res = [{ type: ConfigResourceTypes.TOPIC, name: topic, configNames: ['retention.ms', 'cleanup.policy'] }];
  try {
    await step(out, 'createTopics', () => admin.createTopics({
      waitForLeaders: true,
      topics: [{ topic, numPartitions: 3, replicationFactor: 1, configEntries: [{ name: 'retention.ms', value: '3600000' }] }],
    }));
    await step(out, 'createTopicsAgain', () => admin.createTopics({ topics: [{ topic, numPartitions: 1 }] }));
    await step(out, 'createTopicsRF2', () => admin.createTopics({ topics: [{ topic: topic + '-rf2', numPartitions: 1, replicationFactor: 2 }] }));
    await step(out, 'listTopics', () => admin.listTopics());
    await step(out, 'fetchTopicMetadata', () => admin.fetchTopicMetadata({ topics: [topic] }));
    await step(out, 'describeConfigs', () => admin.describeConfigs({ includeSynonyms: false, resources: res }));
    await step(out, 'alterConfigs', () => admin.alterConfigs({
      validateOnly: false,
      resources: [{ type: ConfigResourceTypes.TOPIC, name: topic, configEntries: [{ name: 'retention.ms', value: '7200000' }] }],
    }));
    await step(out, 'describeConfigsAfter', () => admin.describeConfigs({ includeSynonyms: false, resources: res }));
    await step(out, 'alterConfigsInvalid', () => admin.alterConfigs({
      resources: [{ type: ConfigResourceTypes.TOPIC, name: topic, configEntries: [{ name: 'retention.ms', value: 'forever' }] }],
    }));
    await step(out, 'produce', () => producer.send({
      topic, acks: -1,
      messages: [0, 1, 2, 3, 4].map((i) => ({ value: `m${i}`, partition: 1, timestamp: String(1700000000000 + i * 1000) })),
    }));
    await step(out, 'fetchTopicOffsets', () => admin.fetchTopicOffsets(topic));
    await step(out, 'fetchTopicOffsetsByTimestamp', () => admin.fetchTopicOffsetsByTimestamp(topic, 1700000002500));
    await step(out, 'createPartitions', () => admin.createPartitions({ topicPartitions: [{ topic, count: 5 }] }));
    await step(out, 'fetchTopicMetadataAfter', () => admin.fetchTopicMetadata({ topics: [topic] }));
    await step(out, 'describeCluster', () => admin.describeCluster());
    await step(out, 'deleteTopics', () => admin.deleteTopics({ topics: [topic] }));
    await step(out, 'listTopicsAfter', () => admin.listTopics());
  } finally {
    await producer.disconnect();
    await admin.disconnect();
  }
  process.stdout.write(JSON.stringify(out) + '\n');
}

main().catch((e) => {
  process.stdout.write(JSON.stringify({ fatal: String(e && e.stack || e) }) + '\n');
  process.exit(1);
});
