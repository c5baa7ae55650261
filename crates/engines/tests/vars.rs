//! Issue #14: each environment variable is named once (`cloudpf_engines::vars`), and the
//! README's table, the stacks in `infra/`, docker-compose.yml and the production sources
//! agree with that one list.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use cloudpf_engines::vars::{ALL, RENAMED};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Every `CLOUDPF_…` name in `text`.
fn cloudpf_names(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let mut rest = text;
    while let Some(at) = rest.find("CLOUDPF_") {
        let tail = &rest[at..];
        let end = tail
            .find(|c: char| !(c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_'))
            .unwrap_or(tail.len());
        names.insert(tail[..end].to_owned());
        rest = &tail[end..];
    }
    names
}

fn known() -> BTreeSet<String> {
    ALL.iter().map(|v| v.name.to_owned()).collect()
}

#[test]
fn the_readme_table_lists_every_variable_with_its_flag() {
    let readme = read(&repo().join("README.md"));
    for var in ALL {
        let row = if var.flag.is_empty() {
            format!("| `{}` | |", var.name)
        } else {
            format!("| `{}` | `{}` |", var.name, var.flag)
        };
        assert!(
            readme.lines().any(|line| line.starts_with(&row)),
            "README.md has no row starting {row:?}"
        );
    }
}

#[test]
fn the_stacks_and_compose_file_set_only_variables_cloudpf_reads() {
    let known = known();
    let mut files = vec![repo().join("docker-compose.yml")];
    for entry in std::fs::read_dir(repo().join("infra")).unwrap() {
        files.push(entry.unwrap().path());
    }
    for file in files {
        for name in cloudpf_names(&read(&file)) {
            assert!(
                known.contains(&name),
                "{} sets {name}, which cloudpf does not read (renamed: {RENAMED:?})",
                file.display()
            );
        }
    }
}

#[test]
fn production_sources_name_variables_only_through_the_one_list() {
    let mut stack = vec![
        repo().join("crates"),
        repo().join("lambdas/src"),
        repo().join("search-api/src"),
    ];
    let mut offenders = Vec::new();
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            if path.is_dir() {
                // Tests may spell the names out: they check the contract from outside.
                // The testkit's switches are for the test runner, not for users.
                if !matches!(name.as_str(), "tests" | "benches" | "testkit" | "target") {
                    stack.push(path);
                }
            } else if name.ends_with(".rs") && name != "vars.rs" {
                let text = read(&path);
                if text.contains("\"CLOUDPF_") || text.contains("\"AWS_ENDPOINT_URL_S3\"") {
                    offenders.push(path.display().to_string());
                }
            }
        }
    }
    assert!(
        offenders.is_empty(),
        "variable names spelled outside crates/engines/src/vars.rs: {offenders:?}"
    );
}
