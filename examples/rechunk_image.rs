//! Rechunks an image (its layers applied in order, its config kept) and
//! pushes the result to a registry, keeping the layer grouping of the
//! previous release so that unchanged components are not uploaded again.
//!
//! `cargo run --release --example rechunk_image -- SOURCE docker://HOST/REPO:TAG [PRIOR]`
//!
//! SOURCE and PRIOR are `oci:DIR[:TAG]`, `oci-archive:FILE[:TAG]` or
//! `docker://HOST/REPO:TAG`. Set `CHUNKAH_INSECURE=1` for a registry that
//! speaks plain HTTP on 127.0.0.1.

use chunkah::jobs::{pack, Event, Input, JobContext, PackJob, PackOptions};
use chunkah::{default_auth_files, ClientConfig, Credentials};
use chunkah::{ImageRef, StoreConfig};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let (Some(source), Some(dest)) = (args.next(), args.next()) else {
        return Err("usage: rechunk_image SOURCE DEST [PRIOR]".into());
    };
    // The library reads no environment variable: the program decides.
    let insecure = std::env::var_os("CHUNKAH_INSECURE").is_some();
    let store = StoreConfig {
        registry: ClientConfig {
            tls_verify: !insecure,
            credentials: Credentials::AuthFiles(default_auth_files(|k| std::env::var_os(k))),
            ..ClientConfig::default()
        },
        // The source's layers are downloaded here; the new image is laid
        // out here before the push.
        scratch_dir: Some(std::env::temp_dir()),
    };
    let job = PackJob {
        source: Input::Image(ImageRef::parse(&source)?),
        dest: ImageRef::parse(&dest)?,
        options: PackOptions {
            prior: args.next().map(|p| ImageRef::parse(&p)).transpose()?,
            ..PackOptions::default()
        },
    };
    let progress = |e: &Event| {
        if let Event::Planned { layers } = e {
            eprintln!("{layers} layers");
        }
    };
    let ctx = JobContext {
        store,
        ..JobContext::default()
    };
    let report = pack(&job, &ctx.with_events(&progress))?;
    if let Some(pushed) = &report.pushed {
        eprintln!(
            "uploaded {} blobs ({} bytes), {} already in the registry",
            pushed.uploaded, pushed.uploaded_bytes, pushed.skipped
        );
    }
    println!("{} {}", report.reference, report.manifest);
    Ok(())
}
