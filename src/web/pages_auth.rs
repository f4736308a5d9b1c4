//! Sign in, register, the first account's set-up, and sign out.

use askama::Template;
use poem::web::{Data, Form, Query};
use poem::{IntoResponse, Request, Response, handler};
use serde::Deserialize;

use super::error::WebResult;
use super::session::{self, WebUser, safe_next};
use super::views::capitalized;
use super::{Chrome, Settings, render, see_other};
use crate::config::Registration as Mode;
use crate::domain::FieldError;
use crate::service::{
    AuthError, BrowserSession, ClientInfo, Credentials, Error, Registration, Service,
};

/// Form errors: per field, and for the form as a whole.
#[derive(Default)]
pub struct FormErrors {
    pub fields: Vec<FieldError>,
    pub form: Option<String>,
}

impl FormErrors {
    fn of_form(message: impl Into<String>) -> Self {
        Self {
            fields: vec![],
            form: Some(message.into()),
        }
    }

    /// The message for `field`, if it has one.
    pub fn field(&self, field: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|e| e.field == field)
            .map(|e| e.message.as_str())
    }
}

#[derive(Deserialize)]
pub struct NextQuery {
    next: Option<String>,
}

#[derive(Template)]
#[template(path = "signin.html")]
struct SignInPage<'a> {
    chrome: Chrome,
    email: &'a str,
    next: &'a str,
    errors: FormErrors,
    can_register: bool,
}

impl SignInPage<'_> {
    /// The registration page, coming back to `next` too (an invitation's accept page).
    fn register_href(&self) -> String {
        register_href(self.next)
    }
}

fn register_href(next: &str) -> String {
    if next == "/" {
        "/register".into()
    } else {
        format!("/register?next={}", super::error::urlencode(next))
    }
}

#[derive(Template)]
#[template(path = "register.html")]
struct RegisterPage<'a> {
    chrome: Chrome,
    name: &'a str,
    email: &'a str,
    errors: FormErrors,
    mode: &'static str,
    /// The first account's set-up rather than a plain registration.
    setup: bool,
    /// Where to go once registered (an invitation's accept page carries its token).
    next: &'a str,
}

impl RegisterPage<'_> {
    /// Whether the page comes from an invitation's accept link (which registers under
    /// invite-only registration).
    fn invited(&self) -> bool {
        super::pages_teams::token_in_accept_path(self.next).is_some()
    }

    fn signin_href(&self) -> String {
        if self.next == "/" {
            "/signin".into()
        } else {
            format!("/signin?next={}", super::error::urlencode(self.next))
        }
    }
}

#[derive(Deserialize)]
pub struct SignInForm {
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
    next: Option<String>,
}

#[derive(Deserialize)]
pub struct RegisterForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
    next: Option<String>,
}

fn mode_name(mode: Mode) -> &'static str {
    match mode {
        Mode::Open => "open",
        Mode::InviteOnly => "invite-only",
        Mode::Closed => "closed",
    }
}

fn client_info(req: &Request) -> ClientInfo {
    ClientInfo {
        user_agent: req.header("user-agent").map(str::to_owned),
        ip: req
            .extensions()
            .get::<crate::api::ClientAddress>()
            .map(|client| client.0)
            .or_else(|| req.remote_addr().as_socket_addr().map(|a| a.ip()))
            .map(|ip| ip.to_string()),
    }
}

/// Signed in: the cookie is set and the browser goes on to `next`.
fn signed_in(req: &Request, settings: &Settings, session: &BrowserSession, next: &str) -> Response {
    let cookie = session::set_cookie(session, session::over_https(req, &settings.proxies));
    see_other(next)
        .with_header("set-cookie", cookie)
        .into_response()
}

/// `GET /signin`.
#[handler]
pub async fn signin_page(
    req: &Request,
    Query(query): Query<NextQuery>,
    service: Data<&Service>,
    settings: Data<&Settings>,
) -> WebResult<Response> {
    let next = safe_next(query.next.as_deref());
    if WebUser::of(req).await.is_some() {
        return Ok(see_other(next));
    }
    if service.needs_setup().await? {
        return Ok(see_other("/setup"));
    }
    render(&SignInPage {
        chrome: Chrome::public(),
        email: "",
        next,
        errors: FormErrors::default(),
        can_register: settings.registration != Mode::Closed,
    })
}

/// `POST /signin`.
#[handler]
pub async fn submit_signin(
    req: &Request,
    Form(form): Form<SignInForm>,
    service: Data<&Service>,
    settings: Data<&Settings>,
) -> WebResult<Response> {
    let next = safe_next(form.next.as_deref());
    let credentials = Credentials {
        email: form.email.clone(),
        password: form.password,
    };
    let errors = match service.browser_login(credentials, client_info(req)).await {
        Ok(session) => return Ok(signed_in(req, &settings, &session, next)),
        // A disabled account gets this answer too, right password or not (no oracle).
        Err(Error::Unauthenticated(AuthError::InvalidCredentials)) => {
            FormErrors::of_form("The email or password is incorrect.")
        }
        Err(other) => return Err(other.into()),
    };
    let page = SignInPage {
        chrome: Chrome::public(),
        email: form.email.trim(),
        next,
        errors,
        can_register: settings.registration != Mode::Closed,
    };
    Ok(render(&page)?
        .with_status(poem::http::StatusCode::UNPROCESSABLE_ENTITY)
        .into_response())
}

/// `GET /register`.
#[handler]
pub async fn register_page(
    req: &Request,
    Query(query): Query<NextQuery>,
    service: Data<&Service>,
    settings: Data<&Settings>,
) -> WebResult<Response> {
    let next = safe_next(query.next.as_deref());
    if WebUser::of(req).await.is_some() {
        return Ok(see_other(next));
    }
    if service.needs_setup().await? {
        return Ok(see_other("/setup"));
    }
    render(&RegisterPage {
        chrome: Chrome::public(),
        name: "",
        email: "",
        errors: FormErrors::default(),
        mode: mode_name(settings.registration),
        setup: false,
        next,
    })
}

/// `POST /register`.
#[handler]
pub async fn submit_register(
    req: &Request,
    Form(form): Form<RegisterForm>,
    service: Data<&Service>,
    settings: Data<&Settings>,
) -> WebResult<Response> {
    create_account(req, form, &service, &settings, false).await
}

/// `GET /setup`: the first account of a fresh server, which becomes its admin.
#[handler]
pub async fn setup_page(
    req: &Request,
    service: Data<&Service>,
    settings: Data<&Settings>,
) -> WebResult<Response> {
    if !service.needs_setup().await? {
        let signed_in = WebUser::of(req).await.is_some();
        return Ok(see_other(if signed_in { "/" } else { "/signin" }));
    }
    render(&RegisterPage {
        chrome: Chrome::public(),
        name: "",
        email: "",
        errors: FormErrors::default(),
        mode: mode_name(settings.registration),
        setup: true,
        next: "/",
    })
}

/// `POST /setup`.
#[handler]
pub async fn submit_setup(
    req: &Request,
    Form(form): Form<RegisterForm>,
    service: Data<&Service>,
    settings: Data<&Settings>,
) -> WebResult<Response> {
    if !service.needs_setup().await? {
        return Ok(see_other("/signin"));
    }
    create_account(req, form, &service, &settings, true).await
}

async fn create_account(
    req: &Request,
    form: RegisterForm,
    service: &Service,
    settings: &Settings,
    setup: bool,
) -> WebResult<Response> {
    let next = if setup {
        "/"
    } else {
        safe_next(form.next.as_deref())
    };
    let input = Registration {
        email: form.email.clone(),
        name: form.name.clone(),
        password: form.password,
        invitation_token: super::pages_teams::token_in_accept_path(next).map(str::to_owned),
    };
    let errors = match service.browser_register(input, client_info(req)).await {
        Ok(session) => return Ok(signed_in(req, settings, &session, next)),
        Err(Error::Validation(fields)) => FormErrors { fields, form: None },
        Err(e @ (Error::EmailTaken | Error::RegistrationClosed | Error::InvitationRequired)) => {
            FormErrors::of_form(format!("{}.", capitalized(&e.to_string())))
        }
        Err(other) => return Err(other.into()),
    };
    let page = RegisterPage {
        chrome: Chrome::public(),
        name: form.name.trim(),
        email: form.email.trim(),
        errors,
        mode: mode_name(settings.registration),
        setup,
        next,
    };
    Ok(render(&page)?
        .with_status(poem::http::StatusCode::UNPROCESSABLE_ENTITY)
        .into_response())
}

/// `POST /signout`: ends this browser's session and clears its cookie.
#[handler]
pub async fn signout(
    req: &Request,
    user: WebUser,
    service: Data<&Service>,
    settings: Data<&Settings>,
) -> WebResult<Response> {
    service.logout(&user.0).await?;
    let cookie = session::clear_cookie(session::over_https(req, &settings.proxies));
    Ok(see_other("/signin")
        .with_header("set-cookie", cookie)
        .into_response())
}
