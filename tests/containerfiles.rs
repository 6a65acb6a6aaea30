//! chunkah's own Containerfile and the splitter: parsed (stages, base
//! images, ENV, ENTRYPOINT, the commands they run), the build command
//! checked to be the one `scripts/test.sh` runs, and the binary run the way
//! the image runs it. Building the images needs `RUN`, which this machine
//! cannot do.

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use common::*;

/// One instruction: keyword and arguments, continuation lines joined.
#[derive(Debug)]
struct Instruction {
    keyword: String,
    args: String,
}

fn parse(file: &str) -> Vec<Instruction> {
    let text = fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(file)).unwrap();
    let mut out = Vec::new();
    let mut pending = String::new();
    for line in text.lines() {
        let line = line.trim();
        if pending.is_empty() && (line.is_empty() || line.starts_with('#')) {
            continue;
        }
        match line.strip_suffix('\\') {
            Some(part) => {
                pending.push_str(part.trim());
                pending.push(' ');
            }
            None => {
                pending.push_str(line);
                let (k, a) = pending.split_once(' ').unwrap_or((&pending, ""));
                out.push(Instruction {
                    keyword: k.to_ascii_uppercase(),
                    args: a.trim().to_string(),
                });
                pending.clear();
            }
        }
    }
    assert!(pending.is_empty(), "{file} ends inside an instruction");
    out
}

/// ARG defaults declared before the first FROM.
fn global_args(instructions: &[Instruction]) -> BTreeMap<String, String> {
    instructions
        .iter()
        .take_while(|i| i.keyword != "FROM")
        .filter(|i| i.keyword == "ARG")
        .map(|i| match i.args.split_once('=') {
            Some((k, v)) => (k.to_string(), v.trim_matches('"').to_string()),
            None => (i.args.clone(), String::new()),
        })
        .collect()
}

/// The stages: (base image with ARG defaults substituted, stage name).
fn stages(instructions: &[Instruction]) -> Vec<(String, Option<String>)> {
    let args = global_args(instructions);
    instructions
        .iter()
        .filter(|i| i.keyword == "FROM")
        .map(|i| {
            let words: Vec<&str> = i.args.split_whitespace().collect();
            let mut base = words[0].to_string();
            for (k, v) in &args {
                base = base.replace(&format!("${{{k}}}"), v);
            }
            let name = (words.len() == 3 && words[1].eq_ignore_ascii_case("as"))
                .then(|| words[2].to_string());
            (base, name)
        })
        .collect()
}

#[test]
fn the_containerfile_builds_chunkah_and_runs_it_on_a_mounted_rootfs() {
    let c = parse("Containerfile");
    let stages = stages(&c);
    assert_eq!(stages.len(), 2, "{stages:?}");
    assert_eq!(stages[0].1.as_deref(), Some("builder"));
    assert!(stages[0].0.contains("rust:"), "{stages:?}");
    assert!(
        stages[1].0.ends_with("debian:bookworm-slim"),
        "a minimal base: {stages:?}"
    );
    let last_stage: Vec<&Instruction> = c
        .iter()
        .skip_while(|i| !(i.keyword == "FROM" && i.args.starts_with("${BASE_IMAGE}")))
        .collect();
    let find = |k: &str| {
        last_stage
            .iter()
            .find(|i| i.keyword == k)
            .map(|i| i.args.as_str())
    };
    assert_eq!(find("ENV"), Some("CHUNKAH_ROOTFS=/chunkah"));
    assert_eq!(find("ENTRYPOINT"), Some(r#"["/usr/bin/chunkah"]"#));
    assert_eq!(
        find("COPY"),
        Some("--from=builder /out/chunkah /usr/bin/chunkah")
    );
    let build_step = c.iter().find(|i| i.keyword == "RUN").unwrap();
    let cargo = build_step.args.split("&&").next().unwrap().trim();
    // The command scripts/test.sh runs too, so CI builds this very binary.
    assert_eq!(cargo, "cargo build --release --locked --bin chunkah");
    let test_sh =
        fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/test.sh")).unwrap();
    assert!(
        test_sh.contains("Containerfile"),
        "scripts/test.sh runs the Containerfile's build"
    );

    // The image's entry point with its environment: a rootfs at
    // $CHUNKAH_ROOTFS, an archive on stdout.
    let tmp = TempDir::new("containerfile");
    let root = tmp.path().join("chunkah");
    fs::create_dir_all(root.join("usr/bin")).unwrap();
    fs::write(root.join("usr/bin/app"), b"app").unwrap();
    let out = run(chunkah()
        .arg("build")
        .env("CHUNKAH_ROOTFS", &root)
        .current_dir(tmp.path()));
    assert!(
        out.stdout.len() > 1024 && &out.stdout[257..262] == b"ustar",
        "an archive"
    );
}

#[test]
fn the_splitter_runs_chunkah_build_into_the_context_and_ends_with_its_image() {
    let c = parse("Containerfile.splitter");
    let args = global_args(&c);
    assert!(args.contains_key("CHUNKAH") && args.contains_key("CHUNKAH_ARGS"));
    assert!(args.contains_key("CHUNKAH_CONFIG_STR"));
    let stages = stages(&c);
    let names: Vec<Option<&str>> = stages.iter().map(|(_, n)| n.as_deref()).collect();
    assert_eq!(names, [Some("target"), Some("chunkah"), None]);
    assert_eq!(stages[1].0, "localhost/chunkah:latest");
    assert_eq!(stages[2].0, "oci:out");
    let run = c.iter().find(|i| i.keyword == "RUN").unwrap();
    assert!(
        run.args.contains("--mount=from=target,target=/chunkah,ro"),
        "{}",
        run.args
    );
    assert!(run
        .args
        .ends_with("chunkah build ${CHUNKAH_ARGS} --output oci:/run/src/out"));
    // The stage sees CHUNKAH_CONFIG_STR and CHUNKAH_ARGS (re-declared).
    let declared: Vec<&str> = c
        .iter()
        .skip_while(|i| !(i.keyword == "FROM" && i.args.ends_with("AS chunkah")))
        .filter(|i| i.keyword == "ARG")
        .map(|i| i.args.as_str())
        .collect();
    assert_eq!(declared, ["CHUNKAH_CONFIG_STR", "CHUNKAH_ARGS"]);
}
