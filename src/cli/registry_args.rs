//! Flags for talking to registries, shared by the commands that read or
//! write `docker://` references.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use chunkah::oci::ImageRef;
use chunkah::registry::{default_auth_files, ClientConfig, Credentials};
use clap::Args;

#[derive(Debug, Args, Clone)]
pub struct RegistryArgs {
    /// Speak HTTPS and verify certificates (false: plain HTTP, as skopeo's
    /// --tls-verify=false).
    #[arg(long, value_name = "BOOL", default_value_t = true, action = clap::ArgAction::Set)]
    tls_verify: bool,
    /// Registry credentials, USER:PASSWORD (default: the usual auth.json files).
    #[arg(long, value_name = "USER:PASSWORD")]
    creds: Option<String>,
    /// The auth.json to take registry credentials from.
    #[arg(long, value_name = "FILE")]
    authfile: Option<PathBuf>,
    /// A PEM file of CA certificates to trust for the registry.
    #[arg(long, value_name = "FILE")]
    ca_file: Option<PathBuf>,
}

impl RegistryArgs {
    /// The client configuration for `reference` (defaults for non-registry ones).
    pub fn config(&self, reference: &ImageRef) -> Result<ClientConfig> {
        let ImageRef::Registry(r) = reference else {
            return Ok(ClientConfig::default());
        };
        let credentials = match (&self.creds, &self.authfile) {
            (Some(c), _) => match c.split_once(':') {
                Some((user, password)) if !user.is_empty() => Credentials::Basic {
                    user: user.to_string(),
                    password: password.to_string(),
                },
                _ => bail!("--creds must be USER:PASSWORD"),
            },
            (None, Some(f)) => Credentials::from_files(&r.host, std::slice::from_ref(f))
                .with_context(|| format!("reading {}", f.display()))?,
            (None, None) => {
                Credentials::from_files(&r.host, &default_auth_files(|k| std::env::var_os(k)))
                    .context("reading the registry auth files")?
            }
        };
        Ok(ClientConfig {
            tls_verify: self.tls_verify,
            ca_file: self.ca_file.clone(),
            credentials,
            ..ClientConfig::default()
        })
    }
}
