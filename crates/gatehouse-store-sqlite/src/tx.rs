//! What a writer job sees: the writer's connection inside the batch's
//! transaction (through `Deref`), and the log's in-memory right edge,
//! which [`crate::log::append`] extends.

use std::cell::{Cell, RefCell};
use std::ops::Deref;

use gatehouse_log::frontier::Frontier;
use rusqlite::Connection;

pub struct Tx<'a> {
    conn: &'a Connection,
    pub(crate) log: RefCell<Frontier>,
    /// Set when a job without a savepoint failed after writing: only
    /// rolling back the whole batch can undo its writes.
    pub(crate) poisoned: Cell<bool>,
}

impl<'a> Tx<'a> {
    pub(crate) fn new(conn: &'a Connection, log: Frontier) -> Self {
        Tx {
            conn,
            log: RefCell::new(log),
            poisoned: Cell::new(false),
        }
    }
}

impl Deref for Tx<'_> {
    type Target = Connection;
    fn deref(&self) -> &Connection {
        self.conn
    }
}
