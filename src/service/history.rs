//! History use cases: one recorded action, the filtered, keyset-paged action
//! history, and the live stream of action events (`WatchActions`).
//!
//! The stream reads the database's event log, never an in-memory feed: each
//! watcher is a small task that reads events after its cursor in bounded
//! batches and hands them to a bounded channel towards its client. Because
//! the log is the source, a watcher can start anywhere (resume after a
//! sequence, replay from a time), a slow client only delays itself, events
//! written by other replicas arrive too, and memory per watcher is bounded.
//!
//! One shared tracker per [`Watchers`] follows the newest committed sequence
//! (woken by local commits, polling for other replicas), so an idle watcher
//! costs no queries at all; watcher reads share a small semaphore so that
//! many monitors never take the connection pool away from the engine.
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures_util::Stream;
use sea_orm::DatabaseConnection;
use tokio::sync::{Semaphore, mpsc, oneshot, watch};

use super::AppState;
use crate::domain::action::ActionRecord;
use crate::error::Result;
use crate::persistence::history::{self, ActionEvent, ActionFilter, Order};

/// A page of the history (newest first) after the action `after_id`, and
/// whether more remain.
pub async fn list(
    state: &AppState,
    filter: &ActionFilter,
    after_id: Option<i64>,
    page_size: u64,
) -> Result<(Vec<ActionRecord>, bool)> {
    let mut page = history::list_actions(&state.db, filter, after_id, Order::NewestFirst, page_size + 1).await?;
    let more = page.len() as u64 > page_size;
    page.truncate(page_size as usize);
    Ok((page, more))
}

/// One recorded action by id; `NotFound` naming the id when none is kept.
pub async fn get(state: &AppState, action_id: i64) -> Result<ActionRecord> {
    crate::persistence::actions::get(&state.db, action_id).await
}

/// Tuning of the live stream.
#[derive(Debug, Clone)]
pub struct WatchSettings {
    /// Events buffered per watcher between its reader task and its client.
    pub channel_capacity: usize,
    /// Events read per query.
    pub batch_size: u64,
    /// How often the newest sequence is polled (for events committed by other
    /// replicas; local commits wake the tracker at once).
    pub poll_interval: Duration,
    /// How long a client may take nothing while events wait for it before
    /// its stream ends with "fell too far behind".
    pub stall_timeout: Duration,
    /// Watcher queries that may run at once, across all watchers.
    pub max_concurrent_reads: usize,
    /// Attempts of a failing read before the stream ends as unavailable.
    pub read_attempts: u32,
}

impl Default for WatchSettings {
    fn default() -> Self {
        Self {
            channel_capacity: 256,
            batch_size: 200,
            poll_interval: Duration::from_secs(1),
            stall_timeout: Duration::from_secs(30),
            max_concurrent_reads: 2,
            read_attempts: 3,
        }
    }
}

/// Why a stream ended; both carry where to resume.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WatchEnd {
    /// The client took nothing for the stall timeout while events waited.
    FellBehind {
        /// The last sequence handed to the client.
        resume_after: i64,
    },
    /// The event log could not be read.
    Unavailable {
        /// The last sequence handed to the client.
        resume_after: i64,
    },
}

/// Where a stream starts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WatchStart {
    /// Replay the events after this sequence first (0: none).
    pub after_sequence: i64,
    /// Replay the events recorded at or after this time first.
    pub replay_from: Option<DateTime<Utc>>,
}

struct Shared {
    db: DatabaseConnection,
    events: super::events::ActionEvents,
    settings: WatchSettings,
    reads: Arc<Semaphore>,
    head: OnceLock<watch::Receiver<i64>>,
    active: Arc<AtomicUsize>,
}

/// The live streams of one server; cheap to clone.
#[derive(Clone)]
pub struct Watchers {
    shared: Arc<Shared>,
}

impl Watchers {
    /// Streams over `state`'s event log.
    pub fn new(state: &AppState, settings: WatchSettings) -> Self {
        let reads = Arc::new(Semaphore::new(settings.max_concurrent_reads.max(1)));
        Self {
            shared: Arc::new(Shared {
                db: state.db.clone(),
                events: state.events.clone(),
                settings,
                reads,
                head: OnceLock::new(),
                active: Arc::default(),
            }),
        }
    }

    /// Watcher tasks running now.
    pub fn active(&self) -> usize {
        self.shared.active.load(Ordering::Relaxed)
    }

    /// The newest committed sequence, tracked by one task started on first
    /// use (it needs a runtime) and stopped when the last receiver is gone.
    fn head(&self) -> watch::Receiver<i64> {
        self.shared
            .head
            .get_or_init(|| {
                let (sender, receiver) = watch::channel(0);
                tokio::spawn(track_head(
                    self.shared.db.clone(),
                    self.shared.events.subscribe(),
                    sender,
                    self.shared.settings.poll_interval,
                ));
                receiver
            })
            .clone()
    }

    /// Starts a stream of the events matching `filter`. Without a start it
    /// begins with the next event committed after this call returns.
    pub async fn watch(&self, filter: ActionFilter, start: WatchStart) -> Result<WatchStream> {
        let db = &self.shared.db;
        let latest = history::latest_event_sequence(db).await?;
        let mut cursor = if start.after_sequence > 0 { start.after_sequence } else { latest };
        if let Some(from) = start.replay_from {
            let from_time = match history::first_event_sequence_since(db, from).await? {
                Some(first) => first - 1,
                None => latest,
            };
            cursor = if start.after_sequence > 0 { cursor.max(from_time) } else { from_time };
        }
        let settings = &self.shared.settings;
        let (events, receiver) = mpsc::channel(settings.channel_capacity.max(1));
        let (end_sender, end) = oneshot::channel();
        let watcher = Watcher {
            db: db.clone(),
            reads: self.shared.reads.clone(),
            head: self.head(),
            settings: settings.clone(),
            filter,
            events,
            last_sent: cursor,
        };
        let guard = ActiveGuard::new(self.shared.active.clone());
        tokio::spawn(async move {
            let _guard = guard;
            if let Some(reason) = watcher.run(cursor).await {
                let _ = end_sender.send(reason);
            }
        });
        Ok(WatchStream { events: receiver, end: Some(end) })
    }
}

/// Counts a running watcher until dropped.
struct ActiveGuard(Arc<AtomicUsize>);

impl ActiveGuard {
    fn new(active: Arc<AtomicUsize>) -> Self {
        active.fetch_add(1, Ordering::Relaxed);
        Self(active)
    }
}

impl Drop for ActiveGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Publishes the newest committed sequence: at once after a local commit,
/// and every `poll_interval` for commits of other replicas. Ends when no
/// watcher (and no [`Watchers`]) listens any more.
async fn track_head(
    db: DatabaseConnection,
    mut wake: watch::Receiver<u64>,
    head: watch::Sender<i64>,
    poll_interval: Duration,
) {
    let mut wake_alive = true;
    loop {
        match history::latest_event_sequence(&db).await {
            Ok(latest) => {
                head.send_if_modified(|seen| {
                    let newer = latest > *seen;
                    if newer {
                        *seen = latest;
                    }
                    newer
                });
            }
            Err(e) => tracing::warn!(error = %e, "cannot read the newest action event; retrying"),
        }
        tokio::select! {
            () = head.closed() => return,
            changed = wake.changed(), if wake_alive => wake_alive = changed.is_ok(),
            () = tokio::time::sleep(poll_interval) => {}
        }
    }
}

/// One client's reader.
struct Watcher {
    db: DatabaseConnection,
    reads: Arc<Semaphore>,
    head: watch::Receiver<i64>,
    settings: WatchSettings,
    filter: ActionFilter,
    events: mpsc::Sender<ActionEvent>,
    /// The last sequence handed to the client (the resume point).
    last_sent: i64,
}

impl Watcher {
    /// Streams until the client leaves (`None`) or the stream must end.
    async fn run(mut self, mut scanned: i64) -> Option<WatchEnd> {
        loop {
            // Everything up to the published head is committed (the log's
            // writers commit in sequence order), so reading up to it never
            // skips a row that appears later.
            let head = *self.head.borrow_and_update();
            while scanned < head {
                let batch = match self.read(scanned, head).await {
                    Ok(batch) => batch,
                    Err(e) => {
                        tracing::warn!(error = %e, after = scanned, "cannot read action events; ending the stream");
                        return Some(WatchEnd::Unavailable { resume_after: self.last_sent });
                    }
                };
                let full = batch.len() as u64 == self.settings.batch_size;
                let last_in_batch = batch.last().map(|e| e.sequence);
                for event in batch {
                    // A timer only when the client is not keeping up.
                    let slot = match self.events.try_reserve() {
                        Ok(slot) => slot,
                        Err(mpsc::error::TrySendError::Closed(())) => return None,
                        Err(mpsc::error::TrySendError::Full(())) => {
                            match tokio::time::timeout(self.settings.stall_timeout, self.events.reserve()).await {
                                Ok(Ok(slot)) => slot,
                                Ok(Err(_)) => return None,
                                Err(_) => return Some(WatchEnd::FellBehind { resume_after: self.last_sent }),
                            }
                        }
                    };
                    self.last_sent = event.sequence;
                    slot.send(event);
                }
                // A short batch covered the whole window up to the head.
                scanned = match last_in_batch {
                    Some(last) if full => last,
                    _ => head,
                };
            }
            tokio::select! {
                () = self.events.closed() => return None,
                changed = self.head.changed() => {
                    if changed.is_err() {
                        return Some(WatchEnd::Unavailable { resume_after: self.last_sent });
                    }
                }
            }
        }
    }

    /// One batch of matching events in `(after, up_to]`, retried a few times.
    async fn read(&self, after: i64, up_to: i64) -> Result<Vec<ActionEvent>> {
        let mut attempt = 1;
        loop {
            let result = {
                // The semaphore is never closed; if it were, read unthrottled.
                let _permit = self.reads.acquire().await.ok();
                history::events_between(&self.db, &self.filter, after, up_to, self.settings.batch_size).await
            };
            match result {
                Ok(batch) => return Ok(batch),
                Err(e) if attempt >= self.settings.read_attempts => return Err(e),
                Err(e) => {
                    tracing::debug!(error = %e, attempt, "action event read failed; retrying");
                    attempt += 1;
                    tokio::time::sleep(self.settings.poll_interval).await;
                }
            }
        }
    }
}

/// The events of one watcher, then (if it ended for a reason) one
/// [`WatchEnd`]. Dropping it stops the watcher task.
pub struct WatchStream {
    events: mpsc::Receiver<ActionEvent>,
    end: Option<oneshot::Receiver<WatchEnd>>,
}

impl Stream for WatchStream {
    type Item = Result<ActionEvent, WatchEnd>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        match self.events.poll_recv(cx) {
            Poll::Ready(Some(event)) => return Poll::Ready(Some(Ok(event))),
            Poll::Ready(None) => {}
            Poll::Pending => return Poll::Pending,
        }
        // The task has finished and every event it sent was delivered: now
        // say why it ended, once.
        let Some(end) = self.end.as_mut() else { return Poll::Ready(None) };
        match Pin::new(end).poll(cx) {
            Poll::Ready(Ok(reason)) => {
                self.end = None;
                Poll::Ready(Some(Err(reason)))
            }
            Poll::Ready(Err(_)) => {
                self.end = None;
                Poll::Ready(None)
            }
            Poll::Pending => Poll::Pending,
        }
    }
}
