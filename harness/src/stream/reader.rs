//! A bounded big-endian cursor over the input (QEMU's `qemu_get_*`).
//! Offsets are absolute in the file, also inside a PACKAGED sub-stream.
use super::error::{Result, StreamError};

/// Cursor over `data[pos..end]`.
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
    end: usize,
}

impl<'a> Reader<'a> {
    /// A reader over the whole input.
    pub fn new(data: &'a [u8]) -> Self {
        Self {
            data,
            pos: 0,
            end: data.len(),
        }
    }

    /// A reader over `data[start..end]` (for a PACKAGED sub-stream).
    /// `start <= end <= data.len()` must hold.
    pub fn window(data: &'a [u8], start: usize, end: usize) -> Self {
        let end = end.min(data.len());
        Self {
            data,
            pos: start.min(end),
            end,
        }
    }

    /// The whole input this reader is a window of.
    pub fn data(&self) -> &'a [u8] {
        self.data
    }

    /// Absolute offset of the next byte.
    pub fn pos(&self) -> usize {
        self.pos
    }

    /// End of this reader's window.
    pub fn end(&self) -> usize {
        self.end
    }

    /// Bytes left in the window.
    pub fn remaining(&self) -> usize {
        self.end - self.pos
    }

    /// True when no byte is left.
    pub fn is_empty(&self) -> bool {
        self.pos == self.end
    }

    /// Next byte without consuming it.
    pub fn peek(&self) -> Option<u8> {
        (self.pos < self.end).then(|| self.data[self.pos])
    }

    fn short(&self, need: u64, path: &str) -> StreamError {
        StreamError::Truncated {
            offset: self.pos,
            path: path.to_owned(),
            need,
            have: self.remaining(),
        }
    }

    /// Take `n` bytes; the length is checked against the input before
    /// anything is allocated or sliced.
    pub fn take(&mut self, n: u64, path: &str) -> Result<&'a [u8]> {
        if n > self.remaining() as u64 {
            return Err(self.short(n, path));
        }
        let n = n as usize;
        let s = &self.data[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    fn array<const N: usize>(&mut self, path: &str) -> Result<[u8; N]> {
        let s = self.take(N as u64, path)?;
        let mut a = [0u8; N];
        a.copy_from_slice(s);
        Ok(a)
    }

    /// `qemu_get_byte`.
    pub fn u8(&mut self, path: &str) -> Result<u8> {
        Ok(self.array::<1>(path)?[0])
    }

    /// `qemu_get_be16`.
    pub fn be16(&mut self, path: &str) -> Result<u16> {
        Ok(u16::from_be_bytes(self.array(path)?))
    }

    /// `qemu_get_be32`.
    pub fn be32(&mut self, path: &str) -> Result<u32> {
        Ok(u32::from_be_bytes(self.array(path)?))
    }

    /// `qemu_get_be64`.
    pub fn be64(&mut self, path: &str) -> Result<u64> {
        Ok(u64::from_be_bytes(self.array(path)?))
    }

    /// `qemu_get_counted_string`: a length byte, then that many bytes.
    pub fn counted_string(&mut self, path: &str) -> Result<String> {
        let n = self.u8(path)?;
        let s = self.take(u64::from(n), path)?;
        Ok(String::from_utf8_lossy(s).into_owned())
    }

    /// Move forward to absolute offset `to` (mapped-ram's
    /// `qemu_set_offset`). Moving backwards is refused so that no input
    /// can make the parser loop.
    pub fn seek_forward(&mut self, to: u64, path: &str) -> Result<()> {
        if to < self.pos as u64 || to > self.end as u64 {
            return Err(StreamError::Ram {
                offset: self.pos,
                path: path.to_owned(),
                message: format!(
                    "stream continues at {to:#x}, outside {:#x}..={:#x}",
                    self.pos, self.end
                ),
            });
        }
        self.pos = to as usize;
        Ok(())
    }
}
