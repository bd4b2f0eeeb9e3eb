#!/usr/bin/env bash
# Cross-compiles semdock for Windows (mingw-w64) and builds the MSI with wixl (msitools):
#   packaging/build-msi.sh [VERSION]     → target/packages/semdock-<version>-x64.msi
# wixl ignores the Permanent and NeverOverwrite component attributes, so they are set on the
# config and data components with msibuild afterwards: upgrades and uninstalls keep them.
set -euo pipefail
cd "$(dirname "$0")/.."

version=${1:-$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)}
target=x86_64-pc-windows-gnu
rustup target list --installed | grep -qx "$target" || rustup target add "$target"
cargo build --release --locked --target "$target"
out=target/packages
mkdir -p "$out"
exe="$out/windows/semdock.exe"
mkdir -p "$out/windows"
x86_64-w64-mingw32-strip -o "$exe" "target/$target/release/semdock.exe"
msi="$out/semdock-$version-x64.msi"
wixl --arch x64 -D Version="$version" -D Exe="$exe" \
  -D Config=packaging/wix/semdock.toml -o "$msi" packaging/wix/semdock.wxs

# msidbComponentAttributesPermanent (0x10) | msidbComponentAttributesNeverOverwrite (0x80),
# keeping the bits wixl set (64-bit, ...).
for component in Config DataDir; do
  current=$(msiinfo export "$msi" Component | awk -F'\t' -v c="$component" '$1 == c { print $4 }')
  updated=$((current | 0x10 | 0x80))
  msibuild "$msi" -q "UPDATE \`Component\` SET \`Attributes\` = $updated WHERE \`Component\` = '$component'"
done
echo "$msi"
