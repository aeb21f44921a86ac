//! One signal mechanism for the process (signal-hook): SIGINT and SIGTERM stop the
//! servers, SIGHUP reloads their files. The signals are read on a thread of their own,
//! so that a reload is ordinary code, not a signal handler.

use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};

use crate::error::Error;
use crate::ops::reload::Reloader;
use crate::server::Shutdown;

/// Installs the handlers: the [`Shutdown`] that SIGINT and SIGTERM trigger, and the
/// [`Reloader`] that SIGHUP runs (given its servers once they are up).
pub fn install() -> Result<(Shutdown, Reloader), Error> {
    let shutdown = Shutdown::new();
    let reloader = Reloader::new();
    let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM, SIGHUP])
        .map_err(|e| Error::io("cannot install the signal handlers", e))?;
    let (on_stop, on_hup) = (shutdown.clone(), reloader.clone());
    std::thread::Builder::new()
        .name("signals".to_owned())
        .spawn(move || {
            for signal in signals.forever() {
                if signal == SIGHUP {
                    log::info!("SIGHUP received: reloading");
                    on_hup.reload_all();
                } else {
                    log::info!("signal received: stopping");
                    on_stop.trigger();
                }
            }
        })
        .map_err(|e| Error::io("cannot start the signal thread", e))?;
    Ok((shutdown, reloader))
}
