//! Rootfs drivers: how the image becomes a writable, throwaway rootfs.
//! The core (`crate::rootfs`) makes the directories, locks, unmounts and removes;
//! a driver only says which mount(2) call stacks the layers. Auto-pick tries
//! them by priority: `overlay`, `overlayfs-legacy`, `aufs`.

#[cfg(feature = "rootfs-aufs")]
mod aufs;
mod disabled;
mod overlay;
#[cfg(feature = "rootfs-overlayfs-legacy")]
mod overlayfs_legacy;
