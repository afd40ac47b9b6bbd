//! `admin`: the address of the admin API and who may change things through
//! it. A non-loopback address needs a bearer token file or an explicit
//! `allow_unauthenticated_admin: true`.
//!
//! Called first from [`super::Checker::config`]; the address it returns is
//! then kept free of listeners by `listeners`. Serving the API is `admin/`.

use std::net::SocketAddr;

use super::{Checker, PLACEHOLDER_ADDR};
use crate::config::raw::RawAdmin;
use crate::config::{defaults, AdminConfig};

impl Checker {
    /// The admin section and its listen address on its own, None when the
    /// address is invalid (and reported), so listeners are not compared with it.
    pub(super) fn admin(&mut self, raw: Option<RawAdmin>) -> (AdminConfig, Option<SocketAddr>) {
        let raw_admin = raw.unwrap_or_default();
        let admin_text = raw_admin
            .listen
            .unwrap_or_else(|| defaults::ADMIN_LISTEN.to_owned());
        let admin_listen = self.address("admin.listen", &admin_text);
        let token_file = self.file_path("admin.token_file", raw_admin.token_file.as_deref());
        let allow_unauthenticated_admin = raw_admin.allow_unauthenticated_admin.unwrap_or(false);
        if let Some(listen) = admin_listen {
            if !listen.ip().is_loopback() && token_file.is_none() && !allow_unauthenticated_admin {
                self.issue(
                    "admin.listen",
                    format!(
                        "the admin listener at {listen} is reachable from other machines, and \
                         anyone who reaches it could change weights, roll back or reload; set \
                         `admin.token_file` to a file holding a bearer token, bind it to \
                         127.0.0.1, or set `admin.allow_unauthenticated_admin: true` if a \
                         network policy protects it"
                    ),
                );
            }
        }
        let admin = AdminConfig {
            listen: admin_listen.unwrap_or(PLACEHOLDER_ADDR),
            token_file,
            allow_unauthenticated_admin,
        };
        (admin, admin_listen)
    }
}
