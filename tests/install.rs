//! install.sh, staged with `--root` into a temporary directory: no root, systemctl or useradd.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/install.sh");
const UNIT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/assets/tasker.service");

const BIN: &str = "usr/local/bin/tasker";
const ENV: &str = "etc/tasker/tasker.env";
const SERVICE: &str = "etc/systemd/system/tasker.service";
const DATA: &str = "var/lib/tasker";

/// A temporary directory holding a stand-in binary (mode 0644, so the install must set 0755)
/// and the staging root `root/`.
struct Stage {
    tmp: tempfile::TempDir,
}

impl Stage {
    fn new() -> Stage {
        let tmp = tempfile::tempdir().unwrap();
        let binary = tmp.path().join("tasker-build");
        fs::write(&binary, "#!/bin/sh\necho stand-in tasker\n").unwrap();
        fs::set_permissions(&binary, fs::Permissions::from_mode(0o644)).unwrap();
        Stage { tmp }
    }

    fn root(&self) -> PathBuf {
        self.tmp.path().join("root")
    }

    fn binary(&self) -> PathBuf {
        self.tmp.path().join("tasker-build")
    }

    /// `sh install.sh --root <root> ARGS`, run from the temporary directory (the script finds
    /// the repository from its own path, not the working directory).
    fn run(&self, args: &[&str]) -> Output {
        let output = install_sh(self.tmp.path())
            .arg("--root")
            .arg(self.root())
            .args(args)
            .output()
            .expect("sh runs");
        // A tool the script needs but the shell cannot find ("sh: 1: cmp: not found").
        assert!(
            !String::from_utf8_lossy(&output.stderr).contains("not found"),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        output
    }

    fn install(&self) {
        let binary = self.binary();
        let output = self.run(&["--binary", binary.to_str().unwrap()]);
        assert_success(&output);
    }

    fn path(&self, relative: &str) -> PathBuf {
        self.root().join(relative)
    }

    fn mode(&self, relative: &str) -> u32 {
        fs::metadata(self.path(relative))
            .unwrap()
            .permissions()
            .mode()
            & 0o7777
    }

    fn secret(&self) -> String {
        let env = fs::read_to_string(self.path(ENV)).unwrap();
        let secrets: Vec<_> = env
            .lines()
            .filter_map(|line| line.strip_prefix("JWT_SECRET="))
            .collect();
        assert_eq!(secrets.len(), 1, "one JWT_SECRET line expected in:\n{env}");
        secrets[0].to_owned()
    }
}

fn install_sh(cwd: &Path) -> Command {
    let mut command = Command::new("sh");
    command.arg(SCRIPT).current_dir(cwd).stdin(Stdio::null());
    command
}

fn assert_success(output: &Output) {
    assert!(
        output.status.success(),
        "install.sh failed ({}):\n{}{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Every path under `dir` with its mode and, for files, its bytes.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, (u32, Option<Vec<u8>>)> {
    let mut tree = BTreeMap::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(current) = pending.pop() {
        for entry in fs::read_dir(&current).unwrap() {
            let path = entry.unwrap().path();
            let meta = fs::symlink_metadata(&path).unwrap();
            let bytes = if meta.is_dir() {
                pending.push(path.clone());
                None
            } else {
                Some(fs::read(&path).unwrap())
            };
            let relative = path.strip_prefix(dir).unwrap().to_path_buf();
            tree.insert(relative, (meta.permissions().mode() & 0o7777, bytes));
        }
    }
    tree
}

#[test]
fn stages_binary_settings_unit_and_data_dir() {
    let stage = Stage::new();
    stage.install();

    assert_eq!(
        fs::read(stage.path(BIN)).unwrap(),
        fs::read(stage.binary()).unwrap()
    );
    assert_eq!(stage.mode(BIN), 0o755);
    assert_eq!(stage.mode(ENV), 0o600);
    assert_eq!(stage.mode(SERVICE), 0o644);
    assert!(stage.path(DATA).is_dir());
    assert_eq!(stage.mode(DATA), 0o750);
    assert_eq!(
        fs::read_to_string(stage.path(SERVICE)).unwrap(),
        fs::read_to_string(UNIT).unwrap()
    );

    let secret = stage.secret();
    assert!(secret.len() >= 64, "secret too short: {}", secret.len());
    assert!(secret.chars().all(|c| c.is_ascii_hexdigit()), "{secret}");
    let env = fs::read_to_string(stage.path(ENV)).unwrap();
    for line in ["TASKER_DATA_DIR=/var/lib/tasker", "TASKER_LOG_FORMAT=json"] {
        assert!(
            env.lines().any(|l| l == line),
            "{line} missing from:\n{env}"
        );
    }
    // Every setting of `tasker serve` is there, commented out with its default.
    for name in [
        "TASKER_LISTEN",
        "TASKER_TOKEN_TTL",
        "TASKER_REFRESH_TTL",
        "TASKER_BCRYPT_COST",
        "TASKER_MAX_UPLOAD_BYTES",
        "TASKER_USER_QUOTA_BYTES",
        "TASKER_NOTIFICATION_RETENTION",
        "TASKER_CHANGE_RETENTION",
        "TASKER_REPLAY_BUDGET",
        "TASKER_TRUSTED_PROXIES",
        "TASKER_HEADER_TIMEOUT",
        "TASKER_IDLE_TIMEOUT",
        "TASKER_BODY_TIMEOUT",
        "TASKER_MAX_CONNECTIONS",
        "TASKER_DB_CACHE",
        "TASKER_WS_WRITE_TIMEOUT",
        "CORS_ORIGINS",
        "TASKER_REGISTRATION",
        "TASKER_RATE_LIMIT",
        "TASKER_METRICS",
        "TASKER_METRICS_TOKEN",
    ] {
        let commented = format!("#{name}=");
        assert!(
            env.lines().any(|l| l.starts_with(&commented)),
            "{commented} missing from:\n{env}"
        );
    }

    // A second install gets a secret of its own.
    let other = Stage::new();
    other.install();
    assert_ne!(other.secret(), secret);
}

#[test]
fn a_rerun_changes_nothing_and_keeps_the_secret() {
    let stage = Stage::new();
    stage.install();
    let secret = stage.secret();
    let before = snapshot(&stage.root());
    stage.install();
    assert_eq!(stage.secret(), secret);
    assert_eq!(snapshot(&stage.root()), before);

    // An edited env file is the admin's: a re-run leaves it exactly as it is.
    let edited = "JWT_SECRET=mine-mine-mine-mine-mine-mine-mine-mine\nTASKER_LISTEN=0.0.0.0:8080\n";
    fs::write(stage.path(ENV), edited).unwrap();
    stage.install();
    assert_eq!(fs::read_to_string(stage.path(ENV)).unwrap(), edited);

    // An upgrade replaces the binary.
    fs::write(stage.binary(), "#!/bin/sh\necho newer tasker\n").unwrap();
    stage.install();
    assert_eq!(
        fs::read(stage.path(BIN)).unwrap(),
        fs::read(stage.binary()).unwrap()
    );
    assert_eq!(stage.mode(BIN), 0o755);
}

#[test]
fn the_unit_runs_as_tasker_with_the_hardening() {
    let unit = fs::read_to_string(UNIT).unwrap();
    let directives: Vec<&str> = unit
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    for required in [
        "[Unit]",
        "After=network-online.target",
        "Wants=network-online.target",
        "[Service]",
        "ExecStart=/usr/local/bin/tasker serve",
        "EnvironmentFile=/etc/tasker/tasker.env",
        "Restart=on-failure",
        "User=tasker",
        "Group=tasker",
        "StateDirectory=tasker",
        "StateDirectoryMode=0750",
        "UMask=0077",
        "KillSignal=SIGTERM",
        "TimeoutStopSec=20",
        "LimitNOFILE=65536",
        "NoNewPrivileges=yes",
        "CapabilityBoundingSet=",
        "AmbientCapabilities=",
        "ProtectSystem=strict",
        "ProtectHome=yes",
        "PrivateTmp=yes",
        "PrivateDevices=yes",
        "ProtectKernelTunables=yes",
        "ProtectKernelModules=yes",
        "ProtectKernelLogs=yes",
        "ProtectControlGroups=yes",
        "ProtectClock=yes",
        "ProtectHostname=yes",
        "RestrictNamespaces=yes",
        "RestrictRealtime=yes",
        "RestrictSUIDSGID=yes",
        "LockPersonality=yes",
        "MemoryDenyWriteExecute=yes",
        "RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX",
        "SystemCallArchitectures=native",
        "SystemCallFilter=@system-service",
        "[Install]",
        "WantedBy=multi-user.target",
    ] {
        assert!(
            directives.contains(&required),
            "{required:?} missing from assets/tasker.service"
        );
    }
    // Nothing may widen what the empty sets above take away.
    for key in ["CapabilityBoundingSet=", "AmbientCapabilities="] {
        let lines = directives.iter().filter(|l| l.starts_with(key)).count();
        assert_eq!(lines, 1, "{key} must appear once, empty");
    }
}

#[test]
fn uninstall_keeps_data_and_settings_and_purge_removes_them() {
    let stage = Stage::new();
    stage.install();
    fs::write(stage.path(DATA).join("tasker.redb"), "data").unwrap();

    assert_success(&stage.run(&["--uninstall"]));
    assert!(!stage.path(BIN).exists());
    assert!(!stage.path(SERVICE).exists());
    assert!(stage.path(DATA).join("tasker.redb").exists());
    assert!(stage.path(ENV).exists());

    // A reinstall finds the old settings and data.
    let secret = stage.secret();
    stage.install();
    assert_eq!(stage.secret(), secret);

    assert_success(&stage.run(&["--uninstall", "--purge"]));
    for gone in [BIN, SERVICE, ENV, DATA, "etc/tasker"] {
        assert!(!stage.path(gone).exists(), "{gone} survived --purge");
    }
    // Uninstalling what is not there is not an error.
    assert_success(&stage.run(&["--uninstall", "--purge"]));
}

#[test]
fn help_usage_errors_and_missing_binary() {
    let tmp = tempfile::tempdir().unwrap();
    let help = install_sh(tmp.path()).arg("--help").output().unwrap();
    assert_success(&help);
    let text = String::from_utf8_lossy(&help.stdout);
    for option in ["--binary", "--root", "--no-start", "--uninstall", "--purge"] {
        assert!(text.contains(option), "{option} missing from --help");
    }

    for args in [&["--frobnicate"][..], &["--purge"], &["--root"]] {
        let output = install_sh(tmp.path()).args(args).output().unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.starts_with("install.sh: "), "{args:?}: {stderr}");
    }
    let unknown = install_sh(tmp.path()).arg("--frobnicate").output().unwrap();
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("--frobnicate"));

    let stage = Stage::new();
    let output = stage.run(&["--binary", "/nonexistent/tasker"]);
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stderr).contains("/nonexistent/tasker"));
    assert!(!stage.path(BIN).exists());
}

#[test]
fn refuses_to_install_for_real_without_root() {
    // An `id` that says uid 1000, whoever runs the tests. The missing binary keeps the run
    // harmless even if the stand-in were not used: nothing is written before that check.
    let tmp = tempfile::tempdir().unwrap();
    let shims = tmp.path().join("shims");
    fs::create_dir(&shims).unwrap();
    fs::write(shims.join("id"), "#!/bin/sh\necho 1000\n").unwrap();
    fs::set_permissions(shims.join("id"), fs::Permissions::from_mode(0o755)).unwrap();
    let path = format!(
        "{}:{}",
        shims.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let output = install_sh(tmp.path())
        .args(["--binary", "/nonexistent/tasker"])
        .env("PATH", path)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("needs root"), "{stderr}");
    assert!(stderr.contains("--root"), "{stderr}");
}
