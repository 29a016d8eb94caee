//! vmstate-reference: an executable spec of QEMU's vmstate save/load.
