//! README.md runs as written: every `sh`/`bash`/`shell`/`console` block, in order, with
//! `bash -euo pipefail`, against a fresh server and the built binary.
//!
//! What the blocks see (README.md's Development section says the same):
//! - `localhost:3000` and `127.0.0.1:3000` are a fresh test server;
//! - the absolute paths the blocks name ([`PATHS`]) lie under a temporary root; the data
//!   directory `/var/lib/tasker` exists, stopped, holding the accounts the examples name
//!   (alice and bob);
//! - `tasker` is the built binary; `sudo` runs its command as it is, `systemctl` and `chown`
//!   only record their call (a test has no service and no `tasker` user);
//! - standard input answers every password prompt with [`PASSWORD`];
//! - `TASKER_BCRYPT_COST=4`, to keep password hashing fast.
//!
//! A block preceded by `<!-- readme-test: skip (reason) -->` is not run; a marker without a
//! reason, or one the test does not know, fails the test. A block fails when it exits non-zero
//! or prints an API error (a problem+json body).

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use crate::common::{PASSWORD, TestServer, test_config};

const README: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/README.md");
const BIN: &str = env!("CARGO_BIN_EXE_tasker");
/// The absolute paths the README's blocks use, placed under the temporary root.
const PATHS: &[&str] = &["/var/lib/tasker", "/backups/", "/new/data"];
/// Where the README's server listens.
const README_HOSTS: &[&str] = &["localhost:3000", "127.0.0.1:3000"];
const MARKER: &str = "<!-- readme-test:";

/// One fenced shell block: its first line's number, its text, and why it is skipped.
#[derive(Debug)]
struct Block {
    line: usize,
    text: String,
    skip: Option<String>,
}

/// The shell blocks of `markdown`, with their markers; an error for a bad marker.
fn shell_blocks(markdown: &str) -> Result<Vec<Block>, String> {
    let mut blocks = Vec::new();
    let mut marker: Option<(usize, String)> = None;
    let mut lines = markdown.lines().enumerate();
    while let Some((index, line)) = lines.next() {
        let number = index + 1;
        if let Some(rest) = line.trim().strip_prefix(MARKER) {
            let directive = rest.trim().trim_end_matches("-->").trim();
            let reason = directive
                .strip_prefix("skip")
                .map(str::trim)
                .and_then(|r| r.strip_prefix('('))
                .and_then(|r| r.strip_suffix(')'))
                .map(str::trim)
                .filter(|r| !r.is_empty());
            match reason {
                Some(reason) => marker = Some((number, reason.to_string())),
                None => {
                    return Err(format!(
                        "README.md line {number}: {line:?} is not `{MARKER} skip (a reason) -->`"
                    ));
                }
            }
            continue;
        }
        let Some(language) = line.strip_prefix("```") else {
            if !line.trim().is_empty()
                && let Some((at, _)) = marker.take()
            {
                return Err(format!(
                    "README.md line {at}: a readme-test marker must stand right above a shell block"
                ));
            }
            continue;
        };
        let mut text = String::new();
        for (_, body) in lines.by_ref() {
            if body.starts_with("```") {
                break;
            }
            text.push_str(body);
            text.push('\n');
        }
        let language = language.trim();
        let shell = ["sh", "bash", "shell", "console"].contains(&language);
        let skip = marker.take();
        match (shell, skip) {
            (false, Some((at, _))) => {
                return Err(format!(
                    "README.md line {at}: a readme-test marker on a ```{language} block"
                ));
            }
            (false, None) => {}
            (true, skip) => {
                if language == "console" {
                    // Commands are the lines after a `$ ` prompt; the rest is their output.
                    text = text
                        .lines()
                        .filter_map(|l| l.strip_prefix("$ "))
                        .map(|l| format!("{l}\n"))
                        .collect();
                }
                blocks.push(Block {
                    line: number,
                    text,
                    skip: skip.map(|(_, reason)| reason),
                });
            }
        }
    }
    Ok(blocks)
}

fn write_script(path: &Path, text: &str) {
    fs::write(path, text).unwrap();
    fs::set_permissions(path, fs::Permissions::from_mode(0o755)).unwrap();
}

/// `bin/` with `tasker` and the stand-ins, as described at the top.
fn stand_ins(root: &Path) -> std::path::PathBuf {
    let bin = root.join("bin");
    fs::create_dir(&bin).unwrap();
    std::os::unix::fs::symlink(BIN, bin.join("tasker")).unwrap();
    let log = root.join("stand-ins.log");
    write_script(
        &bin.join("sudo"),
        "#!/bin/sh\n# stand-in: runs the command as the test's user\n\
         while [ $# -gt 0 ]; do case \"$1\" in -u|-g) shift 2 ;; -*) shift ;; *) break ;; esac; done\n\
         exec \"$@\"\n",
    );
    for tool in ["systemctl", "chown"] {
        write_script(
            &bin.join(tool),
            &format!(
                "#!/bin/sh\n# stand-in: records the call\necho \"{tool} $*\" >> '{}'\n",
                log.display()
            ),
        );
    }
    bin
}

/// An API error in a block's output: a JSON line with a 4xx or 5xx `status`.
fn api_error(stdout: &str) -> Option<&str> {
    stdout.lines().find(|line| {
        serde_json::from_str::<serde_json::Value>(line.trim())
            .ok()
            .and_then(|value| value.get("status")?.as_u64())
            .is_some_and(|status| status >= 400)
    })
}

#[test]
fn markers_are_checked() {
    let ok =
        "<!-- readme-test: skip (needs root) -->\n```sh\nsudo true\n```\n\n```sh\necho hi\n```\n";
    let blocks = shell_blocks(ok).unwrap();
    assert_eq!(blocks.len(), 2);
    assert_eq!(blocks[0].skip.as_deref(), Some("needs root"));
    assert_eq!(blocks[1].skip, None);
    assert_eq!(blocks[1].line, 6);
    for bad in [
        "<!-- readme-test: skip -->\n```sh\ntrue\n```\n",
        "<!-- readme-test: skip () -->\n```sh\ntrue\n```\n",
        "<!-- readme-test: run later -->\n```sh\ntrue\n```\n",
        "<!-- readme-test: skip (why) -->\nsome text\n```sh\ntrue\n```\n",
        "<!-- readme-test: skip (why) -->\n```nginx\nserver {}\n```\n",
    ] {
        assert!(shell_blocks(bad).is_err(), "{bad}");
    }
    let console = shell_blocks("```console\n$ echo hi\nhi\n```\n").unwrap();
    assert_eq!(console[0].text, "echo hi\n");
}

#[tokio::test(flavor = "multi_thread")]
async fn every_shell_block_of_the_readme_runs() {
    let readme = fs::read_to_string(README).unwrap();
    let blocks = shell_blocks(&readme).unwrap_or_else(|e| panic!("{e}"));

    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().canonicalize().unwrap();
    let bin = stand_ins(&root);
    let work = root.join("work");
    fs::create_dir_all(&work).unwrap();
    fs::create_dir_all(root.join("backups")).unwrap();
    fs::create_dir_all(root.join("var/lib")).unwrap();

    // The installed service's data directory, stopped, with the accounts the examples name.
    let data = root.join("var/lib/tasker");
    let installed = TestServer::spawn_with(test_config(&data)).await;
    for (email, name) in [("alice@example.com", "Alice"), ("bob@example.com", "Bob")] {
        installed.register_as(email, name).await;
    }
    installed.stop().await;

    let server = TestServer::spawn().await;
    let address = server.base.trim_start_matches("http://").to_string();
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );

    let mut ran = 0;
    let mut skipped = Vec::new();
    for block in &blocks {
        if let Some(reason) = &block.skip {
            skipped.push(format!("line {}: {reason}", block.line));
            continue;
        }
        let mut script = block.text.clone();
        for host in README_HOSTS {
            script = script.replace(host, &address);
        }
        for path in PATHS {
            script = script.replace(path, &format!("{}{path}", root.display()));
        }
        let mut command = std::process::Command::new("bash");
        command
            .arg("-euo")
            .arg("pipefail")
            .arg("-c")
            .arg(format!("exec < <(yes '{PASSWORD}')\n{script}"))
            .current_dir(&work)
            .env("PATH", &path)
            .env("TASKER_BCRYPT_COST", "4")
            .stdin(std::process::Stdio::null());
        for (key, _) in std::env::vars() {
            if (key.starts_with("TASKER_") && key != "TASKER_BCRYPT_COST")
                || [
                    "PORT",
                    "JWT_SECRET",
                    "RUST_LOG",
                    "LOG_LEVEL",
                    "CORS_ORIGINS",
                ]
                .contains(&key.as_str())
            {
                command.env_remove(key);
            }
        }
        // Off the runtime's workers: the block talks to the server on this runtime.
        let output = tokio::task::spawn_blocking(move || command.output())
            .await
            .unwrap()
            .expect("bash runs");
        let stdout = String::from_utf8_lossy(&output.stdout);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            output.status.success(),
            "README.md line {}: the block failed ({}):\n{}\n--- stdout\n{stdout}\n--- stderr\n{stderr}",
            block.line,
            output.status,
            block.text
        );
        if let Some(line) = api_error(&stdout) {
            panic!(
                "README.md line {}: the block printed an API error: {line}\n{}",
                block.line, block.text
            );
        }
        ran += 1;
    }
    eprintln!(
        "README.md: {ran} shell blocks ran; skipped:\n  {}",
        skipped.join("\n  ")
    );
    assert!(ran >= 5, "only {ran} blocks ran");
    // The stand-ins were called as the blocks say (a sanity check of the set-up).
    let calls = fs::read_to_string(root.join("stand-ins.log")).unwrap_or_default();
    assert!(calls.contains("systemctl stop tasker"), "{calls}");
    assert!(root.join("new/data/tasker.redb").exists());
    server.stop().await;
}
