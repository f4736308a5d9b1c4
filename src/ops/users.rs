//! `tasker user ...`: create, list, disable and enable accounts and reset passwords on a
//! stopped data dir, through the same store functions and password rules as the API.

use std::io::{BufRead, IsTerminal, Write};
use std::path::Path;

use chrono::Utc;

use super::{CommandError, SERVER_RUNNING};
use crate::domain::{Email, Password, Role, User, UserName};
use crate::store::{DB_FILE, Store, StoreError, UserChanges};

/// Opens the data dir's database for account changes (migrating it, as the server would).
/// `create`: make the data dir and database when missing (the first admin may be created
/// before the first start).
fn open(data_dir: &Path, create: bool) -> Result<Store, CommandError> {
    let path = data_dir.join(DB_FILE);
    if create {
        crate::config::prepare_data_dir(data_dir)
            .map_err(|e| CommandError::usage(e.to_string()))?;
    } else if !path.is_file() {
        return Err(CommandError::failed(format!(
            "--data-dir {}: no tasker database there ({DB_FILE} is missing)",
            data_dir.display()
        )));
    }
    Store::open(&path).map_err(|e| match e {
        StoreError::Locked => CommandError::failed(SERVER_RUNNING),
        other => CommandError::failed(format!("--data-dir {}: {other}", data_dir.display())),
    })
}

fn store_error(e: StoreError) -> CommandError {
    CommandError::failed(e.to_string())
}

fn parse_password(raw: &str) -> Result<Password, CommandError> {
    Password::parse(raw).map_err(|e| CommandError::usage(format!("password: {e}")))
}

fn hash(password: &Password, cost: u32) -> Result<crate::domain::user::PasswordHash, CommandError> {
    password
        .hash(cost)
        .map_err(|e| CommandError::failed(format!("bcrypt: {e}")))
}

fn find(store: &Store, email: &str) -> Result<User, CommandError> {
    let email = Email::parse(email).map_err(|e| CommandError::usage(format!("--email: {e}")))?;
    store
        .user_by_email(&email)
        .map_err(store_error)?
        .ok_or_else(|| CommandError::failed(format!("no account with email {}", email.as_str())))
}

/// Creates an account (an admin with `admin`, or when it is the first account).
pub fn create(
    data_dir: &Path,
    email: &str,
    name: &str,
    admin: bool,
    bcrypt_cost: u32,
    password: &str,
) -> Result<User, CommandError> {
    let email = Email::parse(email).map_err(|e| CommandError::usage(format!("--email: {e}")))?;
    let name = UserName::parse(name).map_err(|e| CommandError::usage(format!("--name: {e}")))?;
    let password = parse_password(password)?;
    let store = open(data_dir, true)?;
    if store.user_by_email(&email).map_err(store_error)?.is_some() {
        return Err(CommandError::failed(format!(
            "an account with email {} already exists",
            email.as_str()
        )));
    }
    let password_hash = hash(&password, bcrypt_cost)?;
    let role = if admin { Role::Admin } else { Role::User };
    let user = User::new(email, name, password_hash, role, Utc::now());
    store.insert_user(user).map_err(|e| match e {
        StoreError::EmailTaken => CommandError::failed("an account with this email already exists"),
        other => store_error(other),
    })
}

/// Sets a new password and signs the account out everywhere.
pub fn reset_password(
    data_dir: &Path,
    email: &str,
    bcrypt_cost: u32,
    password: &str,
) -> Result<User, CommandError> {
    let password = parse_password(password)?;
    let store = open(data_dir, false)?;
    let user = find(&store, email)?;
    let changes = UserChanges {
        password_hash: Some(hash(&password, bcrypt_cost)?),
        ..UserChanges::default()
    };
    store
        .update_user(user.id, changes, None, Utc::now())
        .map_err(store_error)
}

/// Disables (and signs out everywhere) or enables an account.
pub fn set_disabled(data_dir: &Path, email: &str, disabled: bool) -> Result<User, CommandError> {
    let store = open(data_dir, false)?;
    let user = find(&store, email)?;
    store
        .set_user_disabled(user.id, disabled, Utc::now())
        .map_err(store_error)
}

/// Every account, oldest first.
pub fn list(data_dir: &Path) -> Result<Vec<User>, CommandError> {
    open(data_dir, false)?.all_users().map_err(store_error)
}

/// Accounts as an aligned text table: id, email, name, role, disabled, created.
pub fn render_table(users: &[User]) -> String {
    let rows: Vec<[String; 6]> = users
        .iter()
        .map(|u| {
            [
                u.id.to_string(),
                u.email.as_str().to_string(),
                u.name.as_str().to_string(),
                match u.role {
                    Role::Admin => "admin".into(),
                    Role::User => "user".into(),
                },
                if u.disabled { "yes" } else { "no" }.into(),
                u.created_at.format("%Y-%m-%d %H:%M:%SZ").to_string(),
            ]
        })
        .collect();
    let header = ["ID", "EMAIL", "NAME", "ROLE", "DISABLED", "CREATED"].map(String::from);
    let mut widths = header.clone().map(|h| h.chars().count());
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let mut text = String::new();
    for row in std::iter::once(&header).chain(&rows) {
        let cells: Vec<String> = row
            .iter()
            .zip(widths)
            .map(|(cell, width)| format!("{cell:<width$}"))
            .collect();
        text.push_str(cells.join("  ").trim_end());
        text.push('\n');
    }
    text
}

/// Reads a new password: from the terminal without echo (asked twice) when standard input
/// is one, else one line from standard input (for scripts: `echo "$PW" | tasker user ...`).
pub fn read_password() -> Result<String, CommandError> {
    let stdin = std::io::stdin();
    if !stdin.is_terminal() {
        let mut line = String::new();
        stdin
            .lock()
            .read_line(&mut line)
            .map_err(|e| CommandError::failed(format!("cannot read the password: {e}")))?;
        return Ok(line.trim_end_matches(['\r', '\n']).to_string());
    }
    let first = prompt_hidden("New password: ")?;
    let second = prompt_hidden("Repeat it: ")?;
    if first != second {
        return Err(CommandError::usage("the passwords do not match"));
    }
    Ok(first)
}

/// Prompts on stderr and reads one line with the terminal's echo off (via `stty`, which
/// every unix has; no extra crate). Echo is restored even when reading fails.
fn prompt_hidden(prompt: &str) -> Result<String, CommandError> {
    let stty = |arg: &str| {
        std::process::Command::new("stty")
            .arg(arg)
            .stdin(std::process::Stdio::inherit())
            .status()
            .map(|s| s.success())
            .unwrap_or(false)
    };
    eprint!("{prompt}");
    let _ = std::io::stderr().flush();
    let hidden = stty("-echo");
    let mut line = String::new();
    let read = std::io::stdin().lock().read_line(&mut line);
    if hidden {
        stty("echo");
    }
    eprintln!();
    read.map_err(|e| CommandError::failed(format!("cannot read the password: {e}")))?;
    Ok(line.trim_end_matches(['\r', '\n']).to_string())
}
