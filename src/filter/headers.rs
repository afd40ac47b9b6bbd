//! Gateway API's HeaderModifier on a header map: `set` replaces every value
//! of a header, `add` appends one more, `remove` drops the header, in that
//! order (so `remove` wins over a `set` of the same name).

use http::HeaderMap;

use crate::config::HeaderEdits;

pub(crate) fn apply(edits: &HeaderEdits, headers: &mut HeaderMap) {
    for (name, value) in &edits.set {
        headers.insert(name.clone(), value.clone());
    }
    for (name, value) in &edits.add {
        headers.append(name.clone(), value.clone());
    }
    for name in &edits.remove {
        headers.remove(name);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::{HeaderName, HeaderValue};

    #[test]
    fn set_add_and_remove() {
        let name = HeaderName::from_static;
        let value = HeaderValue::from_static;
        let edits = HeaderEdits {
            set: vec![(name("x-env"), value("prod"))],
            add: vec![(name("x-via"), value("api")), (name("x-env"), value("eu"))],
            remove: vec![name("x-internal")],
        };
        let mut headers = HeaderMap::new();
        headers.append("x-env", value("staging"));
        headers.append("x-env", value("dev"));
        headers.append("x-via", value("edge"));
        headers.append("x-internal", value("1"));
        headers.append("x-other", value("kept"));
        apply(&edits, &mut headers);
        let all = |key: &str| -> Vec<&str> {
            headers
                .get_all(key)
                .iter()
                .map(|v| v.to_str().unwrap())
                .collect()
        };
        assert_eq!(all("x-env"), ["prod", "eu"]);
        assert_eq!(all("x-via"), ["edge", "api"]);
        assert!(all("x-internal").is_empty());
        assert_eq!(all("x-other"), ["kept"]);
    }
}
