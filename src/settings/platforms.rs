//! `platformSignatures`, from the wire format to [`PlatformSignatures`].

use crate::platforms::{Platform, PlatformSignatures};

use super::wire::WirePlatformSignatures;

/// `all`, a list of platforms, or the same list as one comma-separated string (what a
/// settings form's text field gives).
pub(super) fn from_wire(
    id: &str,
    wire: Option<WirePlatformSignatures>,
) -> Result<Option<PlatformSignatures>, String> {
    let field = format!("{id}.platformSignatures");
    let list = match wire {
        None => return Ok(None),
        Some(WirePlatformSignatures::Word(word)) if word.trim() == "all" => {
            return Ok(Some(PlatformSignatures::All))
        }
        Some(WirePlatformSignatures::Word(word)) => {
            word.split(',').map(|p| p.trim().to_owned()).collect()
        }
        Some(WirePlatformSignatures::List(list)) => list,
    };
    if list.is_empty() {
        return Err(format!(
            "{field}: must list at least one platform, or be \"all\""
        ));
    }
    list.iter()
        .enumerate()
        .map(|(index, text)| {
            Platform::parse(text).map_err(|e| format!("{field}[{index}]: {e}, or \"all\""))
        })
        .collect::<Result<_, _>>()
        .map(|platforms| Some(PlatformSignatures::Listed(platforms)))
}
