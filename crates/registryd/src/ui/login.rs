//! Logging in with the `docker login` user name and password, and out. On a token registry the
//! password goes to authd once (the OAuth2 password grant, asking for a refresh token); an
//! htpasswd registry checks it itself. Either way the browser gets only a random session id.

use std::sync::Arc;

use axum::extract::rejection::FormRejection;
use axum::extract::{Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::{Extension, Form};
use maud::{html, Markup};
use serde::Deserialize;

use super::error::PageError;
use super::layout;
use super::session::{clear_cookie, set_cookie};
use super::tokens::{Credential, TokenError};
use super::viewer::Viewer;
use super::UiState;
use crate::app::AppState;
use crate::auth::Authenticator;

/// `?expired=1` after a session ended.
#[derive(Debug, Deserialize)]
pub struct LoginQuery {
    expired: Option<String>,
}

/// The login form's fields.
#[derive(Deserialize)]
pub struct LoginForm {
    username: String,
    password: String,
}

/// The logout form's fields.
#[derive(Debug, Deserialize)]
pub struct CsrfForm {
    csrf: Option<String>,
}

/// A posted form, or why it could not be read (then it carries no CSRF token either).
pub type PostedForm = Result<Form<CsrfForm>, FormRejection>;

/// The CSRF token a posted form carries.
#[must_use]
pub fn csrf_of(form: &PostedForm) -> Option<&str> {
    form.as_ref().ok().and_then(|Form(f)| f.csrf.as_deref())
}

/// `GET /ui/login`.
pub async fn form(State(app): State<Arc<AppState>>, Query(q): Query<LoginQuery>) -> Response {
    if matches!(app.auth, Authenticator::Open) {
        return Redirect::to("/ui/").into_response();
    }
    let note = q
        .expired
        .map(|_| "Your session has ended. Please log in again.");
    login_page(StatusCode::OK, note, None, "").into_response()
}

/// `POST /ui/login`: a session and its cookie, or the form again with what went wrong.
pub async fn submit(
    State(app): State<Arc<AppState>>,
    Extension(ui): Extension<Arc<UiState>>,
    Form(f): Form<LoginForm>,
) -> Response {
    let credential = match &app.auth {
        Authenticator::Open => return Redirect::to("/ui/").into_response(),
        Authenticator::Basic(basic) => match basic.check(&f.username, &f.password).await {
            Ok(true) => Ok(Credential::Anonymous),
            Ok(false) => Err(TokenError::Refused),
            Err(e) => Err(TokenError::Unavailable(e.to_string())),
        },
        Authenticator::Bearer(_) => match &ui.tokens {
            Some(client) => client
                .login(&f.username, &f.password)
                .await
                .map(|issued| match issued.refresh_token {
                    Some(refresh) => Credential::Refresh(refresh),
                    None => Credential::Password {
                        user: f.username.clone(),
                        password: f.password.clone(),
                    },
                }),
            None => Err(TokenError::Unavailable("no token server".into())),
        },
    };
    let (status, error) = match credential {
        Ok(credential) => {
            let Some(session) = ui.sessions.create(&f.username, credential) else {
                return PageError::Unavailable("too many sessions: try again later".into())
                    .into_response();
            };
            tracing::info!(user = %f.username, "web login");
            let cookie = set_cookie(&session.id, ui.secure);
            return ([(header::SET_COOKIE, cookie)], Redirect::to("/ui/")).into_response();
        }
        Err(TokenError::Refused) => (StatusCode::UNAUTHORIZED, "Wrong user name or password."),
        Err(TokenError::Throttled) => (
            StatusCode::TOO_MANY_REQUESTS,
            "Too many failed attempts: wait a while and try again.",
        ),
        Err(TokenError::Unavailable(cause)) => {
            tracing::warn!(%cause, "web login: the token server did not answer");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                "The login service is unavailable; try again later.",
            )
        }
    };
    login_page(status, None, Some(error), &f.username).into_response()
}

/// `POST /ui/logout`.
///
/// # Errors
/// `Forbidden` without the session's CSRF token.
pub async fn logout(viewer: Viewer, form: PostedForm) -> Result<Response, PageError> {
    viewer.check_csrf(csrf_of(&form))?;
    if let super::viewer::Who::User(s) = &viewer.who {
        viewer.ui.sessions.remove(&s.id);
    }
    Ok((
        [(header::SET_COOKIE, clear_cookie(viewer.ui.secure))],
        Redirect::to("/ui/"),
    )
        .into_response())
}

fn login_page(
    status: StatusCode,
    note: Option<&str>,
    error: Option<&str>,
    user: &str,
) -> (StatusCode, Markup) {
    let body = html! {
        @if let Some(note) = note { p.note role="status" { (note) } }
        @if let Some(error) = error { p.error role="alert" #login-error { (error) } }
        form.login method="post" action="/ui/login" {
            label for="username" { "User name" }
            input #username type="text" name="username" value=(user) autocomplete="username" required autofocus;
            label for="password" { "Password" }
            input #password type="password" name="password" autocomplete="current-password" required;
            button type="submit" { "Log in" }
        }
        p.hint { "The same user name and password as " code { "docker login" } "." }
        p { a href="/ui/" { "Browse without logging in" } }
    };
    (status, layout::bare_with("Log in", &body))
}
