//! The names of the stdio sinks this build leaves out, with their features.

crate::disabled!(StdioSink, "inherit", "stdio-inherit");
crate::disabled!(StdioSink, "file", "stdio-file");
crate::disabled!(StdioSink, "tcp", "stdio-tcp");
crate::disabled!(StdioSink, "tls", "stdio-tls");
