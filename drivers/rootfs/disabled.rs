//! The names of the rootfs drivers this build leaves out, with their features.

crate::disabled!(RootfsDriver, "overlay", "rootfs-overlay");
