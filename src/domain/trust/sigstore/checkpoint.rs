//! Signed-note checkpoints (c2sp.org/tlog-checkpoint, c2sp.org/signed-note): the origin,
//! tree size and root hash a log signs. A checkpoint is trusted when a signature line
//! named for the log, with the log's key hint, verifies with the log's key; other lines
//! (witness cosignatures whose keys the trusted root does not hold) are ignored.

use super::crypto::{self, Hash};
use super::root::{Log, b64};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint<'a> {
    pub origin: &'a str,
    pub size: u64,
    pub root_hash: Vec<u8>,
    /// The note text the signatures sign: every line up to the blank one, newline ended.
    pub body: &'a str,
    /// (key name, key hint, signature)
    pub signatures: Vec<(&'a str, [u8; 4], Vec<u8>)>,
}

impl<'a> Checkpoint<'a> {
    pub fn parse(text: &'a str) -> Result<Self, String> {
        let (head, sigs) = text
            .split_once("\n\n")
            .ok_or("the checkpoint has no blank line between its note and its signatures")?;
        let body = &text[..=head.len()];
        let mut lines = head.split('\n');
        let origin = lines.next().unwrap_or_default();
        if origin.is_empty() {
            return Err("the checkpoint has no origin line".into());
        }
        let size = lines
            .next()
            .and_then(|s| s.parse::<u64>().ok())
            .ok_or("the checkpoint's second line is not a tree size")?;
        let root_hash = lines
            .next()
            .map(|h| b64(h, "the checkpoint's root hash"))
            .transpose()?
            .filter(|h| h.len() == 32)
            .ok_or("the checkpoint's third line is not a root hash")?;
        let mut signatures = Vec::new();
        for line in sigs.lines().filter(|l| !l.is_empty()) {
            let rest = line
                .strip_prefix("\u{2014} ")
                .ok_or("a checkpoint signature line does not start with an em dash")?;
            let (name, sig) = rest
                .split_once(' ')
                .ok_or("a checkpoint signature line has no signature")?;
            let sig = b64(sig, "a checkpoint signature")?;
            if sig.len() < 5 {
                return Err("a checkpoint signature is too short".into());
            }
            let mut hint = [0u8; 4];
            hint.copy_from_slice(&sig[..4]);
            signatures.push((name, hint, sig[4..].to_vec()));
        }
        Ok(Self {
            origin,
            size,
            root_hash,
            body,
            signatures,
        })
    }

    /// Checks that `log` signed this checkpoint.
    pub fn verify(&self, log: &Log) -> Result<(), String> {
        let host = log.host();
        if !self.origin.starts_with(host) {
            return Err(format!(
                "the checkpoint is from {:?}, not from the log {host}",
                self.origin
            ));
        }
        let hint = log.key_id.get(..4);
        let ok = self.signatures.iter().any(|(name, h, sig)| {
            *name == host
                && hint == Some(&h[..])
                && crypto::verify(&log.key, Hash::Sha256, self.body.as_bytes(), sig)
        });
        if ok {
            Ok(())
        } else {
            Err(format!(
                "the checkpoint carries no valid signature by the log {host}"
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_checkpoint_is_read_with_its_signature_lines() {
        let text = "log.example\n736\nrs1YPY0ydAV0lxgfrq5pE4oRpUJwo3syeps5+eGUTDI=\n\n\u{2014} log.example AQIDBAUG\n\u{2014} witness.example CQkJCQk=\n";
        let cp = Checkpoint::parse(text).unwrap();
        assert_eq!(cp.origin, "log.example");
        assert_eq!(cp.size, 736);
        assert_eq!(
            cp.body,
            "log.example\n736\nrs1YPY0ydAV0lxgfrq5pE4oRpUJwo3syeps5+eGUTDI=\n"
        );
        assert_eq!(cp.signatures.len(), 2);
        assert_eq!(cp.signatures[0].1, [1, 2, 3, 4]);
        assert_eq!(cp.signatures[0].2, [5, 6]);
        assert!(
            Checkpoint::parse("736\nrs1YPY0ydAV0lxgfrq5pE4oRpUJwo3syeps5+eGUTDI=\n\n").is_err()
        );
        assert!(
            Checkpoint::parse("log.example\nrs1YPY0ydAV0lxgfrq5pE4oRpUJwo3syeps5+eGUTDI=\n\n")
                .is_err()
        );
        assert!(Checkpoint::parse("log.example\n736\n\n").is_err());
    }
}
