//! In-process wake-ups for action-event watchers. The event log itself lives
//! in the database (`action_events`); this only tells local watchers to look
//! now instead of at their next poll. Watchers on other replicas find the
//! same rows by polling, so nothing depends on this signal arriving.
use tokio::sync::watch;

/// Broadcasts "new action events were committed".
#[derive(Clone)]
pub struct ActionEvents {
    sender: watch::Sender<u64>,
}

impl Default for ActionEvents {
    fn default() -> Self {
        Self { sender: watch::Sender::new(0) }
    }
}

impl ActionEvents {
    /// Tells every watcher that events were committed. Never blocks.
    pub fn published(&self) {
        self.sender.send_modify(|generation| *generation = generation.wrapping_add(1));
    }

    /// A receiver whose `changed()` completes after the next `published`.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.sender.subscribe()
    }
}
