//! The s390x "s390-storage_attributes" iterative section
//! (hw/s390x/s390-stattrib.c, `cmma_load`).
use super::error::{Result, StreamError};
use super::vmsd::Decoder;

pub const STATTR_FLAG_EOS: u64 = 0x01;
pub const STATTR_FLAG_MORE: u64 = 0x02;
pub const STATTR_FLAG_ERROR: u64 = 0x04;
pub const STATTR_FLAG_DONE: u64 = 0x08;

/// Read one chunk up to `STATTR_FLAG_EOS`; returns the number of
/// attribute bytes seen.
pub fn load_chunk(dec: &mut Decoder<'_, '_>, page_size: u64) -> Result<u64> {
    let mut total = 0u64;
    loop {
        let at = dec.r.pos();
        let word = dec.r.be64(&dec.path)?;
        let flags = word & (page_size - 1);
        let addr = word & !(page_size - 1);
        match flags {
            STATTR_FLAG_MORE => {
                let count = dec.r.be64(&dec.path)?;
                dec.r.take(count, &dec.path)?;
                total += count;
                let end = dec.r.pos();
                dec.note(at, end - at, || {
                    format!("MORE at {addr:#x}: {count} attributes")
                });
            }
            STATTR_FLAG_DONE => dec.note(at, 8, || "DONE".into()),
            STATTR_FLAG_EOS => {
                dec.note(at, 8, || "EOS".into());
                return Ok(total);
            }
            STATTR_FLAG_ERROR => {
                return Err(StreamError::StorageAttributes {
                    offset: at,
                    path: dec.path.clone(),
                    message: "storage attributes data is incomplete".into(),
                });
            }
            _ => {
                return Err(StreamError::StorageAttributes {
                    offset: at,
                    path: dec.path.clone(),
                    message: format!("unexpected flags {flags:#x}"),
                });
            }
        }
    }
}
