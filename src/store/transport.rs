//! The transports a reference names by its prefix: the one place that knows
//! them, so every parser (pack sources, diff inputs, image references,
//! `build --output`) accepts and rejects the same strings.

/// A transport prefix: `dir:`, `tar:`, `oci:`, `oci-archive:` or `docker://`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    /// `dir:PATH`: a root file system directory.
    Dir,
    /// `tar:FILE`: a tarball of a root file system.
    Tar,
    /// `oci:DIR[:TAG]`: an OCI image layout.
    Oci,
    /// `oci-archive:FILE[:TAG]`: an OCI image layout in a tar file.
    OciArchive,
    /// `docker://HOST[:PORT]/REPO:TAG`: an image in a registry.
    Docker,
}

impl Transport {
    /// Every transport, in the order messages list them.
    pub const ALL: [Transport; 5] = [
        Transport::Dir,
        Transport::Tar,
        Transport::Oci,
        Transport::OciArchive,
        Transport::Docker,
    ];

    /// The transports that name images.
    pub const IMAGES: [Transport; 3] = [Transport::Oci, Transport::OciArchive, Transport::Docker];

    /// The prefix a reference of this transport starts with.
    pub fn prefix(self) -> &'static str {
        match self {
            Transport::Dir => "dir:",
            Transport::Tar => "tar:",
            Transport::Oci => "oci:",
            Transport::OciArchive => "oci-archive:",
            Transport::Docker => "docker://",
        }
    }

    /// How a reference of this transport is written, for messages.
    pub fn form(self) -> &'static str {
        match self {
            Transport::Dir => "dir:PATH",
            Transport::Tar => "tar:FILE",
            Transport::Oci => "oci:DIR[:TAG]",
            Transport::OciArchive => "oci-archive:FILE[:TAG]",
            Transport::Docker => "docker://HOST/REPO:TAG",
        }
    }

    /// Whether references of this transport name images.
    pub fn is_image(self) -> bool {
        Transport::IMAGES.contains(&self)
    }

    /// The transport `s` starts with and what follows its prefix, if it
    /// starts with one chunkah knows.
    pub fn split(s: &str) -> Option<(Transport, &str)> {
        Transport::ALL
            .into_iter()
            .find_map(|t| s.strip_prefix(t.prefix()).map(|rest| (t, rest)))
    }

    /// The forms of `transports`, as a message lists them: "a, b or c".
    pub fn expected(transports: &[Transport]) -> String {
        let forms: Vec<&str> = transports.iter().map(|t| t.form()).collect();
        match forms.split_last() {
            None => String::new(),
            Some((last, [])) => (*last).to_string(),
            Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
        }
    }
}

/// The transport `s` starts with (`docker-archive` of `docker-archive:x.tar`)
/// when it looks like one chunkah does not know: letters, digits and `-`
/// before the first `:`. A path like `./a:b` or `/x:y` has none.
pub fn unknown_transport(s: &str) -> Option<&str> {
    if Transport::split(s).is_some() {
        return None;
    }
    let (transport, _) = s.split_once(':')?;
    (!transport.is_empty()
        && transport
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-'))
    .then_some(transport)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_every_known_prefix() {
        assert_eq!(Transport::split("dir:/r"), Some((Transport::Dir, "/r")));
        assert_eq!(
            Transport::split("tar:x.tar"),
            Some((Transport::Tar, "x.tar"))
        );
        assert_eq!(
            Transport::split("oci:out:v1"),
            Some((Transport::Oci, "out:v1"))
        );
        assert_eq!(
            Transport::split("oci-archive:x.tar"),
            Some((Transport::OciArchive, "x.tar"))
        );
        assert_eq!(
            Transport::split("docker://h:5000/r:t"),
            Some((Transport::Docker, "h:5000/r:t"))
        );
        assert_eq!(Transport::split("./oci:x"), None);
        assert_eq!(Transport::split("docker:x"), None);
        for t in Transport::ALL {
            assert_eq!(Transport::split(t.prefix()), Some((t, "")));
        }
    }

    #[test]
    fn names_unknown_transports_only() {
        assert_eq!(
            unknown_transport("docker-archive:x.tar"),
            Some("docker-archive")
        );
        assert_eq!(
            unknown_transport("containers-storage:n"),
            Some("containers-storage")
        );
        assert_eq!(unknown_transport("oci:out"), None);
        assert_eq!(unknown_transport("./a:b"), None);
        assert_eq!(unknown_transport("/x:y"), None);
        assert_eq!(unknown_transport(":x"), None);
        assert_eq!(unknown_transport("plain"), None);
    }

    #[test]
    fn lists_forms_as_a_sentence() {
        assert_eq!(Transport::expected(&[]), "");
        assert_eq!(Transport::expected(&[Transport::Oci]), "oci:DIR[:TAG]");
        assert_eq!(
            Transport::expected(&Transport::IMAGES),
            "oci:DIR[:TAG], oci-archive:FILE[:TAG] or docker://HOST/REPO:TAG"
        );
    }

    #[cfg(feature = "registry")]
    #[test]
    fn the_registry_scheme_is_the_docker_prefix() {
        assert_eq!(Transport::Docker.prefix(), crate::registry::DOCKER_SCHEME);
    }
}
