//! The names of the stdio sinks this build leaves out, with their features.

crate::disabled!(StdioSink, "inherit", "stdio-inherit");
