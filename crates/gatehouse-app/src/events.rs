//! Domain events: what happened, for whoever listens (long-polls today;
//! the console's live queue, notifications and the MCP proxy next).
//!
//! The log is the source: every state change is a log entry, so events are
//! read from the log's tail and decoded, in log order, once per process.
//! That covers every replica alike. A local commit wakes the reader at
//! once; entries other replicas appended are picked up within
//! `event_poll_interval`. Nothing is read while nobody listens, so the
//! decide path pays only an atomic load when no one subscribes.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use gatehouse_core::execution::OutcomeStatus;
use gatehouse_core::{ReviewChoice, Verdict};
use gatehouse_log::entry::{LogEntry, LogEvent};
use gatehouse_store::Store;
use serde::Serialize;
use tokio::sync::{mpsc, Notify};

use crate::error::AppResult;

/// How many events a subscriber may have waiting before it is cut off
/// (it then sees its stream end and starts over from the store).
const SUBSCRIBER_BUFFER: usize = 1024;
/// Leaves read from the log per query.
const READ_PAGE: u32 = 1000;

/// How a pending decision ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Resolution {
    Approved,
    Rejected,
    Expired,
}

/// Something that happened to a decision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type")]
pub enum DomainEvent {
    DecisionCreated {
        decision_id: String,
        verdict: Verdict,
        created_by: String,
    },
    /// The decision waits for a reviewer.
    ReviewRequested { decision_id: String },
    ReviewRecorded {
        decision_id: String,
        reviewer: String,
        decision: ReviewChoice,
    },
    /// A pending decision's escalation group may now review it too.
    DecisionEscalated { decision_id: String, group: String },
    /// A pending decision is final.
    DecisionResolved {
        decision_id: String,
        resolution: Resolution,
    },
    TokenRedeemed {
        decision_id: String,
        jti: String,
        redeemed_by: String,
    },
    ExecutionRecorded {
        decision_id: String,
        execution_id: String,
    },
    /// A receipt was refused and the decision flagged for owner review.
    ExecutionRefused { decision_id: String, reason: String },
    OutcomeRecorded {
        decision_id: String,
        outcome_id: String,
        status: OutcomeStatus,
    },
}

impl DomainEvent {
    /// The decision the event is about.
    pub fn decision_id(&self) -> &str {
        match self {
            DomainEvent::DecisionCreated { decision_id, .. }
            | DomainEvent::ReviewRequested { decision_id }
            | DomainEvent::ReviewRecorded { decision_id, .. }
            | DomainEvent::DecisionEscalated { decision_id, .. }
            | DomainEvent::DecisionResolved { decision_id, .. }
            | DomainEvent::TokenRedeemed { decision_id, .. }
            | DomainEvent::ExecutionRecorded { decision_id, .. }
            | DomainEvent::ExecutionRefused { decision_id, .. }
            | DomainEvent::OutcomeRecorded { decision_id, .. } => decision_id,
        }
    }

    /// The events one log entry stands for (none for entries that are not
    /// about a decision: keys, policy versions, task events, token issue).
    pub fn from_entry(entry: &LogEntry) -> Vec<DomainEvent> {
        let decision_id = entry.id.clone();
        match &entry.event {
            LogEvent::Decision {
                verdict,
                created_by,
                ..
            } => {
                let mut events = vec![DomainEvent::DecisionCreated {
                    decision_id: decision_id.clone(),
                    verdict: *verdict,
                    created_by: created_by.clone(),
                }];
                if *verdict == Verdict::PendingReview {
                    events.push(DomainEvent::ReviewRequested { decision_id });
                }
                events
            }
            // A review resolves the decision when its entry says so (a
            // review logged before review rules always did).
            LogEvent::Review {
                decision,
                reviewer,
                resolves,
                ..
            } => {
                let mut events = vec![DomainEvent::ReviewRecorded {
                    decision_id: decision_id.clone(),
                    reviewer: reviewer.clone(),
                    decision: *decision,
                }];
                if resolves.unwrap_or(true) {
                    events.push(DomainEvent::DecisionResolved {
                        decision_id,
                        resolution: match decision {
                            ReviewChoice::Approve => Resolution::Approved,
                            ReviewChoice::Reject => Resolution::Rejected,
                        },
                    });
                }
                events
            }
            LogEvent::Escalation { group } => vec![DomainEvent::DecisionEscalated {
                decision_id,
                group: group.clone(),
            }],
            LogEvent::Expiry {} => vec![DomainEvent::DecisionResolved {
                decision_id,
                resolution: Resolution::Expired,
            }],
            LogEvent::TokenRedeemed { jti, redeemed_by } => vec![DomainEvent::TokenRedeemed {
                decision_id,
                jti: jti.clone(),
                redeemed_by: redeemed_by.clone(),
            }],
            LogEvent::Execution { execution_id, .. } => vec![DomainEvent::ExecutionRecorded {
                decision_id,
                execution_id: execution_id.clone(),
            }],
            LogEvent::Flag { reason } => vec![DomainEvent::ExecutionRefused {
                decision_id,
                reason: reason.clone(),
            }],
            LogEvent::Outcome {
                outcome_id, status, ..
            } => vec![DomainEvent::OutcomeRecorded {
                decision_id,
                outcome_id: outcome_id.clone(),
                status: *status,
            }],
            LogEvent::TaskEvent { .. }
            | LogEvent::PolicyVersion { .. }
            | LogEvent::TokenIssued { .. }
            | LogEvent::KeyEvent { .. }
            | LogEvent::HookEvent { .. }
            | LogEvent::UserEvent { .. } => Vec::new(),
        }
    }
}

/// An event with where it was recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Published {
    /// The index of the log entry it came from.
    pub log_index: u64,
    /// When it happened (the entry's `ts`, RFC 3339).
    pub at: String,
    pub event: DomainEvent,
}

/// A stream of events; it ends when the subscriber fell too far behind
/// (then re-read the state and subscribe again).
pub struct Subscription {
    rx: mpsc::Receiver<Arc<Published>>,
}

impl Subscription {
    pub async fn next(&mut self) -> Option<Arc<Published>> {
        self.rx.recv().await
    }
}

type Sender = mpsc::Sender<Arc<Published>>;

struct State {
    /// The next log index to read.
    cursor: u64,
    /// Subscribers to every event.
    all: Vec<Sender>,
    /// Subscribers to one decision's events, by decision id: delivering an
    /// event costs one lookup however many decisions are watched.
    by_decision: HashMap<String, Vec<Sender>>,
}

impl State {
    fn is_empty(&self) -> bool {
        self.all.is_empty() && self.by_decision.is_empty()
    }

    fn count(&self) -> usize {
        self.all.len() + self.by_decision.values().map(Vec::len).sum::<usize>()
    }

    /// Drops subscribers whose stream was dropped.
    fn prune(&mut self) {
        self.all.retain(|tx| !tx.is_closed());
        self.by_decision.retain(|_, txs| {
            txs.retain(|tx| !tx.is_closed());
            !txs.is_empty()
        });
    }
}

/// Hands `p` to each of `txs`. A full buffer cuts the subscriber off rather
/// than block everyone else; its stream ends and it starts over.
fn send_all(txs: &mut Vec<Sender>, p: &Arc<Published>) {
    txs.retain(|tx| tx.try_send(p.clone()).is_ok());
}

struct Shared {
    store: Arc<dyn Store>,
    state: Mutex<State>,
    /// Mirrors how many subscribers there are, so committing code can skip
    /// waking the reader without taking the lock.
    listening: AtomicUsize,
    wake: Notify,
    poll: Duration,
}

/// The one subscription API for domain events.
pub struct Events {
    shared: Arc<Shared>,
    reader_started: AtomicBool,
    /// Woken by every local commit that appended, listened to or not (the
    /// outbox's fan-out waits on it); a wake with no one waiting is kept.
    committed: Notify,
}

impl Events {
    pub(crate) fn new(store: Arc<dyn Store>, poll: Duration) -> Events {
        Events {
            shared: Arc::new(Shared {
                store,
                state: Mutex::new(State {
                    cursor: 0,
                    all: Vec::new(),
                    by_decision: HashMap::new(),
                }),
                listening: AtomicUsize::new(0),
                wake: Notify::new(),
                poll,
            }),
            reader_started: AtomicBool::new(false),
            committed: Notify::new(),
        }
    }

    /// Every event recorded from now on, on any replica.
    pub async fn subscribe(&self) -> AppResult<Subscription> {
        self.add(None).await
    }

    /// The events about one decision recorded from now on, on any replica.
    pub async fn watch(&self, decision_id: &str) -> AppResult<Subscription> {
        self.add(Some(decision_id.to_string())).await
    }

    /// Called after a local commit that appended to the log: wakes the
    /// reader at once if anyone listens.
    pub(crate) fn appended(&self) {
        self.committed.notify_one();
        if self.shared.listening.load(Ordering::Acquire) > 0 {
            self.shared.wake.notify_one();
        }
    }

    /// Resolves after the next local commit that appended to the log (at
    /// once if one happened since the last call).
    pub(crate) async fn committed(&self) {
        self.committed.notified().await
    }

    async fn add(&self, decision: Option<String>) -> AppResult<Subscription> {
        // Everything at or after this size is delivered; what came before,
        // the subscriber reads as state.
        let size = self.shared.store.log_size().await?;
        let (tx, rx) = mpsc::channel(SUBSCRIBER_BUFFER);
        {
            let mut state = self.shared.lock();
            if state.is_empty() {
                // Nobody listened, so nothing past the cursor was owed to anyone.
                state.cursor = state.cursor.max(size);
            }
            match decision {
                Some(id) => state.by_decision.entry(id).or_default().push(tx),
                None => state.all.push(tx),
            }
            self.shared
                .listening
                .store(state.count(), Ordering::Release);
        }
        if !self.reader_started.swap(true, Ordering::AcqRel) {
            tokio::spawn(read_log(Arc::downgrade(&self.shared)));
        }
        Ok(Subscription { rx })
    }
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic while holding the lock leaves plain data behind; go on.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Drops subscribers that went away; true if anyone is left.
    fn anyone_listening(&self) -> bool {
        let mut state = self.lock();
        state.prune();
        self.listening.store(state.count(), Ordering::Release);
        !state.is_empty()
    }

    /// Reads the log from the cursor to its end and delivers what it finds.
    async fn catch_up(&self) -> AppResult<()> {
        loop {
            let from = self.lock().cursor;
            let page = self.store.log_leaves(from, READ_PAGE).await?;
            let full = page.len() == READ_PAGE as usize;
            for (expected, (index, bytes)) in (from..).zip(page) {
                // A gap is a commit not yet visible: read it next time.
                if index != expected {
                    return Ok(());
                }
                let published: Vec<Published> = match LogEntry::parse(&bytes) {
                    Ok(entry) => DomainEvent::from_entry(&entry)
                        .into_iter()
                        .map(|event| Published {
                            log_index: index,
                            at: entry.ts.clone(),
                            event,
                        })
                        .collect(),
                    Err(e) => {
                        tracing::warn!(index, error = %e, "log entry skipped by the event reader");
                        Vec::new()
                    }
                };
                self.deliver(index, published);
            }
            if !full {
                return Ok(());
            }
        }
    }

    fn deliver(&self, index: u64, published: Vec<Published>) {
        let mut state = self.lock();
        // A subscriber that joined while this page was read moved the
        // cursor past entries it will read as state.
        if index < state.cursor {
            return;
        }
        state.cursor = index + 1;
        for p in published.into_iter().map(Arc::new) {
            send_all(&mut state.all, &p);
            let id = p.event.decision_id();
            if let Some(txs) = state.by_decision.get_mut(id) {
                send_all(txs, &p);
                if txs.is_empty() {
                    state.by_decision.remove(id);
                }
            }
        }
        let count = state.count();
        self.listening.store(count, Ordering::Release);
    }
}

/// The reader: wakes on local commits and every poll interval, and reads
/// the log only while someone listens. Ends when the application is gone.
async fn read_log(shared: Weak<Shared>) {
    let failures = crate::throttle::Throttle::new(Duration::from_secs(30));
    loop {
        let Some(s) = shared.upgrade() else { return };
        let poll = s.poll;
        tokio::select! {
            _ = s.wake.notified() => {}
            _ = tokio::time::sleep(poll) => {}
        }
        if s.anyone_listening() {
            if let Err(e) = s.catch_up().await {
                if let Some(repeats) = failures.admit(&e.to_string()) {
                    tracing::warn!(error = %e, repeats, "reading domain events from the log failed; retrying");
                }
            }
        }
    }
}
