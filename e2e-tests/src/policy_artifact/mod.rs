//! The Kubewarden policy artifact as the host reads it: the metadata `kwctl annotate` embeds
//! in the module. Annotating and publishing are the real `kwctl`'s job (`make
//! annotated-policy.wasm`, `make push`); `tests/artifact.rs` checks both.

mod metadata;

pub use metadata::{
    ContextAwareResource, PolicyMetadata, Rule, METADATA_SECTION, PROTOCOL_V1, USAGE_ANNOTATION,
    WAPC_EXECUTION_MODE,
};
