//! The names of the port probes this build leaves out, with their features.

crate::disabled!(PortProbe, "netlink", "ports-netlink");
crate::disabled!(PortProbe, "procfs", "ports-procfs");
crate::disabled!(PortProbe, "lsof", "ports-lsof");
