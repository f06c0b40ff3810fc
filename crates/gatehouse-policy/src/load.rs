//! Reading a policy directory. The only I/O in this crate.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::PolicyError;

/// One file of a policy set, by name (relative to its directory) and text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyFile {
    pub name: String,
    pub text: String,
}

impl PolicyFile {
    pub fn new(name: impl Into<String>, text: impl Into<String>) -> Self {
        PolicyFile {
            name: name.into(),
            text: text.into(),
        }
    }
}

/// Reads every `.cedar` and `.cedarschema` file directly inside `dir`,
/// sorted by name so the policy version does not depend on directory order.
pub fn read_policy_dir(dir: &Path) -> Result<Vec<PolicyFile>, PolicyError> {
    let io = |e: std::io::Error| PolicyError::Io {
        path: dir.display().to_string(),
        message: e.to_string(),
    };
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io)? {
        let path = entry.map_err(io)?.path();
        let is_policy = matches!(
            path.extension().and_then(|e| e.to_str()),
            Some("cedar") | Some("cedarschema")
        );
        if !is_policy || !path.is_file() {
            continue;
        }
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_string();
        let text = std::fs::read_to_string(&path).map_err(|e| PolicyError::Io {
            path: path.display().to_string(),
            message: e.to_string(),
        })?;
        files.push(PolicyFile { name, text });
    }
    files.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(files)
}

/// The built-in starter set, identical to `examples/policies/starter/`.
pub fn starter_files() -> Vec<PolicyFile> {
    vec![
        PolicyFile {
            name: "policies.cedar".into(),
            text: include_str!("../../../examples/policies/starter/policies.cedar").into(),
        },
        PolicyFile {
            name: "schema.cedarschema".into(),
            text: include_str!("../../../examples/policies/starter/schema.cedarschema").into(),
        },
    ]
}
