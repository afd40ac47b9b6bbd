//! Tests that the documentation keeps up with the code and with itself.
//!
//! `example_file_uses_every_key` (beside the validator) makes config/example.yaml
//! use every config key; the test here carries that chain one step further:
//! docs/configuration.md has a table row for every key the example uses. A
//! second test checks that every relative link and `#anchor` between README.md,
//! CONTRIBUTING.md and docs/*.md resolves, as GitHub renders them. Test-only:
//! nothing here is compiled into luas; it reads the files from the source tree.

use std::collections::{BTreeSet, HashMap};
use std::path::{Component, Path, PathBuf};

/// Maps in the example whose keys are the user's own names (header names),
/// not config keys, so the walk records the map but not what is inside.
const USER_KEYED: &[&str] = &[
    "listeners[].routes[].match.headers",
    "listeners[].routes[].filters[].request_headers.set",
    "listeners[].routes[].filters[].request_headers.add",
    "listeners[].routes[].filters[].response_headers.set",
    "listeners[].routes[].filters[].response_headers.add",
];

/// The Markdown files whose links must resolve, relative to the repository.
const LINKED_FILES: &[&str] = &[
    "README.md",
    "CONTRIBUTING.md",
    "examples/kubernetes/README.md",
];

fn repo_path(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(relative)
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Every key path in a YAML value: `listeners[].routes[].match.host`, with
/// `[]` for the items of a list.
fn key_paths(value: &yaml_serde::Value, prefix: &str, out: &mut BTreeSet<String>) {
    match value {
        yaml_serde::Value::Mapping(map) => {
            for (key, value) in map {
                let key = key.as_str().expect("config keys are strings");
                let path = if prefix.is_empty() {
                    key.to_owned()
                } else {
                    format!("{prefix}.{key}")
                };
                if !USER_KEYED.contains(&path.as_str()) {
                    key_paths(value, &path, out);
                }
                out.insert(path);
            }
        }
        yaml_serde::Value::Sequence(items) => {
            for item in items {
                key_paths(item, &format!("{prefix}[]"), out);
            }
        }
        yaml_serde::Value::Tagged(tagged) => key_paths(&tagged.value, prefix, out),
        _ => {}
    }
}

/// Lines outside fenced code blocks, so a `# comment` in a shell or PromQL
/// example is neither a heading nor a link.
fn prose_lines(markdown: &str) -> Vec<&str> {
    let mut fenced = false;
    let mut lines = Vec::new();
    for line in markdown.lines() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
        } else if !fenced {
            lines.push(line);
        }
    }
    lines
}

/// The key paths docs/configuration.md documents: a heading that is one code
/// span (`` ## `services[].retry` ``) names the parent path, and the first cell
/// of each table row below it (`` | `budget.ratio` | … ``) a key under it. Any
/// other heading ("Top level") resets the parent to the top.
fn documented_paths(markdown: &str) -> BTreeSet<String> {
    let mut parent = String::new();
    let mut paths = BTreeSet::new();
    for line in prose_lines(markdown) {
        if line.starts_with('#') {
            let title = line.trim_start_matches('#').trim();
            parent = match title.strip_prefix('`').and_then(|t| t.strip_suffix('`')) {
                Some(code) if !code.contains('`') => code.to_owned(),
                _ => String::new(),
            };
        } else if let Some(cell) = line.strip_prefix("| `") {
            let key = cell.split('`').next().unwrap_or_default();
            if parent.is_empty() {
                paths.insert(key.to_owned());
            } else {
                paths.insert(format!("{parent}.{key}"));
            }
        }
    }
    paths
}

#[test]
fn configuration_page_documents_every_key() {
    let example = read(&repo_path("config/example.yaml"));
    let example: yaml_serde::Value = yaml_serde::from_str(&example).unwrap();
    let mut used = BTreeSet::new();
    key_paths(&example, "", &mut used);
    // The walk itself must see nested keys through lists, and skip header names.
    assert!(used.contains("services[].groups[].weight"), "{used:?}");
    assert!(used.contains("services[].retry.budget.ratio"), "{used:?}");
    assert!(used.contains("listeners[].routes[].match.headers"));
    assert!(!used.iter().any(|p| p.contains("x-env")), "{used:?}");

    let documented = documented_paths(&read(&repo_path("docs/configuration.md")));
    let missing: Vec<&String> = used.difference(&documented).collect();
    assert!(
        missing.is_empty(),
        "docs/configuration.md has no table row for these keys of config/example.yaml \
         (add a row under the heading of the key's parent): {missing:#?}"
    );
}

/// The anchor GitHub gives a heading: lower case, spaces to `-`, every
/// character but letters, digits, `-` and `_` dropped (link markup first).
fn anchor(title: &str) -> String {
    let mut text = String::new();
    let mut rest = title;
    // `[text](target)` renders as `text`.
    while let Some(open) = rest.find('[') {
        let Some(close) = rest[open..].find("](").map(|i| open + i) else {
            break;
        };
        let Some(end) = rest[close..].find(')').map(|i| close + i) else {
            break;
        };
        text.push_str(&rest[..open]);
        text.push_str(&rest[open + 1..close]);
        rest = &rest[end + 1..];
    }
    text.push_str(rest);
    text.to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || matches!(c, ' ' | '-' | '_'))
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

/// Every anchor a Markdown file's headings define; repeated headings get
/// `-1`, `-2`, … as on GitHub.
fn anchors(markdown: &str) -> BTreeSet<String> {
    let mut seen: HashMap<String, usize> = HashMap::new();
    let mut anchors = BTreeSet::new();
    for line in prose_lines(markdown) {
        let hashes = line.chars().take_while(|&c| c == '#').count();
        if !(1..=6).contains(&hashes) || !line[hashes..].starts_with(' ') {
            continue;
        }
        let slug = anchor(line[hashes..].trim());
        let count = seen.entry(slug.clone()).or_default();
        anchors.insert(match *count {
            0 => slug,
            n => format!("{slug}-{n}"),
        });
        *count += 1;
    }
    anchors
}

/// The targets of every inline link and image: `[text](target)`, with code
/// spans removed first so that `` `a[i](x)` `` is not a link.
fn link_targets(markdown: &str) -> Vec<String> {
    let mut prose = String::new();
    for line in prose_lines(markdown) {
        for (i, part) in line.split('`').enumerate() {
            if i % 2 == 0 {
                prose.push_str(part);
            }
        }
        prose.push('\n');
    }
    prose
        .split("](")
        .skip(1)
        .filter_map(|after| after.split(')').next())
        .map(|target| target.split_whitespace().next().unwrap_or("").to_owned())
        .collect()
}

/// `docs/../config/example.yaml` → `config/example.yaml`, without touching
/// the file system, so a missing file is reported as such.
fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for part in path.components() {
        match part {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

/// The broken links of one file: a relative path that does not exist, or an
/// `#anchor` that no heading of the Markdown file it points into defines.
fn broken_links(file: &str) -> Vec<String> {
    let markdown = read(&repo_path(file));
    let dir = Path::new(file).parent().unwrap_or(Path::new(""));
    let mut broken = Vec::new();
    for target in link_targets(&markdown) {
        let is_url = target
            .split_once(':')
            .is_some_and(|(scheme, _)| scheme.chars().all(|c| c.is_ascii_alphabetic()));
        if is_url || target.is_empty() {
            continue;
        }
        let (path, fragment) = target.split_once('#').unwrap_or((&target, ""));
        let linked = if path.is_empty() {
            PathBuf::from(file)
        } else if let Some(from_root) = path.strip_prefix('/') {
            normalize(Path::new(from_root))
        } else {
            normalize(&dir.join(path))
        };
        let on_disk = repo_path(&linked.to_string_lossy());
        if !on_disk.exists() {
            broken.push(format!("{file}: {target}: no file {}", linked.display()));
        } else if !fragment.is_empty()
            && linked.extension().is_some_and(|e| e == "md")
            && !anchors(&read(&on_disk)).contains(fragment)
        {
            broken.push(format!(
                "{file}: {target}: no heading of {} has the anchor #{fragment}",
                linked.display()
            ));
        }
    }
    broken
}

#[test]
fn links_between_the_docs_resolve() {
    let mut files: Vec<String> = LINKED_FILES.iter().map(|f| f.to_string()).collect();
    for entry in std::fs::read_dir(repo_path("docs")).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().into_owned();
        if name.ends_with(".md") {
            files.push(format!("docs/{name}"));
        }
    }
    files.sort();
    let broken: Vec<String> = files.iter().flat_map(|f| broken_links(f)).collect();
    assert!(broken.is_empty(), "broken links: {broken:#?}");
}

#[test]
fn link_checker_reads_markdown_as_github_does() {
    assert_eq!(anchor("`listeners[].limits`"), "listenerslimits");
    assert_eq!(
        anchor("Runtime changes and the state file"),
        "runtime-changes-and-the-state-file"
    );
    assert_eq!(anchor("`access_log`"), "access_log");
    assert_eq!(anchor("See [TLS](tls.md) first"), "see-tls-first");
    let page = "# Title\n## Errors\n```sh\n# not a heading [x](gone.md)\n```\n## Errors\n";
    assert_eq!(
        anchors(page),
        BTreeSet::from(["title".into(), "errors".into(), "errors-1".into()])
    );
    assert_eq!(
        link_targets("see [a](x.md#b) and `[c](code.md)`, ![i](p.png \"t\")\n"),
        ["x.md#b", "p.png"]
    );
    assert_eq!(
        normalize(Path::new("docs/../config/x.yaml")),
        Path::new("config/x.yaml")
    );
}
