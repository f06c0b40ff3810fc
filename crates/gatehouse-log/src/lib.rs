//! The transparency log's pure parts: RFC 6962 / 9162 Merkle hashing and
//! proof checking (through `tlog_tiles`, a port of Go's sumdb `tlog`), and
//! C2SP checkpoints in signed notes (through `signed_note`).

pub mod checkpoint;
pub mod entry;
pub mod frontier;
pub mod packet;
pub mod proof;
pub mod rules;
pub mod state;
pub mod tree;

pub use tlog_tiles::tlog::Hash;
