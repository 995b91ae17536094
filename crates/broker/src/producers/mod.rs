//! The idempotent producer (KIP-98 without transactions): producer id allocation, per-partition
//! sequence state, and its persistence (snapshots at shutdown, rebuilt from batch headers in the
//! log after a crash).
mod ids;
mod snapshot;
mod state;

pub use ids::ProducerIds;
pub(crate) use snapshot::{load_state, save_state};
pub use state::{last_seq, BatchMeta, ProducerStates, SeqCheck, SeqError};
