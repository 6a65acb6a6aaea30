//! Flags for talking to registries, shared by the commands that read or
//! write `docker://` references, and the scratch directory.

use std::path::PathBuf;

use anyhow::{bail, Result};
use chunkah::registry::{default_auth_files, ClientConfig, Credentials};
use chunkah::store::StoreConfig;
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
    /// How registries are reached, and scratch files in `$TMPDIR`.
    pub fn store(&self) -> Result<StoreConfig> {
        let credentials = match (&self.creds, &self.authfile) {
            (Some(c), _) => match c.split_once(':') {
                Some((user, password)) if !user.is_empty() => Credentials::Basic {
                    user: user.to_string(),
                    password: password.to_string(),
                },
                _ => bail!(chunkah::Error::Config(
                    "--creds must be USER:PASSWORD".into()
                )),
            },
            (None, Some(f)) => Credentials::AuthFiles(vec![f.clone()]),
            (None, None) => Credentials::AuthFiles(default_auth_files(|k| std::env::var_os(k))),
        };
        Ok(StoreConfig {
            registry: ClientConfig {
                tls_verify: self.tls_verify,
                ca_file: self.ca_file.clone(),
                credentials,
                ..ClientConfig::default()
            },
            scratch_dir: Some(std::env::temp_dir()),
        })
    }
}
