#!/usr/bin/env bash
# Installs what chunkah's tests, aarch64 run and fuzzing need on a fresh Debian machine.
# Idempotent: installs only what is missing. Needs root for apt-get (as on CI).
set -euo pipefail

need=()
command -v qemu-aarch64 >/dev/null || need+=(qemu-user)
command -v aarch64-linux-gnu-gcc >/dev/null || need+=(gcc-aarch64-linux-gnu libc6-dev-arm64-cross)
command -v umoci >/dev/null || need+=(umoci)
command -v skopeo >/dev/null || need+=(skopeo)
command -v debootstrap >/dev/null || need+=(debootstrap)
command -v rpmbuild >/dev/null || need+=(rpm)
command -v sqlite3 >/dev/null || need+=(sqlite3)
command -v zstd >/dev/null || need+=(zstd)
command -v docker-registry >/dev/null || need+=(docker-registry)
command -v podman >/dev/null || need+=(podman)
command -v htpasswd >/dev/null || need+=(apache2-utils)
command -v openssl >/dev/null || need+=(openssl)
if [ ${#need[@]} -gt 0 ]; then
    echo "setup: apt-get install ${need[*]}" >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi
# The SBOM validators the tests run (tests/sbom.rs), pinned, in their own
# virtual environment.
sbom_venv="${CHUNKAH_SBOM_VENV:-$HOME/.cache/chunkah/sbom-venv}"
if ! "$sbom_venv/bin/python" -c 'import spdx_tools.spdx.validation, cyclonedx.validation.json, jsonschema' 2>/dev/null; then
    echo "setup: SBOM validators into $sbom_venv" >&2
    python3 -m venv --help >/dev/null 2>&1 || {
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null
    }
    rm -rf "$sbom_venv"
    python3 -m venv "$sbom_venv"
    "$sbom_venv/bin/pip" install -q --disable-pip-version-check \
        "spdx-tools==0.8.5" "cyclonedx-python-lib[json-validation]==11.12.0"
fi
# Real Python wheels and npm packages, pinned, for the language-package tests
# (tests/languages.rs): installed into trees there by pip and npm offline.
fixtures="${CHUNKAH_LANG_FIXTURES:-$HOME/.cache/chunkah/lang-fixtures}"
wheels=(six==1.16.0 idna==3.7 packaging==24.1 wheel==0.43.0)
old_wheels=(six==1.15.0)
npm_packages=(ms@2.1.3 is-number@7.0.0 @isaacs/string-locale-compare@1.1.0)
old_npm_packages=(ms@2.1.2)
if [ ! -f "$fixtures/ready-2" ]; then
    echo "setup: Python wheels and npm packages into $fixtures" >&2
    command -v npm >/dev/null || {
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq npm >/dev/null
    }
    rm -rf "$fixtures"
    mkdir -p "$fixtures/wheels" "$fixtures/npm" "$fixtures/wheels-old" "$fixtures/npm-old"
    for dir in wheels wheels-old; do
        list=("${wheels[@]}")
        [ $dir = wheels-old ] && list=("${old_wheels[@]}")
        python3 -m pip download -q --disable-pip-version-check --no-deps --only-binary=:all: \
            -d "$fixtures/$dir" "${list[@]}"
    done
    (cd "$fixtures/npm" && npm pack --silent "${npm_packages[@]}" >/dev/null)
    (cd "$fixtures/npm-old" && npm pack --silent "${old_npm_packages[@]}" >/dev/null)
    touch "$fixtures/ready-2"
fi
if ! rustup target list --installed | grep -qx aarch64-unknown-linux-gnu; then
    echo "setup: rustup target add aarch64-unknown-linux-gnu" >&2
    rustup target add aarch64-unknown-linux-gnu
fi
rustup component list --installed 2>/dev/null | grep -q '^rustfmt' || rustup component add rustfmt
rustup component list --installed 2>/dev/null | grep -q '^clippy' || rustup component add clippy
if [ "${SKIP_FUZZ_SETUP:-0}" != 1 ] && ! cargo fuzz --version >/dev/null 2>&1; then
    echo "setup: cargo install cargo-fuzz" >&2
    cargo install cargo-fuzz --locked
fi
