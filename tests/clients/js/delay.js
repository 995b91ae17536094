// Usage: node delay.js BOOTSTRAP TOPIC GROUP
// kafkajs 2.2.4 and delay/timer messages (RocketMQ's DELAY / TIMER_* properties as record
// headers), driven by tests/clients/test_delay.py. TOPIC has one partition and is empty.
//   1. a plain producer sends: an immediate record; {DELAY: '1'} with a key, another header and
//      an explicit timestamp; a mixed batch {TIMER_DELAY_MS: '1500'} + immediate;
//      {TIMER_DELIVER_MS: now + 1200}; {DELAY: '0'} (not delayed); an invalid batch
//      (immediate + {DELAY: 'x'}) that must be refused with INVALID_RECORD
//   2. an idempotent producer sends {TIMER_DELAY_SEC: '1'} then an immediate record
//   3. a transactional producer sends {DELAY: '1'} in a transaction (must fail), then aborts
//   4. a consumer in GROUP reads TOPIC from the beginning until every expected value arrived,
//      noting when it saw each (Date.now())
// Prints one JSON line: {"sends": {name: {ok, records | type, message}}, "due": {value: ms},
// "txn": {ok, type, message}, "consumed": [{value, key, offset, timestamp, headers, seenMs}]}.
'use strict';
const { Kafka, logLevel } = require('kafkajs');
const { withTimeout, describe } = require('./util');

async function main() {
  const [bootstrap, topic, groupId] = process.argv.slice(2);
  const kafka = new Kafka({ clientId: 'fjord-kafkajs-delay', brokers: [bootstrap], logLevel: logLevel.NOTHING, retry: { retries: 3 } });
  const out = { sends: {}, due: {} };

  const send = async (producer, name, messages) => {
    try {
      out.sends[name] = { ok: true, records: await producer.send({ topic, acks: -1, messages }) };
    } catch (e) {
      out.sends[name] = describe(e);
    }
  };

  // 1. plain producer
  const plain = kafka.producer({ allowAutoTopicCreation: false });
  await plain.connect();
  await send(plain, 'immediate', [{ value: 'js-imm-0', partition: 0 }]);
  out.due['js-delay-1'] = Date.now() + 1000;
  await send(plain, 'delayLevel1', [
    { key: 'k1', value: 'js-delay-1', partition: 0, headers: { DELAY: '1', app: 'fjord' }, timestamp: '1700000000000' },
  ]);
  out.due['js-timer-ms'] = Date.now() + 1500;
  await send(plain, 'mixed', [
    { value: 'js-timer-ms', partition: 0, headers: { TIMER_DELAY_MS: '1500' } },
    { value: 'js-imm-1', partition: 0 },
  ]);
  const deliverAt = Date.now() + 1200;
  out.due['js-deliver-ms'] = deliverAt;
  await send(plain, 'deliverMs', [{ value: 'js-deliver-ms', partition: 0, headers: { TIMER_DELIVER_MS: String(deliverAt) } }]);
  await send(plain, 'delayZero', [{ value: 'js-delay-0', partition: 0, headers: { DELAY: '0' } }]);
  await send(plain, 'invalid', [
    { value: 'js-bad-imm', partition: 0 },
    { value: 'js-bad', partition: 0, headers: { DELAY: 'x' } },
  ]);
  await plain.disconnect();

  // 2. idempotent producer
  const idem = kafka.producer({ idempotent: true, maxInFlightRequests: 1, allowAutoTopicCreation: false });
  await idem.connect();
  out.due['js-idem-d'] = Date.now() + 1000;
  await send(idem, 'idemDelayed', [{ value: 'js-idem-d', partition: 0, headers: { TIMER_DELAY_SEC: '1' } }]);
  await send(idem, 'idemImmediate', [{ value: 'js-idem-imm', partition: 0 }]);
  await idem.disconnect();

  // 3. transactional producer: a delayed record in a transaction is refused
  const tp = kafka.producer({ transactionalId: `${groupId}-txn`, idempotent: true, maxInFlightRequests: 1, retry: { retries: 1 } });
  await tp.connect();
  const txn = await tp.transaction();
  try {
    await txn.send({ topic, acks: -1, messages: [{ value: 'js-txn-d', partition: 0, headers: { DELAY: '1' } }] });
    await txn.commit();
    out.txn = { ok: true };
  } catch (e) {
    out.txn = describe(e);
    await txn.abort().catch((e2) => { out.txnAbortError = String(e2); });
  }
  await tp.disconnect().catch(() => {});

  // 4. group consumer
  const expected = new Set(['js-imm-0', 'js-delay-1', 'js-timer-ms', 'js-imm-1', 'js-deliver-ms', 'js-delay-0', 'js-idem-d', 'js-idem-imm']);
  const consumer = kafka.consumer({ groupId, sessionTimeout: 10000, heartbeatInterval: 500, maxWaitTimeInMs: 200 });
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  const consumed = [];
  let done;
  const finished = new Promise((resolve) => { done = resolve; });
  await consumer.run({
    eachMessage: async ({ message }) => {
      const seenMs = Date.now();
      const value = message.value === null ? null : message.value.toString();
      const headers = {};
      for (const [k, v] of Object.entries(message.headers || {})) {
        headers[k] = Array.isArray(v) ? v.map((x) => x && x.toString()) : v && v.toString();
      }
      consumed.push({ value, key: message.key && message.key.toString(), offset: message.offset, timestamp: message.timestamp, headers, seenMs });
      expected.delete(value);
      if (expected.size === 0) done();
    },
  });
  await withTimeout(finished, 20000, `consuming ${topic} (missing ${JSON.stringify([...expected])}, got ${JSON.stringify(consumed.map((m) => m.value))})`);
  await consumer.disconnect();
  out.consumed = consumed;
  process.stdout.write(JSON.stringify(out) + '\n');
}

main().catch((e) => {
  process.stdout.write(JSON.stringify({ error: String(e && e.stack || e), type: e && e.type }) + '\n');
  process.exit(1);
});
