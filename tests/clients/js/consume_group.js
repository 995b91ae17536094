// Usage: node consume_group.js BOOTSTRAP TOPIC GROUP COUNT
// Consumes COUNT records as a member of GROUP with kafkajs 2.2.4 (auto-commit), then
// disconnects (which commits) and prints one JSON line: {"values": [...]}.
'use strict';
const { Kafka, logLevel } = require('kafkajs');

async function main() {
  const [bootstrap, topic, groupId, countArg] = process.argv.slice(2);
  const count = Number(countArg);
  const kafka = new Kafka({ clientId: 'fjord-kafkajs-group', brokers: [bootstrap], logLevel: logLevel.NOTHING });
  const consumer = kafka.consumer({ groupId, sessionTimeout: 10000, heartbeatInterval: 500 });
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  const values = [];
  let done;
  const finished = new Promise((resolve) => { done = resolve; });
  await consumer.run({
    autoCommit: true,
    autoCommitInterval: 200,
    eachMessage: async ({ message }) => {
      values.push(message.value.toString());
      if (values.length >= count) done();
    },
  });
  const timer = setTimeout(() => done(), 60000);
  await finished;
  clearTimeout(timer);
  await consumer.disconnect();
  process.stdout.write(JSON.stringify({ values }) + '\n');
}

main().catch((e) => {
  process.stdout.write(JSON.stringify({ error: String(e && e.stack || e), type: e && e.type }) + '\n');
  process.exit(1);
});
