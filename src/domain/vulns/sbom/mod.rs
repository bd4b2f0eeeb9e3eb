//! What an image holds: the packages its layers' package databases list, and its OS. Read
//! in one streaming pass (`layers`), kept as a record per image digest (what matching reads)
//! and written out as CycloneDX 1.6 or SPDX 2.3 JSON (what other tools read).

pub mod executables;
pub mod gobinary;
pub mod jars;
pub mod layers;
pub mod parsers;
pub mod rpm;

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use super::osv::{package_key, pypi_name};

/// The package manager a package was found by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Deb,
    Apk,
    Rpm,
    Python,
    Npm,
    Cargo,
    Maven,
    Go,
}

impl Kind {
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Deb => "deb",
            Self::Apk => "apk",
            Self::Rpm => "rpm",
            Self::Python => "python",
            Self::Npm => "npm",
            Self::Cargo => "cargo",
            Self::Maven => "maven",
            Self::Go => "go",
        }
    }
}

/// One installed package.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Package {
    pub kind: Kind,
    pub name: String,
    pub version: String,
    /// The source package it was built from (Debian's `Source`, apk's origin).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// The source's version, where it differs from the binary's (binNMUs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arch: Option<String>,
    /// The file that listed it.
    pub path: String,
}

/// The OS an image's `os-release` names.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Os {
    pub id: String,
    pub version_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pretty_name: Option<String>,
}

/// What semdock found in one image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sbom {
    /// The image manifest it describes.
    pub image: String,
    pub os: Option<Os>,
    pub packages: Vec<Package>,
    /// The compressed bytes of layers read.
    pub layer_bytes: u64,
    /// The CycloneDX referrer stored beside the image, when it was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub referrer: Option<String>,
}

impl Package {
    /// The keys of the advisory index this package is looked up under, with the version each
    /// compares (`Debian:12/glibc` at the source's version): OSV names Debian's and Ubuntu's
    /// source packages, Alpine's origin packages, and every language package by its name.
    #[must_use]
    pub fn lookups(&self, os: Option<&Os>) -> Vec<(String, String)> {
        let source = || self.source.as_deref().unwrap_or(&self.name);
        let source_version = || self.source_version.as_deref().unwrap_or(&self.version);
        let ecosystems: Vec<String> = match self.kind {
            Kind::Deb | Kind::Apk | Kind::Rpm => os.map(distro_ecosystems).unwrap_or_default(),
            Kind::Python => vec!["PyPI".into()],
            Kind::Npm => vec!["npm".into()],
            Kind::Cargo => vec!["crates.io".into()],
            Kind::Maven => vec!["Maven".into()],
            Kind::Go => vec!["Go".into()],
        };
        let (name, version) = match self.kind {
            Kind::Deb | Kind::Apk => (source(), source_version()),
            _ => (self.name.as_str(), self.version.as_str()),
        };
        ecosystems
            .into_iter()
            .map(|e| (package_key(&e, name), version.to_owned()))
            .collect()
    }

    /// Its package URL (<https://github.com/package-url/purl-spec>).
    #[must_use]
    pub fn purl(&self, os: Option<&Os>) -> String {
        let distro = os.map(|o| format!("{}-{}", o.id, o.version_id));
        let mut qualifiers = Vec::new();
        if let Some(arch) = &self.arch {
            qualifiers.push(format!("arch={}", encode(arch)));
        }
        let name = match self.kind {
            Kind::Deb | Kind::Apk | Kind::Rpm => {
                if let Some(d) = &distro {
                    qualifiers.push(format!("distro={}", encode(d)));
                }
                let namespace = os.map_or("linux", |o| o.id.as_str());
                format!("{}/{}", encode(namespace), encode(&self.name))
            }
            Kind::Python => encode(&pypi_name(&self.name)),
            Kind::Npm => match self.name.strip_prefix('@').and_then(|n| n.split_once('/')) {
                Some((scope, name)) => format!("%40{}/{}", encode(scope), encode(name)),
                None => encode(&self.name),
            },
            Kind::Maven => match self.name.split_once(':') {
                Some((group, artifact)) => format!("{}/{}", encode(group), encode(artifact)),
                None => encode(&self.name),
            },
            Kind::Cargo | Kind::Go => encode(&self.name),
        };
        let kind = match self.kind {
            Kind::Python => "pypi",
            Kind::Go => "golang",
            other => other.as_str(),
        };
        // An RPM's epoch is a qualifier, not part of the version (the purl specification).
        let version = match (self.kind, self.version.split_once(':')) {
            (Kind::Rpm, Some((epoch, version))) => {
                qualifiers.push(format!("epoch={}", encode(epoch)));
                version
            }
            _ => self.version.as_str(),
        };
        qualifiers.sort();
        let mut purl = format!("pkg:{kind}/{name}@{}", encode(version));
        if !qualifiers.is_empty() {
            purl.push('?');
            purl.push_str(&qualifiers.join("&"));
        }
        purl
    }
}

/// The OSV ecosystems a distribution's packages are published under.
fn distro_ecosystems(os: &Os) -> Vec<String> {
    let v = &os.version_id;
    match os.id.as_str() {
        "debian" => {
            let major = v.split('.').next().unwrap_or(v);
            vec![format!("Debian:{major}")]
        }
        "ubuntu" => vec![format!("Ubuntu:{v}:LTS"), format!("Ubuntu:{v}")],
        "alpine" => {
            let minor: Vec<&str> = v.split('.').take(2).collect();
            vec![format!("Alpine:v{}", minor.join("."))]
        }
        "rhel" => vec!["Red Hat".into()],
        "rocky" => vec![format!("Rocky Linux:{}", v.split('.').next().unwrap_or(v))],
        "almalinux" => vec![format!("AlmaLinux:{}", v.split('.').next().unwrap_or(v))],
        "wolfi" => vec!["Wolfi".into()],
        _ => Vec::new(),
    }
}

/// Percent-encodes what a purl segment may not hold.
fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_' | b'~' | b'+') {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// The artifact type semdock's SBOM referrers carry (CycloneDX's JSON media type).
pub const CYCLONEDX: &str = "application/vnd.cyclonedx+json";
/// SPDX 2.3's JSON media type.
pub const SPDX: &str = "application/spdx+json";
/// The annotation that marks a referrer as semdock's own.
pub const GENERATOR_ANNOTATION: &str = "dev.semdock.sbom.generator";

impl Sbom {
    /// The CycloneDX 1.6 document: the same image always gives the same bytes (no
    /// timestamp; the serial number derives from the image digest), so a scan repeated after
    /// a crash stores the same referrer rather than a second one.
    #[must_use]
    pub fn cyclonedx(&self, repository: &str) -> serde_json::Value {
        let os = self.os.as_ref();
        let mut components: Vec<serde_json::Value> = Vec::new();
        if let Some(os) = os {
            components.push(serde_json::json!({
                "type": "operating-system",
                "bom-ref": "os",
                "name": os.id,
                "version": os.version_id,
                "description": os.pretty_name,
            }));
        }
        for p in &self.packages {
            let purl = p.purl(os);
            let mut properties = vec![
                serde_json::json!({"name": "semdock:package:type", "value": p.kind.as_str()}),
                serde_json::json!({"name": "semdock:package:path", "value": p.path}),
            ];
            if let Some(source) = &p.source {
                properties
                    .push(serde_json::json!({"name": "semdock:package:source", "value": source}));
            }
            if let Some(v) = &p.source_version {
                properties.push(
                    serde_json::json!({"name": "semdock:package:source-version", "value": v}),
                );
            }
            components.push(serde_json::json!({
                "type": "library",
                "bom-ref": purl,
                "name": p.name,
                "version": p.version,
                "purl": purl,
                "properties": properties,
            }));
        }
        serde_json::json!({
            "bomFormat": "CycloneDX",
            "specVersion": "1.6",
            "serialNumber": format!("urn:uuid:{}", uuid_of(&self.image)),
            "version": 1,
            "metadata": {
                "tools": {"components": [{
                    "type": "application",
                    "name": "semdock",
                    "version": env!("CARGO_PKG_VERSION"),
                }]},
                "component": {
                    "type": "container",
                    "bom-ref": "image",
                    "name": repository,
                    "version": self.image,
                },
            },
            "components": components,
        })
    }

    /// The SPDX 2.3 document of the same packages.
    #[must_use]
    pub fn spdx(&self, repository: &str) -> serde_json::Value {
        let os = self.os.as_ref();
        let packages: Vec<serde_json::Value> = self
            .packages
            .iter()
            .enumerate()
            .map(|(i, p)| {
                serde_json::json!({
                    "SPDXID": format!("SPDXRef-Package-{i}"),
                    "name": p.name,
                    "versionInfo": p.version,
                    "downloadLocation": "NOASSERTION",
                    "filesAnalyzed": false,
                    "externalRefs": [{
                        "referenceCategory": "PACKAGE-MANAGER",
                        "referenceType": "purl",
                        "referenceLocator": p.purl(os),
                    }],
                })
            })
            .collect();
        let relationships: Vec<serde_json::Value> = (0..self.packages.len())
            .map(|i| {
                serde_json::json!({
                    "spdxElementId": "SPDXRef-DOCUMENT",
                    "relationshipType": "DESCRIBES",
                    "relatedSpdxElement": format!("SPDXRef-Package-{i}"),
                })
            })
            .collect();
        serde_json::json!({
            "spdxVersion": "SPDX-2.3",
            "dataLicense": "CC0-1.0",
            "SPDXID": "SPDXRef-DOCUMENT",
            "name": format!("{repository}@{}", self.image),
            "documentNamespace": format!("https://semdock.invalid/spdx/{}", uuid_of(&self.image)),
            "creationInfo": {
                "created": "1970-01-01T00:00:00Z",
                "creators": [format!("Tool: semdock-{}", env!("CARGO_PKG_VERSION"))],
            },
            "packages": packages,
            "relationships": relationships,
        })
    }
}

/// A UUID (version 4 layout) derived from `seed`, the same for the same seed.
fn uuid_of(seed: &str) -> String {
    use sha2::Digest as _;
    let hash = sha2::Sha256::digest(seed.as_bytes());
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&hash[..16]);
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    uuid::Uuid::from_bytes(bytes).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deb(name: &str, source: Option<&str>) -> Package {
        Package {
            kind: Kind::Deb,
            name: name.into(),
            version: "2.36-9+deb12u4".into(),
            source: source.map(str::to_owned),
            source_version: None,
            arch: Some("amd64".into()),
            path: "var/lib/dpkg/status".into(),
        }
    }

    #[test]
    fn debian_packages_are_looked_up_by_source_in_their_release() {
        let os = Os {
            id: "debian".into(),
            version_id: "12".into(),
            pretty_name: None,
        };
        assert_eq!(
            deb("libc6", Some("glibc")).lookups(Some(&os)),
            [("Debian:12/glibc".to_owned(), "2.36-9+deb12u4".to_owned())]
        );
        assert_eq!(
            deb("libc6", Some("glibc")).purl(Some(&os)),
            "pkg:deb/debian/libc6@2.36-9%2Bdeb12u4?arch=amd64&distro=debian-12".replace("%2B", "+")
        );
        let scoped = Package {
            kind: Kind::Npm,
            name: "@panva/hkdf".into(),
            version: "1.2.1".into(),
            source: None,
            source_version: None,
            arch: None,
            path: "p".into(),
        };
        assert_eq!(scoped.purl(None), "pkg:npm/%40panva/hkdf@1.2.1");
    }

    #[test]
    fn the_same_image_gives_the_same_document() {
        let sbom = Sbom {
            image: "sha256:00".into(),
            os: None,
            packages: vec![deb("libc6", None)],
            layer_bytes: 1,
            referrer: None,
        };
        assert_eq!(sbom.cyclonedx("a/b"), sbom.cyclonedx("a/b"));
        assert_eq!(sbom.cyclonedx("a/b")["specVersion"], "1.6");
        assert_eq!(sbom.spdx("a/b")["packages"][0]["name"], "libc6");
    }
}
