//! Files by code (`tinynode send` / `tinynode receive`, `protocol-spec.md`
//! §6.9): the frames on a stream of kind
//! [`FILES`](crate::StreamKind::FILES) (`wire.rs`), the paths an offer may
//! name (`paths.rs`), and the disk side: offering paths, planning what an
//! offer does to a directory, partial files that resume (`disk.rs`).

#[cfg(feature = "driver")]
pub mod disk;
pub mod paths;
pub mod wire;
