//! Outgoing mail: the SMTP transport (lettre over rustls with the ring provider), building a
//! MIME message from a queued [`EmailMessage`], and the messages' templates
//! (`templates/mail/`, plain text and HTML sharing one layout each).
//!
//! Nothing here queues or retries: the outbox (`store::outbox`, `service::outbox`) does.

/// The messages people receive: one askama template pair each.
pub mod letters;

use std::time::Duration;

use lettre::message::{Mailbox, MultiPart, header};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};

use crate::config::MailConfig;
use crate::store::EmailMessage;

/// How long one SMTP conversation may take before it counts as a failed try.
const SMTP_TIMEOUT: Duration = Duration::from_secs(30);

/// How the connection to the SMTP server is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmtpTls {
    /// `smtp://`: plain connection upgraded with STARTTLS, which the server must offer.
    StartTls,
    /// `smtps://`: TLS from the first byte.
    Implicit,
    /// `smtp://...?tls=none`: no TLS at all (a relay on this host).
    None,
}

/// `--smtp-url`, parsed. The password is never part of it (see `--smtp-password-file`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmtpUrl {
    pub tls: SmtpTls,
    pub host: String,
    pub port: u16,
    /// The user name to authenticate as, if any.
    pub user: Option<String>,
}

impl SmtpUrl {
    /// `smtp://[user@]host[:port][?tls=none]` (port 587 by default) or
    /// `smtps://[user@]host[:port]` (465).
    pub fn parse(text: &str) -> Result<Self, String> {
        let usage = "use smtp://host:587, smtps://host:465 or smtp://localhost:25?tls=none";
        let (scheme, rest) = text
            .split_once("://")
            .ok_or_else(|| format!("not a URL; {usage}"))?;
        let (rest, query) = match rest.split_once('?') {
            Some((rest, query)) => (rest, Some(query)),
            None => (rest, None),
        };
        let rest = rest.trim_end_matches('/');
        if rest.contains('/') {
            return Err(format!("a path is not allowed; {usage}"));
        }
        let (user, hostport) = match rest.rsplit_once('@') {
            Some((user, hostport)) => {
                if user.contains(':') {
                    return Err(
                        "put the password in --smtp-password-file or TASKER_SMTP_PASSWORD, not in the URL"
                            .into(),
                    );
                }
                (Some(percent_decode(user)?), hostport)
            }
            None => (None, rest),
        };
        let no_tls = match query {
            None | Some("") => false,
            Some("tls=none") => true,
            Some(other) => return Err(format!("unknown option '{other}'; {usage}")),
        };
        let (tls, default_port) = match (scheme.to_ascii_lowercase().as_str(), no_tls) {
            ("smtp", false) => (SmtpTls::StartTls, 587),
            ("smtp", true) => (SmtpTls::None, 25),
            ("smtps", false) => (SmtpTls::Implicit, 465),
            ("smtps", true) => return Err("smtps:// always uses TLS; drop ?tls=none".into()),
            _ => return Err(format!("the scheme must be smtp or smtps; {usage}")),
        };
        let (host, port) = match hostport.rsplit_once(':') {
            Some((host, port)) if !host.ends_with(']') || hostport.starts_with('[') => (
                host,
                port.parse::<u16>()
                    .map_err(|_| format!("'{port}' is not a port number"))?,
            ),
            _ => (hostport, default_port),
        };
        let host = host.trim_start_matches('[').trim_end_matches(']');
        if host.is_empty() {
            return Err(format!("the host is missing; {usage}"));
        }
        Ok(Self {
            tls,
            host: host.to_string(),
            port,
            user,
        })
    }
}

impl std::fmt::Display for SmtpUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let scheme = match self.tls {
            SmtpTls::Implicit => "smtps",
            _ => "smtp",
        };
        write!(f, "{scheme}://")?;
        if let Some(user) = &self.user {
            write!(f, "{user}@")?;
        }
        write!(f, "{}:{}", self.host, self.port)?;
        if self.tls == SmtpTls::None {
            f.write_str("?tls=none")?;
        }
        Ok(())
    }
}

fn percent_decode(text: &str) -> Result<String, String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = text
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or("bad %-escape in the user name")?;
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| "the user name is not UTF-8".into())
}

/// `Name <address>` or `address`.
pub fn parse_mailbox(text: &str) -> Result<Mailbox, String> {
    text.trim()
        .parse::<Mailbox>()
        .map_err(|e| format!("not a mail address ({e}); use e.g. 'Tasker <tasker@example.com>'"))
}

/// What the SMTP server answered to a message it accepted.
#[derive(Debug, Clone)]
pub struct SmtpAnswer {
    pub code: String,
    pub lines: Vec<String>,
}

impl std::fmt::Display for SmtpAnswer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.code, self.lines.join(" / "))
    }
}

/// Why a message was not sent.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct SendError {
    /// The server refused this message for good (5xx): retrying will not help.
    pub permanent: bool,
    pub message: String,
}

/// Sends mail through the configured SMTP server. Cheap to clone.
#[derive(Clone)]
pub struct Mailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    /// `--public-url`: the base of every link.
    public_url: String,
    /// The host part of Message-IDs.
    id_host: String,
    url: SmtpUrl,
}

impl std::fmt::Debug for Mailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mailer")
            .field("url", &self.url.to_string())
            .field("from", &self.from.to_string())
            .finish_non_exhaustive()
    }
}

impl Mailer {
    /// The mailer `config` describes; `None` without `--smtp-url`. `config` must have been
    /// resolved ([`MailConfig::resolve`]).
    pub fn from_config(config: &MailConfig) -> Result<Option<Self>, String> {
        let Some(url) = &config.smtp_url else {
            return Ok(None);
        };
        let from = parse_mailbox(config.smtp_from.as_deref().unwrap_or_default())?;
        let public_url = config
            .public_url
            .clone()
            .ok_or("--public-url is needed with --smtp-url")?;
        let tls_parameters = || {
            TlsParameters::new(url.host.clone())
                .map_err(|e| format!("cannot set up TLS for {}: {e}", url.host))
        };
        let tls = match url.tls {
            SmtpTls::StartTls => Tls::Required(tls_parameters()?),
            SmtpTls::Implicit => Tls::Wrapper(tls_parameters()?),
            SmtpTls::None => Tls::None,
        };
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&url.host)
            .port(url.port)
            .tls(tls)
            .timeout(Some(SMTP_TIMEOUT));
        if let Some(user) = &url.user {
            let password = config.smtp_password.clone().unwrap_or_default();
            builder = builder.credentials(Credentials::new(user.clone(), password));
        }
        let id_host = public_url
            .split("://")
            .nth(1)
            .and_then(|rest| rest.split(['/', ':']).next())
            .filter(|h| !h.is_empty())
            .unwrap_or("tasker.invalid")
            .to_string();
        Ok(Some(Self {
            transport: builder.build(),
            from,
            public_url,
            id_host,
            url: url.clone(),
        }))
    }

    /// `--public-url` joined with `path` (which starts with `/`).
    pub fn link(&self, path: &str) -> String {
        format!("{}{path}", self.public_url)
    }

    /// A fresh `Message-ID`: `<uuid@public host>`.
    pub fn new_message_id(&self) -> String {
        format!("<{}@{}>", uuid::Uuid::now_v7(), self.id_host)
    }

    /// `letter` to `to`, ready to queue.
    pub fn compose(&self, to: &str, letter: letters::Rendered) -> EmailMessage {
        EmailMessage {
            to: to.to_string(),
            subject: letter.subject,
            text: letter.text,
            html: letter.html,
            message_id: self.new_message_id(),
            headers: vec![],
        }
    }

    /// The SMTP server, for logs (`smtp://host:587`; never a password).
    pub fn server(&self) -> String {
        self.url.to_string()
    }

    /// Sends one message now and returns the server's answer.
    pub async fn send(&self, message: &EmailMessage) -> Result<SmtpAnswer, SendError> {
        let email = self.build(message)?;
        match self.transport.send(email).await {
            Ok(response) => Ok(SmtpAnswer {
                code: response.code().to_string(),
                lines: response.message().map(str::to_string).collect(),
            }),
            Err(e) => Err(SendError {
                permanent: e.is_permanent(),
                message: error_chain(&e),
            }),
        }
    }

    fn build(&self, message: &EmailMessage) -> Result<lettre::Message, SendError> {
        let bad = |what: &str, e: String| SendError {
            permanent: true,
            message: format!("cannot build the message: {what}: {e}"),
        };
        let to = message
            .to
            .parse::<Mailbox>()
            .map_err(|e| bad("recipient", e.to_string()))?;
        let mut builder = lettre::Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(message.subject.clone())
            .message_id(Some(message.message_id.clone()));
        for (name, value) in &message.headers {
            let name = header::HeaderName::new_from_ascii(name.clone())
                .map_err(|e| bad("header", e.to_string()))?;
            builder = builder.raw_header(header::HeaderValue::new(name, value.clone()));
        }
        builder
            .multipart(MultiPart::alternative_plain_html(
                message.text.clone(),
                message.html.clone(),
            ))
            .map_err(|e| bad("body", e.to_string()))
    }
}

/// An error and its sources on one line: lettre's top error says little ("Connection error").
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(e) = source {
        let next = e.to_string();
        if !text.contains(&next) {
            text.push_str(": ");
            text.push_str(&next);
        }
        source = e.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn smtp_urls() {
        let url = SmtpUrl::parse("smtp://mail.example.com").unwrap();
        assert_eq!((url.tls, url.port), (SmtpTls::StartTls, 587));
        let url = SmtpUrl::parse("smtps://me%40x.org@mail.example.com:2465").unwrap();
        assert_eq!(url.tls, SmtpTls::Implicit);
        assert_eq!(url.user.as_deref(), Some("me@x.org"));
        assert_eq!(url.port, 2465);
        let url = SmtpUrl::parse("smtp://localhost:25?tls=none").unwrap();
        assert_eq!(url.tls, SmtpTls::None);
        assert_eq!(url.to_string(), "smtp://localhost:25?tls=none");
        for bad in [
            "mail.example.com",
            "http://x",
            "smtp://u:pw@host",
            "smtps://h?tls=none",
            "smtp://h:x",
            "smtp://h?tls=maybe",
            "smtp:///path",
        ] {
            assert!(SmtpUrl::parse(bad).is_err(), "{bad}");
        }
    }
}
