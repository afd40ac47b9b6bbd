//! Gateway API's URLRewrite: the request goes on to its service with its
//! `Host` and path replaced; the query is kept. Also the path arithmetic a
//! redirect shares: [`replace_path`].

use http::request::Parts;
use http::uri::PathAndQuery;
use http::{header, HeaderValue, Uri};

use crate::config::{PathReplace, Rewrite};

pub(crate) fn apply(rewrite: &Rewrite, parts: &mut Parts, prefix: Option<&str>) {
    if let Some(hostname) = &rewrite.hostname {
        if let Ok(host) = HeaderValue::from_str(hostname.as_str()) {
            // The Host header is what the endpoint sees, over HTTP/1.1 and
            // as HTTP/2's :authority alike.
            parts.headers.insert(header::HOST, host);
        }
    }
    if let Some(replace) = &rewrite.path {
        let path = replace_path(replace, parts.uri.path(), prefix);
        let path_and_query = match parts.uri.query() {
            Some(query) => format!("{path}?{query}"),
            None => path,
        };
        if let Ok(path_and_query) = PathAndQuery::try_from(path_and_query) {
            let mut uri = std::mem::take(&mut parts.uri).into_parts();
            uri.path_and_query = Some(path_and_query);
            parts.uri = Uri::from_parts(uri).unwrap_or_default();
        }
    }
}

/// The path `replace` makes of `path`. A prefix replacement replaces what
/// `prefix` (the route's, whole segments) matched, so `/docs/a` under
/// `/docs` replaced by `/manual` is `/manual/a`, and by `/` is `/a`.
pub(crate) fn replace_path(replace: &PathReplace, path: &str, prefix: Option<&str>) -> String {
    match replace {
        PathReplace::Full(full) => full.clone(),
        PathReplace::Prefix(replacement) => {
            let rest = match prefix {
                Some("/") | None => path,
                Some(prefix) => path.strip_prefix(prefix).unwrap_or(path),
            };
            let joined = format!("{}{rest}", replacement.trim_end_matches('/'));
            if joined.is_empty() {
                "/".to_owned()
            } else {
                joined
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Hostname;

    #[test]
    fn prefix_replacements_keep_the_rest_of_the_path() {
        let prefix = |text: &str| PathReplace::Prefix(text.to_owned());
        for (replacement, matched, path, expected) in [
            ("/manual", "/docs", "/docs/a/b", "/manual/a/b"),
            ("/manual", "/docs", "/docs", "/manual"),
            ("/manual/", "/docs", "/docs/a", "/manual/a"),
            ("/", "/legacy", "/legacy/a", "/a"),
            ("/", "/legacy", "/legacy", "/"),
            ("/xyz", "/", "/foo", "/xyz/foo"),
        ] {
            assert_eq!(
                replace_path(&prefix(replacement), path, Some(matched)),
                expected,
                "{replacement} for {matched} in {path}"
            );
        }
        assert_eq!(
            replace_path(&PathReplace::Full("/new".into()), "/old/x", None),
            "/new"
        );
    }

    #[test]
    fn a_rewrite_replaces_host_and_path_and_keeps_the_query() {
        let mut parts = http::Request::get("/legacy/items?id=7")
            .header("host", "shop.example.com")
            .body(())
            .unwrap()
            .into_parts()
            .0;
        let rewrite = Rewrite {
            hostname: Some("backend.internal".parse::<Hostname>().unwrap()),
            path: Some(PathReplace::Prefix("/v2".into())),
        };
        apply(&rewrite, &mut parts, Some("/legacy"));
        assert_eq!(parts.uri, "/v2/items?id=7");
        assert_eq!(parts.headers["host"], "backend.internal");
    }
}
