//! CycloneDX 1.6 JSON (<https://cyclonedx.org/docs/1.6/json/>): the subject
//! as the metadata's container component; each package a component with
//! its purl, licence, properties, and the files it owns as nested file
//! components with their hashes.

use serde_json::{json, Value};

use super::{hex, purl, tool_version, Inventory, Package};
use crate::oci::types::rfc3339;

/// The CycloneDX 1.6 JSON document of `inventory`, pretty-printed, with a
/// final newline.
pub fn cyclonedx_json(inventory: &Inventory) -> String {
    let packages = inventory.sorted_packages();
    let components: Vec<Value> = packages
        .iter()
        .enumerate()
        .map(|(i, p)| component(inventory, i, p))
        .collect();
    let refs: Vec<&Value> = components.iter().map(|c| &c["bom-ref"]).collect();
    let mut subject = json!({
        "type": "container",
        "bom-ref": SUBJECT_REF,
        "name": inventory.subject,
    });
    if let Some(d) = inventory.subject_digest {
        subject["hashes"] = json!([{ "alg": "SHA-256", "content": d.hex() }]);
    }
    let doc = json!({
        "$schema": "http://cyclonedx.org/schema/bom-1.6.schema.json",
        "bomFormat": "CycloneDX",
        "specVersion": "1.6",
        "serialNumber": serial_number(inventory, &packages),
        "version": 1,
        "metadata": {
            "timestamp": rfc3339(inventory.created),
            "tools": {
                "components": [{
                    "type": "application",
                    "name": "chunkah",
                    "version": tool_version(),
                }],
            },
            "component": subject,
        },
        "components": components,
        "dependencies": [{ "ref": SUBJECT_REF, "dependsOn": refs }],
    });
    let mut out = serde_json::to_string_pretty(&doc).expect("a JSON value serialises");
    out.push('\n');
    out
}

const SUBJECT_REF: &str = "subject";

/// `urn:uuid:…` from the inventory's fingerprint, shaped as a version 5
/// (name-based) UUID: the same inventory, the same serial number.
fn serial_number(inventory: &Inventory, sorted: &[Package]) -> String {
    let mut b: [u8; 16] = inventory.fingerprint(sorted).0[..16]
        .try_into()
        .expect("16 of 32 bytes");
    b[6] = (b[6] & 0x0f) | 0x50;
    b[8] = (b[8] & 0x3f) | 0x80;
    let hex = hex(&b);
    format!(
        "urn:uuid:{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    )
}

fn component(inventory: &Inventory, index: usize, p: &Package) -> Value {
    let purl = purl(p, inventory.distro.as_ref());
    // A purl is the natural reference, the index keeps two records of one
    // package unique.
    let bom_ref = format!("{purl}#{index}");
    let mut c = json!({
        "type": "library",
        "bom-ref": bom_ref,
        "name": p.name,
        "purl": purl,
    });
    if let Some(v) = &p.version {
        c["version"] = json!(v);
    }
    if let Some(license) = &p.license {
        c["licenses"] = json!([{ "license": { "name": license } }]);
    }
    let mut properties = Vec::new();
    if let Some(arch) = &p.architecture {
        properties.push(json!({ "name": "chunkah:package:architecture", "value": arch }));
    }
    if let Some(source) = &p.source {
        properties.push(json!({ "name": "chunkah:package:source", "value": source }));
    }
    if !properties.is_empty() {
        c["properties"] = json!(properties);
    }
    if !p.files.is_empty() {
        c["components"] = json!(p
            .files
            .iter()
            .enumerate()
            .map(|(j, f)| json!({
                "type": "file",
                "bom-ref": format!("{bom_ref}/file-{j}"),
                "name": f.path,
                "hashes": [
                    { "alg": "SHA-1", "content": f.sha1_hex() },
                    { "alg": "SHA-256", "content": f.sha256.hex() },
                ],
            }))
            .collect::<Vec<_>>());
    }
    c
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sbom::tests::sample;

    #[test]
    fn lists_every_package_under_the_subject() {
        let doc: Value = serde_json::from_str(&cyclonedx_json(&sample())).unwrap();
        assert_eq!(doc["specVersion"], "1.6");
        assert_eq!(doc["metadata"]["component"]["type"], "container");
        let components = doc["components"].as_array().unwrap();
        assert_eq!(components.len(), 3);
        assert_eq!(components[1]["name"], "libc6");
        assert_eq!(components[1]["components"].as_array().unwrap().len(), 2);
        assert_eq!(
            components[2]["licenses"][0]["license"]["name"],
            "GPL-2.0-or-later"
        );
        assert!(components[0].get("version").is_none());
        assert_eq!(
            doc["dependencies"][0]["dependsOn"]
                .as_array()
                .unwrap()
                .len(),
            3
        );
        let serial = doc["serialNumber"].as_str().unwrap();
        assert_eq!(serial.len(), "urn:uuid:".len() + 36);
        assert_eq!(&serial[23..24], "5", "{serial}");
    }

    #[test]
    fn same_inventory_same_bytes() {
        let mut reversed = sample();
        reversed.packages.reverse();
        assert_eq!(cyclonedx_json(&sample()), cyclonedx_json(&reversed));
        let mut other = sample();
        other.created += 1;
        assert_ne!(cyclonedx_json(&sample()), cyclonedx_json(&other));
    }
}
