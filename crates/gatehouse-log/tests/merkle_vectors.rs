//! Known-answer tests from testdata/merkle at the repository root (transparency-dev):
//! every good proof verifies, every corrupted one is rejected.
//!
//! Documented exception: `consistency/additional/sizes-are-equal-one-and-
//! proof-is-empty.json` uses roots that are not 32 bytes and expects success.
//! Gatehouse only accepts 32-byte SHA-256 hashes, so that input is rejected
//! before any proof is checked.

use std::path::{Path, PathBuf};

use base64::Engine as _;
use gatehouse_log::proof::{verify_consistency, verify_inclusion};
use gatehouse_log::Hash;
use serde_json::Value;

const NON_32_BYTE_ROOTS: &str = "sizes-are-equal-one-and-proof-is-empty.json";

fn dir(kind: &str) -> PathBuf {
    let d = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../testdata/merkle")
        .join(kind);
    assert!(d.is_dir(), "Merkle vectors not found at {}", d.display());
    d
}

fn files(root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(root).unwrap() {
        let p = entry.unwrap().path();
        if p.is_dir() {
            out.extend(files(&p));
        } else if p.extension().is_some_and(|e| e == "json") {
            out.push(p);
        }
    }
    out
}

/// None when the value is not a 32-byte base64 hash.
fn hash(v: &Value) -> Option<Hash> {
    let bytes = match v {
        Value::Null => Vec::new(),
        v => base64::engine::general_purpose::STANDARD
            .decode(v.as_str()?)
            .ok()?,
    };
    Some(Hash(bytes.try_into().ok()?))
}

fn hashes(v: &Value) -> Option<Vec<Hash>> {
    match v {
        Value::Null => Some(Vec::new()),
        Value::Array(items) => items.iter().map(hash).collect(),
        _ => None,
    }
}

fn run(kind: &str, check: impl Fn(&Value) -> bool) {
    let mut good = 0;
    let mut bad = 0;
    for path in files(&dir(kind)) {
        let v: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let want_err = v["wantErr"].as_bool().unwrap();
        let verified = check(&v);
        let name = path.file_name().unwrap().to_str().unwrap();
        if name == NON_32_BYTE_ROOTS {
            assert!(
                !verified,
                "{}: non-32-byte roots must be rejected",
                path.display()
            );
            continue;
        }
        assert_eq!(verified, !want_err, "{}: {}", path.display(), v["desc"]);
        if want_err {
            bad += 1
        } else {
            good += 1
        }
    }
    assert!(
        good >= 5 && bad >= 50,
        "{kind}: only {good} good and {bad} bad vectors ran"
    );
}

#[test]
fn inclusion_vectors() {
    run("inclusion", |v| {
        let (Some(proof), Some(root), Some(leaf)) =
            (hashes(&v["proof"]), hash(&v["root"]), hash(&v["leafHash"]))
        else {
            return false;
        };
        let (Some(index), Some(size)) = (v["leafIdx"].as_u64(), v["treeSize"].as_u64()) else {
            return false;
        };
        verify_inclusion(&proof, size, root, index, leaf).is_ok()
    });
}

#[test]
fn consistency_vectors() {
    run("consistency", |v| {
        let (Some(proof), Some(root1), Some(root2)) =
            (hashes(&v["proof"]), hash(&v["root1"]), hash(&v["root2"]))
        else {
            return false;
        };
        let (Some(size1), Some(size2)) = (v["size1"].as_u64(), v["size2"].as_u64()) else {
            return false;
        };
        verify_consistency(&proof, size1, root1, size2, root2).is_ok()
    });
}
