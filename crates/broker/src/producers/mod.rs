//! The idempotent and transactional producer's partition side (KIP-98): producer id allocation,
//! per-partition sequence state, open transactions and aborted ones, and their persistence
//! (snapshots, rebuilt from the batches in the log after a crash).
mod ids;
mod snapshot;
mod state;

pub use ids::ProducerIds;
pub(crate) use snapshot::{load_state, save_state};
pub use state::{
    last_seq, AbortedTxn, BatchMeta, MarkerOutcome, ProducerEntry, ProducerStates, SeqCheck,
    SeqError,
};
