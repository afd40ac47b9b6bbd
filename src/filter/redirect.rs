//! Gateway API's RequestRedirect: the `Location` of the redirect luas
//! answers with, the request's own URL with the filter's parts replaced.
//!
//! Defaults, as Gateway API has them: the request's scheme and host; the
//! port is the filter's, else the well-known port of a scheme the filter
//! changed, else the request's; a well-known port is left out of the URL;
//! the path is replaced as [`super::rewrite::replace_path`] does; the query
//! is kept.

use http::request::Parts;
use http::HeaderValue;

use super::rewrite::replace_path;
use crate::config::Redirect;

/// The redirect's `Location`, or None when the request names no host to
/// redirect to and the filter gives none.
pub(crate) fn location(
    redirect: &Redirect,
    parts: &Parts,
    prefix: Option<&str>,
    request_scheme: &str,
) -> Option<HeaderValue> {
    let (request_host, request_port) = request_host_and_port(parts);
    let scheme = redirect
        .scheme
        .map_or(request_scheme, |scheme| scheme.as_str());
    let host = match &redirect.hostname {
        Some(hostname) => hostname.as_str(),
        None => request_host?,
    };
    let port = redirect.port.or_else(|| match redirect.scheme {
        Some(changed) => Some(changed.default_port()),
        None => request_port,
    });
    let well_known = match scheme {
        "https" => 443,
        _ => 80,
    };
    let path = match &redirect.path {
        Some(replace) => replace_path(replace, parts.uri.path(), prefix),
        None => parts.uri.path().to_owned(),
    };
    let mut location = format!("{scheme}://{host}");
    if let Some(port) = port.filter(|&port| port != well_known) {
        location.push_str(&format!(":{port}"));
    }
    location.push_str(&path);
    if let Some(query) = parts.uri.query() {
        location.push('?');
        location.push_str(query);
    }
    HeaderValue::from_str(&location).ok()
}

/// The request's host and port, from its URI authority or its `Host`.
fn request_host_and_port(parts: &Parts) -> (Option<&str>, Option<u16>) {
    if let Some(authority) = parts.uri.authority() {
        return (Some(authority.host()), authority.port_u16());
    }
    let Some(host) = parts
        .headers
        .get(http::header::HOST)
        .and_then(|value| value.to_str().ok())
    else {
        return (None, None);
    };
    match host.parse::<http::uri::Authority>() {
        Ok(authority) => (Some(&host[..authority.host().len()]), authority.port_u16()),
        Err(_) => (None, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Hostname, PathReplace, RedirectScheme};
    use http::StatusCode;

    fn request(uri: &str, host: &str) -> Parts {
        http::Request::get(uri)
            .header("host", host)
            .body(())
            .unwrap()
            .into_parts()
            .0
    }

    fn redirect() -> Redirect {
        Redirect {
            scheme: None,
            hostname: None,
            port: None,
            path: None,
            status: StatusCode::FOUND,
        }
    }

    fn location_of(redirect: &Redirect, parts: &Parts, prefix: Option<&str>) -> String {
        location(redirect, parts, prefix, "http")
            .unwrap()
            .to_str()
            .unwrap()
            .to_owned()
    }

    #[test]
    fn the_issue_example_moves_docs_to_the_manual_over_https() {
        let docs = Redirect {
            scheme: Some(RedirectScheme::Https),
            hostname: Some("docs.example.com".parse::<Hostname>().unwrap()),
            path: Some(PathReplace::Prefix("/manual".into())),
            status: StatusCode::MOVED_PERMANENTLY,
            ..redirect()
        };
        let parts = request("/docs/intro?lang=ga", "www.example.com:8080");
        assert_eq!(
            location_of(&docs, &parts, Some("/docs")),
            "https://docs.example.com/manual/intro?lang=ga"
        );
    }

    #[test]
    fn defaults_keep_the_request_url() {
        let parts = request("/a/b?x=1", "shop.example.com:8080");
        assert_eq!(
            location_of(&redirect(), &parts, None),
            "http://shop.example.com:8080/a/b?x=1"
        );
        // A changed scheme takes its well-known port, which is left out.
        let https = Redirect {
            scheme: Some(RedirectScheme::Https),
            ..redirect()
        };
        assert_eq!(
            location_of(&https, &parts, None),
            "https://shop.example.com/a/b?x=1"
        );
        // An explicit port stays, unless it is the well-known one.
        let port = Redirect {
            port: Some(8443),
            ..https
        };
        assert_eq!(
            location_of(&port, &parts, None),
            "https://shop.example.com:8443/a/b?x=1"
        );
        let full = Redirect {
            path: Some(PathReplace::Full("/new".into())),
            ..redirect()
        };
        assert_eq!(
            location_of(&full, &request("/old", "a.example"), None),
            "http://a.example/new"
        );
    }

    #[test]
    fn no_host_anywhere_is_none() {
        let parts = http::Request::get("/x").body(()).unwrap().into_parts().0;
        assert!(location(&redirect(), &parts, None, "http").is_none());
    }
}
