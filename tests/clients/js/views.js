// Usage: node views.js BOOTSTRAP SOURCE VIEW GROUP EXPECTED_COUNT
// kafkajs 2.2.4 and filtered views (SPEC R10/R11), driven by tests/clients/test_views.py.
// SOURCE has two partitions and already holds records (TAGS headers); VIEW does not exist yet.
//   1. admin: createTopics VIEW (numPartitions 2, the source's count) with the three
//      fjord.view.* configs, tag filter `TagA || TagB`; createTopics VIEW-bad with only
//      fjord.view.source (must fail: INVALID_CONFIG); describeConfigs VIEW; fetchTopicOffsets of
//      VIEW and SOURCE
//   2. a producer sends to VIEW (must fail: INVALID_TOPIC_EXCEPTION)
//   3. a consumer in GROUP subscribes to VIEW from the beginning and reads EXPECTED_COUNT records;
//      then a producer sends {TAGS: TagC} 'js-nomatch' and {TAGS: TagB} 'js-live' to SOURCE
//      partition 0 and the consumer must get 'js-live' (noting when); it disconnects and the
//      group's committed offsets of VIEW are fetched
// Prints one JSON line: {"create", "createBad", "configs": {name: value}, "viewOffsets",
// "sourceOffsets", "produceToView", "consumed": [{partition, offset, key, value, headers,
// timestamp, seenMs}], "liveSentMs", "committed"}.
'use strict';
const { Kafka, logLevel } = require('kafkajs');
const { withTimeout, describe } = require('./util');

async function step(out, name, fn) {
  try {
    out[name] = { ok: true, result: await fn() };
  } catch (e) {
    out[name] = describe(e);
  }
}

async function main() {
  const [bootstrap, source, view, groupId, expectedCount] = process.argv.slice(2);
  const kafka = new Kafka({ clientId: 'fjord-kafkajs-views', brokers: [bootstrap], logLevel: logLevel.NOTHING, retry: { retries: 3 } });
  const out = {};
  const viewConfig = [
    { name: 'fjord.view.source', value: source },
    { name: 'fjord.view.filter.type', value: 'tag' },
    { name: 'fjord.view.filter.expression', value: 'TagA || TagB' },
  ];

  // 1. admin
  const admin = kafka.admin({ retry: { retries: 1 } });
  await admin.connect();
  await step(out, 'create', () => admin.createTopics({
    waitForLeaders: true,
    topics: [{ topic: view, numPartitions: 2, replicationFactor: 1, configEntries: viewConfig }],
  }));
  await step(out, 'createBad', () => admin.createTopics({
    topics: [{ topic: `${view}-bad`, numPartitions: 2, replicationFactor: 1, configEntries: viewConfig.slice(0, 1) }],
  }));
  out.configs = {};
  const described = await admin.describeConfigs({ includeSynonyms: false, resources: [{ type: 2, name: view }] });
  for (const entry of described.resources[0].configEntries) out.configs[entry.configName] = entry.configValue;
  const offsets = async (topic) => (await admin.fetchTopicOffsets(topic))
    .map(({ partition, low, high }) => ({ partition, low, high }))
    .sort((a, b) => a.partition - b.partition);
  out.viewOffsets = await offsets(view);
  out.sourceOffsets = await offsets(source);

  // 2. produce to the view: refused
  const producer = kafka.producer({ allowAutoTopicCreation: false, retry: { retries: 1 } });
  await producer.connect();
  await step(out, 'produceToView', () => producer.send({ topic: view, acks: -1, messages: [{ value: 'js-to-view', partition: 0, headers: { TAGS: 'TagA' } }] }));

  // 3. group consumer on the view
  const want = Number(expectedCount);
  const consumer = kafka.consumer({ groupId, sessionTimeout: 10000, heartbeatInterval: 500, maxWaitTimeInMs: 1000 });
  await consumer.connect();
  await consumer.subscribe({ topic: view, fromBeginning: true });
  const consumed = [];
  let gotAll;
  let gotLive;
  const all = new Promise((resolve) => { gotAll = resolve; });
  const live = new Promise((resolve) => { gotLive = resolve; });
  await consumer.run({
    eachMessage: async ({ partition, message }) => {
      const seenMs = Date.now();
      const value = message.value === null ? null : message.value.toString();
      const headers = {};
      for (const [k, v] of Object.entries(message.headers || {})) {
        headers[k] = Array.isArray(v) ? v.map((x) => x && x.toString()) : v && v.toString();
      }
      consumed.push({ partition, offset: message.offset, key: message.key && message.key.toString(), value, headers, timestamp: message.timestamp, seenMs });
      if (consumed.length >= want) gotAll();
      if (value === 'js-live') gotLive();
    },
  });
  const got = () => JSON.stringify(consumed.map((m) => [m.partition, m.offset, m.value]));
  await withTimeout(all, 20000, `reading ${want} records of ${view} (got ${got()})`);
  await producer.send({ topic: source, acks: -1, messages: [{ value: 'js-nomatch', partition: 0, headers: { TAGS: 'TagC' } }] });
  out.liveSentMs = Date.now();
  await producer.send({ topic: source, acks: -1, messages: [{ value: 'js-live', partition: 0, headers: { TAGS: 'TagB' } }] });
  await withTimeout(live, 10000, `reading js-live from ${view} (got ${got()})`);
  await consumer.disconnect();   // commits the resolved offsets
  await producer.disconnect();
  out.consumed = consumed;
  out.committed = (await admin.fetchOffsets({ groupId, topics: [view] }))[0].partitions
    .map(({ partition, offset }) => ({ partition, offset }))
    .sort((a, b) => a.partition - b.partition);
  await admin.disconnect();
  process.stdout.write(JSON.stringify(out) + '\n');
}

main().catch((e) => {
  process.stdout.write(JSON.stringify({ error: String(e && e.stack || e), type: e && e.type }) + '\n');
  process.exit(1);
});
