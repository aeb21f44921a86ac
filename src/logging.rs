//! Diagnostic logging (`RUST_LOG`, default `info`) that does not hold up queries:
//! env_logger formats each record on the calling thread and hands the bytes to a
//! channel; one background thread writes them to stderr. [`flush`] waits until all that
//! was logged is written, so nothing is lost at exit.

use std::io::{self, Write};
use std::sync::OnceLock;

use crossbeam_channel::{Receiver, Sender};

enum Msg {
    Bytes(Vec<u8>),
    Flush(Sender<()>),
}

static SENDER: OnceLock<Sender<Msg>> = OnceLock::new();

/// A `Write` that sends what it is given to the writer thread.
struct ChannelWriter(Sender<Msg>);

impl Write for ChannelWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        // If the writer thread is gone, the line is dropped rather than blocking.
        let _ = self.0.send(Msg::Bytes(buf.to_vec()));
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn writer(rx: Receiver<Msg>) {
    let stderr = io::stderr();
    let mut batch = Vec::with_capacity(64 * 1024);
    while let Ok(first) = rx.recv() {
        let mut waiting = Vec::new();
        let mut next = Some(first);
        while let Some(msg) = next {
            match msg {
                Msg::Bytes(b) => batch.extend_from_slice(&b),
                Msg::Flush(ack) => waiting.push(ack),
            }
            next = if batch.len() < 64 * 1024 {
                rx.try_recv().ok()
            } else {
                None
            };
        }
        let _ = stderr.lock().write_all(&batch);
        batch.clear();
        for ack in waiting {
            let _ = ack.send(());
        }
    }
}

/// Installs the logger: `RUST_LOG` if set, else `info`. Safe to call more than once.
pub fn init() {
    if SENDER.get().is_some() {
        return;
    }
    let (tx, rx) = crossbeam_channel::unbounded();
    if SENDER.set(tx.clone()).is_err() {
        return;
    }
    let _ = std::thread::Builder::new()
        .name("log-writer".into())
        .spawn(move || writer(rx));
    let _ = env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info"))
        .target(env_logger::Target::Pipe(Box::new(ChannelWriter(tx))))
        .format_timestamp_millis()
        .try_init();
}

/// Waits (at most a second) until every record logged so far is written.
pub fn flush() {
    if let Some(tx) = SENDER.get() {
        let (ack_tx, ack_rx) = crossbeam_channel::bounded(1);
        if tx.send(Msg::Flush(ack_tx)).is_ok() {
            let _ = ack_rx.recv_timeout(std::time::Duration::from_secs(1));
        }
    }
}
