//! `QEMUFile` as vmstate sees it (migration/qemu-file.c).
//!
//! Reading past the end does not stop the reader: `qemu_fill_buffer` sets a
//! sticky -EIO error and the getters return zeros, so values built from
//! missing bytes still reach memory. vmstate notices only where it calls
//! `qemu_file_get_error`: after each element. The model keeps exactly that.

/// A read-only `QEMUFile` over an in-memory stream.
#[derive(Debug)]
pub struct QemuFileIn<'a> {
    buf: &'a [u8],
    pos: usize,
    /// Offset at which the stream first ran dry (the sticky -EIO).
    eof_at: Option<usize>,
}

impl<'a> QemuFileIn<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        QemuFileIn {
            buf,
            pos: 0,
            eof_at: None,
        }
    }

    /// Bytes consumed so far (`qemu_file_transferred`).
    pub fn pos(&self) -> usize {
        self.pos
    }

    /// `qemu_file_get_error() < 0`, as the offset where the stream ended.
    pub fn error(&self) -> Option<usize> {
        self.eof_at
    }

    fn hit_eof(&mut self) {
        self.eof_at.get_or_insert(self.buf.len());
    }

    /// `qemu_peek_byte(f, offset)`: 0 (and the sticky error) past the end.
    pub fn peek_byte(&mut self, offset: usize) -> u8 {
        match self.buf.get(self.pos + offset) {
            Some(&b) => b,
            None => {
                self.hit_eof();
                0
            }
        }
    }

    /// `qemu_peek_buffer(f, &buf, size, offset)`: up to `size` bytes, fewer
    /// (and the sticky error) at the end.
    pub fn peek_buffer(&mut self, size: usize, offset: usize) -> &'a [u8] {
        let start = (self.pos + offset).min(self.buf.len());
        let end = start.saturating_add(size).min(self.buf.len());
        if end - start < size {
            self.hit_eof();
        }
        &self.buf[start..end]
    }

    /// `qemu_file_skip(f, size)`: only moves when the bytes are there.
    pub fn skip(&mut self, size: usize) {
        if self.pos + size <= self.buf.len() {
            self.pos += size;
        }
    }

    /// `qemu_get_byte`: 0 past the end.
    pub fn get_byte(&mut self) -> u8 {
        let b = self.peek_byte(0);
        self.skip(1);
        b
    }

    /// `qemu_get_be16/32/64`: assembled byte by byte, missing bytes read as 0.
    pub fn get_be(&mut self, width: usize) -> u64 {
        (0..width).fold(0, |v, _| (v << 8) | self.get_byte() as u64)
    }

    /// `qemu_get_buffer`: copies what is there into the front of `out`,
    /// leaves the rest of `out` untouched, returns the count copied.
    pub fn get_buffer(&mut self, out: &mut [u8]) -> usize {
        let avail = self.peek_buffer(out.len(), 0);
        let n = avail.len();
        out[..n].copy_from_slice(avail);
        self.pos += n;
        n
    }
}

/// A write-only `QEMUFile` collecting the saved stream, up to a limit that
/// keeps a hostile description from making the model write without bound.
#[derive(Debug)]
pub struct QemuFileOut {
    pub buf: Vec<u8>,
    limit: usize,
}

impl QemuFileOut {
    pub fn new(limit: usize) -> Self {
        QemuFileOut {
            buf: Vec::new(),
            limit,
        }
    }
    /// Fails if `n` more bytes would pass the output limit.
    pub fn check_room(&self, n: u64) -> Result<(), crate::ErrorKind> {
        if (self.buf.len() as u64).saturating_add(n) > self.limit as u64 {
            return Err(crate::ErrorKind::OutputLimit(self.limit));
        }
        Ok(())
    }
    pub fn pos(&self) -> usize {
        self.buf.len()
    }
    /// `qemu_put_byte`
    pub fn put_byte(&mut self, b: u8) {
        self.buf.push(b);
    }
    /// `qemu_put_be16/32/64`
    pub fn put_be(&mut self, v: u64, width: usize) {
        self.buf.extend_from_slice(&v.to_be_bytes()[8 - width..]);
    }
    /// `qemu_put_buffer`
    pub fn put_buffer(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_past_end_give_zeros_and_a_sticky_error() {
        let mut f = QemuFileIn::new(&[0x12, 0x34, 0x56]);
        assert_eq!(f.get_be(2), 0x1234);
        assert_eq!(f.error(), None);
        assert_eq!(f.get_be(4), 0x5600_0000);
        assert_eq!(f.error(), Some(3));
        assert_eq!(f.get_byte(), 0);
    }

    #[test]
    fn get_buffer_leaves_the_tail_untouched() {
        let mut f = QemuFileIn::new(&[1, 2]);
        let mut out = [9u8; 4];
        assert_eq!(f.get_buffer(&mut out), 2);
        assert_eq!(out, [1, 2, 9, 9]);
        assert_eq!(f.error(), Some(2));
    }
}
