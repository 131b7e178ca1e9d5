//! The evaluator without a child process, for library use and unit tests where no executable
//! is at hand: a thread with a large stack does the same work, without the crash containment.

use super::{EVAL_STACK, EvalError};
use crate::config::Config;
use crate::route::route_event_only;
use crate::store::{Routing, StoredEvent};
use std::sync::Arc;

type Job = (
    Arc<Config>,
    Vec<StoredEvent>,
    Option<String>,
    tokio::sync::mpsc::UnboundedSender<Routing>,
);

/// Evaluates on a thread with a large stack. An overrun abandons the thread (it cannot be
/// stopped) and starts a new one; a stack overflow is not contained.
pub(crate) struct ThreadEvaluator {
    jobs: Option<std::sync::mpsc::Sender<Job>>,
}

impl ThreadEvaluator {
    pub(super) fn new() -> Self {
        Self { jobs: None }
    }

    pub(super) async fn route_batch(
        &mut self,
        config: &Arc<Config>,
        events: &[StoredEvent],
        only: Option<&str>,
    ) -> Vec<Result<Routing, EvalError>> {
        if self.jobs.is_none() {
            match spawn_thread() {
                Ok(jobs) => self.jobs = Some(jobs),
                Err(e) => return vec![Err(EvalError::Unavailable(e.to_string()))],
            }
        }
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let sent = self.jobs.as_ref().map(|j| {
            j.send((
                config.clone(),
                events.to_vec(),
                only.map(str::to_string),
                tx,
            ))
            .map_err(drop)
        });
        if !matches!(sent, Some(Ok(()))) {
            self.jobs = None;
            return vec![Err(EvalError::Unavailable(
                "evaluator thread stopped".into(),
            ))];
        }
        let mut results = Vec::with_capacity(events.len());
        for _ in events {
            match tokio::time::timeout(config.jq_timeout, rx.recv()).await {
                Ok(Some(routing)) => results.push(Ok(routing)),
                Ok(None) => {
                    self.jobs = None;
                    results.push(Err(EvalError::Crashed("evaluator thread panicked".into())));
                    break;
                }
                Err(_) => {
                    self.jobs = None;
                    results.push(Err(EvalError::Overran(config.jq_timeout)));
                    break;
                }
            }
        }
        results
    }
}

fn spawn_thread() -> std::io::Result<std::sync::mpsc::Sender<Job>> {
    let (tx, rx) = std::sync::mpsc::channel::<Job>();
    std::thread::Builder::new()
        .name("route-eval".into())
        .stack_size(EVAL_STACK)
        .spawn(move || {
            while let Ok((config, events, only, reply)) = rx.recv() {
                for event in &events {
                    let routing = route_event_only(&config, event, only.as_deref());
                    if reply.send(routing).is_err() {
                        break;
                    }
                }
            }
        })?;
    Ok(tx)
}
