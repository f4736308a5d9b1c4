//! The messages tasker sends, each a subject that says what happened and a plain-text and an
//! HTML part from `templates/mail/` (`layout.txt` / `layout.html` around each). A message
//! carries only what its recipient may see: their own account, or the invitation addressed
//! to them (the team's and the inviter's names, which the invitation shows anyway).

use askama::Template;

/// A rendered message: subject and both parts.
#[derive(Clone)]
pub struct Rendered {
    pub subject: String,
    pub text: String,
    pub html: String,
}

fn render(subject: String, text: &impl Template, html: &impl Template) -> Rendered {
    // Templates are checked at compile time; rendering only fails on a formatting error of a
    // value, which these plain strings do not have.
    Rendered {
        subject,
        text: text.render().unwrap_or_default(),
        html: html.render().unwrap_or_default(),
    }
}

macro_rules! letter {
    ($text:ident, $html:ident, $txt_path:literal, $html_path:literal, { $($field:ident: $ty:ty),* }) => {
        #[derive(Template)]
        #[template(path = $txt_path)]
        struct $text<'a> {
            site: &'a str,
            link: &'a str,
            $($field: $ty),*
        }

        #[derive(Template)]
        #[template(path = $html_path)]
        struct $html<'a> {
            site: &'a str,
            link: &'a str,
            $($field: $ty),*
        }
    };
}

letter!(VerifyText, VerifyHtml, "mail/verify.txt", "mail/verify.html", { name: &'a str, email: &'a str, hours: i64 });
letter!(ResetText, ResetHtml, "mail/reset.txt", "mail/reset.html", { name: &'a str, email: &'a str });
letter!(InvitationText, InvitationHtml, "mail/invitation.txt", "mail/invitation.html", {
    inviter: &'a str, team: &'a str, role: &'a str, expires: &'a str
});
letter!(TestText, TestHtml, "mail/test.txt", "mail/test.html", { server: &'a str });

/// "Confirm your email address": the verification link, sent on registration and on an
/// address change, to the new address.
pub fn verify_email(site: &str, name: &str, email: &str, link: &str, hours: i64) -> Rendered {
    render(
        "Confirm your email address for tasker".to_string(),
        &VerifyText {
            site,
            link,
            name,
            email,
            hours,
        },
        &VerifyHtml {
            site,
            link,
            name,
            email,
            hours,
        },
    )
}

/// "Reset your password": the reset link, sent on request.
pub fn password_reset(site: &str, name: &str, email: &str, link: &str) -> Rendered {
    render(
        "Reset your tasker password".to_string(),
        &ResetText {
            site,
            link,
            name,
            email,
        },
        &ResetHtml {
            site,
            link,
            name,
            email,
        },
    )
}

/// An invitation to a team with its accept link.
pub fn invitation(
    site: &str,
    inviter: &str,
    team: &str,
    role: &str,
    link: &str,
    expires: &str,
) -> Rendered {
    render(
        format!("{inviter} invited you to the team {team} on tasker"),
        &InvitationText {
            site,
            link,
            inviter,
            team,
            role,
            expires,
        },
        &InvitationHtml {
            site,
            link,
            inviter,
            team,
            role,
            expires,
        },
    )
}

/// `tasker email test`'s message.
pub fn test_message(site: &str, server: &str) -> Rendered {
    let link = site;
    render(
        "tasker test message".to_string(),
        &TestText { site, link, server },
        &TestHtml { site, link, server },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn html_parts_escape_what_people_typed_and_text_parts_keep_it() {
        let letter = invitation(
            "https://t.example",
            "Ada <b>",
            "R&D",
            "member",
            "https://t.example/invitations/accept?token=a.b",
            "2026-12-07",
        );
        assert_eq!(
            letter.subject,
            "Ada <b> invited you to the team R&D on tasker"
        );
        assert!(letter.html.contains("Ada &#60;b&#62;") || letter.html.contains("Ada &lt;b&gt;"));
        assert!(!letter.html.contains("Ada <b>"));
        assert!(
            letter
                .text
                .contains("Ada <b> invited you to join the team \"R&D\"")
        );
        assert!(
            letter
                .text
                .contains("https://t.example/invitations/accept?token=a.b")
        );
    }
}
