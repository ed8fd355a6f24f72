//! docs/CLI.md shows every subcommand's `--help` exactly as the tool prints it (at 100
//! columns), so the page cannot fall behind the tool.

mod common;

#[test]
fn cli_md_has_every_help_text() {
    let doc_path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/CLI.md");
    let doc = std::fs::read_to_string(doc_path).expect("read docs/CLI.md");
    let mut subs = vec!["", "ls", "show", "watch", "hz", "rm"];
    if cfg!(feature = "bridge") {
        subs.push("bridge");
    }
    for sub in subs {
        let mut args: Vec<&str> = vec![];
        if !sub.is_empty() {
            args.push(sub);
        }
        args.push("--help");
        let r = common::run(&args);
        assert_eq!(r.code, 0, "{r:?}");
        let title = format!("flexshm {sub}");
        let block = format!("```text\n$ {} --help\n{}```\n", title.trim(), r.stdout);
        assert!(
            doc.contains(&block),
            "docs/CLI.md lacks the current help of `{}`; it should contain:\n{block}",
            title.trim()
        );
    }
}
