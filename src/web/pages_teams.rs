//! Teams: my teams and the invitations waiting for me (`/teams`), one team's members, roles
//! and invitations (`/teams/{id}`), and an invitation's accept page
//! (`/invitations/accept?token=…`, the link an inviter passes on). Every write goes through
//! the service; the page only asks `domain::access` which controls to show, so a member who
//! may not act sees none (and gets the 403 page if they post anyway).

use std::str::FromStr;

use askama::Template;
use poem::web::{Data, Form, Path, Query};
use poem::{IntoResponse, Response, Route, get, handler, post};
use serde::Deserialize;

use super::error::{WebError, WebResult};
use super::pages_auth::FormErrors;
use super::pages_notifications::Stamp;
use super::session::WebUser;
use super::views::capitalized;
use super::{Chrome, render, see_other};
use crate::domain::access::{self, TeamAction};
use crate::domain::team::{Invitation, TeamRole};
use crate::domain::{InvitationId, TeamId, UserId};
use crate::service::{Error, InvitationPreview, NewTeam, Service, TeamPatch};

/// The most members, invitations and teams a page lists.
const LIST_LIMIT: u32 = 200;

pub fn routes(route: Route) -> Route {
    route
        .at("/teams", get(teams_page).post(create_team))
        .at("/teams/:id", get(team_page).post(rename_team))
        .at("/teams/:id/delete", post(delete_team))
        .at("/teams/:id/invite", post(invite))
        .at("/teams/:id/members/:user/role", post(set_role))
        .at("/teams/:id/members/:user/remove", post(remove_member))
        .at("/teams/:id/invitations/:invitation/revoke", post(revoke))
        .at("/invitations/accept", get(accept_page))
        .at("/invitations/:id/accept", post(accept_invitation))
        .at("/invitations/:id/decline", post(decline_invitation))
}

/// An id from the URL; one that cannot be an id names nothing (404).
pub(super) fn parse_id<T: FromStr>(raw: &str) -> WebResult<T> {
    raw.parse().map_err(|_| WebError::NotFound)
}

/// The accept token in a path to the accept page (`/invitations/accept?token=…`), the `next`
/// of a sign-in or registration that started there.
pub(super) fn token_in_accept_path(path: &str) -> Option<&str> {
    let query = path.strip_prefix("/invitations/accept?")?;
    query
        .split('&')
        .find_map(|pair| pair.strip_prefix("token="))
        .filter(|token| !token.is_empty())
}

/// A role as a form sends it.
fn parse_role(raw: &str) -> WebResult<TeamRole> {
    match raw {
        "member" => Ok(TeamRole::Member),
        "admin" => Ok(TeamRole::Admin),
        "owner" => Ok(TeamRole::Owner),
        _ => Err(WebError::BadRequest(
            "Choose member, admin or owner.".into(),
        )),
    }
}

const ROLES: [TeamRole; 3] = [TeamRole::Member, TeamRole::Admin, TeamRole::Owner];

pub struct TeamItem {
    pub id: String,
    pub name: String,
    pub role: &'static str,
}

pub struct InvitationItem {
    pub id: String,
    pub team: Option<String>,
    pub inviter: Option<String>,
    pub email: String,
    pub role: &'static str,
    pub expires: Stamp,
}

impl InvitationItem {
    fn new(invitation: &Invitation) -> Self {
        Self {
            id: invitation.id.to_string(),
            team: None,
            inviter: None,
            email: invitation.email.as_str().to_string(),
            role: invitation.role.as_str(),
            expires: Stamp::new(invitation.expires_at),
        }
    }

    fn of_preview(preview: &InvitationPreview) -> Self {
        Self {
            team: Some(preview.team_name.clone()),
            inviter: Some(preview.inviter_name.clone()),
            ..Self::new(&preview.invitation)
        }
    }
}

#[derive(Template)]
#[template(path = "teams.html")]
struct TeamsPage {
    chrome: Chrome,
    teams: Vec<TeamItem>,
    invitations: Vec<InvitationItem>,
    name: String,
    description: String,
    errors: FormErrors,
}

#[derive(Deserialize)]
pub struct TeamForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    description: String,
}

/// The form errors of a refused write, or the error page for anything else.
fn form_errors(e: Error) -> WebResult<FormErrors> {
    match e {
        Error::Validation(fields) => Ok(FormErrors { fields, form: None }),
        e @ (Error::AlreadyInvited | Error::AlreadyMember | Error::EmailTaken) => Ok(FormErrors {
            fields: vec![],
            form: Some(format!("{}.", capitalized(&e.to_string()))),
        }),
        other => Err(other.into()),
    }
}

pub(super) fn unprocessable(page: &impl Template) -> WebResult<Response> {
    Ok(render(page)?
        .with_status(poem::http::StatusCode::UNPROCESSABLE_ENTITY)
        .into_response())
}

async fn teams_view(
    service: &Service,
    user: WebUser,
    form: TeamForm,
    errors: FormErrors,
) -> WebResult<TeamsPage> {
    let auth = &user.0;
    let teams = service.teams(auth, None, Some(LIST_LIMIT)).await?;
    let invitations = service.my_invitation_previews(auth, LIST_LIMIT).await?;
    Ok(TeamsPage {
        chrome: Chrome::load(service, user, "teams").await?,
        teams: teams
            .items
            .iter()
            .map(|t| TeamItem {
                id: t.team.id.to_string(),
                name: t.team.name.as_str().to_string(),
                role: t.role.as_str(),
            })
            .collect(),
        invitations: invitations.iter().map(InvitationItem::of_preview).collect(),
        name: form.name,
        description: form.description,
        errors,
    })
}

/// `GET /teams`.
#[handler]
pub async fn teams_page(user: WebUser, service: Data<&Service>) -> WebResult<Response> {
    let empty = TeamForm {
        name: String::new(),
        description: String::new(),
    };
    render(&teams_view(&service, user, empty, FormErrors::default()).await?)
}

/// `POST /teams`: a new team, owned by me.
#[handler]
pub async fn create_team(
    user: WebUser,
    service: Data<&Service>,
    Form(form): Form<TeamForm>,
) -> WebResult<Response> {
    let input = NewTeam {
        name: form.name.clone(),
        description: Some(form.description.clone()),
    };
    match service.create_team(&user.0, input, None).await {
        Ok(view) => Ok(see_other(&format!("/teams/{}", view.team.id))),
        Err(e) => {
            let errors = form_errors(e)?;
            unprocessable(&teams_view(&service, user, form, errors).await?)
        }
    }
}

#[derive(Deserialize)]
pub struct AcceptQuery {
    token: Option<String>,
}

#[derive(Template)]
#[template(path = "invitation_accept.html")]
struct AcceptPage {
    chrome: Chrome,
    invitation: InvitationItem,
    token: String,
    /// Who is signed in, so someone on the wrong account notices before answering.
    me: String,
}

/// `GET /invitations/accept?token=…`: the accept link. Signed out, the sign-in (or
/// registration) comes first and comes back here. Opening it claims the invitation for me
/// (from then on it is mine alone, listed on my Teams page); a wrong token, or one someone
/// else claimed, is the 404 page, as for any link that names nothing.
#[handler]
pub async fn accept_page(
    user: WebUser,
    service: Data<&Service>,
    Query(query): Query<AcceptQuery>,
) -> WebResult<Response> {
    let token = query.token.unwrap_or_default();
    let preview = match service.claim_invitation(&user.0, &token).await {
        Ok(preview) => preview,
        Err(Error::AlreadyMember) => {
            return Err(WebError::Invalid(
                "You are already a member of this team: this link is for the person you invite."
                    .into(),
            ));
        }
        Err(e) => return Err(e.into()),
    };
    let chrome = Chrome::load(&service, user, "teams").await?;
    let me = chrome
        .user
        .as_ref()
        .map(|u| u.name.clone())
        .unwrap_or_default();
    render(&AcceptPage {
        chrome,
        invitation: InvitationItem::of_preview(&preview),
        token,
        me,
    })
}

#[derive(Deserialize)]
pub struct AnswerForm {
    /// The accept token, from the accept page (the Teams page answers claimed ones by id).
    token: Option<String>,
}

async fn answer(
    user: WebUser,
    service: &Service,
    id: &str,
    form: AnswerForm,
    accept: bool,
) -> WebResult<Response> {
    let id: InvitationId = parse_id(id)?;
    let token = form.token.filter(|t| !t.is_empty());
    let invitation = service
        .answer_invitation(&user.0, id, token.as_deref(), accept)
        .await?;
    Ok(see_other(&if accept {
        format!("/teams/{}", invitation.team_id)
    } else {
        "/teams".to_string()
    }))
}

/// `POST /invitations/{id}/accept`.
#[handler]
pub async fn accept_invitation(
    user: WebUser,
    service: Data<&Service>,
    Path(id): Path<String>,
    Form(form): Form<AnswerForm>,
) -> WebResult<Response> {
    answer(user, &service, &id, form, true).await
}

/// `POST /invitations/{id}/decline`.
#[handler]
pub async fn decline_invitation(
    user: WebUser,
    service: Data<&Service>,
    Path(id): Path<String>,
    Form(form): Form<AnswerForm>,
) -> WebResult<Response> {
    answer(user, &service, &id, form, false).await
}

pub struct IssuedLink {
    pub email: String,
    pub role: &'static str,
    pub url: String,
}

pub struct MemberItem {
    pub id: String,
    pub name: String,
    pub email: String,
    pub role: &'static str,
    pub me: bool,
    /// The roles I may give this member (empty: no role control).
    pub roles: Vec<&'static str>,
    pub can_remove: bool,
}

#[derive(Template)]
#[template(path = "team.html")]
struct TeamPage {
    chrome: Chrome,
    id: String,
    name: String,
    description: String,
    my_role: &'static str,
    can_manage: bool,
    can_delete: bool,
    members: Vec<MemberItem>,
    more_members: bool,
    invitations: Vec<InvitationItem>,
    /// The roles I may invite with.
    invite_roles: Vec<&'static str>,
    invite_email: String,
    invite_role: String,
    invite_errors: FormErrors,
    /// The accept link of the invitation just made, shown this once (relative to the site).
    issued: Option<IssuedLink>,
    rename_errors: FormErrors,
    /// The name and description in the settings form (what was typed, after a refusal).
    form_name: String,
    form_description: String,
}

async fn team_view(service: &Service, user: WebUser, id: TeamId) -> WebResult<TeamPage> {
    let auth = &user.0;
    let view = service.team(auth, id).await?;
    let role = view.role;
    let members = service.members(auth, id, None, Some(LIST_LIMIT)).await?;
    let can_manage = access::may_in_team(role, TeamAction::Manage);
    let invitations = if can_manage {
        let now = chrono::Utc::now();
        let page = service
            .team_invitations(auth, id, None, Some(LIST_LIMIT))
            .await?;
        page.items
            .iter()
            .filter(|i| i.is_open(now))
            .map(InvitationItem::new)
            .collect()
    } else {
        vec![]
    };
    let member_items = members
        .items
        .iter()
        .map(|(m, u)| {
            let me = m.user_id == auth.user_id;
            let roles: Vec<&'static str> = ROLES
                .into_iter()
                .filter(|r| access::may_set_role(role, m.role, *r))
                .map(TeamRole::as_str)
                .collect();
            MemberItem {
                id: m.user_id.to_string(),
                name: u.name.as_str().to_string(),
                email: u.email.as_str().to_string(),
                role: m.role.as_str(),
                me,
                // A choice of one (the current role) is no choice.
                roles: if roles.len() > 1 { roles } else { vec![] },
                can_remove: access::may_remove_member(role, m.role, me),
            }
        })
        .collect();
    Ok(TeamPage {
        chrome: Chrome::load(service, user, "teams").await?,
        id: id.to_string(),
        name: view.team.name.as_str().to_string(),
        description: view.team.description.clone(),
        my_role: role.as_str(),
        can_manage,
        can_delete: access::may_in_team(role, TeamAction::Delete),
        members: member_items,
        more_members: members.next_cursor.is_some(),
        invitations,
        invite_roles: ROLES
            .into_iter()
            .filter(|r| access::may_invite(role, *r))
            .map(TeamRole::as_str)
            .collect(),
        invite_email: String::new(),
        invite_role: "member".into(),
        invite_errors: FormErrors::default(),
        issued: None,
        rename_errors: FormErrors::default(),
        form_name: view.team.name.as_str().to_string(),
        form_description: view.team.description,
    })
}

/// `GET /teams/{id}`.
#[handler]
pub async fn team_page(
    user: WebUser,
    service: Data<&Service>,
    Path(id): Path<String>,
) -> WebResult<Response> {
    render(&team_view(&service, user, parse_id(&id)?).await?)
}

/// `POST /teams/{id}`: rename or re-describe (owners and admins).
#[handler]
pub async fn rename_team(
    user: WebUser,
    service: Data<&Service>,
    Path(id): Path<String>,
    Form(form): Form<TeamForm>,
) -> WebResult<Response> {
    let id: TeamId = parse_id(&id)?;
    let patch = TeamPatch {
        name: Some(form.name.clone()),
        description: Some(form.description.clone()),
    };
    match service.update_team(&user.0, id, patch, None).await {
        Ok(_) => Ok(see_other(&format!("/teams/{id}"))),
        Err(e) => {
            let errors = form_errors(e)?;
            let mut page = team_view(&service, user, id).await?;
            page.rename_errors = errors;
            page.form_name = form.name;
            page.form_description = form.description;
            unprocessable(&page)
        }
    }
}

/// `POST /teams/{id}/delete` (owners).
#[handler]
pub async fn delete_team(
    user: WebUser,
    service: Data<&Service>,
    Path(id): Path<String>,
) -> WebResult<Response> {
    service.delete_team(&user.0, parse_id(&id)?, None).await?;
    Ok(see_other("/teams"))
}

#[derive(Deserialize)]
pub struct InviteForm {
    #[serde(default)]
    email: String,
    #[serde(default)]
    role: String,
}

/// `POST /teams/{id}/invite`: invites an email with a role (owners and admins). The answer is
/// the team page with the invitation's accept link, shown this once (only its hash is kept),
/// for the inviter to pass on; not a redirect, so the link is never in a URL or a reload.
#[handler]
pub async fn invite(
    user: WebUser,
    service: Data<&Service>,
    Path(id): Path<String>,
    Form(form): Form<InviteForm>,
) -> WebResult<Response> {
    let id: TeamId = parse_id(&id)?;
    let role = parse_role(&form.role)?;
    let errors = match service.invite(&user.0, id, &form.email, role).await {
        Ok(issued) => {
            let mut page = team_view(&service, user, id).await?;
            page.issued = Some(IssuedLink {
                email: issued.invitation.email.as_str().to_string(),
                role: issued.invitation.role.as_str(),
                url: issued.accept_path(),
            });
            return Ok(render(&page)?
                .with_header("cache-control", "no-store")
                .into_response());
        }
        Err(e) => form_errors(e)?,
    };
    let mut page = team_view(&service, user, id).await?;
    page.invite_errors = errors;
    page.invite_email = form.email.trim().to_string();
    page.invite_role = form.role;
    unprocessable(&page)
}

#[derive(Deserialize)]
pub struct RoleForm {
    #[serde(default)]
    role: String,
}

/// `POST /teams/{id}/members/{user}/role`.
#[handler]
pub async fn set_role(
    user: WebUser,
    service: Data<&Service>,
    Path((id, member)): Path<(String, String)>,
    Form(form): Form<RoleForm>,
) -> WebResult<Response> {
    let id: TeamId = parse_id(&id)?;
    let member: UserId = parse_id(&member)?;
    let role = parse_role(&form.role)?;
    service.set_member_role(&user.0, id, member, role).await?;
    Ok(see_other(&format!("/teams/{id}#members")))
}

/// `POST /teams/{id}/members/{user}/remove`: removes a member, or leaves the team.
#[handler]
pub async fn remove_member(
    user: WebUser,
    service: Data<&Service>,
    Path((id, member)): Path<(String, String)>,
) -> WebResult<Response> {
    let id: TeamId = parse_id(&id)?;
    let member: UserId = parse_id(&member)?;
    service.remove_member(&user.0, id, member).await?;
    if member == user.0.user_id {
        return Ok(see_other("/teams"));
    }
    Ok(see_other(&format!("/teams/{id}#members")))
}

/// `POST /teams/{id}/invitations/{invitation}/revoke` (owners and admins).
#[handler]
pub async fn revoke(
    user: WebUser,
    service: Data<&Service>,
    Path((id, invitation)): Path<(String, String)>,
) -> WebResult<Response> {
    let id: TeamId = parse_id(&id)?;
    let invitation: InvitationId = parse_id(&invitation)?;
    service.revoke_invitation(&user.0, invitation).await?;
    Ok(see_other(&format!("/teams/{id}#invitations")))
}
