//! A browser-like client for the web app's server-side tests: it keeps the session cookie,
//! sends the CSRF token and a same-origin `Origin` on unsafe requests, and never follows
//! redirects (tests look at them).

use reqwest::StatusCode;
use reqwest::header::HeaderMap;

use super::{PASSWORD, TestServer};

pub struct WebClient {
    pub client: reqwest::Client,
    pub base: String,
    pub cookie: Option<String>,
    pub csrf: Option<String>,
}

/// A page as the tests see it.
#[derive(Debug)]
pub struct Page {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub html: String,
}

impl Page {
    pub fn location(&self) -> &str {
        self.headers
            .get("location")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }

    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }

    /// The value of the first `name="..." content="..."` / `value="..."` after `marker`.
    pub fn attribute_after(&self, marker: &str, attribute: &str) -> Option<String> {
        let start = self.html.find(marker)?;
        let rest = &self.html[start..];
        let key = format!("{attribute}=\"");
        let from = rest.find(&key)? + key.len();
        let to = rest[from..].find('"')?;
        Some(rest[from..from + to].to_string())
    }
}

/// The `name=value` of a `Set-Cookie` header for `name`, if the response sets one.
pub fn set_cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with(&format!("{name}=")))
}

impl WebClient {
    pub fn new(server: &TestServer) -> Self {
        Self {
            client: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            base: server.base.clone(),
            cookie: None,
            csrf: None,
        }
    }

    fn origin(&self) -> String {
        self.base.trim_end_matches('/').to_string()
    }

    async fn page(&mut self, response: reqwest::Response) -> Page {
        let status = response.status();
        let headers = response.headers().clone();
        if let Some(cookie) = set_cookie(&headers, "tasker_session") {
            let pair = cookie.split(';').next().unwrap().to_string();
            self.cookie = (!pair.ends_with('=')).then_some(pair);
        }
        let html = response.text().await.unwrap();
        let page = Page {
            status,
            headers,
            html,
        };
        if let Some(token) = page.attribute_after("name=\"csrf-token\"", "content") {
            self.csrf = Some(token);
        }
        page
    }

    pub async fn get(&mut self, path: &str) -> Page {
        let mut request = self.client.get(format!("{}{path}", self.base));
        if let Some(cookie) = &self.cookie {
            request = request.header("cookie", cookie);
        }
        let response = request.send().await.unwrap();
        self.page(response).await
    }

    /// Posts a form as a page of this site would: same-origin, with the CSRF token.
    pub async fn post(&mut self, path: &str, fields: &[(&str, &str)]) -> Page {
        let mut fields: Vec<(&str, &str)> = fields.to_vec();
        let token = self.csrf.clone();
        if let Some(token) = &token {
            fields.push(("csrf", token));
        }
        self.post_raw(
            path,
            &fields,
            &[
                ("origin", &self.origin()),
                ("sec-fetch-site", "same-origin"),
            ],
        )
        .await
    }

    /// Posts exactly these fields with exactly these extra headers (no token added).
    pub async fn post_raw(
        &mut self,
        path: &str,
        fields: &[(&str, &str)],
        headers: &[(&str, &str)],
    ) -> Page {
        let mut request = self
            .client
            .post(format!("{}{path}", self.base))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(serde_urlencoded::to_string(fields).unwrap());
        if let Some(cookie) = &self.cookie {
            request = request.header("cookie", cookie);
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = request.send().await.unwrap();
        self.page(response).await
    }

    /// Registers through the form and keeps the session; returns the email.
    pub async fn register(&mut self, name: &str) -> String {
        let email = format!("web-{}@example.com", uuid::Uuid::now_v7().simple());
        let page = self
            .post(
                "/register",
                &[("name", name), ("email", &email), ("password", PASSWORD)],
            )
            .await;
        assert_eq!(
            page.status,
            StatusCode::SEE_OTHER,
            "register: {}",
            page.html
        );
        assert!(self.cookie.is_some(), "a session cookie is set");
        // Load a page to learn the CSRF token.
        let home = self.get("/").await;
        assert_eq!(home.status, StatusCode::OK, "{}", home.html);
        email
    }
}
