//! Package URLs (<https://github.com/package-url/purl-spec>):
//! `pkg:TYPE/NAMESPACE/NAME@VERSION?QUALIFIERS`, each part percent-encoded.

use super::{Ecosystem, OsRelease, Package};

/// The package URL of `package` in a tree of `distro`:
/// `pkg:deb/debian/libc6@2.36-9%2Bdeb12u4?arch=amd64&distro=debian-12`.
pub fn purl(package: &Package, distro: Option<&OsRelease>) -> String {
    let (namespace, name) = namespace_and_name(package, distro);
    let mut out = format!("pkg:{}/", package.ecosystem.purl_type());
    if let Some(ns) = namespace {
        out.push_str(&encode(&ns));
        out.push('/');
    }
    out.push_str(&encode(&name));
    if let Some(v) = &package.version {
        out.push('@');
        out.push_str(&encode(v));
    }
    let mut qualifiers = Vec::new();
    if let Some(arch) = &package.architecture {
        qualifiers.push(("arch", arch.clone()));
    }
    if let Some(d) = distro.filter(|_| package.ecosystem.is_distribution()) {
        let release = match d.version_id.as_str() {
            "" => d.id.clone(),
            v => format!("{}-{v}", d.id),
        };
        qualifiers.push(("distro", release));
    }
    if let Some(source) = package.source.as_ref().filter(|s| **s != package.name) {
        qualifiers.push(("upstream", source.clone()));
    }
    // The spec sorts qualifiers by key.
    qualifiers.sort();
    for (i, (k, v)) in qualifiers.iter().enumerate() {
        out.push(if i == 0 { '?' } else { '&' });
        out.push_str(k);
        out.push('=');
        out.push_str(&encode(v));
    }
    out
}

/// The namespace and name the spec asks for: the distribution for
/// distribution packages, the scope of a scoped npm package, none for
/// PyPI (whose names are lower-cased with `_` as `-`).
fn namespace_and_name(package: &Package, distro: Option<&OsRelease>) -> (Option<String>, String) {
    match package.ecosystem {
        Ecosystem::Pypi => (None, package.name.to_lowercase().replace('_', "-")),
        Ecosystem::Npm => match package.name.split_once('/') {
            Some((scope, name)) if scope.starts_with('@') => {
                (Some(scope.to_string()), name.to_string())
            }
            _ => (None, package.name.clone()),
        },
        _ => {
            let namespace = match (package.ecosystem, distro) {
                (_, Some(d)) if !d.id.is_empty() => d.id.clone(),
                (Ecosystem::Apk, _) => "alpine".into(),
                (Ecosystem::Alpm, _) => "arch".into(),
                (Ecosystem::Deb, _) => "debian".into(),
                _ => return (None, package.name.clone()),
            };
            (Some(namespace), package.name.clone())
        }
    }
}

/// Percent-encodes all but the unreserved characters of RFC 3986.
fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn package(ecosystem: Ecosystem, name: &str, version: Option<&str>) -> Package {
        Package {
            ecosystem,
            name: name.into(),
            version: version.map(str::to_string),
            architecture: None,
            source: None,
            license: None,
            files: vec![],
        }
    }

    #[test]
    fn distribution_packages_carry_arch_distro_and_source() {
        let debian = OsRelease {
            id: "debian".into(),
            version_id: "12".into(),
        };
        let mut libc = package(Ecosystem::Deb, "libc6", Some("2.36-9+deb12u4"));
        libc.architecture = Some("amd64".into());
        libc.source = Some("glibc".into());
        assert_eq!(
            purl(&libc, Some(&debian)),
            "pkg:deb/debian/libc6@2.36-9%2Bdeb12u4?arch=amd64&distro=debian-12&upstream=glibc"
        );
        let epoch = package(Ecosystem::Deb, "perl", Some("1:5.36.0-7"));
        assert_eq!(
            purl(&epoch, Some(&debian)),
            "pkg:deb/debian/perl@1%3A5.36.0-7?distro=debian-12"
        );
        let arch = OsRelease {
            id: "arch".into(),
            version_id: String::new(),
        };
        let pacman = package(Ecosystem::Alpm, "pacman", Some("6.1.0-3"));
        assert_eq!(
            purl(&pacman, Some(&arch)),
            "pkg:alpm/arch/pacman@6.1.0-3?distro=arch"
        );
        assert_eq!(
            purl(&package(Ecosystem::Apk, "musl", None), None),
            "pkg:apk/alpine/musl"
        );
    }

    #[test]
    fn language_packages_follow_their_rules() {
        let fedora = OsRelease {
            id: "fedora".into(),
            version_id: "40".into(),
        };
        assert_eq!(
            purl(
                &package(Ecosystem::Pypi, "Typing_Extensions", Some("4.12.2")),
                Some(&fedora)
            ),
            "pkg:pypi/typing-extensions@4.12.2"
        );
        assert_eq!(
            purl(&package(Ecosystem::Npm, "@babel/core", Some("7.0.0")), None),
            "pkg:npm/%40babel/core@7.0.0"
        );
        assert_eq!(
            purl(&package(Ecosystem::Npm, "left-pad", Some("1.3.0")), None),
            "pkg:npm/left-pad@1.3.0"
        );
    }
}
