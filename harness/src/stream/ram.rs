//! The "ram" section (migration/ram.c, `ram_load_precopy`): records that
//! start with a BE64 whose bits below the target page size are flags.
use super::error::{Result, StreamError};
use super::vmsd::Decoder;
use std::collections::HashMap;

pub const RAM_SAVE_FLAG_ZERO: u64 = 0x002;
pub const RAM_SAVE_FLAG_MEM_SIZE: u64 = 0x004;
pub const RAM_SAVE_FLAG_PAGE: u64 = 0x008;
pub const RAM_SAVE_FLAG_EOS: u64 = 0x010;
pub const RAM_SAVE_FLAG_CONTINUE: u64 = 0x020;
pub const RAM_SAVE_FLAG_XBZRLE: u64 = 0x040;
pub const RAM_SAVE_FLAG_HOOK: u64 = 0x080;
pub const RAM_SAVE_FLAG_MULTIFD_FLUSH: u64 = 0x200;
/// `ENCODING_FLAG_XBZRLE`.
pub const ENCODING_FLAG_XBZRLE: u8 = 0x1;
/// `MAPPED_RAM_HDR_VERSION`.
pub const MAPPED_RAM_HDR_VERSION: u32 = 1;
/// `sizeof(MappedRamHeader)` (packed).
pub const MAPPED_RAM_HEADER_SIZE: u64 = 4 + 8 + 8 + 8;

/// The `MappedRamHeader` of one block (capability `mapped-ram`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MappedRamHeader {
    pub version: u32,
    pub page_size: u64,
    pub bitmap_offset: u64,
    pub pages_offset: u64,
    /// Pages whose bit is set in the file's bitmap.
    pub pages_present: u64,
}

/// One RAM block of the `MEM_SIZE` list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RamBlock {
    pub idstr: String,
    pub used_length: u64,
    /// With `x-ignore-shared`: the block's guest physical address.
    pub mr_addr: Option<u64>,
    pub mapped_ram: Option<MappedRamHeader>,
}

/// State of the RAM section across its START / PART / END chunks.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RamState {
    pub page_size: u64,
    pub mapped_ram: bool,
    pub ignore_shared: bool,
    pub blocks: Vec<RamBlock>,
    by_name: HashMap<String, usize>,
    /// What the script calls "section sizes": idstr -> used_length,
    /// in first-seen order.
    pub sizes: Vec<(String, u64)>,
    last_block: Option<usize>,
    pub zero_pages: u64,
    pub normal_pages: u64,
    pub xbzrle_pages: u64,
    /// Stream discontinuities (from, to) made by mapped-ram.
    pub jumps: Vec<(usize, usize)>,
}

impl RamState {
    pub fn new(page_size: u64, mapped_ram: bool, ignore_shared: bool) -> Self {
        Self {
            page_size,
            mapped_ram,
            ignore_shared,
            ..Self::default()
        }
    }

    fn err(dec: &Decoder<'_, '_>, offset: usize, message: impl Into<String>) -> StreamError {
        StreamError::Ram {
            offset,
            path: dec.path.clone(),
            message: message.into(),
        }
    }

    /// Read one chunk: records up to and including `EOS`.
    pub fn load_chunk(&mut self, dec: &mut Decoder<'_, '_>) -> Result<()> {
        let invalid = if self.mapped_ram {
            RAM_SAVE_FLAG_HOOK
                | RAM_SAVE_FLAG_MULTIFD_FLUSH
                | RAM_SAVE_FLAG_PAGE
                | RAM_SAVE_FLAG_XBZRLE
                | RAM_SAVE_FLAG_ZERO
        } else {
            0
        };
        let mask = self.page_size - 1;
        loop {
            let at = dec.r.pos();
            let word = dec.r.be64(&dec.path)?;
            let flags = word & mask;
            let addr = word & !mask;
            if flags & invalid != 0 {
                return Err(Self::err(
                    dec,
                    at,
                    format!("unexpected flags {:#x} with mapped-ram", flags & invalid),
                ));
            }
            if flags & (RAM_SAVE_FLAG_ZERO | RAM_SAVE_FLAG_PAGE | RAM_SAVE_FLAG_XBZRLE) != 0 {
                let b = self.block_from_stream(dec, flags, at)?;
                let blk = &self.blocks[b];
                if addr >= blk.used_length {
                    return Err(Self::err(
                        dec,
                        at,
                        format!(
                            "illegal RAM offset {addr:#x} in block {:?} of {:#x} bytes",
                            blk.idstr, blk.used_length
                        ),
                    ));
                }
            }
            match flags & !RAM_SAVE_FLAG_CONTINUE {
                RAM_SAVE_FLAG_MEM_SIZE => {
                    dec.note(at, 8, || format!("MEM_SIZE total {addr:#x}"));
                    self.parse_ramblocks(dec, addr)?;
                }
                RAM_SAVE_FLAG_ZERO => {
                    let ch = dec.r.u8(&dec.path)?;
                    if ch != 0 {
                        return Err(Self::err(
                            dec,
                            at,
                            format!("zero page with fill byte {ch:#04x}"),
                        ));
                    }
                    self.zero_pages += 1;
                    let end = dec.r.pos();
                    let b = self
                        .last_block
                        .map_or("", |b| self.blocks[b].idstr.as_str());
                    dec.note(at, end - at, || format!("zero page {b}@{addr:#x}"));
                }
                RAM_SAVE_FLAG_PAGE => {
                    dec.r.take(self.page_size, &dec.path)?;
                    self.normal_pages += 1;
                    let end = dec.r.pos();
                    let b = self
                        .last_block
                        .map_or("", |b| self.blocks[b].idstr.as_str());
                    dec.note(at, end - at, || format!("page {b}@{addr:#x}"));
                }
                RAM_SAVE_FLAG_XBZRLE => {
                    let enc = dec.r.u8(&dec.path)?;
                    if enc != ENCODING_FLAG_XBZRLE {
                        return Err(Self::err(
                            dec,
                            at,
                            format!("XBZRLE encoding flag {enc:#04x}"),
                        ));
                    }
                    let len = dec.r.be16(&dec.path)?;
                    if u64::from(len) > self.page_size {
                        return Err(Self::err(
                            dec,
                            at,
                            format!("XBZRLE length {len} above page size"),
                        ));
                    }
                    dec.r.take(u64::from(len), &dec.path)?;
                    self.xbzrle_pages += 1;
                    let end = dec.r.pos();
                    let b = self
                        .last_block
                        .map_or("", |b| self.blocks[b].idstr.as_str());
                    dec.note(at, end - at, || {
                        format!("XBZRLE page {b}@{addr:#x}, {len} bytes")
                    });
                }
                RAM_SAVE_FLAG_MULTIFD_FLUSH => dec.note(at, 8, || "MULTIFD_FLUSH".into()),
                RAM_SAVE_FLAG_EOS => {
                    dec.note(at, 8, || "EOS".into());
                    return Ok(());
                }
                RAM_SAVE_FLAG_HOOK => {
                    return Err(Self::err(
                        dec,
                        at,
                        "RAM_SAVE_FLAG_HOOK (RDMA) cannot be read from a stream",
                    ));
                }
                _ => {
                    return Err(Self::err(
                        dec,
                        at,
                        format!("unknown combination of flags {flags:#x}"),
                    ));
                }
            }
        }
    }

    /// `ram_block_from_stream`: CONTINUE means the previous block, else a
    /// counted idstr follows.
    fn block_from_stream(
        &mut self,
        dec: &mut Decoder<'_, '_>,
        flags: u64,
        at: usize,
    ) -> Result<usize> {
        if flags & RAM_SAVE_FLAG_CONTINUE != 0 {
            return self
                .last_block
                .ok_or_else(|| Self::err(dec, at, "CONTINUE without a previous block"));
        }
        let id = dec.r.counted_string(&dec.path)?;
        let b = *self
            .by_name
            .get(&id)
            .ok_or_else(|| Self::err(dec, at, format!("unknown RAM block {id:?}")))?;
        self.last_block = Some(b);
        Ok(b)
    }

    /// `parse_ramblocks`: the block list after `MEM_SIZE`.
    fn parse_ramblocks(&mut self, dec: &mut Decoder<'_, '_>, total: u64) -> Result<()> {
        let base = dec.path.clone();
        let mut left = total;
        while left > 0 {
            dec.path.clone_from(&base);
            let at = dec.r.pos();
            let id = dec.r.counted_string(&dec.path)?;
            dec.path = format!("{base}.block[{id}]");
            let used_length = dec.r.be64(&dec.path)?;
            if used_length > left {
                return Err(Self::err(
                    dec,
                    at,
                    format!("block of {used_length:#x} bytes exceeds the {left:#x} announced"),
                ));
            }
            left -= used_length;
            let mr_addr = if self.ignore_shared {
                Some(dec.r.be64(&dec.path)?)
            } else {
                None
            };
            let end = dec.r.pos();
            dec.note(at, end - at, || {
                format!("block {id:?} used_length {used_length:#x}")
            });
            let mapped_ram = if self.mapped_ram {
                Some(self.mapped_ram_header(dec, used_length)?)
            } else {
                None
            };
            match self.sizes.iter_mut().find(|(n, _)| *n == id) {
                Some(e) => e.1 = used_length,
                None => self.sizes.push((id.clone(), used_length)),
            }
            self.by_name.insert(id.clone(), self.blocks.len());
            self.blocks.push(RamBlock {
                idstr: id,
                used_length,
                mr_addr,
                mapped_ram,
            });
        }
        dec.path = base;
        Ok(())
    }

    /// `parse_ramblock_mapped_ram`: the header, the bitmap at its file
    /// offset, the pages at theirs; the stream resumes after the pages.
    fn mapped_ram_header(
        &mut self,
        dec: &mut Decoder<'_, '_>,
        length: u64,
    ) -> Result<MappedRamHeader> {
        let at = dec.r.pos();
        let version = dec.r.be32(&dec.path)?;
        let page_size = dec.r.be64(&dec.path)?;
        let bitmap_offset = dec.r.be64(&dec.path)?;
        let pages_offset = dec.r.be64(&dec.path)?;
        if version > MAPPED_RAM_HDR_VERSION {
            return Err(Self::err(
                dec,
                at,
                format!("mapped-ram header version {version}"),
            ));
        }
        if page_size == 0 || !page_size.is_power_of_two() {
            return Err(Self::err(
                dec,
                at,
                format!("mapped-ram page size {page_size}"),
            ));
        }
        if pages_offset % self.page_size != 0 {
            return Err(Self::err(
                dec,
                at,
                "mapped-ram pages region has bad alignment",
            ));
        }
        let file_len = dec.r.end() as u64;
        let num_pages = length / page_size;
        // BITS_TO_LONGS(num_pages) * sizeof(unsigned long), 64-bit host.
        let bitmap_size = num_pages.div_ceil(64) * 8;
        let in_file = |off: u64, len: u64| off.checked_add(len).is_some_and(|e| e <= file_len);
        if !in_file(bitmap_offset, bitmap_size) {
            return Err(Self::err(
                dec,
                at,
                format!("bitmap {bitmap_offset:#x}+{bitmap_size:#x} outside the file"),
            ));
        }
        if !in_file(pages_offset, length) {
            return Err(Self::err(
                dec,
                at,
                format!("pages {pages_offset:#x}+{length:#x} outside the file"),
            ));
        }
        let bitmap = &dec.r.data()[bitmap_offset as usize..(bitmap_offset + bitmap_size) as usize];
        let mut pages_present = 0u64;
        for (w, chunk) in bitmap.chunks_exact(8).enumerate() {
            // Host-endian longs; the capturing hosts are little-endian.
            let mut word = u64::from_le_bytes(chunk.try_into().unwrap_or([0; 8]));
            let first = w as u64 * 64;
            if first + 64 > num_pages {
                let keep = num_pages - first;
                word &= (1u64 << keep) - 1;
            }
            pages_present += u64::from(word.count_ones());
        }
        let end = dec.r.pos();
        dec.note(at, end - at, || {
            format!(
                "mapped-ram v{version} page_size {page_size:#x} bitmap@{bitmap_offset:#x} pages@{pages_offset:#x} ({pages_present} present)"
            )
        });
        let resume = pages_offset + length;
        dec.r.seek_forward(resume, &dec.path)?;
        self.jumps.push((end, resume as usize));
        Ok(MappedRamHeader {
            version,
            page_size,
            bitmap_offset,
            pages_offset,
            pages_present,
        })
    }
}
