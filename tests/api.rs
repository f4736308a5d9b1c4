//! The one integration test binary: modules drive a real server on a real socket, the built
//! binary (`cli`) or install.sh (`install`).

mod common;

mod admin;
mod attachments;
mod auth;
mod board;
mod browser;
mod calendar;
mod cli;
mod comments;
mod contract;
mod errors;
mod idempotency;
mod install;
mod invitations;
mod limits;
mod mail;
mod net;
mod notifications;
mod ops;
mod portable;
mod projects;
mod proxies;
mod readme;
mod realtime;
mod reminders;
mod scenario;
mod search;
mod sessions;
mod soak;
mod tasks;
mod teams;
mod tokens;
mod users;
mod validation;
mod web;
mod web_board;
mod web_hooks;
mod web_lists;
mod web_mail;
mod web_settings;
mod web_task;
mod web_teams;
mod webhooks;
