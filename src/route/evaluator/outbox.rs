//! The child's answers on their way to the gateway. Writing each answer on its own costs a
//! system call per event, so the answers to a request gather in a buffer written when the
//! request is done. A later event that runs away would then hold back its predecessors' answers,
//! and the gateway blames the first event whose answer has not come; so when an answer is late
//! the gateway nudges the child (`SIGUSR1`), and a thread that only waits for that signal writes
//! what the buffer holds. (What a crash destroys, the gateway sorts out by evaluating the
//! unanswered events again one per request, see `super::ProcessEvaluator`.)
//!
//! Nothing here may wake a thread per answer: that would cost what the buffer saves.

use std::io::Write;
use std::sync::{Mutex, MutexGuard};

/// Answers not yet written, and the output they go to.
struct Pending<W> {
    buf: Vec<u8>,
    out: W,
    /// The first write error, which ends the child (its parent is gone or the pipe broke).
    failed: Option<std::io::ErrorKind>,
}

/// A buffer of answers shared by the evaluating thread and the nudged flusher.
pub(super) struct Outbox<W> {
    pending: Mutex<Pending<W>>,
}

impl<W: Write> Outbox<W> {
    pub(super) fn new(out: W) -> Self {
        Self {
            pending: Mutex::new(Pending {
                buf: Vec::with_capacity(64 * 1024),
                out,
                failed: None,
            }),
        }
    }

    fn lock(&self) -> std::io::Result<MutexGuard<'_, Pending<W>>> {
        let p = self
            .pending
            .lock()
            .map_err(|_| std::io::Error::other("answer buffer poisoned"))?;
        match p.failed {
            Some(kind) => Err(std::io::Error::new(kind, "writing an answer failed")),
            None => Ok(p),
        }
    }

    /// Adds one frame, written by the next [`Self::flush`].
    pub(super) fn push(&self, frame: &[u8]) -> std::io::Result<()> {
        let len =
            u32::try_from(frame.len()).map_err(|_| std::io::Error::other("frame too large"))?;
        let mut p = self.lock()?;
        p.buf.extend_from_slice(&len.to_le_bytes());
        p.buf.extend_from_slice(frame);
        Ok(())
    }

    /// Writes every answer gathered so far, now, holding the lock so frames never interleave.
    pub(super) fn flush(&self) -> std::io::Result<()> {
        let mut p = self.lock()?;
        let Pending { buf, out, failed } = &mut *p;
        if buf.is_empty() {
            return Ok(());
        }
        let written = out.write_all(buf).and_then(|()| out.flush());
        buf.clear();
        if let Err(e) = &written {
            *failed = Some(e.kind());
        }
        written
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    /// An output that records each write separately.
    #[derive(Clone, Default)]
    struct Writes(Arc<Mutex<Vec<Vec<u8>>>>);

    impl Write for Writes {
        fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
            self.0.lock().expect("test lock").push(data.to_vec());
            Ok(data.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn frame(payload: &[u8]) -> Vec<u8> {
        let mut f = (payload.len() as u32).to_le_bytes().to_vec();
        f.extend_from_slice(payload);
        f
    }

    #[test]
    fn a_request_s_answers_go_out_in_one_write_in_order() {
        let writes = Writes::default();
        let outbox = Outbox::new(writes.clone());
        for p in [&b"a"[..], b"bb", b"ccc"] {
            outbox.push(p).expect("push");
        }
        assert!(writes.0.lock().expect("test lock").is_empty());
        outbox.flush().expect("flush");
        outbox.flush().expect("an empty flush writes nothing");
        let got = writes.0.lock().expect("test lock").clone();
        assert_eq!(got, [[frame(b"a"), frame(b"bb"), frame(b"ccc")].concat()]);
    }

    #[test]
    fn a_failed_write_ends_every_later_push_and_flush() {
        struct Broken;
        impl Write for Broken {
            fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
                Err(std::io::ErrorKind::BrokenPipe.into())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let outbox = Outbox::new(Broken);
        outbox.push(b"x").expect("push buffers");
        assert!(outbox.flush().is_err());
        assert!(outbox.push(b"y").is_err());
        assert!(outbox.flush().is_err());
    }
}
