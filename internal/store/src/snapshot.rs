//! Snapshot file format: a versioned header, bincode-encoded entries, and a trailer holding
//! the entry count and a CRC-32 of everything before it, so a truncated or corrupt file is
//! detected rather than half-loaded.

use crate::StoreError;
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use std::io::Write;

const MAGIC: &[u8; 8] = b"TIERSNAP";
/// 2 added the expiry sequence; files of format 1 are still read (sequence 0).
const FORMAT_VERSION: u32 = 2;
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
    /// Expiry changes of this version.
    pub expiry_seq: u32,
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
#[derive(Debug, Deserialize)]
pub struct EntryRef<'a> {
    /// The key.
    #[serde(borrow)]
    pub key: &'a [u8],
    /// The value, `None` for a tombstone.
    #[serde(borrow)]
    pub value: Option<&'a [u8]>,
    /// Version for last-write-wins.
    pub version: u64,
    /// Absolute expiry in Unix ms, 0 = never.
    pub expires_at_ms: u64,
    /// Expiry changes of this version.
    pub expiry_seq: u32,
}

/// An entry of a format 1 file.
#[derive(Deserialize)]
struct EntryRefV1<'a> {
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
    decode_snapshot_with(data, |e| {
        out.push(SnapshotEntry {
            key: Bytes::copy_from_slice(e.key),
            value: e.value.map(Bytes::copy_from_slice),
            version: e.version,
            expires_at_ms: e.expires_at_ms,
            expiry_seq: e.expiry_seq,
        })
    })?;
    Ok(out)
}

/// Verifies a snapshot, then hands every entry to `f`, borrowed from `data`; returns the
/// number of entries. Nothing is handed out unless the checksum matches, so a damaged file
/// loads nothing.
pub fn decode_snapshot_with(data: &[u8], mut f: impl FnMut(EntryRef<'_>)) -> Result<u64, StoreError> {
    if data.len() < MAGIC.len() + 4 || &data[..8] != MAGIC {
        return Err(StoreError::BadSnapshotHeader);
    }
    let format = u32::from_le_bytes([data[8], data[9], data[10], data[11]]);
    if format != FORMAT_VERSION && format != 1 {
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
                let bad = |err: bincode::error::DecodeError| StoreError::CorruptSnapshot(err.to_string());
                let (e, used) = if format == 1 {
                    let (e, used): (EntryRefV1<'_>, usize) =
                        bincode::serde::borrow_decode_from_slice(&body[pos + 1..], cfg).map_err(bad)?;
                    let EntryRefV1 { key, value, version, expires_at_ms } = e;
                    (EntryRef { key, value, version, expires_at_ms, expiry_seq: 0 }, used)
                } else {
                    bincode::serde::borrow_decode_from_slice(&body[pos + 1..], cfg).map_err(bad)?
                };
                f(e);
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
                expiry_seq: (i % 3) as u32,
            })
            .collect()
    }

    /// Files written by this release are read by the next: a change of these bytes bumps
    /// FORMAT_VERSION and keeps a reader for the old format.
    #[test]
    fn files_keep_their_bytes() {
        let entries = vec![
            SnapshotEntry {
                key: Bytes::from_static(b"a"),
                value: Some(Bytes::from_static(b"1")),
                version: 7,
                expires_at_ms: 0,
                expiry_seq: 0,
            },
            SnapshotEntry {
                key: Bytes::from_static(b"b"),
                value: None,
                version: 1_700_000_000_000 << 16,
                expires_at_ms: 1_800_000_000_000,
                expiry_seq: 3,
            },
        ];
        let mut buf = Vec::new();
        encode_snapshot(&mut buf, entries.clone()).unwrap();
        let hex: String = buf.iter().map(|x| format!("{x:02x}")).collect();
        assert_eq!(hex, GOLDEN, "the snapshot format changed");
        assert_eq!(decode_snapshot(&buf).unwrap(), entries);
    }

    const GOLDEN: &str = "54494552534e41500200000001016101013107000001016200fd00000068e5cf8b01fd00505c18a301000003000200000000000000a7a1d8b4";

    #[test]
    fn reads_format_1_files() {
        #[derive(Serialize)]
        struct V1<'a> {
            key: &'a [u8],
            value: Option<&'a [u8]>,
            version: u64,
            expires_at_ms: u64,
        }
        let mut cw = CrcWriter { inner: Vec::new(), crc: crc32fast::Hasher::new(), written: 0 };
        cw.write_all(MAGIC).unwrap();
        cw.write_all(&1u32.to_le_bytes()).unwrap();
        for (k, v) in [(&b"a"[..], Some(&b"1"[..])), (b"b", None)] {
            cw.write_all(&[TAG_ENTRY]).unwrap();
            let e = V1 { key: k, value: v, version: 7, expires_at_ms: 0 };
            bincode::serde::encode_into_std_write(&e, &mut cw, bincode::config::standard()).unwrap();
        }
        cw.write_all(&[TAG_END]).unwrap();
        cw.write_all(&2u64.to_le_bytes()).unwrap();
        let crc = cw.crc.clone().finalize();
        let mut buf = cw.inner;
        buf.extend_from_slice(&crc.to_le_bytes());
        let got = decode_snapshot(&buf).unwrap();
        assert_eq!(got.len(), 2);
        assert_eq!((got[0].value.as_deref(), got[0].version, got[0].expiry_seq), (Some(&b"1"[..]), 7, 0));
        assert_eq!(got[1].value, None);
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
