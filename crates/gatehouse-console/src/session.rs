//! Signing in and out, the session cookie, and CSRF tokens.
//!
//! The session cookie holds a random token whose SHA-256 is the stored
//! session id (`gatehouse_app::sessions`). Forms of a signed-in person carry
//! the session's CSRF token; the sign-in form, before any session exists,
//! carries a token that must equal a short-lived cookie of its own (double
//! submit). Cookies are `HttpOnly` and `SameSite=Strict`, and `Secure` when
//! the console is served over https.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{FromRequestParts, Path, State};
use axum::http::header::{COOKIE, SET_COOKIE};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use gatehouse_app::sessions::{csrf_matches, ConsoleSession};
use gatehouse_app::AppError;
use rand::RngCore;

use crate::pages::{page_error, Me};
use crate::{Console, LoginPage};

pub(crate) const SESSION_COOKIE: &str = "gh_session";
const LOGIN_COOKIE: &str = "gh_login";

/// Reads one cookie from the request's `Cookie` headers.
pub(crate) fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_string())
}

fn set_cookie(console: &Console, name: &str, value: &str, path: &str, max_age: u64) -> HeaderValue {
    let secure = if console.config.secure_cookies {
        "; Secure"
    } else {
        ""
    };
    HeaderValue::from_str(&format!(
        "{name}={value}; Path={path}; Max-Age={max_age}; HttpOnly; SameSite=Strict{secure}"
    ))
    .unwrap_or_else(|_| HeaderValue::from_static(""))
}

fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    hex::encode(bytes)
}

/// A form body as a map; a repeated field keeps every value.
pub(crate) struct Form(pub HashMap<String, Vec<String>>);

impl Form {
    pub(crate) fn parse(body: &[u8]) -> Form {
        let mut map: HashMap<String, Vec<String>> = HashMap::new();
        for (k, v) in form_urlencoded::parse(body) {
            map.entry(k.into_owned()).or_default().push(v.into_owned());
        }
        Form(map)
    }

    pub(crate) fn one(&self, name: &str) -> Option<&str> {
        self.0.get(name).and_then(|v| v.first()).map(String::as_str)
    }

    pub(crate) fn all(&self, name: &str) -> &[String] {
        self.0.get(name).map(Vec::as_slice).unwrap_or_default()
    }
}

/// The signed-in person of a page request; anyone else is sent to the
/// sign-in page.
pub(crate) struct Signed(pub ConsoleSession);

impl FromRequestParts<Arc<Console>> for Signed {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        console: &Arc<Console>,
    ) -> Result<Self, Response> {
        let Some(token) = cookie(&parts.headers, SESSION_COOKIE) else {
            return Err(Redirect::to("/console/login").into_response());
        };
        match console.app.console_session(&token).await {
            Ok(s) => Ok(Signed(s)),
            Err(AppError::Unauthorized) => Err(Redirect::to("/console/login").into_response()),
            Err(e) => Err(page_error(e, None)),
        }
    }
}

/// Refuses a form whose CSRF token is not the session's, with the page
/// to answer instead.
pub(crate) fn check_csrf(session: &ConsoleSession, form: &Form) -> Result<(), Box<Response>> {
    if form
        .one("csrf")
        .is_some_and(|t| csrf_matches(&session.csrf, t))
    {
        Ok(())
    } else {
        let page = page_error(
            AppError::Validation(
                "the form is missing its security token or it is stale; reload the page and try again".into(),
            ),
            Some(&Me::of(session)),
        );
        Err(Box::new((StatusCode::FORBIDDEN, page).into_response()))
    }
}

pub(crate) async fn login_form(State(console): State<Arc<Console>>) -> Response {
    login_page(&console, None, StatusCode::OK)
}

fn login_page(console: &Console, error: Option<String>, status: StatusCode) -> Response {
    let csrf = random_token();
    let page = LoginPage {
        me: None,
        message: None,
        error,
        csrf: csrf.clone(),
    };
    let mut response = (status, crate::render(&page)).into_response();
    response.headers_mut().append(
        SET_COOKIE,
        set_cookie(console, LOGIN_COOKIE, &csrf, "/console/login", 3600),
    );
    response
}

pub(crate) async fn login(
    State(console): State<Arc<Console>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let form = Form::parse(&body);
    let expected = cookie(&headers, LOGIN_COOKIE).unwrap_or_default();
    if expected.is_empty() || !form.one("csrf").is_some_and(|t| csrf_matches(&expected, t)) {
        return login_page(
            &console,
            Some("The sign-in form expired; please try again.".into()),
            StatusCode::FORBIDDEN,
        );
    }
    let (Some(name), Some(password)) = (form.one("username"), form.one("password")) else {
        return login_page(
            &console,
            Some("Enter your user name and password.".into()),
            StatusCode::BAD_REQUEST,
        );
    };
    match console.app.sign_in(name.trim(), password).await {
        Ok(signed) => {
            let mut response = Redirect::to("/console").into_response();
            let max_age = console.app.config().session_absolute.as_secs();
            response.headers_mut().append(
                SET_COOKIE,
                set_cookie(&console, SESSION_COOKIE, &signed.token, "/console", max_age),
            );
            response.headers_mut().append(
                SET_COOKIE,
                set_cookie(&console, LOGIN_COOKIE, "", "/console/login", 0),
            );
            response
        }
        // The same words whether the name exists or not.
        Err(AppError::Unauthorized) => login_page(
            &console,
            Some("Wrong user name or password.".into()),
            StatusCode::UNAUTHORIZED,
        ),
        Err(AppError::RateLimited(secs)) => login_page(
            &console,
            Some(format!("Too many sign-in attempts; try again in {secs} s.")),
            StatusCode::TOO_MANY_REQUESTS,
        ),
        Err(e) => page_error(e, None),
    }
}

/// A mailed link: shows a button and changes nothing, so a mail scanner
/// that follows it uses nothing up.
pub(crate) async fn link_page(Path(token): Path<String>) -> Response {
    let page = crate::LinkPage {
        me: None,
        message: None,
        error: None,
        token: token.chars().filter(char::is_ascii_alphanumeric).collect(),
    };
    crate::render(&page).into_response()
}

/// The link's button: uses the link (once, before it expires), signs in
/// and opens the request.
pub(crate) async fn link_sign_in(
    State(console): State<Arc<Console>>,
    Path(token): Path<String>,
) -> Response {
    match console.app.sign_in_with_link(&token).await {
        Ok((signed, decision)) => {
            let target = format!(
                "/console/decisions/{}",
                form_urlencoded::byte_serialize(decision.as_bytes()).collect::<String>()
            );
            let mut response = Redirect::to(&target).into_response();
            let max_age = console.app.config().session_absolute.as_secs();
            response.headers_mut().append(
                SET_COOKIE,
                set_cookie(&console, SESSION_COOKIE, &signed.token, "/console", max_age),
            );
            response
        }
        Err(AppError::Unauthorized) => login_page(
            &console,
            Some(
                "This sign-in link was used already or has expired; sign in with your password."
                    .into(),
            ),
            StatusCode::UNAUTHORIZED,
        ),
        Err(e) => page_error(e, None),
    }
}

pub(crate) async fn logout(
    State(console): State<Arc<Console>>,
    Signed(session): Signed,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    if let Err(refused) = check_csrf(&session, &Form::parse(&body)) {
        return *refused;
    }
    if let Some(token) = cookie(&headers, SESSION_COOKIE) {
        if let Err(e) = console.app.sign_out(&token).await {
            return page_error(e, None);
        }
    }
    let mut response = Redirect::to("/console/login").into_response();
    response.headers_mut().append(
        SET_COOKIE,
        set_cookie(&console, SESSION_COOKIE, "", "/console", 0),
    );
    response
}
