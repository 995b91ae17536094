//! The transaction coordinator (KIP-98, Kafka's transaction protocol version 1): transactional
//! ids, their producer ids and epochs, the partitions of each ongoing transaction, and the
//! two-phase end (Prepare → markers → Complete).
//!
//! - this module: the state of every transactional id ([`TxnMeta`]) and the pure transition
//!   checks of each request ([`TxnTable`]);
//! - [`records`]: the `__transaction_state` record formats; [`store`]: appending and loading them;
//! - [`api`]: the [`crate::Broker`] methods front-ends call — they persist each transition
//!   before answering and write the markers.
//!
//! Locking: every operation on one transactional id runs under that id's async lock (held
//! across its writes, so a second request for the same id waits rather than interleaving). The
//! table lock is only held for lookups and in-memory changes, never across an await and never
//! while a partition's producer lock is taken; the produce path takes the partition's producer
//! lock first and the table lock inside it.
pub mod api;
pub mod records;
mod store;
#[cfg(test)]
mod tests;

use crate::BrokerError;
use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};

pub use store::TxnLog;

/// The internal topic holding the coordinator's state.
pub const TRANSACTION_STATE_TOPIC: &str = "__transaction_state";

/// Coordinator settings (Kafka's `transaction.*` broker settings).
#[derive(Debug, Clone)]
pub struct TxnConfig {
    /// `transaction.state.log.num.partitions`.
    pub state_partitions: i32,
    /// `transaction.max.timeout.ms`: larger client timeouts get INVALID_TRANSACTION_TIMEOUT.
    pub max_timeout_ms: i32,
    /// `transaction.abort.timed.out.transaction.cleanup.interval.ms`: how often timed-out
    /// transactions are aborted (and interrupted ends completed).
    pub abort_interval_ms: u64,
    /// `transactional.id.expiration.ms`: an id idle this long (no transaction open) is removed.
    pub id_expiration_ms: i64,
}

impl Default for TxnConfig {
    fn default() -> Self {
        TxnConfig {
            state_partitions: 50,
            max_timeout_ms: 900_000,
            abort_interval_ms: 10_000,
            id_expiration_ms: 7 * 24 * 3600 * 1000,
        }
    }
}

/// Kafka's TransactionState, with its status codes in `__transaction_state` and its names in
/// DescribeTransactions / ListTransactions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TxnState {
    Empty,
    Ongoing,
    PrepareCommit,
    PrepareAbort,
    CompleteCommit,
    CompleteAbort,
    Dead,
    PrepareEpochFence,
}

impl TxnState {
    pub const ALL: [TxnState; 8] = [
        TxnState::Empty,
        TxnState::Ongoing,
        TxnState::PrepareCommit,
        TxnState::PrepareAbort,
        TxnState::CompleteCommit,
        TxnState::CompleteAbort,
        TxnState::Dead,
        TxnState::PrepareEpochFence,
    ];

    pub fn code(self) -> i8 {
        match self {
            TxnState::Empty => 0,
            TxnState::Ongoing => 1,
            TxnState::PrepareCommit => 2,
            TxnState::PrepareAbort => 3,
            TxnState::CompleteCommit => 4,
            TxnState::CompleteAbort => 5,
            TxnState::Dead => 6,
            TxnState::PrepareEpochFence => 7,
        }
    }

    pub fn from_code(code: i8) -> Option<TxnState> {
        TxnState::ALL.into_iter().find(|s| s.code() == code)
    }

    pub fn name(self) -> &'static str {
        match self {
            TxnState::Empty => "Empty",
            TxnState::Ongoing => "Ongoing",
            TxnState::PrepareCommit => "PrepareCommit",
            TxnState::PrepareAbort => "PrepareAbort",
            TxnState::CompleteCommit => "CompleteCommit",
            TxnState::CompleteAbort => "CompleteAbort",
            TxnState::Dead => "Dead",
            TxnState::PrepareEpochFence => "PrepareEpochFence",
        }
    }

    pub fn from_name(name: &str) -> Option<TxnState> {
        TxnState::ALL.into_iter().find(|s| s.name() == name)
    }

    fn is_preparing(self) -> bool {
        matches!(
            self,
            TxnState::PrepareCommit | TxnState::PrepareAbort | TxnState::PrepareEpochFence
        )
    }
}

/// One transactional id's coordinator state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxnMeta {
    pub transactional_id: String,
    pub producer_id: i64,
    pub epoch: i16,
    /// The epoch before the last bump (KIP-360: a retried InitProducerId that lost its answer
    /// presents it); -1 when unknown. Not persisted (Kafka's v0 value has no field for it).
    pub last_epoch: i16,
    pub timeout_ms: i32,
    pub state: TxnState,
    /// Partitions of the ongoing (or ending) transaction.
    pub partitions: BTreeSet<(String, i32)>,
    /// When the ongoing transaction began (its first AddPartitions), -1 when none.
    pub start_ms: i64,
    pub last_update_ms: i64,
}

impl TxnMeta {
    /// Checks that a request comes from the id's current producer instance.
    fn check_producer(&self, producer_id: i64, epoch: i16) -> Result<(), BrokerError> {
        if producer_id != self.producer_id {
            return Err(BrokerError::InvalidProducerIdMapping(format!(
                "transactional id '{}' belongs to producer id {}, not {producer_id}",
                self.transactional_id, self.producer_id
            )));
        }
        if epoch != self.epoch {
            return Err(BrokerError::ProducerFenced(format!(
                "producer epoch {epoch} of '{}' is not the current epoch {}",
                self.transactional_id, self.epoch
            )));
        }
        Ok(())
    }
}

/// Epochs are i16 and a bump past this allocates a new producer id (Kafka's rule).
pub(crate) const MAX_EPOCH: i16 = i16::MAX - 1;

/// What InitProducerId must do for an existing id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InitPlan {
    /// Answer with these (a retry whose earlier answer was lost).
    Reply(i64, i16),
    /// Bump the epoch (or take a fresh producer id when it is exhausted) and persist Empty.
    Bump,
    /// An ongoing transaction: abort it under a bumped epoch first (fencing the old instance).
    FenceAndAbort,
}

/// What EndTxn must do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndPlan {
    /// Prepare, write markers, complete.
    End,
    /// The same end again (a retry): already done.
    AlreadyDone,
}

/// Every transactional id, and producer id → transactional id for the produce path.
#[derive(Default)]
pub struct TxnTable {
    by_id: HashMap<String, TxnMeta>,
    by_producer: HashMap<i64, String>,
}

impl TxnTable {
    pub fn get(&self, id: &str) -> Option<&TxnMeta> {
        self.by_id.get(id)
    }

    pub fn values(&self) -> impl Iterator<Item = &TxnMeta> {
        self.by_id.values()
    }

    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }

    /// Replaces an id's state (memory follows the log: called once its record is appended).
    pub fn put(&mut self, meta: TxnMeta) {
        if let Some(old) = self.by_id.get(&meta.transactional_id) {
            if old.producer_id != meta.producer_id {
                self.by_producer.remove(&old.producer_id);
            }
        }
        self.by_producer
            .insert(meta.producer_id, meta.transactional_id.clone());
        self.by_id.insert(meta.transactional_id.clone(), meta);
    }

    pub fn remove(&mut self, id: &str) {
        if let Some(old) = self.by_id.remove(id) {
            self.by_producer.remove(&old.producer_id);
        }
    }

    /// InitProducerId on an existing id (`expected`: KIP-360's producer id and epoch, v3+).
    pub fn plan_init(
        &self,
        id: &str,
        expected: Option<(i64, i16)>,
    ) -> Result<Option<InitPlan>, BrokerError> {
        let Some(meta) = self.by_id.get(id) else {
            return Ok(None);
        };
        if meta.state.is_preparing() {
            return Err(BrokerError::ConcurrentTransactions);
        }
        if let Some((pid, epoch)) = expected {
            let current = pid == meta.producer_id && epoch == meta.epoch;
            let retry = pid == meta.producer_id && meta.last_epoch >= 0 && epoch == meta.last_epoch;
            if retry && meta.state != TxnState::Ongoing {
                return Ok(Some(InitPlan::Reply(meta.producer_id, meta.epoch)));
            }
            if !current {
                return Err(BrokerError::ProducerFenced(format!(
                    "producer {pid} epoch {epoch} is not the current instance of '{id}'"
                )));
            }
        }
        Ok(Some(match meta.state {
            TxnState::Ongoing => InitPlan::FenceAndAbort,
            _ => InitPlan::Bump,
        }))
    }

    /// AddPartitionsToTxn / AddOffsetsToTxn: the state with `partitions` added, or None when
    /// they are all in the ongoing transaction already (nothing to write).
    pub fn plan_add(
        &self,
        id: &str,
        producer_id: i64,
        epoch: i16,
        partitions: &[(String, i32)],
        now_ms: i64,
    ) -> Result<Option<TxnMeta>, BrokerError> {
        let meta = self.known(id)?;
        meta.check_producer(producer_id, epoch)?;
        if meta.state.is_preparing() {
            return Err(BrokerError::ConcurrentTransactions);
        }
        if meta.state == TxnState::Dead {
            return Err(BrokerError::InvalidTxnState(format!("'{id}' is dead")));
        }
        let ongoing = meta.state == TxnState::Ongoing;
        if ongoing && partitions.iter().all(|p| meta.partitions.contains(p)) {
            return Ok(None);
        }
        let mut next = meta.clone();
        if !ongoing {
            next.partitions.clear();
            next.start_ms = now_ms;
        }
        next.partitions.extend(partitions.iter().cloned());
        next.state = TxnState::Ongoing;
        next.last_update_ms = now_ms;
        Ok(Some(next))
    }

    /// AddPartitionsToTxn v4+ with verify_only: whether each partition is in the ongoing
    /// transaction.
    pub fn verify_partitions(
        &self,
        id: &str,
        producer_id: i64,
        epoch: i16,
        partitions: &[(String, i32)],
    ) -> Result<Vec<bool>, BrokerError> {
        let meta = self.known(id)?;
        meta.check_producer(producer_id, epoch)?;
        let ongoing = meta.state == TxnState::Ongoing;
        Ok(partitions
            .iter()
            .map(|p| ongoing && meta.partitions.contains(p))
            .collect())
    }

    /// EndTxn.
    pub fn plan_end(
        &self,
        id: &str,
        producer_id: i64,
        epoch: i16,
        commit: bool,
    ) -> Result<EndPlan, BrokerError> {
        let meta = self.known(id)?;
        meta.check_producer(producer_id, epoch)?;
        let wrong = |state: TxnState| {
            BrokerError::InvalidTxnState(format!(
                "cannot {} transaction of '{id}' in state {}",
                if commit { "commit" } else { "abort" },
                state.name()
            ))
        };
        match (meta.state, commit) {
            (TxnState::Ongoing, _) => Ok(EndPlan::End),
            (TxnState::CompleteCommit, true) | (TxnState::CompleteAbort, false) => {
                Ok(EndPlan::AlreadyDone)
            }
            (TxnState::PrepareCommit, true) | (TxnState::PrepareAbort, false) => {
                Err(BrokerError::ConcurrentTransactions)
            }
            (TxnState::PrepareEpochFence, _) => Err(BrokerError::ConcurrentTransactions),
            (state, _) => Err(wrong(state)),
        }
    }

    /// The produce path: a transactional batch of `producer_id` for `(topic, partition)` is
    /// accepted only while that partition is in the producer's ongoing transaction.
    pub fn verify_produce(
        &self,
        transactional_id: Option<&str>,
        producer_id: i64,
        epoch: i16,
        topic: &str,
        partition: i32,
    ) -> Result<(), BrokerError> {
        let not_added = || {
            BrokerError::TransactionNotVerified(format!(
                "{topic}-{partition} was not added to the transaction of producer {producer_id}"
            ))
        };
        let Some(transactional_id) = transactional_id else {
            return Err(BrokerError::TransactionalIdAuthorizationFailed(
                "a transactional batch needs the request's transactional id".into(),
            ));
        };
        if !self.by_id.contains_key(transactional_id) {
            return Err(BrokerError::InvalidProducerIdMapping(format!(
                "unknown transactional id '{transactional_id}'"
            )));
        }
        let meta = self
            .by_producer
            .get(&producer_id)
            .and_then(|id| self.by_id.get(id))
            .ok_or_else(not_added)?;
        if transactional_id != meta.transactional_id {
            return Err(BrokerError::InvalidProducerIdMapping(format!(
                "producer id {producer_id} does not belong to that transactional id"
            )));
        }
        if epoch < meta.epoch {
            return Err(BrokerError::InvalidProducerEpoch(format!(
                "producer epoch {epoch} is older than {} (fenced)",
                meta.epoch
            )));
        }
        let added = meta.state == TxnState::Ongoing
            && epoch == meta.epoch
            && meta.partitions.contains(&(topic.to_string(), partition));
        if added {
            Ok(())
        } else {
            Err(not_added())
        }
    }

    fn known(&self, id: &str) -> Result<&TxnMeta, BrokerError> {
        self.by_id.get(id).ok_or_else(|| {
            BrokerError::InvalidProducerIdMapping(format!("unknown transactional id '{id}'"))
        })
    }
}

/// The coordinator: the table, its log, and the per-id operation locks.
pub struct TxnCoordinator {
    pub(crate) config: TxnConfig,
    table: Mutex<TxnTable>,
    ops: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    pub(crate) log: TxnLog,
}

impl TxnCoordinator {
    pub(crate) fn new(config: TxnConfig) -> TxnCoordinator {
        TxnCoordinator {
            config,
            table: Mutex::new(TxnTable::default()),
            ops: Mutex::new(HashMap::new()),
            log: TxnLog::default(),
        }
    }

    pub(crate) fn table(&self) -> MutexGuard<'_, TxnTable> {
        self.table.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The lock serialising operations on one transactional id.
    pub(crate) fn op_lock(&self, id: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut ops = self.ops.lock().unwrap_or_else(|p| p.into_inner());
        ops.entry(id.to_string()).or_default().clone()
    }

    pub(crate) fn forget_op_lock(&self, id: &str) {
        let mut ops = self.ops.lock().unwrap_or_else(|p| p.into_inner());
        if ops.get(id).is_some_and(|l| Arc::strong_count(l) == 1) {
            ops.remove(id);
        }
    }

    /// See [`TxnTable::verify_produce`].
    pub(crate) fn verify_produce(
        &self,
        transactional_id: Option<&str>,
        producer_id: i64,
        epoch: i16,
        topic: &str,
        partition: i32,
    ) -> Result<(), BrokerError> {
        self.table()
            .verify_produce(transactional_id, producer_id, epoch, topic, partition)
    }
}
