//! The one integration test binary: every module drives a real server on a real socket.

mod common;

mod attachments;
mod auth;
mod cli;
mod comments;
mod errors;
mod idempotency;
mod invitations;
mod notifications;
mod ops;
mod portable;
mod projects;
mod realtime;
mod sessions;
mod tasks;
mod teams;
mod tokens;
mod users;
