//! The transaction operations on [`Broker`] that front-ends call, and the work around the
//! coordinator's table: persisting each transition in `__transaction_state` before it is
//! answered, writing COMMIT/ABORT markers to every partition of a transaction, the periodic
//! sweep (timeouts, interrupted ends, expired ids) and the startup load.
use super::{EndPlan, InitPlan, TxnMeta, TxnState, MAX_EPOCH, TRANSACTION_STATE_TOPIC};
use crate::broker::is_internal_topic;
use crate::data::now_ms;
use crate::groups::OFFSETS_TOPIC;
use crate::{Broker, BrokerError};
use bytes::Bytes;
use fjord_storage::FlushTicket;
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

/// A transaction as DescribeTransactions / ListTransactions report it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxnDescription {
    pub transactional_id: String,
    pub state: TxnState,
    pub producer_id: i64,
    pub epoch: i16,
    pub timeout_ms: i32,
    /// -1 when no transaction is open.
    pub start_ms: i64,
    pub partitions: BTreeSet<(String, i32)>,
}

/// A producer with state in one partition (DescribeProducers).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProducerDescription {
    pub producer_id: i64,
    pub epoch: i16,
    pub last_sequence: i32,
    pub last_timestamp: i64,
    pub coordinator_epoch: i32,
    /// First offset of its open transaction here, -1 if none.
    pub txn_start_offset: i64,
}

/// Which transactions ListTransactions wants (empty filters match everything).
#[derive(Debug, Clone, Default)]
pub struct TxnFilter {
    pub states: Vec<TxnState>,
    pub producer_ids: Vec<i64>,
    /// Only transactions open longer than this (ms); -1 for any.
    pub min_duration_ms: i64,
}

/// The coordinator epoch written into markers: one coordinator, never moved (the cluster layer
/// will pass the real one).
const COORDINATOR_EPOCH: i32 = 0;

async fn durable(ticket: Option<FlushTicket>) -> Result<(), BrokerError> {
    match ticket {
        Some(t) => t
            .wait()
            .await
            .map_err(|e| BrokerError::Storage(e.to_string())),
        None => Ok(()),
    }
}

fn check_id(id: &str) -> Result<(), BrokerError> {
    if id.is_empty() {
        return Err(BrokerError::InvalidRequest("empty transactional id".into()));
    }
    Ok(())
}

impl Broker {
    /// Creates `__transaction_state` on first use (compacted, 50 partitions as Kafka).
    fn ensure_txn_topic(&self) -> Result<(), BrokerError> {
        if self.txns.log.has_topic() {
            return Ok(());
        }
        let partitions = self.txns.config.state_partitions;
        let topic = self.ensure_internal_topic(TRANSACTION_STATE_TOPIC, partitions)?;
        self.txns.log.set_topic(topic);
        Ok(())
    }

    /// Appends the id's new state and waits until it is durable; only then does memory change.
    async fn persist(&self, meta: TxnMeta) -> Result<(), BrokerError> {
        let ticket = self.append_state(&meta)?;
        durable(ticket).await?;
        self.txns.table().put(meta);
        Ok(())
    }

    /// Appends the id's new state and changes memory without waiting for durability: only for
    /// Complete, whose loss is harmless — a restart finds Prepare and completes it again with
    /// the same outcome. It saves EndTxn a third fsync round (Prepare, markers, Complete).
    fn persist_lazily(&self, meta: TxnMeta) -> Result<(), BrokerError> {
        self.append_state(&meta)?;
        self.txns.table().put(meta);
        Ok(())
    }

    fn append_state(&self, meta: &TxnMeta) -> Result<Option<FlushTicket>, BrokerError> {
        self.ensure_txn_topic()?;
        self.txns
            .log
            .append(&meta.transactional_id, Some(meta), now_ms())
    }

    fn check_ready(&self) -> Result<(), BrokerError> {
        if self.txns_loaded() {
            Ok(())
        } else {
            Err(BrokerError::CoordinatorLoading)
        }
    }

    /// InitProducerId with a transactional id: a new id gets a fresh producer id at epoch 0; an
    /// existing one gets its epoch bumped (fencing any older instance), after its open
    /// transaction, if any, is aborted. `expected` is KIP-360's (producer id, epoch), given by
    /// a producer that bumps its own epoch after an abortable error.
    pub async fn init_transactional_producer(
        &self,
        id: &str,
        timeout_ms: i32,
        expected: Option<(i64, i16)>,
    ) -> Result<(i64, i16), BrokerError> {
        check_id(id)?;
        self.check_ready()?;
        if timeout_ms <= 0 || timeout_ms > self.txns.config.max_timeout_ms {
            return Err(BrokerError::InvalidTransactionTimeout(format!(
                "transaction timeout {timeout_ms} ms is not in (0, {}] (transaction.max.timeout.ms)",
                self.txns.config.max_timeout_ms
            )));
        }
        let lock = self.txns.op_lock(id);
        let _op = lock.lock().await;
        let plan = self.txns.table().plan_init(id, expected)?;
        let now = now_ms();
        let meta = match plan {
            None => {
                let producer_id = self.producer_ids.allocate(&self.meta)?;
                TxnMeta {
                    transactional_id: id.to_string(),
                    producer_id,
                    epoch: 0,
                    last_epoch: -1,
                    timeout_ms,
                    state: TxnState::Empty,
                    partitions: BTreeSet::new(),
                    start_ms: -1,
                    last_update_ms: now,
                }
            }
            Some(InitPlan::Reply(pid, epoch)) => return Ok((pid, epoch)),
            Some(InitPlan::FenceAndAbort) => {
                self.fence_and_abort(id, "a new instance of the producer started")
                    .await?;
                self.bumped(id, timeout_ms, now, expected.is_some())?
            }
            Some(InitPlan::Bump) => self.bumped(id, timeout_ms, now, expected.is_some())?,
        };
        let answer = (meta.producer_id, meta.epoch);
        self.persist(meta).await?;
        Ok(answer)
    }

    /// The id's state with its epoch bumped, or a fresh producer id once the epoch is
    /// exhausted, ready for a new transaction. Only a bump the producer asked for itself
    /// (KIP-360, `requested`) remembers the previous epoch for a retry of that request.
    fn bumped(
        &self,
        id: &str,
        timeout_ms: i32,
        now: i64,
        requested: bool,
    ) -> Result<TxnMeta, BrokerError> {
        let mut meta = self
            .txns
            .table()
            .get(id)
            .cloned()
            .ok_or_else(|| BrokerError::InvalidProducerIdMapping(id.to_string()))?;
        if meta.epoch >= MAX_EPOCH {
            meta.producer_id = self.producer_ids.allocate(&self.meta)?;
            meta.last_epoch = -1;
            meta.epoch = 0;
        } else {
            meta.last_epoch = if requested { meta.epoch } else { -1 };
            meta.epoch += 1;
        }
        meta.timeout_ms = timeout_ms;
        meta.state = TxnState::Empty;
        meta.partitions.clear();
        meta.start_ms = -1;
        meta.last_update_ms = now;
        Ok(meta)
    }

    /// AddPartitionsToTxn (and the partitions half of AddOffsetsToTxn). Partitions of unknown
    /// topics fail the request: they get UNKNOWN_TOPIC_OR_PARTITION, the rest
    /// OPERATION_NOT_ATTEMPTED, as Kafka answers.
    pub async fn add_partitions_to_txn(
        &self,
        id: &str,
        producer_id: i64,
        epoch: i16,
        partitions: &[(String, i32)],
    ) -> Result<Vec<Result<(), BrokerError>>, BrokerError> {
        if let Some((topic, _)) = partitions.iter().find(|(t, _)| is_internal_topic(t)) {
            return Err(BrokerError::TopicAuthorizationFailed(format!(
                "internal topic '{topic}' cannot be added to a transaction"
            )));
        }
        self.add_any_partitions(id, producer_id, epoch, partitions)
            .await
    }

    /// AddPartitionsToTxn without the internal-topic check (AddOffsetsToTxn adds the group's
    /// `__consumer_offsets` partition this way).
    async fn add_any_partitions(
        &self,
        id: &str,
        producer_id: i64,
        epoch: i16,
        partitions: &[(String, i32)],
    ) -> Result<Vec<Result<(), BrokerError>>, BrokerError> {
        check_id(id)?;
        self.check_ready()?;
        let known: Vec<bool> = partitions
            .iter()
            .map(|(t, p)| self.partition(t, *p).is_ok())
            .collect();
        if known.iter().any(|k| !k) {
            return Ok(known
                .into_iter()
                .map(|k| {
                    if k {
                        Err(BrokerError::OperationNotAttempted)
                    } else {
                        Err(BrokerError::UnknownTopicOrPartition)
                    }
                })
                .collect());
        }
        let lock = self.txns.op_lock(id);
        let _op = lock.lock().await;
        let plan = self
            .txns
            .table()
            .plan_add(id, producer_id, epoch, partitions, now_ms())?;
        if let Some(next) = plan {
            self.persist(next).await?;
        }
        Ok(partitions.iter().map(|_| Ok(())).collect())
    }

    /// AddPartitionsToTxn v4+ with verify_only: whether each partition is in the transaction.
    pub fn verify_txn_partitions(
        &self,
        id: &str,
        producer_id: i64,
        epoch: i16,
        partitions: &[(String, i32)],
    ) -> Result<Vec<bool>, BrokerError> {
        self.check_ready()?;
        self.txns
            .table()
            .verify_partitions(id, producer_id, epoch, partitions)
    }

    /// AddOffsetsToTxn: adds the group's `__consumer_offsets` partition to the transaction.
    pub async fn add_offsets_to_txn(
        &self,
        id: &str,
        producer_id: i64,
        epoch: i16,
        group_id: &str,
    ) -> Result<(), BrokerError> {
        if group_id.is_empty() {
            return Err(BrokerError::InvalidGroupId);
        }
        let partition = self
            .offsets_partition_for(group_id)
            .map_err(|_| BrokerError::CoordinatorNotAvailable("no offsets topic".into()))?;
        let added = self
            .add_any_partitions(
                id,
                producer_id,
                epoch,
                &[(OFFSETS_TOPIC.to_string(), partition)],
            )
            .await?;
        added.into_iter().next().unwrap_or(Ok(()))
    }

    /// The offsets partition of a group, creating `__consumer_offsets` on first use.
    pub(crate) fn offsets_partition_for(&self, group_id: &str) -> Result<i32, BrokerError> {
        self.ensure_offsets_topic_for_txn()?;
        let partitions = self
            .topic(OFFSETS_TOPIC)
            .map(|t| t.partitions.len() as i32)
            .ok_or_else(|| BrokerError::CoordinatorNotAvailable("no offsets topic".into()))?;
        Ok(crate::groups::records::partition_for(group_id, partitions))
    }

    /// EndTxn: commits or aborts the ongoing transaction. Prepare is persisted first (from then
    /// on the outcome is decided: a crash completes it at startup), then every partition gets
    /// its marker, then Complete is persisted.
    pub async fn end_txn(
        &self,
        id: &str,
        producer_id: i64,
        epoch: i16,
        commit: bool,
    ) -> Result<(), BrokerError> {
        check_id(id)?;
        self.check_ready()?;
        let lock = self.txns.op_lock(id);
        let _op = lock.lock().await;
        let plan = self.txns.table().plan_end(id, producer_id, epoch, commit)?;
        if plan == EndPlan::AlreadyDone {
            return Ok(());
        }
        let started = std::time::Instant::now();
        self.end_ongoing(id, commit, None).await?;
        let outcome = if commit { "commit" } else { "abort" };
        metrics::counter!("fjord_transactions_ended_total", "outcome" => outcome).increment(1);
        metrics::histogram!("fjord_transaction_end_seconds")
            .record(started.elapsed().as_secs_f64());
        Ok(())
    }

    /// Ends an ongoing transaction: Prepare (with `epoch` if given, to fence), markers,
    /// Complete. Caller holds the id's operation lock.
    async fn end_ongoing(
        &self,
        id: &str,
        commit: bool,
        epoch: Option<i16>,
    ) -> Result<(), BrokerError> {
        let mut prepared = self
            .txns
            .table()
            .get(id)
            .cloned()
            .ok_or_else(|| BrokerError::InvalidProducerIdMapping(id.to_string()))?;
        if let Some(epoch) = epoch {
            prepared.last_epoch = -1;
            prepared.epoch = epoch;
        }
        prepared.state = if commit {
            TxnState::PrepareCommit
        } else {
            TxnState::PrepareAbort
        };
        prepared.last_update_ms = now_ms();
        self.persist(prepared.clone()).await?;
        self.complete(prepared).await
    }

    /// Writes the markers of a prepared transaction and persists its completion.
    async fn complete(&self, prepared: TxnMeta) -> Result<(), BrokerError> {
        let commit = prepared.state == TxnState::PrepareCommit;
        self.write_markers(&prepared, commit).await?;
        let mut done = prepared;
        done.state = if commit {
            TxnState::CompleteCommit
        } else {
            TxnState::CompleteAbort
        };
        // The start time stays: DescribeTransactions reports it for a completed one, as Kafka.
        done.partitions.clear();
        done.last_update_ms = now_ms();
        self.persist_lazily(done)
    }

    /// Aborts the id's ongoing transaction under a bumped epoch: the old instance's writes and
    /// its EndTxn are refused from now on. Caller holds the id's operation lock.
    async fn fence_and_abort(&self, id: &str, why: &str) -> Result<(), BrokerError> {
        let Some(meta) = self.txns.table().get(id).cloned() else {
            return Ok(());
        };
        if meta.state != TxnState::Ongoing {
            return Ok(());
        }
        // With the epoch exhausted the abort keeps it; the next InitProducerId rotates the id.
        let epoch = (meta.epoch < MAX_EPOCH).then_some(meta.epoch + 1);
        tracing::info!(
            transactional_id = id,
            producer_id = meta.producer_id,
            epoch = meta.epoch,
            "aborting open transaction: {why}"
        );
        self.end_ongoing(id, false, epoch.or(Some(meta.epoch)))
            .await?;
        metrics::counter!("fjord_transactions_ended_total", "outcome" => "fenced_abort")
            .increment(1);
        Ok(())
    }

    /// One marker per partition of the transaction, all appended before any is awaited (they
    /// share a group-commit round). A partition whose topic was deleted meanwhile is skipped.
    async fn write_markers(&self, meta: &TxnMeta, commit: bool) -> Result<(), BrokerError> {
        let mut tickets = Vec::with_capacity(meta.partitions.len());
        for (topic, index) in &meta.partitions {
            let Ok(partition) = self.partition(topic, *index) else {
                continue;
            };
            let ticket = self.write_marker(&partition, meta.producer_id, meta.epoch, commit)?;
            if topic == OFFSETS_TOPIC {
                self.groups
                    .complete_txn_offsets(*index, meta.producer_id, commit);
            }
            tickets.push(ticket);
        }
        for ticket in tickets {
            durable(ticket).await?;
        }
        Ok(())
    }

    /// Appends one COMMIT or ABORT marker to a partition and closes the producer's transaction
    /// there (under its producer lock: a batch verified before the end lands before it).
    pub(crate) fn write_marker(
        &self,
        partition: &crate::Partition,
        producer_id: i64,
        epoch: i16,
        commit: bool,
    ) -> Result<Option<FlushTicket>, BrokerError> {
        let now = now_ms();
        let marker = if commit {
            fjord_records::Marker::Commit
        } else {
            fjord_records::Marker::Abort
        };
        let batch = fjord_records::marker_batch(marker, producer_id, epoch, COORDINATOR_EPOCH, now);
        let mut states = partition.lock_producers();
        let appended = partition.log.append(Bytes::from(batch), now).map_err(|e| {
            tracing::error!(partition = partition.index, error = %e, "cannot write transaction marker");
            BrokerError::from(e)
        })?;
        states.apply_marker(
            producer_id,
            epoch,
            COORDINATOR_EPOCH,
            commit,
            appended.base_offset,
            now,
        );
        partition.refresh_stable(&states);
        drop(states);
        partition.wake_fetchers();
        Ok(appended.durable)
    }

    /// WriteTxnMarkers (what `kafka-transactions abort` sends for a hanging transaction):
    /// writes a marker for a producer to the listed partitions, whether or not a transactional
    /// id knows it.
    pub async fn write_txn_markers(
        &self,
        producer_id: i64,
        epoch: i16,
        commit: bool,
        partitions: &[(String, i32)],
    ) -> Vec<Result<(), BrokerError>> {
        let mut results = Vec::with_capacity(partitions.len());
        for (topic, index) in partitions {
            let result = match self.partition(topic, *index) {
                Ok(partition) => match self.write_marker(&partition, producer_id, epoch, commit) {
                    Ok(ticket) => {
                        if topic == OFFSETS_TOPIC {
                            self.groups
                                .complete_txn_offsets(*index, producer_id, commit);
                        }
                        durable(ticket).await
                    }
                    Err(e) => Err(e),
                },
                Err(e) => Err(e),
            };
            results.push(result);
        }
        results
    }

    pub fn describe_transaction(&self, id: &str) -> Result<TxnDescription, BrokerError> {
        self.check_ready()?;
        let table = self.txns.table();
        let meta = table
            .get(id)
            .ok_or_else(|| BrokerError::TransactionalIdNotFound(id.to_string()))?;
        Ok(describe(meta))
    }

    pub fn list_transactions(
        &self,
        filter: &TxnFilter,
    ) -> Result<Vec<TxnDescription>, BrokerError> {
        self.check_ready()?;
        let now = now_ms();
        let table = self.txns.table();
        let mut found: Vec<TxnDescription> = table
            .values()
            .filter(|m| filter.states.is_empty() || filter.states.contains(&m.state))
            .filter(|m| {
                filter.producer_ids.is_empty() || filter.producer_ids.contains(&m.producer_id)
            })
            // Kafka's test, literally: an id without a transaction (start -1) always passes.
            .filter(|m| filter.min_duration_ms < 0 || now - m.start_ms > filter.min_duration_ms)
            .map(describe)
            .collect();
        found.sort_by(|a, b| a.transactional_id.cmp(&b.transactional_id));
        Ok(found)
    }

    /// DescribeProducers: the producers with state in one partition.
    pub fn describe_producers(
        &self,
        topic: &str,
        partition: i32,
    ) -> Result<Vec<ProducerDescription>, BrokerError> {
        let partition = self.partition(topic, partition)?;
        let states = partition.lock_producers();
        let mut found: Vec<ProducerDescription> = states
            .iter()
            .map(|(producer_id, e)| ProducerDescription {
                producer_id,
                epoch: e.epoch,
                last_sequence: e.last_sequence(),
                last_timestamp: e.last_timestamp,
                coordinator_epoch: e.coordinator_epoch,
                txn_start_offset: e.txn_first_offset.unwrap_or(-1),
            })
            .collect();
        found.sort_by_key(|p| p.producer_id);
        Ok(found)
    }

    /// Whether the coordinator has loaded `__transaction_state`.
    pub(crate) fn txns_loaded(&self) -> bool {
        self.txns_loaded.load(std::sync::atomic::Ordering::Acquire)
    }

    /// Loads `__transaction_state` (called once the broker is open).
    pub(crate) fn load_transactions(&self) {
        if let Some(topic) = self.topic(TRANSACTION_STATE_TOPIC) {
            self.txns.log.set_topic(topic);
        }
        let started = std::time::Instant::now();
        let loaded = match self.txns.log.load() {
            Ok(loaded) => loaded,
            Err(e) => {
                tracing::error!(error = %e, "could not load {TRANSACTION_STATE_TOPIC}; transactional ids start empty");
                Default::default()
            }
        };
        let count = loaded.len();
        {
            let mut table = self.txns.table();
            for (_, meta) in loaded {
                table.put(meta);
            }
        }
        self.txns_loaded
            .store(true, std::sync::atomic::Ordering::Release);
        tracing::info!(
            transactional_ids = count,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "loaded transaction state"
        );
    }

    /// Starts the sweep: right away (completing ends a crash interrupted, once the groups are
    /// loaded so their transactional offsets are there to complete), then every
    /// `abort_interval_ms` (timed-out transactions, expired ids).
    pub fn start_transaction_sweep(self: &Arc<Broker>) {
        let broker = Arc::downgrade(self);
        let every = Duration::from_millis(self.txns.config.abort_interval_ms.max(1));
        tokio::spawn(async move {
            loop {
                let Some(b) = broker.upgrade() else { return };
                if b.groups.is_loaded() {
                    break;
                }
                drop(b);
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            loop {
                let Some(b) = broker.upgrade() else { return };
                b.sweep_transactions().await;
                drop(b);
                tokio::time::sleep(every).await;
            }
        });
    }

    /// One sweep over every transactional id.
    pub async fn sweep_transactions(&self) {
        let now = now_ms();
        let due: Vec<(String, TxnState)> = self
            .txns
            .table()
            .values()
            .filter(|m| match m.state {
                TxnState::Ongoing => now.saturating_sub(m.start_ms) > i64::from(m.timeout_ms),
                TxnState::PrepareCommit | TxnState::PrepareAbort => true,
                TxnState::Empty | TxnState::CompleteCommit | TxnState::CompleteAbort => {
                    now.saturating_sub(m.last_update_ms) > self.txns.config.id_expiration_ms
                }
                _ => false,
            })
            .map(|m| (m.transactional_id.clone(), m.state))
            .collect();
        for (id, state) in due {
            let lock = self.txns.op_lock(&id);
            let _op = lock.lock().await;
            // Re-read under the lock: a request may have moved it on meanwhile.
            let Some(meta) = self.txns.table().get(&id).cloned() else {
                continue;
            };
            if meta.state != state {
                continue;
            }
            let result = match state {
                TxnState::Ongoing => self.fence_and_abort(&id, "transaction timed out").await,
                TxnState::PrepareCommit | TxnState::PrepareAbort => self.complete(meta).await,
                _ => self.expire_transactional_id(&id).await,
            };
            if let Err(e) = result {
                tracing::warn!(transactional_id = %id, error = %e, "transaction sweep failed; will retry");
            }
        }
        metrics::gauge!("fjord_transactions_open").set(
            self.txns
                .table()
                .values()
                .filter(|m| m.state == TxnState::Ongoing)
                .count() as f64,
        );
    }

    async fn expire_transactional_id(&self, id: &str) -> Result<(), BrokerError> {
        let ticket = self.txns.log.append(id, None, now_ms())?;
        durable(ticket).await?;
        self.txns.table().remove(id);
        self.txns.forget_op_lock(id);
        tracing::info!(transactional_id = id, "expired transactional id");
        Ok(())
    }
}

fn describe(meta: &TxnMeta) -> TxnDescription {
    TxnDescription {
        transactional_id: meta.transactional_id.clone(),
        state: meta.state,
        producer_id: meta.producer_id,
        epoch: meta.epoch,
        timeout_ms: meta.timeout_ms,
        start_ms: meta.start_ms,
        partitions: meta.partitions.clone(),
    }
}
