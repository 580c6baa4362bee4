//! Board profiles: one TOML file per board in `targets/boards/`, compiled into the binary so a board without the
//! source tree still has them, plus any profile file given by path.
//!
//! ```
//! let pi = flint_targets::load("raspberry-pi-5").unwrap();
//! assert_eq!(pi.target.triple, "aarch64-unknown-linux-gnu");
//! assert_eq!(pi.threads(), 4);
//! ```
//!
//! The schema is in [`Profile`] and docs/TARGETS.md. Errors name the file and the key at fault.

mod affinity;
mod error;
mod parse;
mod profile;

pub use affinity::pin_current_thread;
pub use error::TargetsError;
pub use parse::parse;
pub use profile::{
    Bridge, Camera, Cluster, Cpu, Display, Memory, Microphone, Profile, Target, KNOWN_TRIPLES,
};

use std::path::Path;

/// The built-in profiles: (file name, TOML text). The file stem is the profile's name.
pub const BUILTIN: &[(&str, &str)] = &[
    (
        "raspberry-pi-5.toml",
        include_str!("../boards/raspberry-pi-5.toml"),
    ),
    ("rk3588.toml", include_str!("../boards/rk3588.toml")),
    (
        "jetson-orin-nano.toml",
        include_str!("../boards/jetson-orin-nano.toml"),
    ),
    (
        "generic-armv8.2-a.toml",
        include_str!("../boards/generic-armv8.2-a.toml"),
    ),
    (
        "x86_64-host.toml",
        include_str!("../boards/x86_64-host.toml"),
    ),
];

/// Loads a profile by built-in name or alias (`raspberry-pi-5`, `pi5`), or from a file when the argument
/// contains a `/` or ends in `.toml`.
pub fn load(name_or_path: &str) -> Result<Profile, TargetsError> {
    if name_or_path.contains('/') || name_or_path.ends_with(".toml") {
        return load_file(Path::new(name_or_path));
    }
    for (file, text) in BUILTIN {
        let p = parse(text, &builtin_source(file))?;
        if p.name == name_or_path || p.aliases.iter().any(|a| a == name_or_path) {
            return Ok(p);
        }
    }
    let known: Vec<&str> = BUILTIN
        .iter()
        .map(|(f, _)| f.trim_end_matches(".toml"))
        .collect();
    Err(TargetsError::UnknownBoard {
        name: name_or_path.to_string(),
        known: known.join(", "),
    })
}

/// Loads and checks a profile file.
pub fn load_file(path: &Path) -> Result<Profile, TargetsError> {
    let text = std::fs::read_to_string(path).map_err(|source| TargetsError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    parse(&text, &path.display().to_string())
}

/// All built-in profiles, in [`BUILTIN`] order.
///
/// Tries every built-in; the `builtin_profiles_are_valid` test keeps them valid, so an error here means the binary
/// was built from a broken tree.
pub fn try_list() -> Result<Vec<Profile>, TargetsError> {
    BUILTIN
        .iter()
        .map(|(file, text)| parse(text, &builtin_source(file)))
        .collect()
}

/// All built-in profiles. Built-ins that fail to parse (impossible past the crate's tests) are left out;
/// use [`try_list`] to see the error.
pub fn list() -> Vec<Profile> {
    BUILTIN
        .iter()
        .filter_map(|(file, text)| parse(text, &builtin_source(file)).ok())
        .collect()
}

fn builtin_source(file: &str) -> String {
    format!("built-in:{file}")
}
