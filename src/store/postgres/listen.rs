//! The PostgreSQL store's wake-ups between instances: one dedicated LISTEN connection per instance
//! (which also carries its heartbeat, so a busy pool cannot starve it), and NOTIFYs sent coalesced
//! after commits rather than inside them.

use super::*;

/// How long wake-ups for other instances are gathered into one NOTIFY.
pub(super) const WAKE_WINDOW: Duration = Duration::from_millis(5);

/// Wake-ups owed to the other instances, sent coalesced and after the commit by [`notify`].
///
/// NOTIFY inside a transaction takes a database-wide lock at commit, which would serialise every
/// ingress commit behind one another; a separate `pg_notify` at most every [`WAKE_WINDOW`] costs
/// the others up to 5 ms of latency instead. A lost wake-up costs at most a poll interval.
#[derive(Default)]
pub(super) struct Wakeups {
    events: std::sync::atomic::AtomicBool,
    deliveries: std::sync::atomic::AtomicBool,
    owed: tokio::sync::Notify,
}

impl Wakeups {
    pub(super) fn events(&self) {
        self.events
            .store(true, std::sync::atomic::Ordering::Release);
        self.owed.notify_one();
    }
    pub(super) fn deliveries(&self) {
        self.deliveries
            .store(true, std::sync::atomic::Ordering::Release);
        self.owed.notify_one();
    }
}

/// Sends the wake-ups [`Wakeups`] gathers, for as long as the store is open.
pub(super) async fn notify(pool: Pool, wakeups: Arc<Wakeups>) {
    use std::sync::atomic::Ordering::AcqRel;
    loop {
        wakeups.owed.notified().await;
        tokio::time::sleep(WAKE_WINDOW).await;
        let channels: Vec<&str> = [
            (wakeups.events.swap(false, AcqRel), "hookgate_events"),
            (
                wakeups.deliveries.swap(false, AcqRel),
                "hookgate_deliveries",
            ),
        ]
        .into_iter()
        .filter_map(|(owed, channel)| owed.then_some(channel))
        .collect();
        if channels.is_empty() {
            continue;
        }
        let sql = channels
            .iter()
            .map(|c| format!("SELECT pg_notify('{c}', '')"))
            .collect::<Vec<_>>()
            .join("; ");
        let sent = async {
            get(&pool)
                .await?
                .batch_execute(&sql)
                .await
                .map_err(store_err)
        };
        if let Err(e) = sent.await {
            tracing::debug!(error = %e, "wake-up for other instances not sent; they poll");
        }
    }
}

/// Wakes local stages on other instances' commits, reconnecting while the database is away.
pub(super) async fn listen(
    config: tokio_postgres::Config,
    tls: Option<tokio_postgres_rustls::MakeRustlsConnect>,
    signals: Signals,
    instance: String,
) {
    loop {
        let listened = match &tls {
            Some(tls) => listen_once(&config, tls.clone(), &signals, &instance).await,
            None => listen_once(&config, NoTls, &signals, &instance).await,
        };
        if let Err(e) = listened {
            tracing::warn!(error = %e, "postgres LISTEN connection lost; reconnecting");
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

pub(super) async fn listen_once<T>(
    config: &tokio_postgres::Config,
    tls: T,
    signals: &Signals,
    instance: &str,
) -> queries::Pg<()>
where
    T: tokio_postgres::tls::MakeTlsConnect<tokio_postgres::Socket>,
    T::Stream: Send + 'static,
{
    let (client, mut connection) = config.connect(tls).await?;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    // The connection delivers notifications only while polled, and the client's LISTEN only
    // completes while it is: drive it on its own task.
    let driver = tokio::spawn(async move {
        loop {
            match std::future::poll_fn(|cx| connection.poll_message(cx)).await {
                Some(Ok(tokio_postgres::AsyncMessage::Notification(n))) => {
                    let _ = tx.send((n.channel().to_string(), n.payload().to_string()));
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => return Err(e),
                None => return Ok(()),
            }
        }
    });
    client
        .batch_execute(
            "LISTEN hookgate_events; LISTEN hookgate_deliveries; LISTEN hookgate_cluster",
        )
        .await?;
    // Whatever was committed while no one listened: look once.
    signals.events.notify_one();
    signals.deliveries.notify_one();
    signals.cluster.notify_one();
    // This connection also carries the heartbeat: an instance that cannot keep it up is, for
    // the others, gone (its leases become theirs, and its late outcomes no longer count).
    let mut beat = tokio::time::interval(BEAT_EVERY);
    beat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            message = rx.recv() => {
                let Some((channel, payload)) = message else { break };
                match channel.as_str() {
                    "hookgate_events" => signals.events.notify_one(),
                    // The payload names the instance that made the change; it applied it already.
                    "hookgate_cluster" if payload != instance => signals.cluster.notify_one(),
                    "hookgate_cluster" => {}
                    _ => signals.deliveries.notify_one(),
                }
            }
            _ = beat.tick() => queries::beat(&client, instance).await?,
        }
    }
    match driver.await {
        Ok(result) => result,
        Err(_) => Ok(()),
    }
}
