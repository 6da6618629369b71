//! An entry as callers see it ([`Entry`]) and as a shard holds it ([`Packed`]): one heap block
//! per entry with its header, expiry, key and value.

use crate::lru::Keyed;
use bytes::Bytes;

/// One stored version of a key: a value, or a tombstone (`value == None`) left by a delete.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The bytes, or `None` for a tombstone.
    pub value: Option<Bytes>,
    /// Hybrid-logical-clock version from the master that wrote it.
    pub version: u64,
    /// Absolute expiry in Unix milliseconds; 0 means never.
    pub expires_at_ms: u64,
    /// Expiry changes of this version so far (see [`tiercache_protocol::Stamp`]).
    pub expiry_seq: u32,
}

impl Entry {
    /// True for a delete marker.
    pub fn is_tombstone(&self) -> bool {
        self.value.is_none()
    }

    /// True when the entry is past its expiry at `now_ms`.
    pub fn is_expired(&self, now_ms: u64) -> bool {
        expired(self.expires_at_ms, now_ms)
    }

    /// Milliseconds left to live (0 = never expires; at least 1 when still alive).
    pub fn remaining_ttl_ms(&self, now_ms: u64) -> u64 {
        if self.expires_at_ms == 0 {
            0
        } else {
            self.expires_at_ms.saturating_sub(now_ms).max(1)
        }
    }

    /// Last-write-wins: does `self` replace `other`? Higher version wins; equal versions are
    /// broken by the value bytes (tombstone lowest) so every replica picks the same winner; an
    /// identical copy does not (so transfers count only what was new).
    pub fn supersedes(&self, other: &Entry) -> bool {
        self.stamp().supersedes(&other.stamp())
    }

    /// What last-write-wins compares.
    pub fn stamp(&self) -> tiercache_protocol::Stamp<'_> {
        tiercache_protocol::Stamp { version: self.version, value: self.value.as_deref(), expiry_seq: self.expiry_seq }
    }
}

/// Everything about an entry except its version, packed in one heap block, so the LRU's slab
/// node is a 16-byte handle, the 8-byte version and two 4-byte links: 32 bytes (a separate
/// expiry field would make it 40). The expiry is stored only when there is one, so a cache
/// used without TTLs does not pay for it.
///
/// Layout: `varint(key_len << 3 | has_expiry_seq << 2 | has_expiry << 1 | tombstone)`, then
/// the expiry as 8 bytes little-endian when present, then the expiry sequence as 4 bytes
/// little-endian when not 0, then the key, then the value. Lookups compare the key only.
pub(crate) struct Packed {
    pub(crate) data: Box<[u8]>,
}

/// Where the parts of a [`Packed`] block are.
pub(crate) struct Layout {
    pub(crate) key_start: usize,
    pub(crate) key_end: usize,
    pub(crate) tombstone: bool,
    pub(crate) expires_at_ms: u64,
    pub(crate) expiry_seq: u32,
}

const TOMBSTONE_BIT: u64 = 1;
const EXPIRY_BIT: u64 = 2;
const SEQ_BIT: u64 = 4;
const FLAG_BITS: u32 = 3;

impl Packed {
    pub(crate) fn new(key: &[u8], value: Option<&[u8]>, expires_at_ms: u64, expiry_seq: u32) -> Packed {
        let tag = (key.len() as u64) << FLAG_BITS
            | if expiry_seq != 0 { SEQ_BIT } else { 0 }
            | if expires_at_ms != 0 { EXPIRY_BIT } else { 0 }
            | if value.is_none() { TOMBSTONE_BIT } else { 0 };
        let tag_len = (64 - (tag | 1).leading_zeros() as usize).div_ceil(7);
        let expiry_len = if expires_at_ms != 0 { 8 } else { 0 } + if expiry_seq != 0 { 4 } else { 0 };
        // Exact capacity: `into_boxed_slice` would otherwise shrink a larger block in place,
        // and glibc keeps the whole chunk when the tail is under 32 bytes.
        let mut data = Vec::with_capacity(tag_len + expiry_len + key.len() + value.map_or(0, <[u8]>::len));
        let mut t = tag;
        while t >= 0x80 {
            data.push((t as u8) | 0x80);
            t >>= 7;
        }
        data.push(t as u8);
        if expires_at_ms != 0 {
            data.extend_from_slice(&expires_at_ms.to_le_bytes());
        }
        if expiry_seq != 0 {
            data.extend_from_slice(&expiry_seq.to_le_bytes());
        }
        data.extend_from_slice(key);
        if let Some(v) = value {
            data.extend_from_slice(v);
        }
        debug_assert_eq!(data.len(), data.capacity());
        Packed { data: data.into_boxed_slice() }
    }

    pub(crate) fn layout(&self) -> Layout {
        let d = &self.data;
        // One byte for keys under 16 bytes, two under 2,048: the common cases decode without
        // a loop.
        let (tag, mut at) = if d[0] < 0x80 {
            (u64::from(d[0]), 1)
        } else if d[1] < 0x80 {
            (u64::from(d[0] & 0x7f) | u64::from(d[1]) << 7, 2)
        } else {
            let (mut tag, mut shift, mut i) = (0u64, 0, 0);
            loop {
                tag |= u64::from(d[i] & 0x7f) << shift;
                i += 1;
                if d[i - 1] < 0x80 {
                    break;
                }
                shift += 7;
            }
            (tag, i)
        };
        let mut expires_at_ms = 0;
        if tag & EXPIRY_BIT != 0 {
            let mut b = [0u8; 8];
            b.copy_from_slice(&d[at..at + 8]);
            expires_at_ms = u64::from_le_bytes(b);
            at += 8;
        }
        let mut expiry_seq = 0;
        if tag & SEQ_BIT != 0 {
            let mut b = [0u8; 4];
            b.copy_from_slice(&d[at..at + 4]);
            expiry_seq = u32::from_le_bytes(b);
            at += 4;
        }
        Layout {
            key_start: at,
            key_end: at + (tag >> FLAG_BITS) as usize,
            tombstone: tag & TOMBSTONE_BIT != 0,
            expires_at_ms,
            expiry_seq,
        }
    }

    pub(crate) fn key(&self) -> &[u8] {
        let l = self.layout();
        &self.data[l.key_start..l.key_end]
    }

    #[cfg(test)]
    pub(crate) fn value(&self) -> Option<&[u8]> {
        let l = self.layout();
        (!l.tombstone).then(|| &self.data[l.key_end..])
    }

    pub(crate) fn is_tombstone(&self) -> bool {
        self.layout().tombstone
    }

    /// Absolute expiry in Unix ms, 0 for never.
    pub(crate) fn expires_at_ms(&self) -> u64 {
        self.layout().expires_at_ms
    }

    pub(crate) fn is_expired(&self, now_ms: u64) -> bool {
        expired(self.expires_at_ms(), now_ms)
    }

    /// What last-write-wins compares, at `version`.
    pub(crate) fn stamp(&self, version: u64) -> tiercache_protocol::Stamp<'_> {
        let l = self.layout();
        let value = (!l.tombstone).then(|| &self.data[l.key_end..]);
        tiercache_protocol::Stamp { version, value, expiry_seq: l.expiry_seq }
    }
}

impl Keyed for Packed {
    fn key(&self) -> &[u8] {
        Packed::key(self)
    }
}

/// The one expiry rule: 0 means never; an entry is gone from its expiry instant on.
pub(crate) fn expired(expires_at_ms: u64, now_ms: u64) -> bool {
    expires_at_ms != 0 && expires_at_ms <= now_ms
}

/// An entry as a GET answers it, borrowed from its block (reading the header once).
pub(crate) fn view(p: &Packed, version: u64, now_ms: u64) -> tiercache_protocol::inplace::EntryView<'_> {
    let l = p.layout();
    let ttl_ms = if l.expires_at_ms == 0 { 0 } else { l.expires_at_ms.saturating_sub(now_ms).max(1) };
    tiercache_protocol::inplace::EntryView {
        value: (!l.tombstone).then(|| &p.data[l.key_end..]),
        version,
        ttl_ms,
        expiry_seq: l.expiry_seq,
    }
}

/// Copies an entry out, reading the block's header once.
pub(crate) fn unpack(p: &Packed, version: u64) -> Entry {
    let l = p.layout();
    let value = (!l.tombstone).then(|| Bytes::copy_from_slice(&p.data[l.key_end..]));
    Entry { value, version, expires_at_ms: l.expires_at_ms, expiry_seq: l.expiry_seq }
}
