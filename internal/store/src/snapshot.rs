//! Snapshot file format: a versioned header, bincode-encoded entries, and a trailer holding
//! the entry count and a CRC-32 of everything before it, so a truncated or corrupt file is
//! detected rather than half-loaded.

use crate::StoreError;
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use std::io::Write;

const MAGIC: &[u8; 8] = b"TIERSNAP";
const FORMAT_VERSION: u32 = 1;
const TAG_ENTRY: u8 = 1;
const TAG_END: u8 = 0;

/// One entry as stored in a snapshot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotEntry {
    /// The key.
    pub key: Bytes,
    /// The value, or `None` for a tombstone.
    pub value: Option<Bytes>,
    /// Version for last-write-wins.
    pub version: u64,
    /// Absolute expiry in Unix ms, 0 = never.
    pub expires_at_ms: u64,
}

struct CrcWriter<W> {
    inner: W,
    crc: crc32fast::Hasher,
    written: u64,
}

impl<W: Write> Write for CrcWriter<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.crc.update(&buf[..n]);
        self.written += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// Writes a snapshot of `entries` to `w`; returns (entries, bytes written).
pub fn encode_snapshot<W: Write>(
    w: W,
    entries: impl IntoIterator<Item = SnapshotEntry>,
) -> Result<(u64, u64), StoreError> {
    let mut cw = CrcWriter { inner: w, crc: crc32fast::Hasher::new(), written: 0 };
    cw.write_all(MAGIC)?;
    cw.write_all(&FORMAT_VERSION.to_le_bytes())?;
    let cfg = bincode::config::standard();
    let mut count = 0u64;
    for e in entries {
        cw.write_all(&[TAG_ENTRY])?;
        bincode::serde::encode_into_std_write(&e, &mut cw, cfg)
            .map_err(|err| StoreError::Io(std::io::Error::other(err.to_string())))?;
        count += 1;
    }
    cw.write_all(&[TAG_END])?;
    cw.write_all(&count.to_le_bytes())?;
    let crc = cw.crc.clone().finalize();
    cw.inner.write_all(&crc.to_le_bytes())?;
    cw.inner.flush()?;
    Ok((count, cw.written + 4))
}

/// An entry borrowed from the snapshot bytes (no allocation while restoring).
#[derive(Deserialize)]
struct EntryRef<'a> {
    #[serde(borrow)]
    key: &'a [u8],
    #[serde(borrow)]
    value: Option<&'a [u8]>,
    version: u64,
    expires_at_ms: u64,
}

/// Reads a whole snapshot, verifying header, checksum and count before returning anything.
pub fn decode_snapshot(data: &[u8]) -> Result<Vec<SnapshotEntry>, StoreError> {
    let mut out = Vec::new();
    decode_snapshot_with(data, |key, value, version, expires_at_ms| {
        out.push(SnapshotEntry {
            key: Bytes::copy_from_slice(key),
            value: value.map(Bytes::copy_from_slice),
            version,
            expires_at_ms,
        })
    })?;
    Ok(out)
}

/// Verifies a snapshot, then hands every entry to `f` as (key, value or `None` for a
/// tombstone, version, expiry) borrowed from `data`; returns the number of entries. Nothing
/// is handed out unless the checksum matches, so a damaged file loads nothing.
pub fn decode_snapshot_with(data: &[u8], mut f: impl FnMut(&[u8], Option<&[u8]>, u64, u64)) -> Result<u64, StoreError> {
    if data.len() < MAGIC.len() + 4 || &data[..8] != MAGIC {
        return Err(StoreError::BadSnapshotHeader);
    }
    if u32::from_le_bytes([data[8], data[9], data[10], data[11]]) != FORMAT_VERSION {
        return Err(StoreError::BadSnapshotHeader);
    }
    if data.len() < 12 + 1 + 8 + 4 {
        return Err(StoreError::CorruptSnapshot("truncated".into()));
    }
    let (body, crc_bytes) = data.split_at(data.len() - 4);
    let want = u32::from_le_bytes([crc_bytes[0], crc_bytes[1], crc_bytes[2], crc_bytes[3]]);
    if crc32fast::hash(body) != want {
        return Err(StoreError::CorruptSnapshot("checksum mismatch (truncated or damaged)".into()));
    }
    let cfg = bincode::config::standard();
    let mut pos = 12;
    let mut n = 0u64;
    loop {
        match body.get(pos) {
            Some(&TAG_ENTRY) => {
                let (e, used): (EntryRef<'_>, usize) = bincode::serde::borrow_decode_from_slice(&body[pos + 1..], cfg)
                    .map_err(|err| StoreError::CorruptSnapshot(err.to_string()))?;
                f(e.key, e.value, e.version, e.expires_at_ms);
                n += 1;
                pos += 1 + used;
            }
            Some(&TAG_END) => {
                let count = body
                    .get(pos + 1..pos + 9)
                    .and_then(|b| b.try_into().ok())
                    .map(u64::from_le_bytes)
                    .ok_or_else(|| StoreError::CorruptSnapshot("truncated trailer".into()))?;
                if count != n {
                    return Err(StoreError::CorruptSnapshot(format!("count {count} but {n} entries")));
                }
                return Ok(n);
            }
            _ => return Err(StoreError::CorruptSnapshot(format!("bad tag at offset {pos}"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(n: usize) -> Vec<SnapshotEntry> {
        (0..n)
            .map(|i| SnapshotEntry {
                key: Bytes::from(format!("key-{i}")),
                value: if i % 7 == 0 { None } else { Some(Bytes::from(vec![i as u8; i % 50])) },
                version: i as u64 * 3,
                expires_at_ms: if i % 2 == 0 { 0 } else { 1_700_000_000_000 + i as u64 },
            })
            .collect()
    }

    #[test]
    fn round_trip() {
        let entries = sample(1000);
        let mut buf = Vec::new();
        let (count, written) = encode_snapshot(&mut buf, entries.clone()).unwrap();
        assert_eq!(count, 1000);
        assert_eq!(written as usize, buf.len());
        assert_eq!(decode_snapshot(&buf).unwrap(), entries);
    }

    #[test]
    fn detects_truncation_and_corruption() {
        let mut buf = Vec::new();
        encode_snapshot(&mut buf, sample(100)).unwrap();
        assert!(matches!(decode_snapshot(&buf[..buf.len() / 2]), Err(StoreError::CorruptSnapshot(_))));
        let mut bad = buf.clone();
        bad[40] ^= 0xff;
        assert!(matches!(decode_snapshot(&bad), Err(StoreError::CorruptSnapshot(_))));
        assert!(matches!(decode_snapshot(b"garbage file"), Err(StoreError::BadSnapshotHeader)));
        assert!(decode_snapshot(&[]).is_err());
    }
}
