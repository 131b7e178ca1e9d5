//! A VFS that gathers the writes of each WAL commit into one system call.
//!
//! SQLite writes a commit's WAL frames with two `pwrite`s each (the 24-byte frame header, then
//! the page), and then fsyncs the file. On the gateway's writer thread these were about four
//! system calls per event and a quarter of the thread's CPU (BENCHMARKS.md, fourteenth session).
//! This shim sits on SQLite's own `unix` VFS: a WAL file's writes collect in memory while they
//! run on from one another (or land inside what is already collected) and reach the file in one
//! write before anything else is done with it: a sync, a read, a size query, a truncation, a close.
//!
//! Durability is unchanged because it is only installed with `synchronous=FULL`, where every
//! commit syncs the WAL before it counts as committed (before the WAL index names its frames):
//! a commit's frames are all in the file before its sync, and a killed process loses only frames
//! that no commit had claimed. With `NORMAL`, commits do not sync the WAL, so frames would wait
//! in memory after their commit: the store then opens with the default VFS instead.
//!
//! The database file and everything else go straight to `unix`, untouched. This module must never
//! let a buffered write outlive a call that reads or syncs its file, and never lose a write error:
//! one that happens when the buffer is written out is the answer of the call that wrote it out.

#![allow(unsafe_code)]

use rusqlite::ffi;
use std::ffi::{CStr, c_int, c_void};
use std::sync::OnceLock;

/// The name the store opens its database with.
pub(super) const NAME: &CStr = c"hookgate-wal-buffer";

/// Most bytes collected before they are written anyway (a large transaction, say retention's).
const MAX_BUFFER: usize = 4 << 20;

/// Most bytes handed to `unix` in one write: it masks a write's length to 17 bits (and takes a
/// multiple of 128 KiB for a full disk), so larger ones go in pieces of whole pages.
const MAX_WRITE: usize = 0x1F000;

/// Registers the VFS with SQLite (once per process); errs with SQLite's code if it cannot.
pub(super) fn register() -> Result<(), c_int> {
    static REGISTERED: OnceLock<Result<(), c_int>> = OnceLock::new();
    *REGISTERED.get_or_init(|| {
        // SAFETY: `sqlite3_vfs_find(NULL)` returns the default VFS (`unix` on the platforms the
        // bundled SQLite builds for) or NULL; it lives as long as the process. The copy made
        // here is leaked, so it does too, as `sqlite3_vfs_register` requires.
        unsafe {
            let unix = ffi::sqlite3_vfs_find(std::ptr::null());
            if unix.is_null() {
                return Err(ffi::SQLITE_ERROR);
            }
            let mut vfs = *unix;
            vfs.szOsFile = inner_offset() as c_int + (*unix).szOsFile;
            vfs.zName = NAME.as_ptr();
            vfs.pNext = std::ptr::null_mut();
            vfs.xOpen = Some(open);
            let vfs = Box::leak(Box::new(Vfs { vfs, unix }));
            match ffi::sqlite3_vfs_register(&mut vfs.vfs, 0) {
                ffi::SQLITE_OK => Ok(()),
                rc => Err(rc),
            }
        }
    })
}

/// Our VFS: a copy of `unix`'s (every method but `xOpen` is `unix`'s own, and they read nothing
/// of the struct but what was copied), with `unix` beside it for opening files.
#[repr(C)]
struct Vfs {
    vfs: ffi::sqlite3_vfs,
    unix: *mut ffi::sqlite3_vfs,
}

/// An open WAL file: SQLite's handle, what is collected, and `unix`'s handle after it, in the
/// same allocation (`szOsFile`).
#[repr(C)]
struct WalFile {
    base: ffi::sqlite3_file,
    pending: *mut Pending,
}

/// Writes collected since the last one that reached the file: `bytes` belong at `start`.
#[derive(Default)]
struct Pending {
    start: i64,
    bytes: Vec<u8>,
}

const fn inner_offset() -> usize {
    let size = std::mem::size_of::<WalFile>();
    let align = 16;
    size.div_ceil(align) * align
}

/// `unix`'s handle inside ours.
unsafe fn inner(f: *mut ffi::sqlite3_file) -> *mut ffi::sqlite3_file {
    // SAFETY: every file our `open` gave a `WalFile`'s methods has `unix`'s handle at this
    // offset, inside the `szOsFile` bytes SQLite allocated.
    unsafe { f.cast::<u8>().add(inner_offset()).cast() }
}

unsafe fn methods(f: *mut ffi::sqlite3_file) -> &'static ffi::sqlite3_io_methods {
    // SAFETY: `unix` opened this handle successfully, so its methods are set and static.
    unsafe { &*(*f).pMethods }
}

static WAL_METHODS: ffi::sqlite3_io_methods = ffi::sqlite3_io_methods {
    // Version 1: a WAL file is never memory-mapped nor given shared memory (that is the database
    // file's); SQLite then never asks for those methods.
    iVersion: 1,
    xClose: Some(close),
    xRead: Some(read),
    xWrite: Some(write),
    xTruncate: Some(truncate),
    xSync: Some(sync),
    xFileSize: Some(file_size),
    xLock: Some(lock),
    xUnlock: Some(unlock),
    xCheckReservedLock: Some(check_reserved_lock),
    xFileControl: Some(file_control),
    xSectorSize: Some(sector_size),
    xDeviceCharacteristics: Some(device_characteristics),
    xShmMap: None,
    xShmLock: None,
    xShmBarrier: None,
    xShmUnmap: None,
    xFetch: None,
    xUnfetch: None,
};

unsafe extern "C" fn open(
    vfs: *mut ffi::sqlite3_vfs,
    name: ffi::sqlite3_filename,
    file: *mut ffi::sqlite3_file,
    flags: c_int,
    out_flags: *mut c_int,
) -> c_int {
    // SAFETY: `vfs` is the `Vfs` that `register` leaked (SQLite passes back what it was given),
    // and `file` has `szOsFile` bytes, room for a `WalFile` and `unix`'s handle after it.
    unsafe {
        let unix = (*vfs.cast::<Vfs>()).unix;
        let Some(unix_open) = (*unix).xOpen else {
            return ffi::SQLITE_ERROR;
        };
        if flags & ffi::SQLITE_OPEN_WAL == 0 {
            // Not a WAL: `unix`'s own handle, at the start, as if this VFS were not here.
            return unix_open(unix, name, file, flags, out_flags);
        }
        let inner = inner(file);
        let rc = unix_open(unix, name, inner, flags, out_flags);
        if rc != ffi::SQLITE_OK || (*inner).pMethods.is_null() {
            // SQLite does not close a file whose methods are unset.
            (*file).pMethods = std::ptr::null();
            return rc;
        }
        let wal = file.cast::<WalFile>();
        (*wal).pending = Box::into_raw(Box::default());
        (*wal).base.pMethods = &WAL_METHODS;
        rc
    }
}

/// Writes out what was collected; an error is `unix`'s write error.
unsafe fn flush(f: *mut ffi::sqlite3_file) -> c_int {
    // SAFETY: `f` is a `WalFile` our `open` made (only those have these methods), so `pending`
    // is its own box until `close`.
    unsafe {
        let pending = &mut *(*f.cast::<WalFile>()).pending;
        if pending.bytes.is_empty() {
            return ffi::SQLITE_OK;
        }
        let inner = inner(f);
        let Some(write) = methods(inner).xWrite else {
            return ffi::SQLITE_IOERR_WRITE;
        };
        let mut rc = ffi::SQLITE_OK;
        let mut at = pending.start;
        for chunk in pending.bytes.chunks(MAX_WRITE) {
            // A chunk is at most `MAX_WRITE` bytes, so its length fits.
            rc = write(inner, chunk.as_ptr().cast(), chunk.len() as c_int, at);
            if rc != ffi::SQLITE_OK {
                break;
            }
            at += chunk.len() as i64;
        }
        // Written or failed, the bytes are gone: on failure SQLite abandons the transaction, and
        // its frames are written again (or never counted) by the next.
        pending.bytes.clear();
        rc
    }
}

unsafe extern "C" fn write(
    f: *mut ffi::sqlite3_file,
    data: *const c_void,
    amount: c_int,
    offset: i64,
) -> c_int {
    // SAFETY: as in `flush`; SQLite hands `amount` readable bytes at `data`.
    unsafe {
        let Ok(len) = usize::try_from(amount) else {
            return ffi::SQLITE_IOERR_WRITE;
        };
        let data = std::slice::from_raw_parts(data.cast::<u8>(), len);
        let pending = &mut *(*f.cast::<WalFile>()).pending;
        let end = pending.start + pending.bytes.len() as i64;
        let collected = !pending.bytes.is_empty();
        if collected && offset == end {
            pending.bytes.extend_from_slice(data);
        } else if collected && offset >= pending.start && offset + len as i64 <= end {
            // A frame rewritten within the transaction (SQLite's checksum rewrite).
            let at = (offset - pending.start) as usize;
            pending.bytes[at..at + len].copy_from_slice(data);
        } else {
            // Elsewhere in the file (or nothing collected: the flush is then a no-op).
            let rc = flush(f);
            if rc != ffi::SQLITE_OK {
                return rc;
            }
            let pending = &mut *(*f.cast::<WalFile>()).pending;
            pending.start = offset;
            pending.bytes.extend_from_slice(data);
        }
        if (*(*f.cast::<WalFile>()).pending).bytes.len() >= MAX_BUFFER {
            return flush(f);
        }
        ffi::SQLITE_OK
    }
}

/// Writes out what was collected, then calls `unix`'s method on its own handle.
macro_rules! after_flush {
    ($f:ident, $method:ident ( $($arg:expr),* )) => {{
        // SAFETY: as in `flush`; `unix`'s method gets `unix`'s handle.
        unsafe {
            let rc = flush($f);
            if rc != ffi::SQLITE_OK {
                return rc;
            }
            let inner = inner($f);
            match methods(inner).$method {
                Some(m) => m(inner $(, $arg)*),
                None => ffi::SQLITE_ERROR,
            }
        }
    }};
}

/// Calls `unix`'s method on its own handle: nothing written is involved.
macro_rules! pass {
    ($f:ident, $method:ident ( $($arg:expr),* ), $none:expr) => {{
        // SAFETY: as in `flush`; `unix`'s method gets `unix`'s handle.
        unsafe {
            let inner = inner($f);
            match methods(inner).$method {
                Some(m) => m(inner $(, $arg)*),
                None => $none,
            }
        }
    }};
}

unsafe extern "C" fn close(f: *mut ffi::sqlite3_file) -> c_int {
    let flushed = unsafe { flush(f) };
    let closed = pass!(f, xClose(), ffi::SQLITE_OK);
    // SAFETY: the box `open` made; SQLite never uses a handle after closing it.
    unsafe {
        let wal = f.cast::<WalFile>();
        drop(Box::from_raw((*wal).pending));
        (*wal).pending = std::ptr::null_mut();
    }
    if flushed != ffi::SQLITE_OK {
        flushed
    } else {
        closed
    }
}

unsafe extern "C" fn read(f: *mut ffi::sqlite3_file, buf: *mut c_void, n: c_int, at: i64) -> c_int {
    after_flush!(f, xRead(buf, n, at))
}

unsafe extern "C" fn truncate(f: *mut ffi::sqlite3_file, size: i64) -> c_int {
    after_flush!(f, xTruncate(size))
}

unsafe extern "C" fn sync(f: *mut ffi::sqlite3_file, flags: c_int) -> c_int {
    after_flush!(f, xSync(flags))
}

unsafe extern "C" fn file_size(f: *mut ffi::sqlite3_file, size: *mut i64) -> c_int {
    after_flush!(f, xFileSize(size))
}

unsafe extern "C" fn file_control(f: *mut ffi::sqlite3_file, op: c_int, arg: *mut c_void) -> c_int {
    after_flush!(f, xFileControl(op, arg))
}

unsafe extern "C" fn lock(f: *mut ffi::sqlite3_file, level: c_int) -> c_int {
    pass!(f, xLock(level), ffi::SQLITE_OK)
}

unsafe extern "C" fn unlock(f: *mut ffi::sqlite3_file, level: c_int) -> c_int {
    pass!(f, xUnlock(level), ffi::SQLITE_OK)
}

unsafe extern "C" fn check_reserved_lock(f: *mut ffi::sqlite3_file, out: *mut c_int) -> c_int {
    pass!(f, xCheckReservedLock(out), ffi::SQLITE_OK)
}

unsafe extern "C" fn sector_size(f: *mut ffi::sqlite3_file) -> c_int {
    pass!(f, xSectorSize(), 4096)
}

unsafe extern "C" fn device_characteristics(f: *mut ffi::sqlite3_file) -> c_int {
    pass!(f, xDeviceCharacteristics(), 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rusqlite::{Connection, OpenFlags};

    fn open(path: &std::path::Path) -> Connection {
        register().expect("registered");
        let c =
            Connection::open_with_flags_and_vfs(path, OpenFlags::default(), NAME).expect("open");
        c.pragma_update(None, "journal_mode", "WAL").expect("wal");
        c.pragma_update(None, "synchronous", "FULL").expect("full");
        c
    }

    fn count_and_sum(c: &Connection) -> (i64, i64) {
        c.query_row(
            "SELECT count(*), coalesce(sum(length(v) + n), 0) FROM t",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .expect("read")
    }

    /// Another connection, through the default VFS, sees each commit as soon as it returns: its
    /// frames were in the file before the commit counted.
    #[test]
    fn every_commit_is_in_the_file_when_it_returns() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("t.db");
        let writer = open(&path);
        writer
            .execute_batch(
                "CREATE TABLE t (n INTEGER PRIMARY KEY, v BLOB); CREATE INDEX t_v ON t (v)",
            )
            .expect("schema");
        let reader = Connection::open(&path).expect("reader");
        let mut expected = (0, 0);
        for round in 0..40i64 {
            // Small commits, and now and then one past the buffer's bound.
            let rows = if round % 10 == 9 { 3000 } else { 1 + round };
            let tx = writer.unchecked_transaction().expect("begin");
            for i in 0..rows {
                let n = round * 10_000 + i;
                let v = vec![(n % 251) as u8; 1500 + (n % 700) as usize];
                tx.execute("INSERT INTO t (n, v) VALUES (?1, ?2)", (n, &v))
                    .expect("insert");
                expected.0 += 1;
                expected.1 += v.len() as i64 + n;
            }
            // Pages written earlier in the same transaction, written again.
            tx.execute("UPDATE t SET v = v WHERE n % 7 = 0", [])
                .expect("update");
            tx.commit().expect("commit");
            assert_eq!(count_and_sum(&reader), expected, "after round {round}");
        }
        writer
            .execute_batch("PRAGMA wal_checkpoint(TRUNCATE)")
            .expect("checkpoint");
        drop(writer);
        let check: String = reader
            .query_row("PRAGMA integrity_check", [], |r| r.get(0))
            .expect("check");
        assert_eq!(check, "ok");
        assert_eq!(count_and_sum(&reader), expected);
    }

    /// A transaction rolled back after its frames were collected leaves nothing behind.
    #[test]
    fn a_rolled_back_transaction_leaves_nothing() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("t.db");
        let writer = open(&path);
        writer
            .execute_batch("CREATE TABLE t (n INTEGER PRIMARY KEY, v BLOB)")
            .expect("schema");
        writer
            .pragma_update(None, "cache_size", 10)
            .expect("small cache");
        let tx = writer.unchecked_transaction().expect("begin");
        for n in 0..2000i64 {
            tx.execute("INSERT INTO t (n, v) VALUES (?1, zeroblob(2000))", [n])
                .expect("insert");
        }
        tx.rollback().expect("rollback");
        writer
            .execute("INSERT INTO t (n, v) VALUES (1, x'01')", [])
            .expect("insert");
        let reader = Connection::open(&path).expect("reader");
        assert_eq!(count_and_sum(&reader), (1, 2));
    }
}
