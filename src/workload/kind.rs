//! An object's kind, and the paths the settings name for a kind.

use super::path::ImagePath;

/// An object's kind as the request names it: its API group and kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KindRef<'a> {
    pub group: &'a str,
    pub kind: &'a str,
}

/// The paths the settings name for a kind (`imageLocations`): its images lie there, on top
/// of wherever the policy looks for that kind anyway.
#[derive(Debug)]
pub struct KindPaths {
    pub group: String,
    pub kind: String,
    pub paths: Vec<ImagePath>,
}
