//! The loop: an attempt, then the policy's verdict, the wait, a fresh
//! rootfs and the sink again, until the policy or a signal says no more.

use std::time::{Duration, Instant};

use super::Policy;
use crate::error::Error;
use crate::lifecycle::Lifecycle;
use crate::plugin::Stdio;
use crate::run::Run;
use crate::state::Entry;
use crate::supervisor;

/// Runs attempts on `entry`'s rootfs until no other follows; the exit code is
/// the last attempt's, also when a signal ends the wait before the next one
/// (that attempt never was). The entry (and with it the rootfs) goes last,
/// after the notifications had their time.
pub fn serve(
    run: &Run,
    mut entry: Entry,
    mut lifecycle: Lifecycle,
    stdio: Stdio,
) -> Result<i32, Error> {
    let restart = run.spec.restart;
    let counted = |n: u32| (restart.policy != Policy::No).then_some(n);
    let mut restarts = 0;
    let mut stdio = stdio;
    let mut wait: Option<Duration> = None;
    let code = loop {
        let began = Instant::now();
        let outcome = match run.once(&mut entry, &mut lifecycle, stdio, counted(restarts)) {
            Ok(outcome) => outcome,
            Err(Error::Stopped(_)) if restarts > 0 => {
                lifecycle.stopping();
                lifecycle.finish(run.rt);
                break entry.last_exit().unwrap_or_default();
            }
            Err(e) => {
                lifecycle.finish(run.rt);
                return Err(e);
            }
        };
        let code = outcome.ending.exit_code();
        let again = !outcome.stopped
            && restart
                .policy
                .restarts(outcome.ending, outcome.cause, restarts);
        lifecycle.crashed(outcome.ending.into(), again);
        if !again {
            close(run, outcome.held, &mut lifecycle)?;
            lifecycle.finish(run.rt);
            break code;
        }
        entry.ended(code)?;
        let delay = restart.backoff.next(wait, began.elapsed());
        wait = Some(delay);
        lifecycle.restarting(delay);
        if !supervisor::wait(run.rt, run.signals, delay, &mut lifecycle)
            .map_err(Error::Supervise)?
        {
            // The last `crashed` said another attempt follows: systemd hears
            // that none does.
            lifecycle.stopping();
            close(run, outcome.held, &mut lifecycle)?;
            lifecycle.finish(run.rt);
            break code;
        }
        restarts += 1;
        stdio = match run.renew(&mut entry, outcome.held) {
            Ok(stdio) => stdio,
            Err(e) => {
                lifecycle.finish(run.rt);
                return Err(e);
            }
        };
    };
    drop(entry);
    Ok(code)
}

/// Closes the sink's destination that the last attempt left open (a
/// connection's FIN or close_notify), unless psdock is told to stop first.
/// A peer that went away meanwhile has nothing left to be told.
fn close(
    run: &Run,
    held: Option<Box<dyn crate::plugin::Held>>,
    lifecycle: &mut Lifecycle,
) -> Result<(), Error> {
    if let Some(held) = held {
        supervisor::until_stopped(run.rt, run.signals, lifecycle, held.close())
            .map_err(Error::Supervise)?;
    }
    Ok(())
}
