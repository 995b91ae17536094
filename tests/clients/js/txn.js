// Usage: node txn.js BOOTSTRAP TOPIC IN_TOPIC OUT_TOPIC GROUP TRANSACTIONAL_ID
// kafkajs 2.2.4 transactions, driven by tests/clients/test_transactions.py:
//   1. producer.transaction() (idempotent, transactionalId): send c0-c2 to TOPIC, commit
//   2. a second transaction: send a0-a2, abort; then a plain producer sends "end"
//   3. a kafkajs consumer (readUncommitted: false) reads TOPIC up to "end"
//   4. consume-transform-produce: a consumer in GROUP reads the 10 records of IN_TOPIC and each
//      batch goes to OUT_TOPIC as "T:" + value in a transaction with sendOffsets
//   5. a transaction with sendOffsets (group GROUP-aborted) aborted
//   6. a second producer with the same transactionalId fences the first (its commit fails)
// Prints one JSON line: {"commit": [...], "abort": [...], "jsReadCommitted": [...], "ctpBatches": n,
// "fenced": {ok, type, name, message}}.
'use strict';
const { Kafka, logLevel } = require('kafkajs');
const { withTimeout } = require('./util');

async function main() {
  const [bootstrap, topic, inTopic, outTopic, groupId, transactionalId] = process.argv.slice(2);
  const kafka = new Kafka({ clientId: 'fjord-kafkajs-txn', brokers: [bootstrap], logLevel: logLevel.NOTHING });
  const out = {};
  const producer = kafka.producer({ transactionalId, idempotent: true, maxInFlightRequests: 1, allowAutoTopicCreation: false });
  await producer.connect();

  const t1 = await producer.transaction();
  out.commit = await t1.send({ topic, messages: ['c0', 'c1', 'c2'].map((value) => ({ value, partition: 0 })) });
  await t1.commit();

  const t2 = await producer.transaction();
  out.abort = await t2.send({ topic, messages: ['a0', 'a1', 'a2'].map((value) => ({ value, partition: 0 })) });
  await t2.abort();

  // Kafka writes the ABORT marker after answering EndTxn: wait for it (high watermark 8) so
  // that "end" lands at offset 8
  const admin = kafka.admin();
  await admin.connect();
  const deadline = Date.now() + 20000;
  for (;;) {
    const [p0] = await admin.fetchTopicOffsets(topic);
    if (p0.high === '8') break;
    if (Date.now() > deadline) throw new Error(`ABORT marker not written: high watermark ${p0.high}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  await admin.disconnect();

  const plain = kafka.producer({ allowAutoTopicCreation: false });
  await plain.connect();
  await plain.send({ topic, messages: [{ value: 'end', partition: 0 }] });
  await plain.disconnect();

  // 3. read_committed kafkajs consumer
  {
    const consumer = kafka.consumer({ groupId: `${groupId}-reader`, readUncommitted: false, sessionTimeout: 10000, heartbeatInterval: 500 });
    await consumer.connect();
    await consumer.subscribe({ topic, fromBeginning: true });
    const values = [];
    let done;
    const finished = new Promise((resolve) => { done = resolve; });
    await consumer.run({
      autoCommit: false,
      eachMessage: async ({ message }) => {
        values.push(message.value.toString());
        if (message.value.toString() === 'end') done();
      },
    });
    await withTimeout(finished, 60000, `reading ${topic} up to "end" (got ${JSON.stringify(values)})`);
    await consumer.disconnect();
    out.jsReadCommitted = values;
  }

  // 4. consume-transform-produce with sendOffsets
  {
    const consumer = kafka.consumer({ groupId, readUncommitted: false, sessionTimeout: 10000, heartbeatInterval: 500 });
    await consumer.connect();
    await consumer.subscribe({ topic: inTopic, fromBeginning: true });
    let processed = 0;
    let batches = 0;
    let done;
    let failed;
    const finished = new Promise((resolve, reject) => { done = resolve; failed = reject; });
    await consumer.run({
      autoCommit: false,
      eachBatchAutoResolve: false,
      eachBatch: async ({ batch, resolveOffset }) => {
        if (batch.messages.length === 0) return;
        try {
          const txn = await producer.transaction();
          await txn.send({
            topic: outTopic,
            messages: batch.messages.map((m) => ({ value: 'T:' + m.value.toString(), partition: 0 })),
          });
          const last = batch.messages[batch.messages.length - 1].offset;
          await txn.sendOffsets({
            consumerGroupId: groupId,
            topics: [{ topic: batch.topic, partitions: [{ partition: batch.partition, offset: (BigInt(last) + 1n).toString() }] }],
          });
          await txn.commit();
          resolveOffset(last);
          batches += 1;
          processed += batch.messages.length;
          if (processed >= 10) done();
        } catch (e) {
          failed(e);
        }
      },
    });
    await withTimeout(finished, 60000, `consume-transform-produce (processed ${processed})`);
    await consumer.disconnect();
    out.ctpBatches = batches;
    out.ctpProcessed = processed;
  }
  // 5. sendOffsets in an aborted transaction commits nothing
  {
    const txn = await producer.transaction();
    await txn.send({ topic: outTopic, messages: [{ value: 'aborted-with-offsets', partition: 0 }] });
    await txn.sendOffsets({
      consumerGroupId: `${groupId}-aborted`,
      topics: [{ topic: inTopic, partitions: [{ partition: 0, offset: '7' }] }],
    });
    await txn.abort();
  }
  await producer.disconnect();

  // 6. fencing: a second producer with the same transactionalId; the first one's commit fails
  {
    const fencedId = `${transactionalId}-fenced`;
    const first = kafka.producer({ transactionalId: fencedId, idempotent: true, maxInFlightRequests: 1, retry: { retries: 2 } });
    await first.connect();
    const txn = await first.transaction();
    await txn.send({ topic, messages: [{ value: 'fenced-0', partition: 0 }] });
    const second = kafka.producer({ transactionalId: fencedId, idempotent: true, maxInFlightRequests: 1 });
    await second.connect();
    const t2 = await second.transaction();   // InitProducerId bumped the epoch on connect
    try {
      await txn.commit();
      out.fenced = { ok: true };
    } catch (e) {
      out.fenced = { ok: false, type: e.type, name: e.name, message: e.message };
    }
    await t2.send({ topic, messages: [{ value: 'second-0', partition: 0 }] });
    await t2.commit();
    await first.disconnect().catch(() => {});
    await second.disconnect();
  }
  process.stdout.write(JSON.stringify(out) + '\n');
}

main().catch((e) => {
  process.stdout.write(JSON.stringify({ error: String(e && e.stack || e), type: e && e.type }) + '\n');
  process.exit(1);
});
