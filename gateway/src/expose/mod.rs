//! The exposition: a store snapshot plus the gateway's own metrics become the body of a
//! scrape, in upstream's order (families by name; within a family, metrics by label
//! values), byte-compatible with upstream's text encoder. Rendered families are cached per
//! name and version, so a scrape re-encodes only what changed since the last one.

pub mod number;
pub mod text;

pub use text::TextRenderer;

/// Content type of the text format 0.0.4.
pub const TEXT_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";
