//! Route evaluation, contained. Mappings are operator code run on producer data, and jq has no
//! resource limits of its own: `def f: 1+f; f` overflows the stack (which aborts a process), and
//! `last(range(1e18))` never ends. So routes are evaluated in a child process — `hookgate
//! __route-worker`, this same binary — with its own memory cap (`jq.memory_mb`) and a deadline
//! per event (`jq.timeout_ms`) of CPU time, so a busy machine does not fail events ([`cpu`]). An
//! overrun kills the child; a crash ends only the child; either way that one event's routes fail
//! with the cause and the next event gets a fresh child.
//!
//! Protocol over the child's stdin/stdout: frames of a little-endian u32 length and a payload
//! ([`messages`]). The first frame carries the resolved config; each later frame a run of events,
//! answered with one frame per event, in order. The child writes a request's answers together
//! ([`outbox`]; a late answer is asked for), so a crash may take answers with it: the gateway
//! then evaluates the unanswered events again one per request before it blames one. Where no
//! executable is available (library use, unit tests), a thread with a large stack does the same
//! work without the crash containment.

mod child;
mod cpu;
// pub(crate) for crate::fuzzing only.
pub(crate) mod messages;
mod outbox;
mod pool;
mod thread;
mod wire;

pub(crate) use child::child_main;
pub(crate) use pool::Pool;
pub(crate) use thread::ThreadEvaluator;

use crate::config::Config;
use crate::store::{Routing, StoredEvent};
use cpu::CpuClock;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use wire::{MAX_FRAME, read_frame_async, write_frame_async};
/// Stack of the thread that evaluates: deep but finite recursion in a mapping must fit.
pub(super) const EVAL_STACK: usize = 256 * 1024 * 1024;
/// When an answer is first late enough that the child is asked for what it holds ([`outbox`]):
/// well above a typical mapping's time, so a nudge is rare.
const NUDGE_AFTER: Duration = Duration::from_millis(2);
/// How much longer than its deadline a nudged answer is waited for, for a flusher kept from the
/// CPU, before its event is blamed.
const HELD_GRACE: Duration = Duration::from_millis(10);
/// How long a new child may take to load the config.
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// Why an event's routes could not be evaluated.
#[derive(Debug, thiserror::Error)]
pub(crate) enum EvalError {
    #[error("route evaluation exceeded the {0:?} deadline (jq.timeout_ms)")]
    Overran(Duration),
    #[error(
        "route evaluation crashed ({0}); a mapping may recurse without end or exceed jq.memory_mb"
    )]
    Crashed(String),
    #[error("event too large to evaluate ({0} bytes encoded)")]
    TooLarge(usize),
    #[error("route evaluator unavailable: {0}")]
    Unavailable(String),
}

/// Evaluates routes for one event at a time.
pub(crate) enum Evaluator {
    Process(Box<ProcessEvaluator>),
    Thread(ThreadEvaluator),
}

impl Evaluator {
    /// A child-process evaluator running `exe __route-worker`, or a thread when `exe` is `None`.
    pub(crate) fn new(exe: Option<PathBuf>) -> Self {
        match exe {
            Some(exe) => Self::Process(Box::new(ProcessEvaluator { exe, child: None })),
            None => Self::Thread(ThreadEvaluator::new()),
        }
    }

    /// Starts the child for `config` unless it runs already (a thread needs no start).
    async fn start(&mut self, config: &Arc<Config>) -> Result<(), EvalError> {
        match self {
            Self::Process(p) => p.ensure_child(config).await,
            Self::Thread(_) => Ok(()),
        }
    }

    /// Routes `events` in order, each under the deadline. Stops at the first failure: the result
    /// has one entry per event evaluated, the last of which may be the error; events after it are
    /// left for the next call. Large batches go to the child in several requests, bounded by
    /// bytes, so no event fails because of the size of its neighbours.
    pub(crate) async fn route_batch(
        &mut self,
        config: &Arc<Config>,
        events: &[StoredEvent],
    ) -> Vec<Result<Routing, EvalError>> {
        let mut results = Vec::with_capacity(events.len());
        for chunk in wire::chunks(events) {
            let part = self.route_chunk(config, chunk, None).await;
            let stop = part.len() < chunk.len() || part.last().is_some_and(Result::is_err);
            results.extend(part);
            if stop {
                break;
            }
        }
        results
    }

    /// Routes `event` through route `only` alone, under the same deadline and containment.
    pub(crate) async fn route_alone(
        &mut self,
        config: &Arc<Config>,
        event: &StoredEvent,
        only: &str,
    ) -> Result<Routing, EvalError> {
        let mut results = self
            .route_chunk(config, std::slice::from_ref(event), Some(only))
            .await;
        results
            .pop()
            .unwrap_or_else(|| Err(EvalError::Unavailable("no answer".into())))
    }

    async fn route_chunk(
        &mut self,
        config: &Arc<Config>,
        events: &[StoredEvent],
        only: Option<&str>,
    ) -> Vec<Result<Routing, EvalError>> {
        match self {
            Self::Process(p) => p.route_batch(config, events, only).await,
            Self::Thread(t) => t.route_batch(config, events, only).await,
        }
    }
}

/// Evaluates in a child process; see the module docs.
pub(crate) struct ProcessEvaluator {
    exe: PathBuf,
    child: Option<Child>,
}

struct Child {
    process: tokio::process::Child,
    /// Its CPU time, which decides whether a deadline passed on a busy machine ([`cpu`]).
    cpu: Option<CpuClock>,
    stdin: tokio::process::ChildStdin,
    stdout: tokio::io::BufReader<tokio::process::ChildStdout>,
    config: Arc<Config>,
}

impl Child {
    /// The child's answer for one event, and whether it came after the wall-clock deadline.
    /// Past that deadline the child's CPU time since `mark` decides ([`cpu::more_time`]).
    /// `followed`: later events were sent in the same request.
    async fn answer(
        &mut self,
        deadline: Duration,
        mark: Option<Duration>,
        event: &str,
        followed: bool,
    ) -> Result<(Vec<u8>, bool), Option<EvalError>> {
        let started = tokio::time::Instant::now();
        // One read, kept across the waits: a frame half read when a wait ends must not be lost.
        let read = read_frame_async(&mut self.stdout);
        tokio::pin!(read);
        let mut until = started + deadline;
        let mut waited_past = false;
        // The answer may be made but held in the child's buffer behind a later event of the
        // request ([`outbox`]): a late one is asked for, again at doubling intervals (a slow
        // mapping's answer then waits at most as long again), and once more, with a little grace
        // for the child to write it, before the event is blamed.
        let mut nudge_at = followed.then(|| started + NUDGE_AFTER);
        let mut graced = !followed;
        loop {
            let tick = nudge_at.filter(|n| *n < until);
            match tokio::time::timeout_at(tick.unwrap_or(until), &mut read).await {
                Ok(Ok(frame)) => return Ok((frame, waited_past)),
                Ok(Err(_)) => return Err(None),
                Err(_) if tick.is_some() => {
                    nudge(&self.process);
                    nudge_at = Some(started + started.elapsed() * 2);
                }
                Err(_) => {
                    let now = self.cpu.as_ref().and_then(CpuClock::used);
                    let used = mark.zip(now).map(|(a, b)| b.saturating_sub(a));
                    let more = match cpu::more_time(deadline, used, started.elapsed()) {
                        Some(more) => {
                            tracing::debug!(
                                event,
                                ?used,
                                "the evaluator was kept from the CPU past the deadline; waiting for it"
                            );
                            more
                        }
                        None if !graced => {
                            nudge(&self.process);
                            graced = true;
                            HELD_GRACE
                        }
                        None => return Err(Some(EvalError::Overran(deadline))),
                    };
                    until = tokio::time::Instant::now() + more;
                    waited_past = true;
                }
            }
        }
    }
}

impl ProcessEvaluator {
    async fn route_batch(
        &mut self,
        config: &Arc<Config>,
        events: &[StoredEvent],
        only: Option<&str>,
    ) -> Vec<Result<Routing, EvalError>> {
        let (mut results, crash) = self.attempt(config, events, only).await;
        let Some(cause) = crash else {
            return results;
        };
        let unanswered = &events[results.len()..];
        if let [_] = unanswered {
            results.push(Err(EvalError::Crashed(cause)));
            return results;
        }
        // The child writes answers a little after it makes them (`outbox`), so the crash may
        // have destroyed answers to events before the one that crashed it. Which one did is
        // found by evaluating them again one per request: each answer then stands alone.
        tracing::debug!(
            events = unanswered.len(),
            cause,
            "route evaluator crashed; evaluating its unanswered events one at a time"
        );
        for event in unanswered {
            let (part, crash) = self
                .attempt(config, std::slice::from_ref(event), only)
                .await;
            let failed = crash.is_some() || part.last().is_none_or(Result::is_err);
            results.extend(part);
            if let Some(cause) = crash {
                results.push(Err(EvalError::Crashed(cause)));
            }
            if failed {
                break;
            }
        }
        results
    }

    /// One request to the child: the answers received, ending at the first failure other than
    /// a crash, and the crash's cause if the child died before answering every event.
    async fn attempt(
        &mut self,
        config: &Arc<Config>,
        events: &[StoredEvent],
        only: Option<&str>,
    ) -> (Vec<Result<Routing, EvalError>>, Option<String>) {
        let request = match messages::encode_request(events, only) {
            Ok(r) => r,
            Err(e) => return (vec![Err(EvalError::Unavailable(e.to_string()))], None),
        };
        if request.len() > MAX_FRAME {
            // Only a single event this large fills a request (batches are split by bytes): it
            // fails on its own account.
            return (vec![Err(EvalError::TooLarge(request.len()))], None);
        }
        if let Err(e) = self.ensure_child(config).await {
            return (vec![Err(e)], None);
        }
        let mut results = Vec::with_capacity(events.len());
        let failure = match self.exchange(config, &request, events, &mut results).await {
            Ok(()) => return (results, None),
            Err(Some(e)) => e,
            Err(None) => return (results, Some(self.reap().await)),
        };
        // Whatever state the child is in, it is not trusted with another event.
        if let Some(mut child) = self.child.take() {
            let _ = child.process.kill().await;
        }
        results.push(Err(failure));
        (results, None)
    }

    /// A child loaded with `config`: the running one, or a new one in place of none or of one
    /// loaded with an older config.
    async fn ensure_child(&mut self, config: &Arc<Config>) -> Result<(), EvalError> {
        let stale = self
            .child
            .as_ref()
            .is_some_and(|c| !Arc::ptr_eq(&c.config, config));
        if stale || self.child.is_none() {
            // Dropping the old child kills it first: never two at once, and none left with the
            // old config if the new one fails to start.
            self.child = None;
            self.child = Some(self.spawn(config).await?);
        }
        Ok(())
    }

    /// Sends the batch and reads one answer per event, each within the deadline. `Err(None)`:
    /// the pipe broke (the child died).
    async fn exchange(
        &mut self,
        config: &Config,
        request: &[u8],
        events: &[StoredEvent],
        results: &mut Vec<Result<Routing, EvalError>>,
    ) -> Result<(), Option<EvalError>> {
        let Some(child) = self.child.as_mut() else {
            return Err(Some(EvalError::Unavailable("no child".into())));
        };
        let deadline = config.jq_timeout;
        let cpu_at_start = child.cpu.as_ref().and_then(CpuClock::used);
        // The child evaluates nothing before it has read the whole request, so a failure to
        // send is the child's, never an event's: the events stay unrouted and are tried again.
        match tokio::time::timeout(START_TIMEOUT, write_frame_async(&mut child.stdin, request))
            .await
        {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                return Err(Some(EvalError::Unavailable(format!(
                    "cannot send to the evaluator: {e}"
                ))));
            }
            Err(_) => {
                return Err(Some(EvalError::Unavailable(
                    "the evaluator stopped reading".into(),
                )));
            }
        }
        // The child's CPU time when the event being waited for began, as far as known: the
        // batch's start, or the end of an earlier event that ran past its wall-clock deadline.
        let mut mark = cpu_at_start;
        for (i, event) in events.iter().enumerate() {
            let followed = i + 1 < events.len();
            let (frame, waited_past) = child.answer(deadline, mark, &event.id, followed).await?;
            if waited_past {
                mark = child.cpu.as_ref().and_then(CpuClock::used);
            }
            match messages::decode_routing(&frame, &event.id) {
                Ok(routing) => results.push(Ok(routing)),
                Err(e) => return Err(Some(EvalError::Crashed(format!("unreadable answer: {e}")))),
            }
        }
        Ok(())
    }

    /// How the child ended, once its pipe closed.
    async fn reap(&mut self) -> String {
        let Some(mut child) = self.child.take() else {
            return "gone".into();
        };
        match tokio::time::timeout(Duration::from_secs(2), child.process.wait()).await {
            Ok(Ok(status)) => describe_exit(status),
            _ => {
                let _ = child.process.kill().await;
                "stopped answering".into()
            }
        }
    }

    async fn spawn(&self, config: &Arc<Config>) -> Result<Child, EvalError> {
        let unavailable =
            |e: std::io::Error| EvalError::Unavailable(format!("{}: {e}", self.exe.display()));
        let mut process = tokio::process::Command::new(&self.exe)
            .arg("__route-worker")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .map_err(unavailable)?;
        let (Some(mut stdin), Some(stdout)) = (process.stdin.take(), process.stdout.take()) else {
            return Err(EvalError::Unavailable("child pipes missing".into()));
        };
        let mut stdout = tokio::io::BufReader::new(stdout);
        let init = serde_json::json!({ "config": config.resolved.expose(), "memory_mb": config.jq_memory_mb });
        let hello = async {
            write_frame_async(&mut stdin, init.to_string().as_bytes()).await?;
            read_frame_async(&mut stdout).await
        };
        let answer = tokio::time::timeout(START_TIMEOUT, hello)
            .await
            .map_err(|_| EvalError::Unavailable("child did not start in time".into()))?
            .map_err(unavailable)?;
        let answer: serde_json::Value = serde_json::from_slice(&answer).map_err(|e| {
            EvalError::Unavailable(format!("child's answer to the config is unreadable: {e}"))
        })?;
        if answer["ok"] != true {
            return Err(EvalError::Unavailable(format!(
                "child refused the config: {}",
                answer["error"]
            )));
        }
        let cpu = process.id().and_then(CpuClock::of);
        if cpu.is_none() {
            tracing::warn!(
                "cannot read the route evaluator's CPU time (/proc); jq.timeout_ms counts wall-clock time, so a busy machine may fail slow mappings"
            );
        }
        Ok(Child {
            cpu,
            process,
            stdin,
            stdout,
            config: config.clone(),
        })
    }
}

/// Asks the child to write the answers it holds. A child that is gone cannot be asked, and need
/// not be: its closed pipe tells the reader.
fn nudge(process: &tokio::process::Child) {
    let pid = process
        .id()
        .and_then(|id| rustix::process::Pid::from_raw(i32::try_from(id).ok()?));
    if let Some(pid) = pid {
        let _ = rustix::process::kill_process(pid, rustix::process::Signal::USR1);
    }
}

fn describe_exit(status: std::process::ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt as _;
    match (status.code(), status.signal()) {
        (_, Some(6)) => "aborted: stack overflow or out of memory".into(),
        (_, Some(sig)) => format!("killed by signal {sig}"),
        (Some(code), _) => format!("exited with code {code}"),
        _ => status.to_string(),
    }
}
