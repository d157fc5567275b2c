//! The module graph has no cycle: data flows one way through the code, as ARCHITECTURE.md draws it.
//!
//! Reads every `src/**/*.rs`, finds each module's references to other modules (`crate::a::b`,
//! `crate::{a, b::c}`, `super::x`), leaves out `#[cfg(test)]` items and comments, and checks, at
//! the top level and inside every module, that the graph among sibling modules has no cycle. A
//! failure names the modules of each cycle and the references that close it. It also checks the
//! layering ARCHITECTURE.md and `src/lib.rs` describe ([`LAYERS`]): a top-level module uses
//! modules of its own layer or lower ones only, and every top-level module has a layer.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// A module path below the crate root, e.g. `["web", "site"]`.
type ModPath = Vec<String>;

#[test]
fn the_module_graph_has_no_cycle_at_any_level() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let references = references_by_module(&src);
    assert!(
        references.len() > 20,
        "read only {} modules under {}",
        references.len(),
        src.display()
    );
    let report = cycles(&references);
    assert!(report.is_empty(), "the module graph has cycles:\n{report}");
}

/// The layers of the crate, bottom first (ARCHITECTURE.md, "Layers"). A module may use modules of
/// its own layer (without a cycle) or of lower layers, never a higher one.
const LAYERS: &[(&str, &[&str])] = &[
    (
        "vocabulary",
        &[
            "ack",
            "changes",
            "crash",
            "http_client",
            "human",
            "installation",
            "journey",
            "lanes",
            "maintenance",
            "message",
            "redact",
            "schedule",
            "signal",
        ],
    ),
    ("configuration", &["config", "logging", "reload"]),
    (
        "domain",
        &[
            "escalation",
            "evaluate",
            "heartbeat",
            "hold",
            "join",
            "notify",
            "concurrency",
            "latency",
            "quorum",
            "uptime",
        ],
    ),
    ("storage", &["store"]),
    (
        "writer and readers",
        &[
            "cluster",
            "console",
            "health",
            "heartbeat_watcher",
            "metrics",
            "monitor",
            "notice",
            "report",
            "retention",
            "runner",
            "statuspage",
        ],
    ),
    (
        "woken tasks",
        &[
            "connectivity",
            "delivery",
            "pager",
            "scheduler",
            "subscribers",
            "watchdog",
        ],
    ),
    ("surface", &["agent", "app", "cli", "publish", "web"]),
];

#[test]
fn every_module_uses_only_its_own_or_lower_layers() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let references = references_by_module(&src);
    let layer_of = |name: &str| LAYERS.iter().position(|(_, ms)| ms.contains(&name));
    let top: BTreeSet<&str> = references.keys().map(|m| m[0].as_str()).collect();
    let unplaced: Vec<&&str> = top.iter().filter(|m| layer_of(m).is_none()).collect();
    assert!(
        unplaced.is_empty(),
        "modules without a layer in LAYERS: {unplaced:?}"
    );
    let mut climbs = BTreeSet::new();
    for (from, targets) in &references {
        let mine = layer_of(&from[0]).expect("placed above");
        for target in targets {
            let Some(theirs) = target.first().and_then(|t| layer_of(t)) else {
                continue; // an item of the crate root, or not a module
            };
            if theirs > mine {
                climbs.insert(format!(
                    "{} ({}) -> {} ({})",
                    from.join("::"),
                    LAYERS[mine].0,
                    target.join("::"),
                    LAYERS[theirs].0
                ));
            }
        }
    }
    assert!(
        climbs.is_empty(),
        "references that climb the layering:\n{}",
        climbs.into_iter().collect::<Vec<_>>().join("\n")
    );
}

#[test]
fn lib_rs_and_architecture_md_name_every_top_level_module() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let lib = std::fs::read_to_string(root.join("src/lib.rs")).expect("src/lib.rs is readable");
    let doc: String = lib
        .lines()
        .filter(|l| l.starts_with("//!"))
        .collect::<Vec<_>>()
        .join("\n");
    let architecture =
        std::fs::read_to_string(root.join("ARCHITECTURE.md")).expect("ARCHITECTURE.md is readable");
    let table: Vec<&str> = architecture
        .lines()
        .filter(|l| l.starts_with("| `"))
        .collect();
    let mut missing = Vec::new();
    for line in lib.lines() {
        let Some(name) = line
            .strip_prefix("pub mod ")
            .and_then(|l| l.strip_suffix(';'))
        else {
            continue;
        };
        if !doc.contains(&format!("[`{name}`]")) {
            missing.push(format!("{name}: not in lib.rs's map"));
        }
        if !table.iter().any(|row| row.contains(&format!("`{name}`"))) {
            missing.push(format!("{name}: no row in ARCHITECTURE.md's module table"));
        }
        if !LAYERS.iter().any(|(_, ms)| ms.contains(&name)) {
            missing.push(format!("{name}: no layer in LAYERS"));
        }
    }
    assert!(
        missing.is_empty(),
        "modules the docs do not map:\n{}",
        missing.join("\n")
    );
}

/// Every file path and every `module::item` ARCHITECTURE.md and lib.rs's
/// map name exists: a doc that sends the next engineer to a file that was
/// split, or to a function that was renamed, fails here.
#[test]
fn every_path_and_item_the_docs_name_exists() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let src = root.join("src");
    let files: Vec<String> = rust_files(&src)
        .iter()
        .map(|f| {
            f.strip_prefix(&src)
                .unwrap()
                .to_string_lossy()
                .replace('\\', "/")
        })
        .collect();
    let sources: BTreeMap<String, String> = files
        .iter()
        .map(|f| (f.clone(), std::fs::read_to_string(src.join(f)).unwrap()))
        .collect();
    let architecture = std::fs::read_to_string(root.join("ARCHITECTURE.md")).unwrap();
    let lib = sources["lib.rs"].clone();
    let mut missing = Vec::new();
    for (doc, text) in [("ARCHITECTURE.md", &architecture), ("src/lib.rs", &lib)] {
        for name in backticked(text) {
            if let Some(problem) = named_thing_missing(root, &files, &sources, &name) {
                missing.push(format!("{doc}: `{name}`: {problem}"));
            }
        }
    }
    missing.sort();
    missing.dedup();
    assert!(
        missing.is_empty(),
        "names the docs give that the code does not have:\n{}",
        missing.join("\n")
    );
}

/// The texts between single backticks (and `[`…`]` links in doc comments).
fn backticked(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for line in text.lines() {
        let parts: Vec<&str> = line.split('`').collect();
        for (i, part) in parts.iter().enumerate() {
            if i % 2 == 1 && !part.is_empty() {
                out.push(part.to_string());
            }
        }
    }
    out
}

/// Why `name` (as written in a doc) names nothing in the repository, or
/// None when it does or is not a code name (a key, a command, a URL).
fn named_thing_missing(
    root: &Path,
    files: &[String],
    sources: &BTreeMap<String, String>,
    name: &str,
) -> Option<String> {
    let name = name.trim_end_matches("()");
    let plain = |c: char| c.is_ascii_alphanumeric() || "_:/.".contains(c);
    if !name.chars().all(plain) || !name.chars().any(|c| c.is_ascii_alphabetic()) {
        return None;
    }
    if name.ends_with(".rs") || name.ends_with('/') && !name.contains("::") {
        let path = name.trim_end_matches('/');
        for top in [
            "tests/",
            "templates/",
            "migrations/",
            "schema/",
            "benches/",
            "crates/",
            "src/",
        ] {
            if name.starts_with(top) {
                return (!root.join(path).exists()).then(|| "no such path".into());
            }
        }
        let found = files.iter().any(|f| {
            f == path
                || f.ends_with(&format!("/{path}"))
                || f.starts_with(&format!("{path}/"))
                || f.contains(&format!("/{path}/"))
        });
        return (!found).then(|| "no such file under src/".into());
    }
    let segments: Vec<&str> = name.split("::").collect();
    if segments.len() < 2 || segments.iter().any(|s| s.is_empty()) {
        return None;
    }
    let module_file = |module: &[&str]| -> Vec<&String> {
        let dir = module.join("/");
        files
            .iter()
            .filter(|f| **f == format!("{dir}.rs") || f.starts_with(&format!("{dir}/")))
            .collect()
    };
    let first = segments[0];
    if first.chars().next().is_some_and(|c| c.is_ascii_uppercase()) {
        // `Type::item`: the type is declared somewhere and the item appears in a
        // file that declares or implements it.
        let declares = |code: &str| {
            ["struct", "enum", "trait", "type", "impl"]
                .iter()
                .any(|k| contains_word(code, &format!("{k} {first}")))
        };
        let holders: Vec<&String> = sources
            .iter()
            .filter(|(_, c)| declares(c))
            .map(|(f, _)| f)
            .collect();
        if holders.is_empty() {
            return Some(format!("no type `{first}`"));
        }
        let item = segments[segments.len() - 1];
        let has = holders.iter().any(|f| sources[*f].contains(item));
        return (!has).then(|| format!("`{first}` has no `{item}`"));
    }
    if module_file(&[first]).is_empty() {
        return None; // not one of our modules (std::fmt, sqlx::…, a key path)
    }
    // The longest prefix that is a module; what follows are items in it.
    let depth = (1..=segments.len())
        .rev()
        .find(|&n| !module_file(&segments[..n]).is_empty())
        .unwrap_or(1);
    let in_module = module_file(&segments[..depth]);
    for item in &segments[depth..] {
        if !in_module.iter().any(|f| contains_word(&sources[*f], item)) {
            return Some(format!(
                "`{}` has no `{item}`",
                segments[..depth].join("::")
            ));
        }
    }
    None
}

fn contains_word(code: &str, word: &str) -> bool {
    code.match_indices(word).any(|(i, _)| {
        let before = code[..i].chars().next_back();
        let after = code[i + word.len()..].chars().next();
        !before.is_some_and(|c| c.is_alphanumeric() || c == '_')
            && !after.is_some_and(|c| c.is_alphanumeric() || c == '_')
    })
}

#[test]
fn the_reader_sees_grouped_super_and_nested_references_and_skips_tests_and_comments() {
    let code = "//! Uses [`crate::ignored`] in a comment.\n\
        use crate::{alpha::One, beta::{Two, Three}, gamma};\n\
        use super::delta::Four;\n\
        fn f() { crate::epsilon::go(); let s = \"crate::in_string\"; }\n\
        #[cfg(test)]\nmod tests { use crate::zeta; fn g() { if true { crate::eta::x(); } } }\n\
        fn h() { crate::theta::y(); }\n";
    let me: ModPath = vec!["web".into(), "site".into()];
    let found: BTreeSet<String> = referenced_modules(&me, code)
        .into_iter()
        .map(|p| p.join("::"))
        .collect();
    let expected: BTreeSet<String> = [
        "alpha::One",
        "beta::Two",
        "beta::Three",
        "gamma",
        "web::delta::Four",
        "epsilon::go",
        "theta::y",
    ]
    .into_iter()
    .map(String::from)
    .collect();
    assert_eq!(found, expected);
}

#[test]
fn a_cycle_among_siblings_is_reported_with_its_references() {
    let mut references: BTreeMap<ModPath, BTreeSet<ModPath>> = BTreeMap::new();
    let m = |s: &str| s.split("::").map(String::from).collect::<ModPath>();
    references.insert(m("web::site"), [m("web::badge::x")].into());
    references.insert(m("web::badge"), [m("web::site"), m("store")].into());
    references.insert(m("store"), BTreeSet::new());
    let report = cycles(&references);
    assert!(report.contains("in `web`: badge, site"), "{report}");
    assert!(!cycles(&BTreeMap::from([(m("a"), [m("b")].into())])).contains("cycle"));
}

/// Every module under `src` (from its file path) and the module paths its code refers to.
fn references_by_module(src: &Path) -> BTreeMap<ModPath, BTreeSet<ModPath>> {
    let mut out = BTreeMap::new();
    for file in rust_files(src) {
        let Some(module) = module_of(src, &file) else {
            continue;
        };
        let code = std::fs::read_to_string(&file).expect("source files are readable UTF-8");
        out.entry(module.clone())
            .or_insert_with(BTreeSet::new)
            .extend(referenced_modules(&module, &code));
    }
    out
}

fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).expect("src is a readable directory") {
        let path = entry.expect("directory entries are readable").path();
        if path.is_dir() {
            files.extend(rust_files(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            files.push(path);
        }
    }
    files
}

/// `src/web/site.rs` → `web::site`; `src/web/mod.rs` → `web`; `lib.rs` and `main.rs` are the
/// root (their `mod` lines are the map, not dependencies).
fn module_of(src: &Path, file: &Path) -> Option<ModPath> {
    let rel = file.strip_prefix(src).ok()?.with_extension("");
    let mut parts: ModPath = rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    if parts.last().is_some_and(|p| p == "mod") {
        parts.pop();
    }
    if parts.len() == 1 && (parts[0] == "lib" || parts[0] == "main") {
        return None;
    }
    Some(parts)
}

/// The module paths (as written, possibly ending in an item name) that `code`, the source of
/// module `me`, refers to outside comments, string literals and `#[cfg(test)]` items.
fn referenced_modules(me: &ModPath, code: &str) -> Vec<ModPath> {
    let code = without_tests(&without_comments_and_strings(code));
    let bytes = code.as_bytes();
    let mut found = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let boundary = i == 0 || !is_ident(bytes[i - 1]) && bytes[i - 1] != b':';
        if boundary && bytes[i..].starts_with(b"crate::") {
            let (paths, end) = paths_after(&code, i + "crate::".len());
            found.extend(paths);
            i = end;
        } else if boundary && bytes[i..].starts_with(b"super::") {
            let mut base = me.clone();
            let mut j = i;
            while bytes[j..].starts_with(b"super::") {
                base.pop();
                j += "super::".len();
            }
            let (paths, end) = paths_after(&code, j);
            for p in paths {
                let mut full = base.clone();
                full.extend(p);
                found.push(full);
            }
            i = end;
        } else {
            i += 1;
        }
    }
    found.retain(|p| !p.is_empty() && p.first().is_some_and(|s| s != "*"));
    found
}

/// The paths starting at `at`: `a::b::C` gives one, `{a::X, b, c::{d}}` gives each entry.
/// Returns them and the offset after what was read.
fn paths_after(code: &str, at: usize) -> (Vec<ModPath>, usize) {
    let bytes = code.as_bytes();
    let mut i = at;
    let mut path = ModPath::new();
    loop {
        let start = i;
        while i < bytes.len() && is_ident(bytes[i]) {
            i += 1;
        }
        if i > start {
            path.push(code[start..i].to_string());
        }
        if bytes[i..].starts_with(b"::{") {
            i += 3;
            let mut all = Vec::new();
            let mut depth = 1;
            let mut entry_start = i;
            while i < bytes.len() && depth > 0 {
                match bytes[i] {
                    b'{' => depth += 1,
                    b'}' => depth -= 1,
                    b',' if depth == 1 => {
                        all.push(entry_start..i);
                        entry_start = i + 1;
                    }
                    _ => {}
                }
                if depth > 0 {
                    i += 1;
                }
            }
            all.push(entry_start..i);
            let mut out = Vec::new();
            for range in all {
                let entry = code[range].trim_start();
                let (inner, _) = paths_after(entry, 0);
                for p in inner {
                    let mut full = path.clone();
                    full.extend(p);
                    out.push(full);
                }
            }
            return (out, i + 1);
        }
        if i > start && bytes[i..].starts_with(b"::") {
            i += 2;
            continue;
        }
        if bytes[i..].starts_with(b"{") && path.is_empty() {
            // `crate::{a, b}`: the group starts right after `crate::`.
            let (inner, end) = paths_after(&format!("x::{}", &code[i..]), 0);
            let inner = inner.into_iter().map(|p| p[1..].to_vec()).collect();
            return (inner, i + end - 3);
        }
        return (vec![path], i);
    }
}

fn is_ident(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// Blanks `//` and `/* */` comments and string and char literals, keeping offsets.
fn without_comments_and_strings(code: &str) -> String {
    let bytes = code.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i..].starts_with(b"//") {
            while i < bytes.len() && bytes[i] != b'\n' {
                out.push(b' ');
                i += 1;
            }
        } else if bytes[i..].starts_with(b"/*") {
            while i < bytes.len() && !bytes[i..].starts_with(b"*/") {
                out.push(if bytes[i] == b'\n' { b'\n' } else { b' ' });
                i += 1;
            }
            out.extend_from_slice(b"  ");
            i += 2;
        } else if bytes[i] == b'r'
            && (bytes[i + 1..].starts_with(b"\"") || bytes[i + 1..].starts_with(b"#"))
            && (i == 0 || !is_ident(bytes[i - 1]))
        {
            // Raw string: r"..." or r#"..."#.
            let mut hashes = 0;
            let mut j = i + 1;
            while j < bytes.len() && bytes[j] == b'#' {
                hashes += 1;
                j += 1;
            }
            if j >= bytes.len() || bytes[j] != b'"' {
                out.push(bytes[i]);
                i += 1;
                continue;
            }
            let closing: Vec<u8> = std::iter::once(b'"')
                .chain(std::iter::repeat_n(b'#', hashes))
                .collect();
            j += 1;
            while j < bytes.len() && !bytes[j..].starts_with(&closing) {
                j += 1;
            }
            let end = (j + closing.len()).min(bytes.len());
            out.extend(
                bytes[i..end]
                    .iter()
                    .map(|&b| if b == b'\n' { b'\n' } else { b' ' }),
            );
            i = end;
        } else if bytes[i] == b'"' {
            out.push(b' ');
            i += 1;
            while i < bytes.len() && bytes[i] != b'"' {
                if bytes[i] == b'\\' {
                    out.push(b' ');
                    i += 1;
                }
                if i < bytes.len() {
                    out.push(if bytes[i] == b'\n' { b'\n' } else { b' ' });
                    i += 1;
                }
            }
            out.push(b' ');
            i += 1;
        } else if bytes[i] == b'\''
            && i + 2 < bytes.len()
            && (bytes[i + 2] == b'\'' || bytes[i + 1] == b'\\')
        {
            // A char literal ('x' or '\n'); lifetimes ('a) are left alone.
            let mut j = i + 1;
            if bytes[j] == b'\\' {
                j += 1;
            }
            while j < bytes.len() && bytes[j] != b'\'' {
                j += 1;
            }
            out.extend(std::iter::repeat_n(b' ', j + 1 - i));
            i = j + 1;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out[..out.len().min(bytes.len())]).into_owned()
}

/// Blanks every item under `#[cfg(test)]` (a `mod tests { .. }`, a `use`, a `fn`): test code
/// may reach anywhere.
fn without_tests(code: &str) -> String {
    let mut out = code.to_string();
    let mut from = 0;
    while let Some(pos) = out[from..].find("#[cfg(test)]") {
        let start = from + pos;
        let bytes = out.as_bytes();
        let mut i = start + "#[cfg(test)]".len();
        // The item ends at its first `;` before any `{`, or at the `}` matching its first `{`.
        let mut depth = 0usize;
        while i < bytes.len() {
            match bytes[i] {
                b';' if depth == 0 => break,
                b'{' => depth += 1,
                b'}' => {
                    depth -= 1;
                    if depth == 0 {
                        break;
                    }
                }
                _ => {}
            }
            i += 1;
        }
        let end = (i + 1).min(out.len());
        let blank: String = out[start..end]
            .chars()
            .map(|c| if c == '\n' { '\n' } else { ' ' })
            .collect();
        out.replace_range(start..end, &blank);
        from = end;
    }
    out
}

/// Every cycle among siblings, at every level: for each parent, the graph whose nodes are its
/// child modules and whose edges are references from anywhere inside one child to anywhere
/// inside another. Returns a report, empty when there is none.
fn cycles(references: &BTreeMap<ModPath, BTreeSet<ModPath>>) -> String {
    let known: BTreeSet<&ModPath> = references.keys().collect();
    // parent -> child -> referenced sibling -> example references "from -> to"
    let mut levels: BTreeMap<ModPath, BTreeMap<String, BTreeMap<String, String>>> = BTreeMap::new();
    for (from, targets) in references {
        for target in targets {
            let common = from.iter().zip(target).take_while(|(a, b)| a == b).count();
            if common >= from.len() || common >= target.len() {
                continue; // a module and its own descendants or ancestors
            }
            // Only references to a module that exists count (a target may end in an item name).
            let target_module = (1..=target.len())
                .rev()
                .map(|n| target[..n].to_vec())
                .find(|p| known.contains(p));
            let Some(target_module) = target_module else {
                continue;
            };
            if target_module.len() <= common {
                continue;
            }
            let parent = from[..common].to_vec();
            levels
                .entry(parent)
                .or_default()
                .entry(from[common].clone())
                .or_default()
                .entry(target_module[common].clone())
                .or_insert_with(|| format!("{} -> {}", from.join("::"), target.join("::")));
        }
    }
    let mut report = String::new();
    for (parent, graph) in &levels {
        for component in strongly_connected(graph) {
            let place = if parent.is_empty() {
                "crate".to_string()
            } else {
                parent.join("::")
            };
            report.push_str(&format!("cycle in `{place}`: {}\n", component.join(", ")));
            for a in &component {
                for (b, example) in &graph[a] {
                    if component.contains(b) {
                        report.push_str(&format!("    {a} -> {b}   (e.g. {example})\n"));
                    }
                }
            }
        }
    }
    report
}

/// Tarjan's strongly connected components with more than one node, each sorted.
fn strongly_connected(graph: &BTreeMap<String, BTreeMap<String, String>>) -> Vec<Vec<String>> {
    struct Walk<'a> {
        graph: &'a BTreeMap<String, BTreeMap<String, String>>,
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        on_stack: BTreeSet<&'a str>,
        found: Vec<Vec<String>>,
    }
    impl<'a> Walk<'a> {
        fn visit(&mut self, v: &'a str) {
            let n = self.index.len();
            self.index.insert(v, n);
            self.low.insert(v, n);
            self.stack.push(v);
            self.on_stack.insert(v);
            for w in self.graph.get(v).into_iter().flat_map(|m| m.keys()) {
                let w = w.as_str();
                if !self.index.contains_key(w) {
                    self.visit(w);
                    let lw = self.low[w];
                    let lv = self.low.get_mut(v).expect("visited");
                    *lv = (*lv).min(lw);
                } else if self.on_stack.contains(w) {
                    let iw = self.index[w];
                    let lv = self.low.get_mut(v).expect("visited");
                    *lv = (*lv).min(iw);
                }
            }
            if self.low[v] == self.index[v] {
                let mut component = Vec::new();
                while let Some(w) = self.stack.pop() {
                    self.on_stack.remove(w);
                    component.push(w.to_string());
                    if w == v {
                        break;
                    }
                }
                if component.len() > 1 {
                    component.sort();
                    self.found.push(component);
                }
            }
        }
    }
    let mut walk = Walk {
        graph,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        found: Vec::new(),
    };
    for v in graph.keys() {
        if !walk.index.contains_key(v.as_str()) {
            walk.visit(v);
        }
    }
    walk.found
}
