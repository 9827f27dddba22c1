//! Cross-node cache invalidation: a thread LISTENs on the store's channel and bumps an epoch
//! on every notification. While its connection is down the token is `None`, so handles read
//! through to the database (correctness before speed); after reconnecting it bumps the epoch
//! once more, since notifications may have been missed.

use super::connection::channel_of;
use super::MakeTlsConnector;
use crate::error::{Error, Result};
use crate::store::Fingerprint;
use postgres::fallible_iterator::FallibleIterator;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How often the thread wakes to check for shutdown and connection loss.
const POLL: Duration = Duration::from_millis(100);

#[derive(Default)]
struct State {
    epoch: AtomicU64,
    healthy: AtomicBool,
    stop: AtomicBool,
}

/// The listening thread and what it publishes.
pub struct Listener {
    state: Arc<State>,
    thread: Option<JoinHandle<()>>,
}

impl Listener {
    /// Connects, LISTENs, and starts the thread. Fails if the first connection fails.
    pub fn start(
        config: postgres::Config,
        tls: MakeTlsConnector,
        schema: &str,
        timeout: Duration,
    ) -> Result<Listener> {
        let channel = channel_of(schema);
        let state = Arc::new(State::default());
        let client = listen(&config, &tls, &channel)
            .map_err(|e| Error::storage(format!("cannot listen for changes: {e}")))?;
        state.healthy.store(true, Ordering::Release);
        let thread_state = state.clone();
        let thread = std::thread::Builder::new()
            .name("tbsecrets-pg-listen".into())
            .spawn(move || run(client, config, tls, channel, thread_state, timeout))
            .map_err(|e| Error::internal(format!("cannot start the listener thread: {e}")))?;
        Ok(Listener {
            state,
            thread: Some(thread),
        })
    }

    /// The change token: the epoch while listening, `None` while disconnected.
    #[inline]
    pub fn token(&self) -> Option<Fingerprint> {
        if !self.state.healthy.load(Ordering::Acquire) {
            return None;
        }
        Some([self.state.epoch.load(Ordering::Acquire), 0, 0])
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        self.state.stop.store(true, Ordering::Release);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn listen(
    config: &postgres::Config,
    tls: &MakeTlsConnector,
    channel: &str,
) -> std::result::Result<postgres::Client, postgres::Error> {
    let mut client = config.connect(tls.clone())?;
    client.batch_execute(&format!("LISTEN {channel}"))?;
    Ok(client)
}

fn run(
    mut client: postgres::Client,
    config: postgres::Config,
    tls: MakeTlsConnector,
    channel: String,
    state: Arc<State>,
    timeout: Duration,
) {
    while !state.stop.load(Ordering::Acquire) {
        let lost = {
            let mut notifications = client.notifications();
            let mut iter = notifications.timeout_iter(POLL);
            let mut lost = false;
            loop {
                match iter.next() {
                    Ok(Some(_)) => {
                        state.epoch.fetch_add(1, Ordering::AcqRel);
                        // A flood of notifications never lets the iterator time out, so the
                        // stop flag is checked after each one: close must not wait for the
                        // flood to end.
                        if state.stop.load(Ordering::Acquire) {
                            break;
                        }
                    }
                    Err(_) => {
                        lost = true;
                        break;
                    }
                    Ok(None) => break,
                }
            }
            lost
        };
        if !lost && !client.is_closed() {
            continue;
        }
        state.healthy.store(false, Ordering::Release);
        let mut backoff = POLL;
        let deadline_step = timeout.max(POLL);
        loop {
            if state.stop.load(Ordering::Acquire) {
                return;
            }
            let started = Instant::now();
            match listen(&config, &tls, &channel) {
                Ok(fresh) => {
                    client = fresh;
                    // Changes may have been missed while away: invalidate everything.
                    state.epoch.fetch_add(1, Ordering::AcqRel);
                    state.healthy.store(true, Ordering::Release);
                    break;
                }
                Err(_) => {
                    let waited = started.elapsed();
                    if waited < backoff {
                        std::thread::sleep(backoff - waited);
                    }
                    backoff = (backoff * 2).min(deadline_step).min(Duration::from_secs(2));
                }
            }
        }
    }
}
