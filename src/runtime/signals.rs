//! One signal mechanism for the process (signal-hook): SIGINT and SIGTERM stop the
//! servers, SIGHUP reloads their files and reopens the logs, SIGUSR1 reopens the logs
//! only (what logrotate's `postrotate` sends), SIGUSR2 is ignored (it would otherwise
//! kill the process). The signals are read on a thread of their own, so that a reload
//! is ordinary code, not a signal handler.

use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM, SIGUSR1, SIGUSR2};

use crate::error::Error;
use crate::ops::appender;
use crate::ops::reload::Reloader;
use crate::server::Shutdown;

/// Installs the handlers: the [`Shutdown`] that SIGINT and SIGTERM trigger, and the
/// [`Reloader`] that SIGHUP runs (given its servers once they are up).
pub fn install() -> Result<(Shutdown, Reloader), Error> {
    let shutdown = Shutdown::new();
    let reloader = Reloader::new();
    let mut signals =
        signal_hook::iterator::Signals::new([SIGINT, SIGTERM, SIGHUP, SIGUSR1, SIGUSR2])
            .map_err(|e| Error::io("cannot install the signal handlers", e))?;
    let (on_stop, on_hup) = (shutdown.clone(), reloader.clone());
    std::thread::Builder::new()
        .name("signals".to_owned())
        .spawn(move || {
            for signal in signals.forever() {
                match signal {
                    SIGHUP => {
                        // Reopened before it is said, so that whoever reads the line
                        // knows the next record goes to the new file.
                        appender::reopen_all();
                        log::info!("SIGHUP received: logs reopened; reloading");
                        on_hup.reload_all();
                    }
                    SIGUSR1 => {
                        appender::reopen_all();
                        log::info!("SIGUSR1 received: logs reopened");
                    }
                    SIGUSR2 => log::info!("SIGUSR2 received: ignored"),
                    _ => {
                        log::info!("signal received: stopping");
                        on_stop.trigger();
                    }
                }
            }
        })
        .map_err(|e| Error::io("cannot start the signal thread", e))?;
    Ok((shutdown, reloader))
}
