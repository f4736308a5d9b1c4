//! The admin commands of the CLI: each prints its result and returns a [`CommandError`] with
//! the exit code on failure.

use crate::cli::{Command, UserCommand};

use super::CommandError;

/// Runs `backup`, `restore`, `check`, `compact` or `user ...` (blocking; no runtime needed).
pub fn run(command: Command) -> Result<(), CommandError> {
    match command {
        Command::Serve(_)
        | Command::Openapi
        | Command::Reindex(_)
        | Command::Export(_)
        | Command::Import(_)
        | Command::Email(_) => Err(CommandError::usage("not an admin command")),
        Command::Backup(args) => {
            let manifest = super::backup::backup_command(&args.data.data_dir, &args.out)?;
            println!(
                "wrote {} ({} files, {} blobs, {} bytes, schema version {})",
                args.out.display(),
                manifest.entries.len(),
                manifest.blob_count(),
                manifest.total_bytes(),
                manifest.schema_version
            );
            Ok(())
        }
        Command::Restore(args) => {
            let manifest =
                super::backup::restore(&args.from, &args.data_dir).map_err(|e| match e {
                    super::backup::RestoreError::Usage(m) => CommandError::usage(m),
                    failed => CommandError::failed(failed.to_string()),
                })?;
            println!(
                "restored {} files ({} blobs, {} bytes) from a backup of {} made by tasker {} into {}",
                manifest.entries.len(),
                manifest.blob_count(),
                manifest.total_bytes(),
                manifest.created_at.to_rfc3339(),
                manifest.tasker_version,
                args.data_dir.display()
            );
            Ok(())
        }
        Command::Check(data) => {
            let report = super::check::run_checks(&data.data_dir).map_err(|e| {
                if super::is_locked(&e) {
                    CommandError::failed(super::SERVER_RUNNING)
                } else {
                    CommandError::from(e)
                }
            })?;
            print!("{}", report.render());
            if report.ok() {
                Ok(())
            } else {
                Err(CommandError::failed("the check found problems"))
            }
        }
        Command::Compact(data) => {
            let compacted = super::compact(&data.data_dir)?;
            println!(
                "compacted {}: {} -> {} ({} given back)",
                data.data_dir.join(crate::store::DB_FILE).display(),
                super::check::human(compacted.before),
                super::check::human(compacted.after),
                super::check::human(compacted.before.saturating_sub(compacted.after)),
            );
            Ok(())
        }
        Command::User(user) => run_user(user),
    }
}

fn run_user(command: UserCommand) -> Result<(), CommandError> {
    use super::users;
    match command {
        UserCommand::Create {
            data,
            email,
            name,
            admin,
            bcrypt,
        } => {
            let password = users::read_password()?;
            let user = users::create(
                &data.data_dir,
                &email,
                &name,
                admin,
                bcrypt.bcrypt_cost,
                &password,
            )?;
            println!(
                "created {} ({}, {:?})",
                user.email.as_str(),
                user.id,
                user.role
            );
        }
        UserCommand::ResetPassword {
            data,
            email,
            bcrypt,
        } => {
            let password = users::read_password()?;
            let user =
                users::reset_password(&data.data_dir, &email, bcrypt.bcrypt_cost, &password)?;
            println!(
                "password of {} reset; all its sessions ended",
                user.email.as_str()
            );
        }
        UserCommand::List { data } => {
            print!("{}", users::render_table(&users::list(&data.data_dir)?))
        }
        UserCommand::Disable { data, email } => {
            let user = users::set_disabled(&data.data_dir, &email, true)?;
            println!("disabled {}; all its sessions ended", user.email.as_str());
        }
        UserCommand::Enable { data, email } => {
            let user = users::set_disabled(&data.data_dir, &email, false)?;
            println!("enabled {}", user.email.as_str());
        }
    }
    Ok(())
}
