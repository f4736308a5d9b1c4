//! `/auth/verify` and `/auth/password`: confirming an address and resetting a forgotten
//! password from the links tasker mails.

use poem::web::Data;
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi};

use super::error::ApiResult;
use super::security::BearerAuth;
use super::spec::{Documented, OperationErrors};
use super::text::Text;
use super::users::UserBody;
use super::{ApiTags, NoContent};
use crate::domain::user::{EMAIL_MAX_CHARS, PASSWORD_MAX_BYTES, PASSWORD_MIN_CHARS};
use crate::service::Service;

/// What the answer to a forgotten password says, whatever the address.
pub const FORGOT_ANSWER: &str = "If an account has this address, a link to reset its password is on its way. It works once, for 1 hour.";

#[derive(Object)]
#[oai(deny_unknown_fields)]
pub struct VerifyEmailRequest {
    /// The `token` of the link in the verification message (`/verify?token=...`).
    #[oai(write_only)]
    pub token: Text<1, 400>,
}

#[derive(Object)]
#[oai(deny_unknown_fields)]
pub struct ForgotPasswordRequest {
    /// The address of the account.
    pub email: Text<1, EMAIL_MAX_CHARS>,
}

#[derive(Object)]
#[oai(deny_unknown_fields)]
pub struct ResetPasswordRequest {
    /// The `token` of the link in the reset message (`/reset-password?token=...`).
    #[oai(write_only)]
    pub token: Text<1, 400>,
    /// The new password: at least 8 characters and at most 72 bytes in UTF-8.
    #[oai(write_only)]
    pub password: Text<PASSWORD_MIN_CHARS, PASSWORD_MAX_BYTES>,
}

/// A request to send mail was taken.
#[derive(Object)]
pub struct MailQueued {
    /// What happens next, for people.
    pub message: String,
}

#[derive(ApiResponse)]
pub enum QueuedResponse {
    /// Taken: the message (if any) is queued and sent shortly.
    #[oai(status = 202)]
    Accepted(Json<MailQueued>),
}

pub struct MailApi;

#[OpenApi(prefix_path = "/auth", tag = "ApiTags::Auth")]
impl MailApi {
    /// Confirm my email address
    ///
    /// Consumes the token of a verification link: the account's address becomes `verified`.
    /// Needs no sign-in (the link may be opened on another device). A forged, expired
    /// (48 hours), already used token, or one for an address changed since, gets 400
    /// `invalid_link`.
    #[oai(path = "/verify", method = "post", operation_id = "verifyEmail")]
    async fn verify(
        &self,
        service: Data<&Service>,
        body: Json<VerifyEmailRequest>,
    ) -> ApiResult<Json<UserBody>> {
        Ok(Json(service.verify_email(&body.0.token.0).await?.into()))
    }

    /// Send me a new verification link
    ///
    /// Mails a new verification link to my address (at most one a minute; more are
    /// accepted and dropped). 400 when the address is verified already; 503
    /// `mail_not_configured` when the server sends no mail.
    #[oai(
        path = "/verify/resend",
        method = "post",
        operation_id = "resendVerification"
    )]
    async fn resend(&self, service: Data<&Service>, auth: BearerAuth) -> ApiResult<QueuedResponse> {
        service.resend_verification(&auth.0).await?;
        Ok(QueuedResponse::Accepted(Json(MailQueued {
            message: "A new verification link is on its way.".into(),
        })))
    }

    /// Forgot my password
    ///
    /// Mails a single-use link to reset the password (valid 1 hour) if an account has this
    /// address. The answer is the same 202 whether or not one does. 503
    /// `mail_not_configured` when the server sends no mail (ask its admin:
    /// `tasker user reset-password`).
    #[oai(
        path = "/password/forgot",
        method = "post",
        operation_id = "forgotPassword"
    )]
    async fn forgot(
        &self,
        service: Data<&Service>,
        body: Json<ForgotPasswordRequest>,
    ) -> ApiResult<QueuedResponse> {
        service.forgot_password(&body.0.email.0).await?;
        Ok(QueuedResponse::Accepted(Json(MailQueued {
            message: FORGOT_ANSWER.into(),
        })))
    }

    /// Reset my password
    ///
    /// Sets a new password with the token of a reset link and signs the account out
    /// everywhere (every session ends, its WebSockets close). The link works once; a
    /// forged, expired or used one gets 400 `invalid_link`.
    #[oai(
        path = "/password/reset",
        method = "post",
        operation_id = "resetPassword"
    )]
    async fn reset(
        &self,
        service: Data<&Service>,
        body: Json<ResetPasswordRequest>,
    ) -> ApiResult<NoContent> {
        service
            .reset_password(&body.0.token.0, &body.0.password.0)
            .await?;
        Ok(NoContent::Done)
    }
}

/// Errors of these operations beyond those their shape implies (see `spec.rs`).
impl Documented for MailApi {
    const ERRORS: &'static [OperationErrors] = &[
        ("verifyEmail", &[400, 422]),
        ("resendVerification", &[400, 404, 503]),
        ("forgotPassword", &[422, 503]),
        ("resetPassword", &[400, 422, 503]),
    ];
}
