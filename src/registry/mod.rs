//! A synchronous client of the OCI distribution API (a container registry).
//!
//! [`RegistryRef`] parses `docker://HOST[:PORT]/REPO:TAG` and
//! `docker://HOST[:PORT]/REPO@sha256:HEX`; a [`Client`] talks to one
//! repository of one registry: manifests, blobs (whole, streamed with
//! resumption, or as byte ranges, many in one request), and pushes
//! (monolithic blob uploads, manifests). Everything fetched by digest is
//! checked against it; every request is counted in [`Stats`].
//!
//! ```no_run
//! use chunkah::registry::{Client, ClientConfig, RegistryRef};
//!
//! let r = RegistryRef::parse("docker://127.0.0.1:5000/sample:v1")?;
//! let client = Client::for_ref(&r, ClientConfig { tls_verify: false, ..Default::default() })?;
//! let manifest = client.get_manifest(&r.target)?;
//! println!("{} {} bytes", manifest.digest, manifest.size);
//! # Ok::<(), chunkah::Error>(())
//! ```

mod auth;
mod client;
mod handshake;
mod multipart;
mod pull;
mod push;
mod ranges;
mod reference;
mod transport;

pub use auth::{default_auth_files, Credentials};
pub use client::{Client, ClientConfig, PushOutcome, RemoteManifest, Stats};
pub use reference::{RegistryRef, Target, DOCKER_SCHEME};
