//! The names of the notifiers this build leaves out, with their features.

crate::disabled!(Notifier, "webhook", "notify-webhook");
