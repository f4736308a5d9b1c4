//! The egress guard: every request tasker sends to an address a user typed (webhooks, ntfy
//! pushes) goes through here, so a user cannot make the server reach what only the server can
//! reach (server-side request forgery: the cloud metadata service, a database on localhost,
//! the router's admin page).
//!
//! Two checks, one rule ([`AllowedHosts::permits`]):
//!
//! - **at save time**, [`AllowedHosts::check_url`] refuses a URL that is not http(s), or whose
//!   host is a literal address in a refused range or a name for the local machine
//!   (`localhost`); [`AllowedHosts::check_url_resolved`] also resolves a name and checks
//!   every address it has now;
//! - **at send time**, [`Egress`] resolves the name itself (a custom reqwest resolver), checks
//!   every address it got, and connects only to those: a name that resolved to a public
//!   address when the hook was saved and to 127.0.0.1 now (DNS rebinding) is refused.
//!   Redirects are never followed (a public server answering `302 Location:
//!   http://169.254.169.254/` reaches nothing), proxies from the environment are ignored,
//!   and a request has a connect timeout, a total timeout and a cap on the answer it reads.
//!
//! Refused by default: loopback (127/8, ::1), private (10/8, 172.16/12, 192.168/16, the
//! shared CGNAT 100.64/10, unique-local fc00::/7, the old site-local fec0::/10), link-local
//! (169.254/16 with the metadata service 169.254.169.254, fe80::/10), unspecified (0.0.0.0,
//! ::), multicast, broadcast and the reserved, documentation and benchmarking ranges. An IPv6
//! address that carries an IPv4 one (IPv4-mapped `::ffff:a.b.c.d`, IPv4-compatible
//! `::a.b.c.d`, NAT64 `64:ff9b::/96`, 6to4 `2002::/16`) is judged by its IPv4 address too.
//!
//! `--webhook-allowed-hosts` opens ranges up: `private`, `loopback`, CIDRs (which may open
//! link-local or reserved ranges too) and host names (allowed whatever they resolve to).
//! Unspecified, multicast and broadcast addresses are never reachable.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, Once};
use std::time::{Duration, Instant};

use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use url::Url;

use crate::config::Cidr;

/// Installs rustls' `ring` crypto provider as the process default, once: tasker has one TLS
/// stack (rustls with ring) for every outgoing connection (webhooks, mail). Called at server
/// start; harmless to call again.
pub fn install_crypto_provider() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        // Err means another provider was installed first (an embedder's): keep theirs.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

/// Why an outgoing request was refused or failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EgressError {
    /// Not a URL, or not one we send to (scheme, credentials, no host): a user's mistake.
    #[error("{0}")]
    InvalidUrl(String),
    /// The host is, or resolves to, an address the guard refuses.
    #[error("{0}")]
    Refused(String),
    /// The host name does not resolve.
    #[error("cannot resolve {host}: {reason}")]
    Resolve { host: String, reason: String },
    /// The request did not complete in time.
    #[error("timed out")]
    Timeout,
    /// Connecting or talking to the receiver failed.
    #[error("{0}")]
    Transport(String),
}

/// What kind of address an IP is, for the guard.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddressClass {
    Public,
    Loopback,
    /// RFC 1918, CGNAT 100.64/10, unique-local fc00::/7, site-local fec0::/10.
    Private,
    /// 169.254/16 (with the metadata service), fe80::/10.
    LinkLocal,
    Unspecified,
    Multicast,
    Broadcast,
    /// "This network" 0/8, 192.0.0/24, documentation, benchmarking, 240/4, 100::/64, 2001:db8::/32.
    Reserved,
}

impl AddressClass {
    /// The class of `ip`. An IPv6 address carrying an IPv4 one gets the stricter of the two.
    pub fn of(ip: IpAddr) -> Self {
        match ip {
            IpAddr::V4(v4) => Self::of_v4(v4),
            IpAddr::V6(v6) => {
                let own = Self::of_v6(v6);
                match embedded_v4(v6) {
                    Some(v4) if own == Self::Public => Self::of_v4(v4),
                    _ => own,
                }
            }
        }
    }

    fn of_v4(ip: Ipv4Addr) -> Self {
        let [a, b, c, _] = ip.octets();
        if ip.is_unspecified() {
            Self::Unspecified
        } else if ip.is_broadcast() {
            Self::Broadcast
        } else if ip.is_loopback() {
            Self::Loopback
        } else if ip.is_private() || (a == 100 && (64..128).contains(&b)) {
            Self::Private
        } else if ip.is_link_local() {
            Self::LinkLocal
        } else if ip.is_multicast() {
            Self::Multicast
        } else if a == 0
            || (a == 192 && b == 0 && c == 0)
            || ip.is_documentation()
            || (a == 198 && (b == 18 || b == 19))
            || a >= 240
        {
            Self::Reserved
        } else {
            Self::Public
        }
    }

    fn of_v6(ip: Ipv6Addr) -> Self {
        let s = ip.segments();
        if ip.is_unspecified() {
            Self::Unspecified
        } else if ip.is_loopback() {
            Self::Loopback
        } else if ip.is_multicast() {
            Self::Multicast
        } else if s[0] & 0xfe00 == 0xfc00 || s[0] & 0xffc0 == 0xfec0 {
            Self::Private
        } else if s[0] & 0xffc0 == 0xfe80 {
            Self::LinkLocal
        } else if (s[0] == 0x0100 && s[1..4] == [0, 0, 0]) || (s[0] == 0x2001 && s[1] == 0x0db8) {
            Self::Reserved
        } else {
            Self::Public
        }
    }

    fn describe(self) -> &'static str {
        match self {
            Self::Public => "a public address",
            Self::Loopback => "a loopback address",
            Self::Private => "a private network address",
            Self::LinkLocal => "a link-local address (this includes the cloud metadata service)",
            Self::Unspecified => "the unspecified address",
            Self::Multicast => "a multicast address",
            Self::Broadcast => "the broadcast address",
            Self::Reserved => "a reserved address",
        }
    }
}

/// The IPv4 address an IPv6 one carries: IPv4-mapped, IPv4-compatible, NAT64 (64:ff9b::/96)
/// or 6to4 (2002::/16).
fn embedded_v4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    let s = ip.segments();
    let tail = || Ipv4Addr::new((s[6] >> 8) as u8, s[6] as u8, (s[7] >> 8) as u8, s[7] as u8);
    if let Some(v4) = ip.to_ipv4_mapped() {
        Some(v4)
    } else if (s[..6] == [0; 6] && !ip.is_unspecified() && !ip.is_loopback())
        || s[..6] == [0x64, 0xff9b, 0, 0, 0, 0]
    {
        Some(tail())
    } else if s[0] == 0x2002 {
        Some(Ipv4Addr::new(
            (s[1] >> 8) as u8,
            s[1] as u8,
            (s[2] >> 8) as u8,
            s[2] as u8,
        ))
    } else {
        None
    }
}

/// `--webhook-allowed-hosts`: what outgoing requests may reach beyond public addresses.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AllowedHosts {
    private: bool,
    loopback: bool,
    networks: Vec<Cidr>,
    /// Lower-case host names, allowed whatever they resolve to.
    hosts: Vec<String>,
}

impl AllowedHosts {
    /// Only public addresses (the default).
    pub fn public_only() -> Self {
        Self::default()
    }

    /// A comma-separated list of `private`, `loopback`, addresses or CIDRs, and host names;
    /// empty, `public` or `none` is public only. The error names the bad entry.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut allowed = Self::default();
        for entry in text.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let lower = entry.to_ascii_lowercase();
            match lower.as_str() {
                "public" | "none" => {}
                "private" => allowed.private = true,
                "loopback" => allowed.loopback = true,
                _ if entry.contains('/') || entry.parse::<IpAddr>().is_ok() => {
                    allowed.networks.push(entry.parse::<Cidr>()?);
                }
                _ if is_host_name(&lower) => allowed.hosts.push(lower),
                _ => {
                    return Err(format!(
                        "'{entry}' is not private, loopback, an address, a CIDR or a host name; \
                         e.g. private,loopback,192.168.1.0/24,homeassistant.lan"
                    ));
                }
            }
        }
        Ok(allowed)
    }

    /// Whether loopback addresses are open (tests, a receiver on the same machine).
    pub fn allows_loopback(&self) -> bool {
        self.loopback
    }

    /// Whether `host` (a name) is one of the allowed host names.
    fn names(&self, host: &str) -> bool {
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        self.hosts.contains(&host)
    }

    /// Whether `ip` may be reached when the URL named `host` (None for a literal address).
    /// The error says why not.
    pub fn permits(&self, host: Option<&str>, ip: IpAddr) -> Result<(), EgressError> {
        let class = AddressClass::of(ip);
        let never = matches!(
            class,
            AddressClass::Unspecified | AddressClass::Multicast | AddressClass::Broadcast
        );
        let allowed = !never
            && (class == AddressClass::Public
                || (class == AddressClass::Private && self.private)
                || (class == AddressClass::Loopback && self.loopback)
                || self.networks.iter().any(|net| net.contains(ip))
                || host.is_some_and(|host| self.names(host)));
        if allowed {
            return Ok(());
        }
        let target = match host {
            Some(host) => format!("{host} resolves to {ip}, {}", class.describe()),
            None => format!("{ip} is {}", class.describe()),
        };
        Err(EgressError::Refused(if never {
            format!("{target}: never allowed")
        } else {
            format!("{target}: not allowed unless --webhook-allowed-hosts opens it")
        }))
    }

    /// The check at save time, without DNS: an http(s) URL with a host, no credentials; a
    /// literal address must be permitted, and `localhost` names count as loopback.
    pub fn check_url(&self, url: &str) -> Result<Url, EgressError> {
        let parsed = Url::parse(url.trim())
            .map_err(|e| EgressError::InvalidUrl(format!("not a valid URL: {e}")))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(EgressError::InvalidUrl(
                "must be an http:// or https:// URL".into(),
            ));
        }
        if !parsed.username().is_empty() || parsed.password().is_some() {
            return Err(EgressError::InvalidUrl(
                "must not carry a user name or password (the signature authenticates us)".into(),
            ));
        }
        match parsed.host() {
            None => return Err(EgressError::InvalidUrl("must name a host".into())),
            Some(url::Host::Ipv4(ip)) => self.permits(None, IpAddr::V4(ip))?,
            Some(url::Host::Ipv6(ip)) => self.permits(None, IpAddr::V6(ip))?,
            Some(url::Host::Domain(name)) => {
                let name = name.trim_end_matches('.').to_ascii_lowercase();
                if (name == "localhost" || name.ends_with(".localhost")) && !self.names(&name) {
                    self.permits(Some(&name), IpAddr::V4(Ipv4Addr::LOCALHOST))?;
                }
            }
        }
        Ok(parsed)
    }

    /// [`Self::check_url`], then resolves a host name and checks every address it has now.
    pub async fn check_url_resolved(&self, url: &str) -> Result<Url, EgressError> {
        let parsed = self.check_url(url)?;
        if let Some(url::Host::Domain(name)) = parsed.host() {
            self.resolve(name).await?;
        }
        Ok(parsed)
    }

    /// Resolves `host` and checks every address: all must be permitted.
    async fn resolve(&self, host: &str) -> Result<Vec<SocketAddr>, EgressError> {
        let failed = |reason: String| EgressError::Resolve {
            host: host.to_string(),
            reason,
        };
        let addresses: Vec<SocketAddr> = tokio::net::lookup_host((host, 0))
            .await
            .map_err(|e| failed(e.to_string()))?
            .collect();
        if addresses.is_empty() {
            return Err(failed("no addresses".into()));
        }
        for address in &addresses {
            self.permits(Some(host), address.ip())?;
        }
        Ok(addresses)
    }
}

impl std::fmt::Display for AllowedHosts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut entries: Vec<String> = Vec::new();
        if self.private {
            entries.push("private".into());
        }
        if self.loopback {
            entries.push("loopback".into());
        }
        entries.extend(self.networks.iter().map(ToString::to_string));
        entries.extend(self.hosts.iter().cloned());
        if entries.is_empty() {
            f.write_str("public only")
        } else {
            f.write_str(&entries.join(","))
        }
    }
}

fn is_host_name(text: &str) -> bool {
    !text.is_empty()
        && text.len() <= 253
        && text.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

/// The resolver the guarded client uses: the system's, then the guard on every address.
struct GuardedResolver {
    allowed: Arc<AllowedHosts>,
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let allowed = self.allowed.clone();
        let host = name.as_str().to_string();
        Box::pin(async move {
            let addresses = allowed.resolve(&host).await?;
            Ok(Box::new(addresses.into_iter()) as Addrs)
        })
    }
}

/// Settings of the guarded client.
#[derive(Debug, Clone)]
pub struct EgressSettings {
    pub allowed: AllowedHosts,
    /// Time to open the connection (TCP and TLS).
    pub connect_timeout: Duration,
    /// Time for the whole exchange, the answer included.
    pub timeout: Duration,
    /// At most this many bytes of an answer are read; the rest is dropped.
    pub max_response_bytes: usize,
}

impl EgressSettings {
    /// Public addresses only, 5 s to connect, 10 s in all, 64 KiB of answer.
    pub fn new(allowed: AllowedHosts) -> Self {
        Self {
            allowed,
            connect_timeout: Duration::from_secs(5),
            timeout: Duration::from_secs(10),
            max_response_bytes: 64 << 10,
        }
    }
}

/// An outgoing request.
#[derive(Debug, Clone)]
pub struct Outgoing {
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// A receiver's answer, as much of it as the cap let in.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    /// At most `max_response_bytes`.
    pub body: Vec<u8>,
    /// Whether the answer was longer than what `body` holds.
    pub truncated: bool,
    pub elapsed: Duration,
}

/// The guarded HTTP client: cheap to clone (one connection pool).
#[derive(Clone)]
pub struct Egress {
    allowed: Arc<AllowedHosts>,
    client: reqwest::Client,
    max_response_bytes: usize,
}

impl std::fmt::Debug for Egress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Egress")
            .field("allowed", &self.allowed)
            .finish_non_exhaustive()
    }
}

impl Egress {
    /// Builds the client (installs the crypto provider if nobody did).
    pub fn new(settings: EgressSettings) -> Result<Self, EgressError> {
        install_crypto_provider();
        let allowed = Arc::new(settings.allowed);
        let client = reqwest::Client::builder()
            .dns_resolver(Arc::new(GuardedResolver {
                allowed: allowed.clone(),
            }))
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .connect_timeout(settings.connect_timeout)
            .timeout(settings.timeout)
            .user_agent(concat!("tasker/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| EgressError::Transport(format!("cannot build the HTTP client: {e}")))?;
        Ok(Self {
            allowed,
            client,
            max_response_bytes: settings.max_response_bytes,
        })
    }

    /// What may be reached.
    pub fn allowed(&self) -> &AllowedHosts {
        &self.allowed
    }

    /// POSTs `request` after checking its URL again (a literal address never reaches the
    /// resolver); a name is resolved and checked by the guarded resolver. Any status is an
    /// answer; only a refusal, a timeout or a transport failure is an error. A 3xx is
    /// returned as it is, never followed.
    pub async fn post(&self, request: &Outgoing) -> Result<Answer, EgressError> {
        let url = self.allowed.check_url(&request.url)?;
        let started = Instant::now();
        let mut builder = self.client.post(url).body(request.body.clone());
        for (name, value) in &request.headers {
            builder = builder.header(name, value);
        }
        let mut response = builder.send().await.map_err(transport)?;
        let status = response.status().as_u16();
        let mut body = Vec::new();
        let mut truncated = false;
        while let Some(chunk) = response.chunk().await.map_err(transport)? {
            let room = self.max_response_bytes - body.len();
            if chunk.len() > room {
                body.extend_from_slice(&chunk[..room]);
                truncated = true;
                break;
            }
            body.extend_from_slice(&chunk);
        }
        Ok(Answer {
            status,
            body,
            truncated,
            elapsed: started.elapsed(),
        })
    }
}

/// A reqwest error as ours: the guard's refusal comes back through the resolver as a source.
fn transport(error: reqwest::Error) -> EgressError {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&error);
    while let Some(cause) = source {
        if let Some(ours) = cause.downcast_ref::<EgressError>() {
            return ours.clone();
        }
        source = cause.source();
    }
    if error.is_timeout() {
        return EgressError::Timeout;
    }
    let mut message = error.to_string();
    let mut cause = std::error::Error::source(&error);
    while let Some(inner) = cause {
        message = format!("{message}: {inner}");
        cause = inner.source();
    }
    EgressError::Transport(message)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(allowed: &AllowedHosts, url: &str) -> bool {
        matches!(allowed.check_url(url), Err(EgressError::Refused(_)))
    }

    #[test]
    fn the_default_refuses_every_internal_range() {
        let public = AllowedHosts::public_only();
        for url in [
            "http://127.0.0.1/",
            "http://127.1.2.3:8080/x",
            "http://[::1]/",
            "http://localhost/",
            "http://api.localhost/",
            "http://10.1.2.3/",
            "http://172.16.0.1/",
            "http://192.168.1.10/",
            "http://100.64.0.1/",
            "http://[fd00::1]/",
            "http://[fd00:ec2::254]/",
            "http://169.254.169.254/latest/meta-data/",
            "http://[fe80::1]/",
            "http://0.0.0.0/",
            "http://[::]/",
            "http://224.0.0.1/",
            "http://255.255.255.255/",
            "http://[::ffff:127.0.0.1]/",
            "http://[::ffff:169.254.169.254]/",
            "http://[::127.0.0.1]/",
            "http://[64:ff9b::a00:1]/",
            "http://[2002:c0a8:0101::1]/",
            "http://2130706433/",
            "http://0x7f.0.0.1/",
            "http://192.0.2.1/",
        ] {
            assert!(refused(&public, url), "{url} was not refused");
        }
        for url in [
            "https://example.com/hook",
            "http://93.184.215.14/",
            "http://[2606:4700::1111]/",
        ] {
            assert!(public.check_url(url).is_ok(), "{url} was refused");
        }
    }

    #[test]
    fn only_http_urls_with_a_host_and_no_credentials() {
        let public = AllowedHosts::public_only();
        for url in [
            "ftp://example.com/",
            "file:///etc/passwd",
            "gopher://example.com/",
            "http://user:pw@example.com/",
            "not a url",
        ] {
            assert!(
                matches!(public.check_url(url), Err(EgressError::InvalidUrl(_))),
                "{url}"
            );
        }
    }

    #[test]
    fn allowed_hosts_open_what_they_name_and_never_the_rest() {
        let allowed =
            AllowedHosts::parse("loopback, 192.168.1.0/24 ,homeassistant.lan,fe80::/10").unwrap();
        assert!(allowed.check_url("http://127.0.0.1:8123/").is_ok());
        assert!(allowed.check_url("http://localhost:8123/").is_ok());
        assert!(allowed.check_url("http://192.168.1.7/").is_ok());
        assert!(allowed.check_url("http://[fe80::1]/").is_ok());
        assert!(refused(&allowed, "http://192.168.2.7/"));
        assert!(refused(&allowed, "http://10.0.0.1/"));
        assert!(refused(&allowed, "http://169.254.169.254/"));
        assert!(refused(&allowed, "http://0.0.0.0/"));
        assert!(
            allowed
                .permits(Some("HomeAssistant.lan"), "10.0.0.9".parse().unwrap())
                .is_ok()
        );
        let private = AllowedHosts::parse("private").unwrap();
        assert!(private.check_url("http://10.0.0.1/").is_ok());
        assert!(private.check_url("http://[fd12::1]/").is_ok());
        assert!(refused(&private, "http://127.0.0.1/"));
        assert!(refused(&private, "http://169.254.169.254/"));
        assert!(AllowedHosts::parse("bad host!").is_err());
        assert!(AllowedHosts::parse("10.0.0.0/33").is_err());
        assert_eq!(
            AllowedHosts::parse("").unwrap(),
            AllowedHosts::public_only()
        );
    }

    #[tokio::test]
    async fn the_client_refuses_a_literal_and_a_name_at_send_time() {
        let egress = Egress::new(EgressSettings::new(AllowedHosts::public_only())).unwrap();
        for url in ["http://127.0.0.1:9/", "http://localhost:9/"] {
            let request = Outgoing {
                url: url.into(),
                headers: vec![],
                body: vec![],
            };
            assert!(
                matches!(egress.post(&request).await, Err(EgressError::Refused(_))),
                "{url}"
            );
        }
        // The resolver checks what a name resolves to, whatever check_url said about it.
        let resolver = GuardedResolver {
            allowed: Arc::new(AllowedHosts::public_only()),
        };
        let name: Name = "localhost".parse().unwrap();
        assert!(resolver.resolve(name).await.is_err());
    }
}
