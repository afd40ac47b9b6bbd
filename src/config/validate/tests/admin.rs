//! `admin` and `state_file`.

use super::*;

#[test]
fn empty_state_file() {
    let base = with_services("  - { name: web, endpoints: [127.0.0.1:1] }\n");
    for value in ["''", "'  '"] {
        let found = issues(&format!("{base}state_file: {value}\n"));
        let message = issue_at(&found, "state_file");
        assert!(message.contains("`state_file` is empty"), "{message}");
        assert!(message.contains("/var/lib/luas/state.json"), "{message}");
        assert_eq!(found.len(), 1, "{found:#?}");
    }
    // `~` is the same as leaving the key out.
    assert_eq!(load(&format!("{base}state_file: ~\n")).state_file, None);
    let config = load(&format!("{base}state_file: state.json\n"));
    assert_eq!(config.state_file, Some(PathBuf::from("state.json")));
}

#[test]
fn a_public_admin_address_needs_a_token_or_an_explicit_opt_out() {
    let admin = |admin: &str| {
        format!(
            "admin: {admin}\n{}",
            with_services("  - { name: web, endpoints: [127.0.0.1:9000] }\n")
        )
    };
    let found = issues(&admin("{ listen: 0.0.0.0:9901 }"));
    let message = issue_at(&found, "admin.listen");
    assert!(message.contains("token_file"), "{message}");
    assert!(message.contains("allow_unauthenticated_admin"), "{message}");

    let config = load(&admin(
        "{ listen: 0.0.0.0:9901, token_file: /etc/luas/token }",
    ));
    assert_eq!(
        config.admin.token_file,
        Some(PathBuf::from("/etc/luas/token"))
    );
    let config = load(&admin(
        "{ listen: '[::]:9901', allow_unauthenticated_admin: true }",
    ));
    assert!(config.admin.allow_unauthenticated_admin);
    // Loopback needs neither, IPv6 included.
    let config = load(&admin("{ listen: '[::1]:9901' }"));
    assert_eq!(config.admin.token_file, None);
    assert!(!config.admin.allow_unauthenticated_admin);
}
