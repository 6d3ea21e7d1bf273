//! `[sip.ivr]` and `[[sip.ivr.pools]]`: how the relay answers calls itself —
//! the IVR that collects an extension, the announcements played instead of bare
//! rejections, and a pool number's default party (AXN).
//!
//! A pool takes the IVR when it is listed here (with `ivr = true`, the default)
//! or when the store says its bindings get extensions (`extensions = true` on
//! the pool). Otherwise a caller with no route hears an announcement if the pool
//! is listed with `announce = true` (the default for listed pools) or, for
//! unlisted pools, if `sip.ivr.announce = true`; else the bare rejection
//! (`sip.no_binding_status`) stays.

use std::path::PathBuf;

use serde::Deserialize;

use super::ConfigError;
use crate::numbers::E164;

/// `[sip.ivr]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IvrConfig {
    /// Directory of the prompt sets: `<dir>/<language>/<name>.{pcmu,pcma}.wav`.
    pub prompts_dir: PathBuf,
    /// Language (prompt set) of pools that name none.
    pub language: String,
    /// No first digit within this long after the prompt → a try is used up.
    pub first_digit_timeout_ms: u64,
    /// No next digit within this long → the digits so far are taken as complete.
    pub inter_digit_timeout_ms: u64,
    /// Wrong or missing extensions allowed before the goodbye prompt.
    pub max_tries: u8,
    /// Whether pools not listed below announce instead of rejecting.
    pub announce: bool,
    /// `[[sip.ivr.pools]]`.
    pub pools: Vec<IvrPoolConfig>,
}

impl Default for IvrConfig {
    fn default() -> Self {
        Self {
            prompts_dir: PathBuf::from("config/prompts"),
            language: "en".into(),
            first_digit_timeout_ms: 8000,
            inter_digit_timeout_ms: 3000,
            max_tries: 3,
            announce: false,
            pools: Vec::new(),
        }
    }
}

/// `[[sip.ivr.pools]]`: one pool's IVR settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IvrPoolConfig {
    /// The pool.
    pub pool: String,
    /// Prompt set (default `sip.ivr.language`).
    #[serde(default)]
    pub language: Option<String>,
    /// Answer callers without binding with the IVR (default true; the IVR also
    /// runs for pools whose bindings get extensions whatever this says).
    #[serde(default = "yes")]
    pub ivr: bool,
    /// AXN: who a caller without binding reaches when keying no extension (a depot
    /// hotline), with the virtual number as caller ID.
    #[serde(default)]
    pub default_party: Option<String>,
    /// Skip the IVR: callers without binding go straight to the default party.
    #[serde(default)]
    pub skip_ivr: bool,
    /// Play prompts as early media (183 + SDP) and answer only when bridging.
    #[serde(default)]
    pub early_media: bool,
    /// Announce ("this number no longer serves your parcel") instead of
    /// rejecting a caller with no route (`false`: the `sip.no_binding_status` path).
    #[serde(default = "yes")]
    pub announce: bool,
}

fn yes() -> bool {
    true
}

impl IvrConfig {
    /// Checks timeouts, tries and pool entries.
    pub fn validate(&self) -> Result<(), ConfigError> {
        for (field, v) in [
            (
                "sip.ivr.first_digit_timeout_ms",
                self.first_digit_timeout_ms,
            ),
            (
                "sip.ivr.inter_digit_timeout_ms",
                self.inter_digit_timeout_ms,
            ),
        ] {
            if !(500..=60_000).contains(&v) {
                return Err(ConfigError::field(field, "must be between 500 and 60000"));
            }
        }
        if !(1..=9).contains(&self.max_tries) {
            return Err(ConfigError::field("sip.ivr.max_tries", "must be 1 to 9"));
        }
        for (i, p) in self.pools.iter().enumerate() {
            if let Some(d) = &p.default_party {
                E164::parse(d).map_err(|e| {
                    ConfigError::field(format!("sip.ivr.pools[{i}].default_party"), e.to_string())
                })?;
            }
            if p.skip_ivr && p.default_party.is_none() {
                return Err(ConfigError::field(
                    format!("sip.ivr.pools[{i}].skip_ivr"),
                    "needs a default_party to send callers to",
                ));
            }
        }
        Ok(())
    }
}
