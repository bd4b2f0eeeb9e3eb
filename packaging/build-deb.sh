#!/usr/bin/env bash
# Builds the Debian package with cargo-deb from Cargo.toml's [package.metadata.deb]:
#   packaging/build-deb.sh [DEB_VERSION]     → target/packages/semdock_<version>_amd64.deb
# The man page and shell completions are generated from the CLI's clap definition first.
set -euo pipefail
cd "$(dirname "$0")/.."

command -v cargo-deb >/dev/null || cargo install --locked cargo-deb
cargo build --release --locked
generated=target/packages/generated
rm -rf "$generated"
mkdir -p "$generated"
target/release/semdock generate-docs "$generated"
gzip -9n "$generated"/*.1
version_args=()
if [ $# -ge 1 ]; then
  version_args=(--deb-version "$1")
fi
cargo deb --no-build --output target/packages/ "${version_args[@]}"
