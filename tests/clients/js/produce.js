// Usage: node produce.js BOOTSTRAP TOPIC
// Produces with kafkajs 2.2.4 (acks -1 and 1, keys, headers, gzip) and prints
// one JSON line on stdout: {"results": [{"batch": name, "records": [...]}]}.
// Consumption with kafkajs is left out on purpose: kafkajs consumers require
// consumer groups, which fjord does not implement yet. pytest reads the data back
// with confluent-kafka instead.
'use strict';
const { Kafka, CompressionTypes, logLevel } = require('kafkajs');

async function main() {
  const [bootstrap, topic] = process.argv.slice(2);
  const kafka = new Kafka({ clientId: 'fjord-kafkajs', brokers: [bootstrap], logLevel: logLevel.NOTHING, retry: { retries: 3 } });
  const producer = kafka.producer({ allowAutoTopicCreation: false });
  await producer.connect();
  const results = [];
  try {
    const r1 = await producer.send({
      topic, acks: -1,
      messages: [
        { key: 'k0', value: 'acks-all-0', partition: 0, headers: { h: 'v0', multi: ['a', 'b'] } },
        { key: null, value: 'acks-all-1', partition: 0 },
        { key: 'k2', value: null, partition: 0 },
      ],
    });
    results.push({ batch: 'acks-all', records: r1 });
    const r2 = await producer.send({
      topic, acks: 1,
      messages: [{ key: 'k3', value: 'acks-1', partition: 0, timestamp: '1600000000000' }],
    });
    results.push({ batch: 'acks-1', records: r2 });
    const gz = [];
    for (let i = 0; i < 100; i++) gz.push({ key: `gz${i}`, value: `gzip-${i}-${'y'.repeat(i)}`, partition: 0 });
    const r3 = await producer.send({ topic, acks: -1, compression: CompressionTypes.GZIP, messages: gz });
    results.push({ batch: 'gzip', records: r3 });
    const r4 = await producer.sendBatch({
      acks: -1,
      topicMessages: [{ topic, messages: [{ value: 'batch-a', partition: 0 }, { value: 'batch-b', partition: 0 }] }],
    });
    results.push({ batch: 'sendBatch', records: r4 });
  } finally {
    await producer.disconnect();
  }
  process.stdout.write(JSON.stringify({ results }) + '\n');
}

main().catch((e) => {
  process.stdout.write(JSON.stringify({ error: String(e && e.stack || e), type: e && e.type, code: e && e.code }) + '\n');
  process.exit(1);
});
