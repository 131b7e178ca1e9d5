//! The evaluator's wire: frames of a little-endian u32 length and a JSON payload, between the
//! gateway and its `__route-worker` child. Both sides refuse a frame past [`MAX_FRAME`], so a
//! corrupt length cannot make either side allocate without bound.

use std::io::{Read, Write};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Largest frame either side accepts.
pub(super) const MAX_FRAME: usize = 256 * 1024 * 1024;

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

pub(super) fn write_frame(w: &mut impl Write, payload: &[u8]) -> std::io::Result<()> {
    let len = u32::try_from(payload.len()).map_err(|_| std::io::Error::other("frame too large"))?;
    w.write_all(&len.to_le_bytes())?;
    w.write_all(payload)?;
    w.flush()
}

pub(super) fn read_frame(r: &mut impl Read) -> std::io::Result<Vec<u8>> {
    let mut len = [0u8; 4];
    r.read_exact(&mut len)?;
    let mut buf = vec![0u8; frame_len(len)?];
    r.read_exact(&mut buf)?;
    Ok(buf)
}
