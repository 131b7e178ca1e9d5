//! The evaluator's wire: frames of a little-endian u32 length and a payload (see [`super::messages`]
//! for what they carry), between the gateway and its `__route-worker` child. Both sides refuse a frame past [`MAX_FRAME`], so a
//! corrupt length cannot make either side allocate without bound.

use crate::store::StoredEvent;
use std::io::Read;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Largest frame either side accepts.
pub(super) const MAX_FRAME: usize = 256 * 1024 * 1024;

/// Body bytes sent to a child in one request. A batch of large events is split into requests of
/// at most this much, so a frame never nears [`MAX_FRAME`] because of an event's neighbours.
pub(super) const MAX_REQUEST_BODY_BYTES: usize = 16 * 1024 * 1024;

/// Splits `events` into runs of at most [`MAX_REQUEST_BODY_BYTES`] of bodies (at least one event
/// each), in order.
pub(super) fn chunks(events: &[StoredEvent]) -> Vec<&[StoredEvent]> {
    let mut out = Vec::new();
    let (mut start, mut bytes) = (0, 0usize);
    for (i, event) in events.iter().enumerate() {
        if i > start && bytes + event.body.len() > MAX_REQUEST_BODY_BYTES {
            out.push(&events[start..i]);
            (start, bytes) = (i, 0);
        }
        bytes += event.body.len();
    }
    if start < events.len() {
        out.push(&events[start..]);
    }
    out
}

pub(super) async fn write_frame_async(
    w: &mut tokio::process::ChildStdin,
    payload: &[u8],
) -> std::io::Result<()> {
    let len = u32::try_from(payload.len()).map_err(|_| std::io::Error::other("frame too large"))?;
    w.write_all(&len.to_le_bytes()).await?;
    w.write_all(payload).await?;
    w.flush().await
}

pub(super) async fn read_frame_async(
    r: &mut tokio::io::BufReader<tokio::process::ChildStdout>,
) -> std::io::Result<Vec<u8>> {
    let mut len = [0u8; 4];
    r.read_exact(&mut len).await?;
    let mut buf = vec![0u8; frame_len(len)?];
    r.read_exact(&mut buf).await?;
    Ok(buf)
}

/// The length a frame header announces, refused past [`MAX_FRAME`].
fn frame_len(header: [u8; 4]) -> std::io::Result<usize> {
    let len = u32::from_le_bytes(header) as usize;
    if len > MAX_FRAME {
        return Err(std::io::Error::other("frame too large"));
    }
    Ok(len)
}

pub(super) fn read_frame(r: &mut impl Read) -> std::io::Result<Vec<u8>> {
    let mut len = [0u8; 4];
    r.read_exact(&mut len)?;
    let mut buf = vec![0u8; frame_len(len)?];
    r.read_exact(&mut buf)?;
    Ok(buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(size: usize) -> StoredEvent {
        StoredEvent::blank(&format!("evt_{size}"), size)
    }

    #[test]
    fn chunks_are_bounded_by_bytes_and_keep_order() {
        let mb = 1024 * 1024;
        let events: Vec<_> = (0..40).map(|_| event(mb)).collect();
        let parts = chunks(&events);
        assert_eq!(parts.len(), 3);
        assert!(parts.iter().all(|p| p.len() <= 16));
        assert_eq!(parts.iter().map(|p| p.len()).sum::<usize>(), 40);
        // An event larger than the bound travels alone, never with neighbours.
        let events = vec![event(10), event(20 * mb), event(10)];
        let sizes: Vec<usize> = chunks(&events).iter().map(|p| p.len()).collect();
        assert_eq!(sizes, [1, 1, 1]);
        assert!(chunks(&[]).is_empty());
    }
}
