//! Signed checkpoints: the C2SP tlog-checkpoint body inside a C2SP signed
//! note, signed with Ed25519. A checkpoint commits the log to a size and a
//! root hash; proofs are checked against it.

use signed_note::{Note, Signer as _, StandardSigner, StandardVerifier, VerifierList};
use tlog_tiles::checkpoint::Checkpoint;

use crate::Hash;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CheckpointError {
    #[error("the log signing key is malformed")]
    BadSigningKey,
    #[error("the verifier key is malformed: {0}")]
    BadVerifierKey(String),
    #[error("the origin {0:?} is not a valid key name")]
    BadOrigin(String),
    #[error("the checkpoint is not a well-formed signed note")]
    Malformed,
    #[error("the checkpoint is not signed by the given key")]
    BadSignature,
    #[error("the checkpoint's origin {found:?} is not the key's name {expected:?}")]
    WrongOrigin { expected: String, found: String },
}

/// A verified checkpoint: what the log committed to.
#[derive(Debug, Clone, PartialEq)]
pub struct Verified {
    pub origin: String,
    pub size: u64,
    pub root: Hash,
}

/// Signs checkpoints for one log. The origin doubles as the key name, as
/// C2SP requires for tlog checkpoints.
pub struct LogSigner {
    origin: String,
    signer: NoteSigner,
    verifier_key: String,
}

/// Signs notes with aws-lc-rs rather than `signed_note`'s own signer
/// (ed25519-dalek): a checkpoint is signed on the store's single writer once
/// per committed batch, and aws-lc's Ed25519 takes half the time there.
/// Ed25519 signatures are deterministic, so the bytes are the same
/// (tested below).
struct NoteSigner {
    name: String,
    id: u32,
    key: aws_lc_rs::signature::Ed25519KeyPair,
}

impl signed_note::Signer for NoteSigner {
    fn name(&self) -> &str {
        &self.name
    }
    fn key_id(&self) -> u32 {
        self.id
    }
    fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, ed25519_dalek::SignatureError> {
        Ok(self.key.sign(msg).as_ref().to_vec())
    }
}

impl std::fmt::Debug for LogSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The private key is never printed.
        f.debug_struct("LogSigner")
            .field("verifier_key", &self.verifier_key)
            .finish()
    }
}

impl LogSigner {
    /// A new random key for `origin`; returns the private key text to keep.
    pub fn generate(origin: &str) -> Result<(String, Self), CheckpointError> {
        if !signed_note::is_key_name_valid(origin) {
            return Err(CheckpointError::BadOrigin(origin.to_string()));
        }
        let (skey, _) = signed_note::generate_key(&mut rand_core::OsRng, origin);
        let signer = Self::from_private_key(&skey)?;
        Ok((skey, signer))
    }

    /// From a signed-note private key (`PRIVATE+KEY+name+id+base64`).
    pub fn from_private_key(skey: &str) -> Result<Self, CheckpointError> {
        // signed_note validates the key's format, name and id.
        let standard =
            StandardSigner::new(skey.trim()).map_err(|_| CheckpointError::BadSigningKey)?;
        let origin = standard.name().to_string();
        let (name, seed) = private_key_seed(skey.trim())?;
        let key = aws_lc_rs::signature::Ed25519KeyPair::from_seed_unchecked(&seed)
            .map_err(|_| CheckpointError::BadSigningKey)?;
        let signer = NoteSigner {
            name: origin.clone(),
            id: standard.key_id(),
            key,
        };
        let verifier_key = signed_note::new_ed25519_verifier_key(
            name,
            &ed25519_dalek::SigningKey::from_bytes(&seed).verifying_key(),
        );
        Ok(LogSigner {
            origin,
            signer,
            verifier_key,
        })
    }

    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// The public key in signed-note verifier format (`name+id+base64`).
    pub fn verifier_key(&self) -> &str {
        &self.verifier_key
    }

    /// The signed note for a tree of `size` leaves with root `root`.
    pub fn sign(&self, size: u64, root: Hash) -> Result<String, CheckpointError> {
        let body = Checkpoint::new(&self.origin, size, root, "")
            .map_err(|_| CheckpointError::Malformed)?;
        let mut note = Note::new(&body.to_bytes(), &[]).map_err(|_| CheckpointError::Malformed)?;
        note.add_sigs(&[&self.signer])
            .map_err(|_| CheckpointError::Malformed)?;
        String::from_utf8(note.to_bytes()).map_err(|_| CheckpointError::Malformed)
    }
}

/// The key name and the 32-byte Ed25519 seed of a signed-note private key
/// (`PRIVATE+KEY+name+id+base64(0x01 || seed)`).
fn private_key_seed(skey: &str) -> Result<(&str, [u8; 32]), CheckpointError> {
    use base64::Engine as _;
    let parts: Vec<&str> = skey.splitn(5, '+').collect();
    let [_, _, name, _, b64] = parts[..] else {
        return Err(CheckpointError::BadSigningKey);
    };
    let raw = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .map_err(|_| CheckpointError::BadSigningKey)?;
    let (alg, secret) = raw.split_first().ok_or(CheckpointError::BadSigningKey)?;
    let secret: [u8; 32] = secret
        .try_into()
        .map_err(|_| CheckpointError::BadSigningKey)?;
    if *alg != 1 {
        return Err(CheckpointError::BadSigningKey);
    }
    Ok((name, secret))
}

/// Checks a signed checkpoint against a verifier key the caller trusts, and
/// that the checkpoint's origin is that key's name.
pub fn verify(note_text: &str, verifier_key: &str) -> Result<Verified, CheckpointError> {
    let verifier = StandardVerifier::new(verifier_key.trim())
        .map_err(|e| CheckpointError::BadVerifierKey(e.to_string()))?;
    let expected = signed_note::Verifier::name(&verifier).to_string();
    let note = Note::from_bytes(note_text.as_bytes()).map_err(|_| CheckpointError::Malformed)?;
    note.verify(&VerifierList::new(vec![Box::new(verifier)]))
        .map_err(|_| CheckpointError::BadSignature)?;
    let body = Checkpoint::from_bytes(note.text()).map_err(|_| CheckpointError::Malformed)?;
    if body.origin() != expected {
        return Err(CheckpointError::WrongOrigin {
            expected,
            found: body.origin().to_string(),
        });
    }
    Ok(Verified {
        origin: body.origin().to_string(),
        size: body.size(),
        root: *body.hash(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signed_checkpoint_verifies_only_with_its_own_key() {
        let (skey, signer) = LogSigner::generate("gatehouse.test/log").unwrap();
        let note = signer.sign(7, Hash([9; 32])).unwrap();
        assert!(note.starts_with("gatehouse.test/log\n7\n"), "{note}");
        let v = verify(&note, signer.verifier_key()).unwrap();
        assert_eq!((v.size, v.root), (7, Hash([9; 32])));
        // The same key reloaded from its text signs identically verifiable notes.
        let reloaded = LogSigner::from_private_key(&skey).unwrap();
        assert_eq!(reloaded.verifier_key(), signer.verifier_key());

        let (_, other) = LogSigner::generate("gatehouse.test/log").unwrap();
        assert_eq!(
            verify(&note, other.verifier_key()),
            Err(CheckpointError::BadSignature)
        );
        let tampered = note.replacen("\n7\n", "\n8\n", 1);
        assert_eq!(
            verify(&tampered, signer.verifier_key()),
            Err(CheckpointError::BadSignature)
        );
    }

    #[test]
    fn notes_are_byte_for_byte_what_signed_notes_own_signer_writes() {
        let (skey, signer) = LogSigner::generate("gatehouse.test/log").unwrap();
        let standard = StandardSigner::new(&skey).unwrap();
        for size in [0, 1, 1_000_003] {
            let body =
                Checkpoint::new("gatehouse.test/log", size, Hash([size as u8; 32]), "").unwrap();
            let mut note = Note::new(&body.to_bytes(), &[]).unwrap();
            note.add_sigs(&[&standard]).unwrap();
            assert_eq!(
                signer
                    .sign(size, Hash([size as u8; 32]))
                    .unwrap()
                    .as_bytes(),
                note.to_bytes()
            );
        }
    }

    #[test]
    fn bad_keys_and_names_are_refused() {
        assert!(LogSigner::generate("has space").is_err());
        assert!(LogSigner::from_private_key("PRIVATE+KEY+x+00000000+AAAA").is_err());
        assert!(matches!(
            verify("x", "not a key"),
            Err(CheckpointError::BadVerifierKey(_))
        ));
    }
}
