//! Rootfs drivers: how the image becomes a writable, throwaway rootfs.
//! The core (`crate::rootfs`) makes the directories, locks, unmounts and removes;
//! a driver only says which mount(2) call stacks the layers.

mod disabled;
#[cfg(feature = "rootfs-overlay")]
mod overlay;
