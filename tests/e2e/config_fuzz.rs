//! The loader never panics, whatever it is given: arbitrary text, and
//! random mutations of the shipped probes.yaml.

use std::path::Path;

use proptest::prelude::*;

fn env(_: &str) -> Option<String> {
    Some("0123456789abcdef-secret".into())
}

fn shipped() -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("probes.yaml")).unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn arbitrary_text_never_panics(src in "\\PC{0,400}") {
        let _ = lookout::config::parse(&src, "fuzz.yaml", Path::new("."), &env);
    }

    #[test]
    fn mutated_config_never_panics(
        cuts in proptest::collection::vec((0usize..4000, 0usize..40, "[ -~\n]{0,12}"), 1..6)
    ) {
        let mut src = shipped();
        for (at, len, insert) in cuts {
            let at = at % (src.len() + 1);
            let end = (at + len).min(src.len());
            if src.is_char_boundary(at) && src.is_char_boundary(end) {
                src.replace_range(at..end, &insert);
            }
        }
        if let Err(d) = lookout::config::parse(&src, "fuzz.yaml", Path::new("."), &env) {
            // Every diagnostic renders and points inside the file.
            let text = d.render();
            prop_assert!(text.starts_with("error: "));
            for item in &d.items {
                prop_assert!(item.pos.line <= src.lines().count() + 1);
            }
        }
    }
}
