//! The browser tests: `tests/browser/` (pytest + Playwright driving the distribution's Chromium)
//! against the binary cargo just built. See `tests/browser/README.md`.
//!
//! Where Chromium or the Python packages are missing the suite is skipped with a note on stderr,
//! except in CI (`CI=true`), where that is a failure: CI installs both (`.ci/run`).

use std::io::Write;
use std::path::Path;
use std::process::Command;

/// Chromium as the harness launches it (`TASKER_CHROMIUM` overrides, as in conftest.py).
fn chromium() -> String {
    std::env::var("TASKER_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into())
}

/// Why the suite cannot run here, if it cannot.
fn missing(python: &str) -> Option<String> {
    let chromium = chromium();
    if !Path::new(&chromium).exists() {
        return Some(format!("{chromium} is missing (apt-get install chromium)"));
    }
    match Command::new(python)
        .args(["-c", "import playwright, pytest"])
        .output()
    {
        Err(e) => Some(format!("cannot run {python}: {e}")),
        Ok(out) if !out.status.success() => Some(format!(
            "{python} cannot import playwright and pytest (pip install -r \
             tests/browser/requirements.txt into it and set TASKER_BROWSER_PYTHON): {}",
            String::from_utf8_lossy(&out.stderr)
                .trim()
                .lines()
                .last()
                .unwrap_or("")
        )),
        Ok(_) => None,
    }
}

#[test]
fn browser_suite() {
    let python = std::env::var("TASKER_BROWSER_PYTHON").unwrap_or_else(|_| "python3".into());
    if let Some(reason) = missing(&python) {
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!("browser tests cannot be skipped in CI: {reason}");
        }
        // Straight to stderr: libtest captures eprintln! of a passing test, and this note should
        // be seen without --nocapture.
        let _ = writeln!(std::io::stderr(), "browser tests skipped: {reason}");
        return;
    }
    let out = Command::new(&python)
        .args(["-m", "pytest", "tests/browser", "-q"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("TASKER_BIN", env!("CARGO_BIN_EXE_tasker"))
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .output()
        .expect("run pytest");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "the browser tests failed ({}):\n{stdout}\n{stderr}",
        out.status
    );
    // The summary ("N passed, M skipped ..."), shown with --nocapture.
    println!("{}", stdout.trim_end().lines().last().unwrap_or(""));
}
