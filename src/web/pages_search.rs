//! Search: `/search?q=` finds tasks as you type. The input asks htmx for the same URL and swaps
//! the results region (and pushes the URL, so a search can be reloaded and shared); without
//! script it is a plain GET form. Filters (status, project) work as in the API.
//!
//! The index gives highlights as text with `<mark>` around what matched. They are taken apart
//! here into plain and marked pieces, and the template escapes every piece again, so nothing
//! from the index ever reaches the page as HTML.

use askama::Template;
use chrono::Utc;
use poem::web::Data;
use poem::{Request, Response, Route, get, handler};
use uuid::Uuid;

use super::error::{WebError, WebResult};
use super::session::WebUser;
use super::views::{Choice, TaskRow, status_key, status_label};
use super::{Chrome, render};
use crate::domain::ProjectId;
use crate::domain::task::TaskStatus;
use crate::service::{AuthUser, Error, SearchHit, SearchQuery, Service};

/// Results per page.
const PAGE_SIZE: u32 = 20;
/// Projects offered in the project filter.
const MAX_PROJECTS: u32 = 200;
/// How much of a description shows when the match was elsewhere (title, comments).
const PLAIN_SNIPPET_CHARS: usize = 160;

pub fn routes(route: Route) -> Route {
    route.at("/search", get(search_page))
}

/// A piece of highlighted text.
#[derive(Debug, PartialEq, Eq)]
pub struct Piece {
    pub text: String,
    pub marked: bool,
}

/// Takes the index's highlight (`<mark>` around matches, the rest HTML-escaped) apart into
/// plain text pieces. Only `<mark>` and `</mark>` and the five entities the index writes are
/// understood; anything else stays literal text, to be escaped when shown.
pub fn pieces(highlight: &str) -> Vec<Piece> {
    let mut out = Vec::new();
    let mut rest = highlight;
    let mut marked = false;
    while !rest.is_empty() {
        let tag = if marked { "</mark>" } else { "<mark>" };
        let (text, next) = match rest.find(tag) {
            Some(at) => (&rest[..at], &rest[at + tag.len()..]),
            None => (rest, ""),
        };
        if !text.is_empty() {
            out.push(Piece {
                text: unescape(text),
                marked,
            });
        }
        rest = next;
        marked = !marked;
    }
    out
}

fn unescape(text: &str) -> String {
    const ENTITIES: [(&str, char); 5] = [
        ("&amp;", '&'),
        ("&lt;", '<'),
        ("&gt;", '>'),
        ("&quot;", '"'),
        ("&#39;", '\''),
    ];
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('&') {
        out.push_str(&rest[..at]);
        rest = &rest[at..];
        match ENTITIES.iter().find(|(name, _)| rest.starts_with(name)) {
            Some((name, c)) => {
                out.push(*c);
                rest = &rest[name.len()..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

fn plain(text: &str) -> Vec<Piece> {
    vec![Piece {
        text: text.to_string(),
        marked: false,
    }]
}

/// What the search URL asks for.
#[derive(Debug, Default, PartialEq)]
struct SearchParams {
    q: String,
    statuses: Vec<TaskStatus>,
    project: Option<Uuid>,
    cursor: Option<String>,
}

impl SearchParams {
    fn parse(query: Option<&str>) -> WebResult<Self> {
        let pairs: Vec<(String, String)> = serde_urlencoded::from_str(query.unwrap_or(""))
            .map_err(|_| WebError::BadRequest("The search's address could not be read.".into()))?;
        let mut params = Self::default();
        for (key, value) in pairs {
            match key.as_str() {
                "q" => params.q = value,
                "status" => {
                    for part in value.split(',').filter(|p| !p.trim().is_empty()) {
                        let status = TaskStatus::parse(part).map_err(|e| {
                            WebError::Invalid(format!("The status filter is not valid: {e}."))
                        })?;
                        if !params.statuses.contains(&status) {
                            params.statuses.push(status);
                        }
                    }
                }
                "project" | "project_id" if !value.is_empty() => {
                    params.project = Some(Uuid::parse_str(value.trim()).map_err(|_| {
                        WebError::Invalid("The project filter is not a project.".into())
                    })?)
                }
                "cursor" if !value.is_empty() => params.cursor = Some(value),
                _ => {}
            }
        }
        params.statuses.sort_by_key(|s| *s as u8);
        Ok(params)
    }

    /// `/search` with these parameters, and `cursor` if given.
    fn url(&self, cursor: Option<&str>) -> String {
        let mut pairs: Vec<(&str, String)> = vec![("q", self.q.clone())];
        pairs.extend(
            self.statuses
                .iter()
                .map(|s| ("status", status_key(*s).to_string())),
        );
        pairs.extend(self.project.map(|p| ("project", p.to_string())));
        pairs.extend(cursor.map(|c| ("cursor", c.to_string())));
        format!(
            "/search?{}",
            serde_urlencoded::to_string(pairs).unwrap_or_default()
        )
    }
}

/// One result as shown.
pub struct HitView {
    pub task: TaskRow,
    pub title: Vec<Piece>,
    pub snippet: Vec<Piece>,
    pub project: Option<String>,
}

#[derive(Template)]
#[template(path = "search.html")]
struct SearchPage {
    chrome: Chrome,
    q: String,
    statuses: Vec<Choice>,
    projects: Vec<Choice>,
    /// A search ran (the query was not empty).
    searched: bool,
    hits: Vec<HitView>,
    /// Why there are no results to show (a query without a word, the index rebuilding).
    message: Option<String>,
    next_url: Option<String>,
}

/// The results of a search, or the message that takes their place.
struct Outcome {
    hits: Vec<SearchHit>,
    next_cursor: Option<String>,
    message: Option<String>,
}

impl Outcome {
    fn message(text: impl Into<String>) -> Self {
        Self {
            hits: vec![],
            next_cursor: None,
            message: Some(text.into()),
        }
    }
}

/// Runs the search; the errors a person can act on become messages, never error pages.
async fn run(service: &Service, auth: &AuthUser, params: &SearchParams) -> WebResult<Outcome> {
    let query = SearchQuery {
        q: Some(params.q.clone()),
        status: (!params.statuses.is_empty()).then(|| {
            let keys: Vec<&str> = params.statuses.iter().map(|s| status_key(*s)).collect();
            keys.join(",")
        }),
        project_id: params.project.map(ProjectId::from_uuid),
        limit: Some(PAGE_SIZE),
        cursor: params.cursor.clone(),
        ..SearchQuery::default()
    };
    match service.search_tasks(auth, query).await {
        Ok(page) => Ok(Outcome {
            hits: page.items,
            next_cursor: page.next_cursor.map(|c| c.encode()),
            message: None,
        }),
        Err(Error::Validation(fields)) => Ok(Outcome::message(
            match fields.iter().find(|f| f.field == "q") {
                Some(f) if f.message.contains("word") => {
                    "Type at least one word or number to search for.".to_string()
                }
                Some(f) => format!("This search cannot be run: it {}.", f.message),
                None => "This page of results is no longer available: search again.".to_string(),
            },
        )),
        Err(Error::IndexRebuilding { .. }) => Ok(Outcome::message(
            "Search is being rebuilt; try again shortly.",
        )),
        Err(Error::Busy) => Ok(Outcome::message("The server is busy; try again shortly.")),
        Err(Error::NotFound(_)) => Ok(Outcome::message(
            "That project does not exist, or you cannot see it.",
        )),
        Err(other) => Err(other.into()),
    }
}

fn hit_view(
    hit: SearchHit,
    projects: &[(ProjectId, String)],
    now: chrono::DateTime<Utc>,
) -> HitView {
    let task = &hit.task.task;
    let snippet = match hit.description {
        Some(marked) => pieces(&marked),
        None if task.description.chars().count() > PLAIN_SNIPPET_CHARS => {
            let cut: String = task.description.chars().take(PLAIN_SNIPPET_CHARS).collect();
            plain(&format!("{}…", cut.trim_end()))
        }
        None => plain(&task.description),
    };
    HitView {
        title: hit
            .title
            .as_deref()
            .map_or_else(|| plain(task.title.as_str()), pieces),
        snippet,
        project: task
            .project_id
            .and_then(|p| projects.iter().find(|(id, _)| *id == p))
            .map(|(_, name)| name.clone()),
        task: TaskRow::new(task, now),
    }
}

/// `GET /search?q=&status=&project=`: the search page, or (for htmx) the same page whose
/// results region replaces the old one.
#[handler]
pub async fn search_page(
    req: &Request,
    user: WebUser,
    service: Data<&Service>,
) -> WebResult<Response> {
    let params = SearchParams::parse(req.uri().query())?;
    let auth = user.0.clone();
    let projects: Vec<(ProjectId, String)> = service
        .projects(&auth, None, None, Some(MAX_PROJECTS))
        .await?
        .items
        .into_iter()
        .map(|p| (p.project.id, p.project.name.as_str().to_string()))
        .collect();
    let searched = !params.q.trim().is_empty();
    let outcome = if searched {
        run(&service, &auth, &params).await?
    } else {
        Outcome::message("")
    };
    let now = Utc::now();
    render(&SearchPage {
        chrome: Chrome::load(&service, user, "search").await?,
        q: params.q.clone(),
        statuses: TaskStatus::ALL
            .iter()
            .map(|s| {
                Choice::new(
                    status_key(*s),
                    status_label(*s),
                    params.statuses.contains(s),
                )
            })
            .collect(),
        projects: projects
            .iter()
            .map(|(id, name)| {
                let selected = params.project == Some(id.as_uuid());
                Choice::new(id.as_uuid().to_string(), name.clone(), selected)
            })
            .collect(),
        searched,
        hits: outcome
            .hits
            .into_iter()
            .map(|hit| hit_view(hit, &projects, now))
            .collect(),
        message: outcome.message.filter(|m| !m.is_empty()),
        next_url: outcome.next_cursor.map(|c| params.url(Some(&c))),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn piece(text: &str, marked: bool) -> Piece {
        Piece {
            text: text.into(),
            marked,
        }
    }

    #[test]
    fn highlights_become_plain_pieces() {
        assert_eq!(
            pieces("<mark>Deploy</mark> &lt;b&gt;the&lt;/b&gt; <mark>DEPLOY</mark> &amp; co"),
            vec![
                piece("Deploy", true),
                piece(" <b>the</b> ", false),
                piece("DEPLOY", true),
                piece(" & co", false),
            ]
        );
        assert_eq!(
            pieces("…a &quot;q&quot; &#39;x&#39; &unknown; <mark>z</mark>…"),
            vec![
                piece("…a \"q\" 'x' &unknown; ", false),
                piece("z", true),
                piece("…", false),
            ]
        );
        // Anything but <mark> is text, whatever it looks like.
        assert_eq!(
            pieces("<script>x</script>"),
            vec![piece("<script>x</script>", false)]
        );
        assert_eq!(pieces("<mark>open"), vec![piece("open", true)]);
        assert!(pieces("").is_empty());
    }

    #[test]
    fn search_parameters_round_trip() {
        let project = Uuid::now_v7();
        let params = SearchParams::parse(Some(&format!(
            "q=a+%26+b&status=done,todo&project={project}&cursor="
        )))
        .unwrap();
        assert_eq!(params.q, "a & b");
        assert_eq!(params.statuses, vec![TaskStatus::Todo, TaskStatus::Done]);
        let url = params.url(Some("next"));
        let again = SearchParams::parse(url.split_once('?').map(|(_, q)| q)).unwrap();
        assert_eq!(again.cursor.as_deref(), Some("next"));
        assert_eq!(again.q, params.q);
        assert!(SearchParams::parse(Some("status=nope")).is_err());
        assert!(SearchParams::parse(Some("project=nope")).is_err());
    }
}
