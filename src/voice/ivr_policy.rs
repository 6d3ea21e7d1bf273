//! Which pools the relay answers itself, and with what: the `[sip.ivr]` config
//! turned into per-pool settings (prompt set, default party, skip IVR, early
//! media, announce or reject) and the prompt sets loaded once at start.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use crate::config::ivr::IvrConfig;
use crate::media::prompt::PromptSet;
use crate::numbers::E164;

use super::VoiceError;

/// One pool's IVR settings.
#[derive(Debug, Clone)]
pub struct PoolIvr {
    /// Prompt set language.
    pub language: String,
    /// Callers without binding get the IVR.
    pub ivr: bool,
    /// AXN default party.
    pub default_party: Option<E164>,
    /// Callers without binding go straight to the default party.
    pub skip_ivr: bool,
    /// Prompts as early media (183), answer when bridging.
    pub early_media: bool,
    /// Announce instead of rejecting a caller with no route.
    pub announce: bool,
}

/// The IVR settings of every pool, and the prompts.
#[derive(Debug, Default)]
pub struct IvrPolicy {
    prompts: HashMap<String, Arc<PromptSet>>,
    default_language: String,
    pools: HashMap<String, PoolIvr>,
    announce_unlisted: bool,
    /// No first digit within this long after a prompt ends → a try is used up.
    pub first_digit: Duration,
    /// No next digit within this long → the digits so far are complete.
    pub inter_digit: Duration,
    /// Tries before the goodbye prompt.
    pub max_tries: u8,
}

impl IvrPolicy {
    /// Reads the config and loads the prompt sets it names. A missing default
    /// prompt set disables the IVR (with a warning) unless a listed pool needs
    /// it, which is an error.
    pub fn from_config(cfg: &IvrConfig) -> Result<IvrPolicy, VoiceError> {
        let mut pools = HashMap::new();
        for (i, p) in cfg.pools.iter().enumerate() {
            let default_party = match &p.default_party {
                Some(d) => Some(E164::parse(d).map_err(|e| VoiceError::Config {
                    field: format!("sip.ivr.pools[{i}].default_party"),
                    message: e.to_string(),
                })?),
                None => None,
            };
            pools.insert(
                p.pool.clone(),
                PoolIvr {
                    language: p.language.clone().unwrap_or_else(|| cfg.language.clone()),
                    ivr: p.ivr,
                    default_party,
                    skip_ivr: p.skip_ivr,
                    early_media: p.early_media,
                    announce: p.announce,
                },
            );
        }
        let mut prompts = HashMap::new();
        let mut langs: Vec<&String> = pools.values().map(|p| &p.language).collect();
        langs.push(&cfg.language);
        langs.sort();
        langs.dedup();
        for lang in langs {
            match PromptSet::load(&cfg.prompts_dir.join(lang)) {
                Ok(set) => {
                    prompts.insert(lang.clone(), Arc::new(set));
                }
                Err(e) if pools.values().any(|p| &p.language == lang) => {
                    return Err(VoiceError::Config {
                        field: "sip.ivr.prompts_dir".into(),
                        message: e.to_string(),
                    });
                }
                Err(e) => {
                    tracing::warn!(error = %e, "sip: no prompts: the IVR and announcements are off");
                }
            }
        }
        Ok(IvrPolicy {
            prompts,
            default_language: cfg.language.clone(),
            pools,
            announce_unlisted: cfg.announce,
            first_digit: Duration::from_millis(cfg.first_digit_timeout_ms),
            inter_digit: Duration::from_millis(cfg.inter_digit_timeout_ms),
            max_tries: cfg.max_tries,
        })
    }

    /// The pool's settings, if listed.
    pub fn pool(&self, pool: &str) -> Option<&PoolIvr> {
        self.pools.get(pool)
    }

    /// The prompts a pool plays (`None`: no prompts loaded).
    pub fn prompts(&self, pool: &str) -> Option<Arc<PromptSet>> {
        let lang = self
            .pools
            .get(pool)
            .map_or(&self.default_language, |p| &p.language);
        self.prompts.get(lang).cloned()
    }

    /// Whether a caller with no route on this pool hears an announcement.
    pub fn announces(&self, pool: &str) -> bool {
        self.pools
            .get(pool)
            .map_or(self.announce_unlisted, |p| p.announce)
            && self.prompts(pool).is_some()
    }
}
