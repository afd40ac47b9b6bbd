//! The dashboard: one page served by the admin listener at `/`, from assets
//! compiled into the binary (no build step at run time, no CDN), that shows
//! every service's groups, weights, endpoints and live charts and offers
//! weights, rollback and promote through the admin API.
//!
//! This module only hands out the files; the data comes from
//! `GET /api/v1/services` and `GET /api/v1/history` (see `api` and
//! `history`), and the actions go through the same API as `luas ctl`.
//!
//! The page is plain JavaScript (`dashboard/app.js`), with no inline script
//! or style, so it runs under the strict Content-Security-Policy the admin
//! listener sends. Its charts are drawn by uPlot 1.6.32
//! (<https://github.com/leeoniya/uPlot>, MIT licence, served beside it at
//! `/dashboard/uplot-LICENSE.txt`), vendored unchanged from its npm package's
//! `dist/` folder.

/// The files of the page, by the path they are served at.
const ASSETS: &[(&str, &str, &[u8])] = &[
    (
        "/",
        "text/html; charset=utf-8",
        include_bytes!("dashboard/index.html"),
    ),
    (
        "/dashboard/app.js",
        "text/javascript; charset=utf-8",
        include_bytes!("dashboard/app.js"),
    ),
    (
        "/dashboard/style.css",
        "text/css; charset=utf-8",
        include_bytes!("dashboard/style.css"),
    ),
    (
        "/dashboard/uplot.iife.min.js",
        "text/javascript; charset=utf-8",
        include_bytes!("dashboard/uplot.iife.min.js"),
    ),
    (
        "/dashboard/uplot.min.css",
        "text/css; charset=utf-8",
        include_bytes!("dashboard/uplot.min.css"),
    ),
    (
        "/dashboard/uplot-LICENSE.txt",
        "text/plain; charset=utf-8",
        include_bytes!("dashboard/uplot-LICENSE.txt"),
    ),
];

/// The content type and bytes of the asset at `path`, if there is one.
pub(crate) fn asset(path: &str) -> Option<(&'static str, &'static [u8])> {
    ASSETS
        .iter()
        .find(|(served_at, _, _)| *served_at == path)
        .map(|(_, content_type, bytes)| (*content_type, *bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_file_the_page_loads_is_served() {
        let page = std::str::from_utf8(asset("/").expect("the page").1).expect("UTF-8");
        for path in [
            "/dashboard/app.js",
            "/dashboard/style.css",
            "/dashboard/uplot.iife.min.js",
            "/dashboard/uplot.min.css",
        ] {
            assert!(page.contains(path), "index.html does not load {path}");
            assert!(asset(path).is_some(), "{path} is not served");
        }
        assert!(asset("/dashboard/uplot-LICENSE.txt").is_some());
        assert!(asset("/dashboard/nothing.js").is_none());
    }

    #[test]
    fn the_page_has_no_inline_script_or_style() {
        // The admin listener's Content-Security-Policy would block them.
        let page = std::str::from_utf8(asset("/").expect("the page").1).expect("UTF-8");
        assert!(!page.contains("<style"), "inline <style> in index.html");
        assert!(
            !page.contains(" style="),
            "inline style attribute in index.html"
        );
        for script in page.split("<script").skip(1) {
            let tag = &script[..script.find('>').expect("a closed tag")];
            assert!(tag.contains("src="), "inline <script> in index.html");
        }
        assert!(
            !page.contains(" onclick="),
            "inline event handler in index.html"
        );
    }
}
