//! The web view in a real browser: headless Chromium, driven through chromedriver's
//! WebDriver by `tests/web/drive.py` (a small WebDriver client on Python's standard
//! library), against a running `dnsd up`. The script sends line-protocol and `dig`
//! queries and finds each on the page with its path and code; submits the form in mode
//! R and I and finds every hop; flushes a name and sees it leave the cache view; uses
//! the form from the keyboard alone; filters and pauses the table; and checks the page
//! at 360 and 1920 px wide and the contrast of every text (WCAG AA). Its screenshots go to `DNSD_SCREENSHOTS` when set
//! (`DNSD_SCREENSHOTS=docs cargo test --test it web::` remakes the README's), else to a
//! temporary directory.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::harness::{Proc, SLACK};

/// How long the whole browser session may take (it takes a few seconds).
const SESSION: Duration = Duration::from_secs(180);

#[test]
#[cfg_attr(
    any(missing_chromium, missing_dig),
    ignore = "needs chromium, chromedriver and dig: scripts/ci-deps.sh chromium dig"
)]
fn a_browser_watches_queries_resolve_and_flushes_a_name() {
    let dir = tempfile::tempdir().unwrap();
    let p = Proc::spawn(&["up", "--any-port", "--log-dir", "."], dir.path());
    let local = p.wait_for("default_local: listening on ");
    let local = local.rsplit(' ').next().unwrap().to_owned();
    let web = p.wait_for("web view on http://");
    let web = web.rsplit(' ').next().unwrap().to_owned();
    let shots = match std::env::var_os("DNSD_SCREENSHOTS") {
        Some(d) => Path::new(env!("CARGO_MANIFEST_DIR")).join(d),
        None => dir.path().join("shots"),
    };
    let script: PathBuf = [env!("CARGO_MANIFEST_DIR"), "tests", "web", "drive.py"]
        .iter()
        .collect();
    // The figure is one second; on a loaded machine, allow SLACK more (the
    // times measured are printed).
    let within = (Duration::from_secs(1) + SLACK).as_secs_f64().to_string();
    let mut driver = Command::new("python3")
        .arg(&script)
        .args([&web, &local])
        .arg(&shots)
        .args(["--within", &within])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start python3");
    let started = Instant::now();
    let status = loop {
        if let Some(status) = driver.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > SESSION {
            let _ = driver.kill();
            let _ = driver.wait();
            panic!("the browser session took longer than {SESSION:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let out = driver.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    println!("{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(
        status.success() && stdout.contains("PASS"),
        "{stdout}\n{}\ndnsd's stderr:\n{}",
        String::from_utf8_lossy(&out.stderr),
        p.stderr_text()
    );
}
