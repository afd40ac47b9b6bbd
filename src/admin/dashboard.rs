//! The dashboard: one page served by the admin listener at `/`, from assets
//! compiled into the binary (no build step at run time, no CDN), that shows
//! every service's groups, weights, endpoints and live charts and offers
//! weights, rollback and promote through the admin API.
//!
//! This module only hands out the files; the data comes from
//! `GET /api/v1/services` and `GET /api/v1/history` (see `api` and
//! `history`), and the actions go through the same API as `luas ctl`.

/// The files of the page, by the path they are served at.
const ASSETS: &[(&str, &str, &[u8])] = &[(
    "/",
    "text/html; charset=utf-8",
    include_bytes!("dashboard/index.html"),
)];

/// The content type and bytes of the asset at `path`, if there is one.
pub fn asset(path: &str) -> Option<(&'static str, &'static [u8])> {
    ASSETS
        .iter()
        .find(|(served_at, _, _)| *served_at == path)
        .map(|(_, content_type, bytes)| (*content_type, *bytes))
}
