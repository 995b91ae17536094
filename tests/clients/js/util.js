// Helpers shared by the kafkajs scripts.
'use strict';

// Rejects with `timeout: WHAT` if `promise` has not settled within `ms`.
function withTimeout(promise, ms, what) {
  let timer;
  const t = new Promise((_, reject) => { timer = setTimeout(() => reject(new Error(`timeout: ${what}`)), ms); });
  return Promise.race([promise, t]).finally(() => clearTimeout(timer));
}

// A failed call as {ok: false, type, name, message}. kafkajs wraps protocol errors: the Kafka
// error type is on the error, its cause, or (admin createTopics) the first of its aggregated
// errors.
function describe(e) {
  const inner = (e && ((e.errors && e.errors[0]) || e.cause || e.originalError)) || {};
  return {
    ok: false,
    type: (e && e.type) || inner.type,
    name: e && e.name,
    message: [(e && e.message) || String(e), inner.message].filter(Boolean).join(': '),
  };
}

module.exports = { withTimeout, describe };
