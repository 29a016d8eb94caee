//! `QEMU_VM_COMMAND` records (savevm.c `qemu_savevm_command_send`,
//! `loadvm_process_command`): BE16 command, BE16 length, data. PACKAGED
//! carries a BE32 length and is followed by a nested stream of that many
//! bytes (`loadvm_handle_cmd_packaged`).
use super::section::Section;

pub const QEMU_VM_COMMAND: u8 = 0x08;

pub const MIG_CMD_OPEN_RETURN_PATH: u16 = 1;
pub const MIG_CMD_PING: u16 = 2;
pub const MIG_CMD_POSTCOPY_ADVISE: u16 = 3;
pub const MIG_CMD_POSTCOPY_LISTEN: u16 = 4;
pub const MIG_CMD_POSTCOPY_RUN: u16 = 5;
pub const MIG_CMD_POSTCOPY_RAM_DISCARD: u16 = 6;
pub const MIG_CMD_PACKAGED: u16 = 7;
pub const MIG_CMD_ENABLE_COLO: u16 = 8;
pub const MIG_CMD_POSTCOPY_RESUME: u16 = 9;
pub const MIG_CMD_RECV_BITMAP: u16 = 10;
pub const MIG_CMD_SWITCHOVER_START: u16 = 11;
pub const MIG_CMD_MAX: u16 = 12;
/// Nesting limit for PACKAGED inside PACKAGED.
pub const MAX_PACKAGED_DEPTH: usize = 4;

/// `mig_cmd_args[cmd].len`: the fixed data length, `None` for variable.
/// (ENABLE_COLO has no table entry in 10.0, so its length is 0.)
pub fn fixed_len(cmd: u16) -> Option<u16> {
    match cmd {
        MIG_CMD_OPEN_RETURN_PATH
        | MIG_CMD_POSTCOPY_LISTEN
        | MIG_CMD_POSTCOPY_RUN
        | MIG_CMD_ENABLE_COLO
        | MIG_CMD_POSTCOPY_RESUME
        | MIG_CMD_SWITCHOVER_START => Some(0),
        MIG_CMD_PING | MIG_CMD_PACKAGED => Some(4),
        _ => None,
    }
}

/// QEMU's name of a command.
pub fn name(cmd: u16) -> &'static str {
    match cmd {
        MIG_CMD_OPEN_RETURN_PATH => "OPEN_RETURN_PATH",
        MIG_CMD_PING => "PING",
        MIG_CMD_POSTCOPY_ADVISE => "POSTCOPY_ADVISE",
        MIG_CMD_POSTCOPY_LISTEN => "POSTCOPY_LISTEN",
        MIG_CMD_POSTCOPY_RUN => "POSTCOPY_RUN",
        MIG_CMD_POSTCOPY_RAM_DISCARD => "POSTCOPY_RAM_DISCARD",
        MIG_CMD_PACKAGED => "PACKAGED",
        MIG_CMD_ENABLE_COLO => "ENABLE_COLO",
        MIG_CMD_POSTCOPY_RESUME => "POSTCOPY_RESUME",
        MIG_CMD_RECV_BITMAP => "RECV_BITMAP",
        MIG_CMD_SWITCHOVER_START => "SWITCHOVER_START",
        _ => "INVALID",
    }
}

/// One command record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Command<'a> {
    /// Offset of the 0x08 byte.
    pub offset: usize,
    pub cmd: u16,
    pub data: &'a [u8],
    /// Offset just after the record (after the nested stream for PACKAGED).
    pub end: usize,
    pub packaged: Option<Packaged<'a>>,
}

/// The nested stream of a PACKAGED command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packaged<'a> {
    /// Offset of the nested stream's first byte.
    pub start: usize,
    pub records: Vec<Record<'a>>,
    /// Offset of the nested `QEMU_VM_EOF`.
    pub eof_offset: usize,
}

/// A top-level record of a stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Record<'a> {
    Section(Section<'a>),
    Command(Command<'a>),
}
