//! `flint glasses`, the product's main job: the wearer asks about what they see, and the answer appears on the
//! glasses' display, streamed as it is generated (docs/GLASSES.md).
//!
//! - [`run`]: the loop: inputs (a recording, or the camera and microphone) through voice activity into turns;
//! - [`turn`]: one turn: Whisper, frame choice and OCR, the answer model, the display;
//! - [`layout`]: the overlay as the firmware bridge's drawing commands, ASCII-only;
//! - [`display`]: where the commands go: a serial device, the bridge simulator on a pty, or PNG files;
//! - [`events`]: what is reported (`--json` lines, or text for a person);
//! - [`memory`]: the model files against the board's memory budget, and the resident set per turn.

pub mod display;
pub mod events;
pub mod inputs;
pub mod layout;
pub mod memory;
pub mod run;
pub mod turn;

pub use display::Target;
pub use events::Reporter;
pub use inputs::Inputs;
pub use layout::Geometry;
pub use run::{run, run_with, ModelPaths, Options, Source, Summary};
