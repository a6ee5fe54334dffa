//! The host-call and reading floors of a case: the floor policy (`e2e-tests/floor-policy`)
//! built with the case's host calls and answer embedded, so that it makes the calls the policy
//! made, with the same payloads, and answers what the policy answered, without reading the
//! request (the host-call floor) or after reading it once with every value skipped (the
//! reading floor).

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{ensure, Context, Result};
use host_driver::{AdmissionResponse, Kwctl, WapcCall};
use serde_json::{json, Value};

/// Where the floor policy's crate is, and where its builds go.
pub struct FloorBuild {
    /// `e2e-tests/floor-policy`.
    pub crate_dir: PathBuf,
    /// A cargo target directory of its own: the bench runs under `cargo run`.
    pub target_dir: PathBuf,
}

impl FloorBuild {
    /// Builds and annotates the floor reading its payload if `read`, making `calls` and
    /// answering `answer` (the policy's ValidationResponse) into `dir/NAME.wasm`.
    pub fn build(
        &self,
        kwctl: &Kwctl,
        dir: &Path,
        name: &str,
        read: bool,
        calls: &[WapcCall],
        answer: &Value,
    ) -> Result<PathBuf> {
        let case = dir.join(format!("{name}.json"));
        std::fs::write(
            &case,
            serde_json::to_vec(&json!({"read": read, "calls": calls, "answer": answer}))?,
        )?;
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let output = Command::new(cargo)
            .args([
                "build",
                "-q",
                "--profile",
                "wasm",
                "--target",
                "wasm32-wasip1",
            ])
            .arg("--manifest-path")
            .arg(self.crate_dir.join("Cargo.toml"))
            .env("CARGO_TARGET_DIR", &self.target_dir)
            .env("FLOOR_CASE", &case)
            .output()
            .context("cannot run cargo")?;
        ensure!(
            output.status.success(),
            "building the floor {name}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let built = self.target_dir.join("wasm32-wasip1/wasm/floor_policy.wasm");
        let annotated = dir.join(format!("{name}.wasm"));
        let metadata = self.crate_dir.join("metadata.yml");
        kwctl.output(&[
            "annotate",
            "-m",
            &metadata.display().to_string(),
            "-o",
            &annotated.display().to_string(),
            &built.display().to_string(),
        ])?;
        Ok(annotated)
    }
}

/// The ValidationResponse behind an AdmissionResponse kwctl printed for `object`: the host
/// turns `mutated_object` into the patch, so the object with the patch applied gives the
/// same patch again.
pub fn validation_response(response: &AdmissionResponse, object: &Value) -> Result<Value> {
    let mut answer = json!({"accepted": response.allowed});
    if let Some(status) = &response.status {
        answer["message"] = json!(status.message);
        answer["code"] = json!(status.code);
    }
    if let Some(patch) = response.decoded_patch() {
        let patch: json_patch::Patch =
            serde_json::from_value(patch).context("kwctl's patch is not RFC 6902")?;
        let mut mutated = object.clone();
        json_patch::patch(&mut mutated, &patch).context("kwctl's patch does not apply")?;
        answer["mutated_object"] = mutated;
    }
    if let Some(warnings) = &response.warnings {
        answer["warnings"] = json!(warnings);
    }
    if let Some(annotations) = &response.audit_annotations {
        answer["audit_annotations"] = json!(annotations);
    }
    Ok(answer)
}
