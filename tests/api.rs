//! The one integration test binary: every module drives a real server on a real socket.

mod common;

mod auth;
mod cli;
mod errors;
mod ops;
mod sessions;
mod tokens;
mod users;
