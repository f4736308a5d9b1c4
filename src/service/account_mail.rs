//! What accounts do by mail (issue 17): verifying an address, resetting a forgotten password,
//! and the invitation message. Each message is queued in the write transaction of its cause.
//!
//! **Links.** A verification or reset link carries a token signed with a key derived from the
//! server's JWT secret: `purpose.user.expiry.stamp.signature`. The stamp is a digest of what
//! the link's use changes (the address and whether it is verified; the password hash), so a
//! used link no longer matches its account and is refused: single use without a table. It
//! also dies when the account changes under it (a new address, another password).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

use super::{AuthUser, Error, Result, Service};
use crate::domain::team::Invitation;
use crate::domain::{Email, Password, User, UserId, Validator};
use crate::mail::{Mailer, letters};
use crate::store::{EmailMessage, Message, StoreError, Tx, UserChanges};

/// How long a verification link works.
pub const VERIFY_TTL: chrono::Duration = chrono::Duration::hours(48);
/// How long a password reset link works.
pub const RESET_TTL: chrono::Duration = chrono::Duration::hours(1);
/// At most one resend or reset message per account in this time (against mail bombing).
const MAIL_THROTTLE: std::time::Duration = std::time::Duration::from_secs(60);

/// What a link is for: part of what is signed, so one kind cannot stand in for another.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkPurpose {
    Verify,
    Reset,
}

impl LinkPurpose {
    fn tag(self) -> &'static str {
        match self {
            LinkPurpose::Verify => "v",
            LinkPurpose::Reset => "r",
        }
    }

    /// The digest of what using the link changes on `user`.
    fn stamp(self, user: &User) -> String {
        let mut hash = Sha256::new();
        match self {
            LinkPurpose::Verify => {
                hash.update(b"verify\0");
                hash.update(user.email.as_str());
                hash.update(b"\0");
                let verified = user.email_verified_at.map(|at| at.timestamp_micros());
                hash.update(format!("{verified:?}"));
            }
            LinkPurpose::Reset => {
                hash.update(b"reset\0");
                hash.update(user.password_hash.expose());
                hash.update(b"\0");
                hash.update(user.email.as_str());
            }
        }
        hash.finalize()[..12]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }
}

/// Signs and checks link tokens with a key derived from the JWT secret.
pub struct LinkSigner {
    key: Vec<u8>,
}

impl LinkSigner {
    pub fn new(jwt_secret: &[u8]) -> Self {
        let mut mac = Hmac::<Sha256>::new_from_slice(jwt_secret).expect("any key length");
        mac.update(b"tasker mail links v1");
        Self {
            key: mac.finalize().into_bytes().to_vec(),
        }
    }

    fn signature(&self, payload: &str) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.key).expect("any key length");
        mac.update(payload.as_bytes());
        URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
    }

    /// A token for `purpose` on `user`, valid until `expires`.
    pub fn sign(&self, purpose: LinkPurpose, user: &User, expires: DateTime<Utc>) -> String {
        let payload = format!(
            "{}.{}.{}.{}",
            purpose.tag(),
            user.id.as_uuid().simple(),
            expires.timestamp(),
            purpose.stamp(user)
        );
        let signature = self.signature(&payload);
        format!("{payload}.{signature}")
    }

    /// The account a well-signed, unexpired `token` for `purpose` names, and its stamp (still
    /// to compare with the account as the write reads it).
    pub fn open(
        &self,
        purpose: LinkPurpose,
        token: &str,
        now: DateTime<Utc>,
    ) -> Result<(UserId, String)> {
        let (payload, signature) = token.rsplit_once('.').ok_or(Error::InvalidLink)?;
        // Compared in constant time: the MAC's own check.
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.key).expect("any key length");
        mac.update(payload.as_bytes());
        let given = URL_SAFE_NO_PAD
            .decode(signature)
            .map_err(|_| Error::InvalidLink)?;
        if mac.verify_slice(&given).is_err() {
            return Err(Error::InvalidLink);
        }
        let parts: Vec<&str> = payload.split('.').collect();
        let [tag, user, expires, stamp] = parts[..] else {
            return Err(Error::InvalidLink);
        };
        let expires: i64 = expires.parse().map_err(|_| Error::InvalidLink)?;
        if tag != purpose.tag() || now.timestamp() > expires {
            return Err(Error::InvalidLink);
        }
        let user = uuid::Uuid::parse_str(user).map_err(|_| Error::InvalidLink)?;
        Ok((UserId::from_uuid(user), stamp.to_string()))
    }
}

/// Queues `mail`, if any, in `tx`; whether it did.
pub(super) fn queue(tx: &Tx<'_>, mail: Option<EmailMessage>) -> Result<bool, StoreError> {
    match mail {
        Some(mail) => {
            tx.enqueue(Message::Email(mail), Utc::now())?;
            Ok(true)
        }
        None => Ok(false),
    }
}

/// The verification message for `user`'s current address, through `mailer`.
fn verification_letter(mailer: &Mailer, signer: &LinkSigner, user: &User) -> EmailMessage {
    let token = signer.sign(LinkPurpose::Verify, user, Utc::now() + VERIFY_TTL);
    let link = mailer.link(&format!("/verify?token={token}"));
    let letter = letters::verify_email(
        &mailer.link(""),
        user.name.as_str(),
        user.email.as_str(),
        &link,
        VERIFY_TTL.num_hours(),
    );
    mailer.compose(user.email.as_str(), letter)
}

/// The invitation message for `invitation` with its accept `token`, as `tx` reads the team's
/// and the inviter's names.
pub(super) fn invitation_letter(
    tx: &Tx<'_>,
    mailer: &Mailer,
    invitation: &Invitation,
    token: &str,
) -> Result<EmailMessage, StoreError> {
    let team = tx.team_name(invitation.team_id)?;
    let inviter = tx
        .user(invitation.invited_by)?
        .map_or_else(|| "Someone".to_string(), |u| u.name.as_str().to_string());
    let link = mailer.link(&super::accept_path(token));
    let role = format!("{:?}", invitation.role).to_lowercase();
    let expires = invitation
        .expires_at
        .format("%Y-%m-%d %H:%M UTC")
        .to_string();
    let letter = letters::invitation(&mailer.link(""), &inviter, &team, &role, &link, &expires);
    Ok(mailer.compose(invitation.email.as_str(), letter))
}

impl Service {
    fn links(&self) -> LinkSigner {
        LinkSigner::new(&self.config.jwt_secret)
    }

    /// The verification message for `user`, when mail is configured.
    pub(super) fn verification_mail(&self, user: &User) -> Option<EmailMessage> {
        let mailer = self.mailer().ok()?;
        Some(verification_letter(mailer, &self.links(), user))
    }

    /// The invitation message sender, when mail is configured: what `invite` hands its
    /// transaction.
    pub(super) fn invitation_mailer(&self) -> Option<Mailer> {
        self.mailer().ok().cloned()
    }

    /// Whether an account-mail of `purpose` to `user` may go now (at most one a minute).
    fn throttle(&self, purpose: LinkPurpose, user: UserId) -> bool {
        self.outbox
            .throttle((purpose.tag(), user.as_u128()), MAIL_THROTTLE)
    }

    /// Marks the address a verification link was sent to as verified. Works signed in or
    /// not (the link may be opened anywhere); refused (`invalid_link`) when the link is
    /// forged, expired, already used, or the address changed since.
    pub async fn verify_email(&self, token: &str) -> Result<User> {
        let (id, stamp) = self.links().open(LinkPurpose::Verify, token, Utc::now())?;
        let user = self
            .store
            .run(move |s| {
                s.write(|tx| {
                    let user = tx.user(id)?.ok_or(Error::InvalidLink)?;
                    if user.disabled || LinkPurpose::Verify.stamp(&user) != stamp {
                        return Err(Error::InvalidLink);
                    }
                    tx.set_email_verified(id, &user.email, Utc::now())?
                        .ok_or(Error::InvalidLink)
                })
            })
            .await?;
        tracing::info!(user_id = %user.id, "email address verified");
        Ok(user)
    }

    /// Sends the caller a new verification link. `mail_not_configured` (503) without SMTP;
    /// a 400 when the address is verified already. At most one a minute is sent.
    pub async fn resend_verification(&self, auth: &AuthUser) -> Result<()> {
        self.mailer()?;
        let user = self.profile(auth).await?;
        if user.email_verified_at.is_some() {
            return Err(Error::BadRequest(
                "your email address is verified already".into(),
            ));
        }
        if !self.throttle(LinkPurpose::Verify, user.id) {
            return Ok(());
        }
        let mail = self.verification_mail(&user);
        self.store
            .run(move |s| s.write(|tx| queue(tx, mail)))
            .await?;
        self.wake_outbox();
        Ok(())
    }

    /// "Forgot password": queues a reset link to `email` if an enabled account has it. The
    /// answer is the same, and as quick, whether or not it does: the lookup and the queueing
    /// happen after it. `mail_not_configured` (503) without SMTP; 422 for a malformed address.
    pub async fn forgot_password(&self, email: &str) -> Result<()> {
        let mailer = self.mailer()?.clone();
        let email = Email::parse(email).map_err(|e| Error::invalid("email", e))?;
        let service = self.clone();
        tokio::spawn(async move {
            if let Err(e) = service.queue_reset(mailer, email).await {
                tracing::error!(error = %e, "cannot queue a password reset message");
            }
        });
        Ok(())
    }

    async fn queue_reset(&self, mailer: Mailer, email: Email) -> Result<()> {
        let lookup = email.clone();
        let Some(user) = self.store.run(move |s| s.user_by_email(&lookup)).await? else {
            return Ok(());
        };
        if user.disabled || !self.throttle(LinkPurpose::Reset, user.id) {
            return Ok(());
        }
        let signer = self.links();
        let id = user.id;
        let queued = self
            .store
            .run(move |s| {
                s.write(|tx| {
                    // The stamp is taken from the account as this transaction reads it.
                    let Some(user) = tx.user(id)? else {
                        return Ok::<_, Error>(false);
                    };
                    let token = signer.sign(LinkPurpose::Reset, &user, Utc::now() + RESET_TTL);
                    let link = mailer.link(&format!("/reset-password?token={token}"));
                    let letter = letters::password_reset(
                        &mailer.link(""),
                        user.name.as_str(),
                        user.email.as_str(),
                        &link,
                    );
                    Ok(queue(
                        tx,
                        Some(mailer.compose(user.email.as_str(), letter)),
                    )?)
                })
            })
            .await?;
        if queued {
            tracing::info!(user_id = %id, "password reset link queued");
            self.wake_outbox();
        }
        Ok(())
    }

    /// Sets a new password from a reset link and ends every session of the account (their
    /// WebSockets close). The link is single use: the new password changes its stamp.
    /// Receiving the link proves the address, so it counts as verified too.
    pub async fn reset_password(&self, token: &str, password: &str) -> Result<()> {
        let mut v = Validator::default();
        let password = v.check("password", Password::parse(password));
        v.finish().map_err(Error::Validation)?;
        let password = password.expect("validated");
        let (id, stamp) = self.links().open(LinkPurpose::Reset, token, Utc::now())?;
        // Checked before the (slow) hash too, so a used link answers at once.
        let current = self.store.run(move |s| s.user(id)).await?;
        if current.is_none_or(|u| u.disabled || LinkPurpose::Reset.stamp(&u) != stamp) {
            return Err(Error::InvalidLink);
        }
        let hash = self.passwords.hash(&password).await?;
        self.store
            .run(move |s| {
                s.write(|tx| {
                    let user = tx.user(id)?.ok_or(Error::InvalidLink)?;
                    if user.disabled || LinkPurpose::Reset.stamp(&user) != stamp {
                        return Err(Error::InvalidLink);
                    }
                    let changes = UserChanges {
                        password_hash: Some(hash),
                        ..UserChanges::default()
                    };
                    let now = Utc::now();
                    tx.update_user(id, changes, None, now)?;
                    tx.set_email_verified(id, &user.email, now)?;
                    Ok(())
                })
            })
            .await?;
        tracing::info!(user_id = %id, "password reset by mail; every session ended");
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::user::PasswordHash;
    use crate::domain::{Role, UserName};

    fn user() -> User {
        User::new(
            Email::parse("a@example.com").unwrap(),
            UserName::parse("A").unwrap(),
            PasswordHash::new("$2b$04$abc".into()),
            Role::User,
            Utc::now(),
        )
    }

    #[test]
    fn links_open_once_until_they_expire_and_only_for_their_purpose() {
        let signer = LinkSigner::new(b"0123456789abcdef0123456789abcdef");
        let mut user = user();
        let now = Utc::now();
        let token = signer.sign(LinkPurpose::Reset, &user, now + RESET_TTL);
        let (id, stamp) = signer.open(LinkPurpose::Reset, &token, now).unwrap();
        assert_eq!(id, user.id);
        assert_eq!(stamp, LinkPurpose::Reset.stamp(&user));
        let expired = now + RESET_TTL + chrono::Duration::seconds(1);
        assert!(matches!(
            signer.open(LinkPurpose::Reset, &token, expired),
            Err(Error::InvalidLink)
        ));
        assert!(signer.open(LinkPurpose::Verify, &token, now).is_err());
        let other = LinkSigner::new(b"another secret of enough length!!");
        assert!(other.open(LinkPurpose::Reset, &token, now).is_err());
        let tampered = token.replace(
            &format!(".{}.", (now + RESET_TTL).timestamp()),
            &format!(".{}.", (now + RESET_TTL).timestamp() + 9999),
        );
        assert!(signer.open(LinkPurpose::Reset, &tampered, now).is_err());
        // Using it changes the password: the stamp no longer matches.
        user.password_hash = PasswordHash::new("$2b$04$new".into());
        assert_ne!(stamp, LinkPurpose::Reset.stamp(&user));
        // A verify stamp changes once verified, and with the address.
        let before = LinkPurpose::Verify.stamp(&user);
        user.email_verified_at = Some(now);
        assert_ne!(before, LinkPurpose::Verify.stamp(&user));
    }
}
