//! RFC 8785 known-answer tests from testdata/jcs at the repository root , from cyberphone.

use std::path::PathBuf;

fn testdata() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../testdata/jcs");
    assert!(dir.is_dir(), "JCS vectors not found at {}", dir.display());
    dir
}

#[test]
fn every_input_canonicalizes_to_the_expected_bytes() {
    let dir = testdata();
    let mut checked = 0;
    for entry in std::fs::read_dir(dir.join("input")).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_str().unwrap().to_string();
        let input: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let expected = std::fs::read(dir.join("output").join(&name)).unwrap();
        let actual = gatehouse_core::canonical::to_canonical_vec(&input).unwrap();
        assert_eq!(
            String::from_utf8_lossy(&actual),
            String::from_utf8_lossy(&expected),
            "vector {name}"
        );
        let hex: String =
            std::fs::read_to_string(dir.join("outhex").join(name.replace(".json", ".txt")))
                .unwrap()
                .split_whitespace()
                .collect();
        assert_eq!(hex::encode(&actual), hex, "hex vector {name}");
        checked += 1;
    }
    assert_eq!(checked, 6);
}
