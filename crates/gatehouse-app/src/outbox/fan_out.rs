//! The fan-out: log entries past the cursor become the deliveries their
//! channels owe, stored in one transaction with the cursor's move.

use super::*;

impl App {
    /// Turns log entries past the cursor into the deliveries owed; returns
    /// how many it stored, and whether entries may be left. It stops after
    /// the first page that stored something, so that a backlog (a burst
    /// read by a starved notifier) is fanned out page by page with claims
    /// in between, rather than delivering nothing until it is all read.
    pub(super) async fn fan_out(&self, outbox: &Outbox) -> crate::AppResult<(usize, bool)> {
        let mut stored = 0;
        loop {
            let from = self.store.outbox_cursor().await?;
            // With no channel that wants any event (no subscription yet),
            // the entries need no reading: the cursor just follows the log.
            if !self.anything_wanted(outbox).await {
                let size = self.store.log_size().await?;
                if size > from {
                    self.store
                        .enqueue_deliveries(from, size, Vec::new())
                        .await?;
                }
                return Ok((stored, false));
            }
            let page = self.store.log_leaves(from, FAN_OUT_PAGE).await?;
            let mut next = from;
            let mut entries = Vec::new();
            for (index, bytes) in &page {
                // A gap is a commit not yet visible: stop before it.
                if *index != next {
                    break;
                }
                next += 1;
                match LogEntry::parse(bytes) {
                    Ok(entry) => entries.push((*index, entry)),
                    Err(e) => {
                        tracing::warn!(index, error = %e, "log entry skipped by the outbox");
                    }
                }
            }
            if next == from {
                return Ok((stored, false));
            }
            // The decisions the page's wanted events are about, read in one
            // query rather than one per event.
            let mut ids = std::collections::HashSet::new();
            for (_, entry) in &entries {
                for event in DomainEvent::from_entry(entry) {
                    let wanted = match event_type(&event) {
                        Some(t) => !self.wanting(outbox, t).await.is_empty(),
                        None => false,
                    };
                    if wanted {
                        ids.insert(event.decision_id().to_string());
                    }
                }
            }
            let decisions: HashMap<String, Decision> = self
                .store
                .get_decisions(&ids.into_iter().collect::<Vec<_>>())
                .await?
                .into_iter()
                .map(|d| (d.id.clone(), d))
                .collect();
            let mut owed = Vec::new();
            for (index, entry) in &entries {
                self.owed_for(outbox, *index, entry, &decisions, &mut owed)
                    .await;
            }
            let count = owed.len();
            // Lost to another replica: it stored these; read on from there.
            if self.store.enqueue_deliveries(from, next, owed).await? {
                stored += count;
            }
            if page.len() < FAN_OUT_PAGE as usize {
                return Ok((stored, false));
            }
            if stored > 0 {
                return Ok((stored, true));
            }
        }
    }

    async fn anything_wanted(&self, outbox: &Outbox) -> bool {
        for c in &outbox.channels {
            for t in crate::notice::EVENT_TYPES
                .iter()
                .chain([crate::notice::REVIEW_RECORDED].iter())
            {
                if c.wants(self, t).await {
                    return true;
                }
            }
        }
        false
    }

    /// The channels that want events of this type.
    async fn wanting<'o>(&self, outbox: &'o Outbox, event_type: &str) -> Vec<&'o Arc<dyn Channel>> {
        let mut wanted = Vec::new();
        for c in &outbox.channels {
            if c.wants(self, event_type).await {
                wanted.push(c);
            }
        }
        wanted
    }

    async fn owed_for(
        &self,
        outbox: &Outbox,
        index: u64,
        entry: &LogEntry,
        decisions: &HashMap<String, Decision>,
        owed: &mut Vec<NewDelivery>,
    ) {
        for (ordinal, event) in DomainEvent::from_entry(entry).iter().enumerate() {
            let Some(event_type) = event_type(event) else {
                continue;
            };
            let wanted = self.wanting(outbox, event_type).await;
            if wanted.is_empty() {
                continue;
            }
            // The entry's row is gone (a tampered database): there is
            // nothing to show, and `log verify` names it.
            let Some(d) = decisions.get(event.decision_id()) else {
                continue;
            };
            let ev = OutboxEvent {
                log_index: index,
                at: &entry.ts,
                event_type,
                event,
                decision: d,
            };
            let position = (index as i64) * 16 + ordinal as i64;
            for channel in wanted {
                for o in channel.owed(self, &ev).await {
                    owed.push(NewDelivery {
                        id: ids::delivery_id(),
                        log_index: index,
                        position,
                        decision_id: d.id.clone(),
                        event_type: event_type.to_string(),
                        channel: channel.name().to_string(),
                        target: o.target,
                        payload: o.payload,
                        created_at_ms: now_unix_millis(),
                    });
                }
            }
        }
    }
}
