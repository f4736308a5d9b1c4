//! The pages behind the links tasker mails (issue 17): `/verify` (confirms the address the
//! link was sent to and says so), `/forgot-password` (asks for a reset link) and
//! `/reset-password` (sets the new password from the link), and `POST /verify/resend` (the
//! profile's "send a new link"). Each calls the same service methods as the JSON API.

use askama::Template;
use poem::web::{Data, Form, Query};
use poem::{IntoResponse, Request, Response, Route, get, handler, post};
use serde::Deserialize;

use super::error::WebResult;
use super::pages_auth::FormErrors;
use super::session::WebUser;
use super::{Chrome, render, see_other};
use crate::domain::FieldError;
use crate::service::{Error, Service};

pub fn routes(route: Route) -> Route {
    route
        .at("/verify", get(verify_page))
        .at("/verify/resend", post(resend_verification))
        .at("/forgot-password", get(forgot_page).post(submit_forgot))
        .at("/reset-password", get(reset_page).post(submit_reset))
}

/// The frame for a page that visitors and signed-in people both open.
async fn chrome_for(req: &Request, service: &Service) -> WebResult<Chrome> {
    match WebUser::of(req).await {
        Some(user) => Chrome::load(service, user, "").await,
        None => Ok(Chrome::public()),
    }
}

#[derive(Deserialize)]
pub struct TokenQuery {
    #[serde(default)]
    token: String,
}

#[derive(Template)]
#[template(path = "account/verify.html")]
struct VerifyPage {
    chrome: Chrome,
    /// The address confirmed; none when the link was refused.
    verified: Option<String>,
}

/// `GET /verify?token=...`: confirms the address (the link is single use), 400 page when the
/// link is refused.
#[handler]
pub async fn verify_page(
    req: &Request,
    Query(query): Query<TokenQuery>,
    service: Data<&Service>,
) -> WebResult<Response> {
    let outcome = service.verify_email(&query.token).await;
    let chrome = chrome_for(req, &service).await?;
    match outcome {
        Ok(user) => render(&VerifyPage {
            chrome,
            verified: Some(user.email.as_str().to_string()),
        }),
        Err(Error::InvalidLink) => Ok(render(&VerifyPage {
            chrome,
            verified: None,
        })?
        .with_status(poem::http::StatusCode::BAD_REQUEST)
        .into_response()),
        Err(other) => Err(other.into()),
    }
}

/// `POST /verify/resend`: mails a new verification link to the signed-in account.
#[handler]
pub async fn resend_verification(user: WebUser, service: Data<&Service>) -> WebResult<Response> {
    service.resend_verification(&user.0).await?;
    Ok(see_other("/profile?saved=verify"))
}

#[derive(Template)]
#[template(path = "account/forgot_password.html")]
struct ForgotPage<'a> {
    chrome: Chrome,
    mail_configured: bool,
    sent: bool,
    email: &'a str,
    errors: FormErrors,
}

#[derive(Deserialize)]
pub struct SentQuery {
    sent: Option<String>,
}

/// `GET /forgot-password[?sent=1]`.
#[handler]
pub async fn forgot_page(
    req: &Request,
    Query(query): Query<SentQuery>,
    service: Data<&Service>,
) -> WebResult<Response> {
    render(&ForgotPage {
        chrome: chrome_for(req, &service).await?,
        mail_configured: service.mail_configured(),
        sent: query.sent.is_some(),
        email: "",
        errors: FormErrors::default(),
    })
}

#[derive(Deserialize)]
pub struct ForgotForm {
    #[serde(default)]
    email: String,
}

/// `POST /forgot-password`: the same answer whether or not the address has an account.
#[handler]
pub async fn submit_forgot(
    req: &Request,
    Form(form): Form<ForgotForm>,
    service: Data<&Service>,
) -> WebResult<Response> {
    let errors = match service.forgot_password(&form.email).await {
        Ok(()) => return Ok(see_other("/forgot-password?sent=1")),
        Err(Error::Validation(fields)) => FormErrors { fields, form: None },
        Err(other) => return Err(other.into()),
    };
    let page = ForgotPage {
        chrome: chrome_for(req, &service).await?,
        mail_configured: service.mail_configured(),
        sent: false,
        email: form.email.trim(),
        errors,
    };
    Ok(render(&page)?
        .with_status(poem::http::StatusCode::UNPROCESSABLE_ENTITY)
        .into_response())
}

#[derive(Template)]
#[template(path = "account/reset_password.html")]
struct ResetPage<'a> {
    chrome: Chrome,
    token: &'a str,
    done: bool,
    errors: FormErrors,
}

#[derive(Deserialize)]
pub struct ResetQuery {
    #[serde(default)]
    token: String,
    done: Option<String>,
}

/// `GET /reset-password?token=...`: the form (the link is checked when it is sent).
#[handler]
pub async fn reset_page(
    req: &Request,
    Query(query): Query<ResetQuery>,
    service: Data<&Service>,
) -> WebResult<Response> {
    let errors = if query.token.is_empty() && query.done.is_none() {
        FormErrors {
            fields: vec![],
            form: Some("This page needs the link from a password reset message.".into()),
        }
    } else {
        FormErrors::default()
    };
    render(&ResetPage {
        chrome: chrome_for(req, &service).await?,
        token: &query.token,
        done: query.done.is_some(),
        errors,
    })
}

#[derive(Deserialize)]
pub struct ResetForm {
    #[serde(default)]
    token: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    confirm: String,
}

/// `POST /reset-password`: sets the password, signs the account out everywhere, and shows
/// the way to sign in. A refused link is a 400 page; a bad password the form again (422).
#[handler]
pub async fn submit_reset(
    req: &Request,
    Form(form): Form<ResetForm>,
    service: Data<&Service>,
) -> WebResult<Response> {
    let result = if form.password != form.confirm {
        Err(Error::Validation(vec![FieldError::new(
            "confirm",
            "does not match the new password",
        )]))
    } else {
        service.reset_password(&form.token, &form.password).await
    };
    let (errors, status) = match result {
        Ok(()) => {
            // This browser's own session ended too: its cookie goes with it.
            return Ok(see_other("/reset-password?done=1"));
        }
        Err(Error::Validation(fields)) => (
            FormErrors { fields, form: None },
            poem::http::StatusCode::UNPROCESSABLE_ENTITY,
        ),
        Err(e @ Error::InvalidLink) => (
            FormErrors {
                fields: vec![],
                form: Some(format!("{}.", super::views::capitalized(&e.to_string()))),
            },
            poem::http::StatusCode::BAD_REQUEST,
        ),
        Err(other) => return Err(other.into()),
    };
    let page = ResetPage {
        chrome: chrome_for(req, &service).await?,
        token: &form.token,
        done: false,
        errors,
    };
    Ok(render(&page)?.with_status(status).into_response())
}
