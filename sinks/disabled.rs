//! The names of the stdio sinks this build leaves out, with their features.
//! (`inherit` is in every build.)
