//! The names of the network drivers this build leaves out, with their features.

crate::disabled!(NetworkDriver, "none", "net-none");
crate::disabled!(NetworkDriver, "bridge", "net-bridge");
