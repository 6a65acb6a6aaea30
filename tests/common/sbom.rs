//! The SBOM validators scripts/setup.sh installs (spdx-tools,
//! cyclonedx-python-lib), run on a document.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The validators' virtual environment (scripts/setup.sh makes it).
pub fn venv() -> PathBuf {
    let dir = std::env::var_os("CHUNKAH_SBOM_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").expect("HOME")).join(".cache/chunkah/sbom-venv")
        });
    assert!(
        dir.join("bin/pyspdxtools").is_file(),
        "this test needs the SBOM validators in {}: run scripts/setup.sh",
        dir.display()
    );
    dir
}

/// spdx-tools' parser and full validator (what `pyspdxtools -i` runs): its
/// messages, or `valid` and the number of packages it read.
pub const SPDX_CHECK: &str = "import sys\n\
    from spdx_tools.spdx.parser.parse_anything import parse_file\n\
    from spdx_tools.spdx.validation.document_validator import validate_full_spdx_document\n\
    doc = parse_file(sys.argv[1])\n\
    m = validate_full_spdx_document(doc)\n\
    print('\\n'.join(x.validation_message for x in m) if m else f'valid {len(doc.packages)}')\n\
    sys.exit(1 if m else 0)\n";

/// cyclonedx-python-lib's strict JSON-schema validator for 1.6.
pub const CYCLONEDX_CHECK: &str = "import sys\n\
    from cyclonedx.schema import SchemaVersion\n\
    from cyclonedx.validation.json import JsonStrictValidator\n\
    e = JsonStrictValidator(SchemaVersion.V1_6).validate_str(open(sys.argv[1]).read())\n\
    print(e if e else 'valid')\n\
    sys.exit(1 if e else 0)\n";

/// Runs `check` (one of the checks above) on `file` with the validators
/// in `venv`: whether it passed, and what it said.
pub fn run_check(venv: &Path, check: &str, file: &Path) -> (bool, String) {
    let out = Command::new(venv.join("bin/python"))
        .args(["-c", check])
        .arg(file)
        .output()
        .unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), said.trim().to_string())
}
