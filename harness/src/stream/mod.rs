//! Parser for QEMU's migration stream (`QEVM` version 3), as written by
//! migration/savevm.c and migration/ram.c of QEMU 10.0, with device state
//! decoded from the trailing vmdesc JSON like scripts/analyze-migration.py.
//!
//! One module per job, named in QEMU's words:
//! - [`reader`]: bounded big-endian cursor (`qemu_get_*`)
//! - [`loadvm`]: header, configuration, the record loop, EOF, vmdesc position
//! - [`section`]: section records and footers
//! - [`command`]: `QEMU_VM_COMMAND`, PACKAGED sub-streams
//! - [`configuration`]: the configuration section
//! - [`vmdesc`]: locating and reading the vmdesc JSON
//! - [`vmsd`]: device fields from the vmdesc field list
//! - [`ram`]: RAM records, including mapped-ram
//! - [`storage_attributes`]: s390x storage attributes
//! - [`output`]: `-d state` / `-d desc` JSON
//! - [`hexdump`]: annotated hex dump of a section
//! - [`oracle`]: fuzz oracle
pub mod command;
pub mod configuration;
pub mod error;
pub mod hexdump;
pub mod loadvm;
pub mod oracle;
pub mod output;
pub mod ram;
pub mod reader;
pub mod section;
pub mod storage_attributes;
pub mod vmdesc;
pub mod vmsd;

pub use command::{Command, Packaged, Record};
pub use configuration::Configuration;
pub use error::{Result, StreamError};
pub use loadvm::{Options, Stream, parse, parse_with};
pub use oracle::{check_consumption, stream_oracle};
pub use output::{desc_json, state_json, to_python_json, write_state};
pub use ram::{MappedRamHeader, RamBlock, RamState};
pub use reader::Reader;
pub use section::{Content, Section, SectionType};
pub use vmdesc::{VmDesc, Vmdesc};
pub use vmsd::{Annotation, Entry, Fields, Value};
