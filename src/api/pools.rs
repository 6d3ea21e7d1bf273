//! `/v1/pools`: create and list pools, statistics, number import (JSON or CSV),
//! retiring a number, and the route troubleshooting view.
//!
//! Imports never fail as a whole for one bad entry: each bad entry is reported by
//! index (JSON) or line number (CSV, the header is line 1) and the rest are imported.

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde::{Deserialize, Serialize};

use super::auth::{POOL_READERS, POOL_WRITERS};
use super::bindings::{fmt_time, parse_number};
use super::error::HttpError;
use super::{json, no_content, AppState, Caller, PathParams, QueryPairs};
use crate::bindings::{
    now_ms, validate_area, validate_pool_name, Capabilities, NumberSpec, NumberState, PoolSpec,
    DEFAULT_COOLING_S, DEFAULT_EXTENSION_LEN, DEFAULT_GRACE_S, DEFAULT_MAX_BINDINGS_PER_NUMBER,
};
use crate::numbers::E164;

/// Longest grace or cooling accepted (a year), so typos do not pin numbers forever.
const MAX_PERIOD_S: u64 = 366 * 24 * 3600;

/// Refuses a pool name in a path that no pool can have (400 `invalid_path`,
/// without echoing it).
fn pool_in_path(pool: &str) -> Result<(), HttpError> {
    validate_pool_name(pool).map_err(|e| {
        HttpError::new(
            StatusCode::BAD_REQUEST,
            "invalid_path",
            format!("pool: not a pool name: it {}", e.message),
        )
        .with_field("pool")
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreatePool {
    name: String,
    country: u16,
    #[serde(default, deserialize_with = "json::non_null")]
    grace_s: Option<u64>,
    #[serde(default, deserialize_with = "json::non_null")]
    cooling_s: Option<u64>,
    #[serde(default, deserialize_with = "json::non_null")]
    max_bindings_per_number: Option<u32>,
    #[serde(default, deserialize_with = "json::non_null")]
    allow_foreign_parties: Option<bool>,
    #[serde(default)]
    extensions: Option<bool>,
    #[serde(default)]
    extension_len: Option<u8>,
}

/// `POST /v1/pools`
pub(crate) async fn create(
    State(st): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, HttpError> {
    caller.require(POOL_WRITERS)?;
    json::require_json(&headers)?;
    let bytes = json::read_body(&headers, body, st.max_body, st.body_timeout).await?;
    let req: CreatePool = json::parse(&bytes)?;
    validate_pool_name(&req.name)?;
    if !(1..=999).contains(&req.country) {
        return Err(HttpError::invalid_field(
            "country",
            "country: a country calling code, 1 to 999",
        ));
    }
    let grace_s = req.grace_s.unwrap_or(DEFAULT_GRACE_S);
    let cooling_s = req.cooling_s.unwrap_or(DEFAULT_COOLING_S);
    for (field, v) in [("grace_s", grace_s), ("cooling_s", cooling_s)] {
        if v > MAX_PERIOD_S {
            return Err(HttpError::invalid_field(
                field,
                format!("{field}: at most {MAX_PERIOD_S} seconds"),
            ));
        }
    }
    let max = req
        .max_bindings_per_number
        .unwrap_or(DEFAULT_MAX_BINDINGS_PER_NUMBER);
    if max == 0 {
        return Err(HttpError::invalid_field(
            "max_bindings_per_number",
            "max_bindings_per_number: must be at least 1",
        ));
    }
    let spec = PoolSpec {
        name: req.name,
        country: req.country,
        grace_s,
        cooling_s,
        max_bindings_per_number: max,
        allow_foreign_parties: req.allow_foreign_parties.unwrap_or(false),
        extensions: req.extensions.unwrap_or(false),
        extension_len: req.extension_len.unwrap_or(DEFAULT_EXTENSION_LEN),
    };
    st.store.create_pool(spec.clone()).await?;
    Ok(json::respond(StatusCode::CREATED, &spec))
}

#[derive(Serialize)]
struct PoolList {
    pools: Vec<PoolSpec>,
}

/// `GET /v1/pools`
pub(crate) async fn list(
    State(st): State<AppState>,
    caller: Caller,
) -> Result<Response, HttpError> {
    caller.require(POOL_READERS)?;
    let pools = st.store.list_pools().await?;
    Ok(json::respond(StatusCode::OK, &PoolList { pools }))
}

#[derive(Serialize)]
struct NumberLoadView {
    number: String,
    area: Option<String>,
    state: NumberState,
    live_bindings: u64,
}

#[derive(Serialize)]
struct PartyLoadView {
    party: String,
    live_bindings: u64,
}

#[derive(Serialize)]
struct StatsView {
    pool: PoolSpec,
    numbers: u64,
    active: u64,
    retired: u64,
    live_bindings: u64,
    cooling: u64,
    per_number: Vec<NumberLoadView>,
    busiest_parties: Vec<PartyLoadView>,
}

/// `GET /v1/pools/{pool}`
pub(crate) async fn stats(
    State(st): State<AppState>,
    caller: Caller,
    PathParams(pool): PathParams<String>,
) -> Result<Response, HttpError> {
    caller.require(POOL_READERS)?;
    pool_in_path(&pool)?;
    let s = st.store.pool_stats(&pool, now_ms()).await?;
    let view = StatsView {
        pool: s.spec,
        numbers: s.numbers,
        active: s.active_numbers,
        retired: s.retired_numbers,
        live_bindings: s.live_bindings,
        cooling: s.cooling,
        per_number: s
            .per_number
            .into_iter()
            .map(|n| NumberLoadView {
                // Virtual numbers are ours: shown in clear.
                number: n.number.expose().to_owned(),
                area: n.area,
                state: n.state,
                live_bindings: n.live_bindings,
            })
            .collect(),
        busiest_parties: s
            .busiest_parties
            .into_iter()
            .map(|p| PartyLoadView {
                party: p.party,
                live_bindings: p.live_bindings,
            })
            .collect(),
    };
    Ok(json::respond(StatusCode::OK, &view))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ImportBody {
    numbers: Vec<serde_json::Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NumberEntry {
    number: String,
    #[serde(default, deserialize_with = "json::non_null")]
    area: Option<String>,
    #[serde(default, deserialize_with = "json::non_null")]
    voice: Option<bool>,
    #[serde(default, deserialize_with = "json::non_null")]
    sms: Option<bool>,
}

/// Where an import entry came from: JSON index or CSV line.
#[derive(Debug, Clone, Copy)]
enum Origin {
    Index(usize),
    Line(usize),
}

#[derive(Debug, Serialize)]
struct ImportErrorView {
    #[serde(skip_serializing_if = "Option::is_none")]
    line: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    index: Option<usize>,
    message: String,
}

impl ImportErrorView {
    fn new(origin: Origin, message: String) -> Self {
        match origin {
            Origin::Index(i) => Self {
                line: None,
                index: Some(i),
                message,
            },
            Origin::Line(l) => Self {
                line: Some(l),
                index: None,
                message,
            },
        }
    }
}

#[derive(Serialize)]
struct ImportView {
    added: u64,
    skipped: u64,
    errors: Vec<ImportErrorView>,
}

/// Builds a spec from raw fields, or a message for the entry.
fn number_spec(
    number: &str,
    area: Option<&str>,
    voice: Option<bool>,
    sms: Option<bool>,
    country: u16,
) -> Result<NumberSpec, String> {
    let number = E164::parse_lenient(number, Some(country)).map_err(|e| format!("number: {e}"))?;
    let area = match area.map(str::trim) {
        None | Some("") => None,
        Some(a) => {
            validate_area(a, "area").map_err(|e| e.to_string())?;
            Some(a.to_owned())
        }
    };
    let capabilities = Capabilities {
        voice: voice.unwrap_or(true),
        sms: sms.unwrap_or(true),
    };
    Ok(NumberSpec {
        number,
        area,
        capabilities,
    })
}

/// Reads a CSV boolean (`true/false/1/0/yes/no`, empty = default).
fn csv_bool(s: &str, field: &str) -> Result<Option<bool>, String> {
    match s.trim().to_ascii_lowercase().as_str() {
        "" => Ok(None),
        "true" | "1" | "yes" | "y" => Ok(Some(true)),
        "false" | "0" | "no" | "n" => Ok(Some(false)),
        _ => Err(format!("{field}: must be true or false")),
    }
}

/// Splits one CSV line (commas; fields may be wrapped in double quotes, `""` inside
/// quotes is a quote).
fn csv_fields(line: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut chars = line.chars().peekable();
    let mut quoted = false;
    let mut at_start = true;
    while let Some(c) = chars.next() {
        if quoted {
            if c == '"' {
                if chars.peek() == Some(&'"') {
                    cur.push('"');
                    chars.next();
                } else {
                    quoted = false;
                }
            } else {
                cur.push(c);
            }
        } else if c == '"' && at_start {
            quoted = true;
            at_start = false;
        } else if c == ',' {
            out.push(std::mem::take(&mut cur));
            at_start = true;
        } else {
            cur.push(c);
            if !c.is_whitespace() {
                at_start = false;
            }
        }
    }
    if quoted {
        return Err("unterminated quote".into());
    }
    out.push(cur);
    Ok(out.into_iter().map(|f| f.trim().to_owned()).collect())
}

/// Parsed CSV: entries with their line numbers, and per-line errors.
type Parsed = (Vec<(Origin, NumberSpec)>, Vec<ImportErrorView>);

fn parse_csv(text: &str, country: u16) -> Result<Parsed, HttpError> {
    let mut lines = text
        .split('\n')
        .enumerate()
        .map(|(i, l)| (i + 1, l.trim_end_matches('\r')))
        .filter(|(_, l)| !l.trim().is_empty());
    let (header_line, header) = lines.next().ok_or_else(|| {
        HttpError::new(
            StatusCode::BAD_REQUEST,
            "invalid_csv",
            "empty CSV: expected a header line 'number,area[,voice,sms]'",
        )
    })?;
    let header = csv_fields(header.trim_start_matches('\u{feff}')).map_err(|e| {
        HttpError::new(
            StatusCode::BAD_REQUEST,
            "invalid_csv",
            format!("line {header_line}: {e}"),
        )
    })?;
    let mut col = [None::<usize>; 4]; // number, area, voice, sms
    for (i, name) in header.iter().enumerate() {
        let slot = match name.to_ascii_lowercase().as_str() {
            "number" => 0,
            "area" => 1,
            "voice" => 2,
            "sms" => 3,
            _ => {
                return Err(HttpError::new(
                    StatusCode::BAD_REQUEST,
                    "invalid_csv",
                    format!(
                        "line {header_line}: unknown column {}; expected number,area[,voice,sms]",
                        i + 1
                    ),
                ))
            }
        };
        if col[slot].replace(i).is_some() {
            return Err(HttpError::new(
                StatusCode::BAD_REQUEST,
                "invalid_csv",
                format!("line {header_line}: column '{name}' appears twice"),
            ));
        }
    }
    let [Some(c_number), c_area, c_voice, c_sms] = col else {
        return Err(HttpError::new(
            StatusCode::BAD_REQUEST,
            "invalid_csv",
            format!("line {header_line}: header must name a 'number' column"),
        ));
    };
    let mut specs = Vec::new();
    let mut errors = Vec::new();
    for (line_no, line) in lines {
        let origin = Origin::Line(line_no);
        let entry = csv_fields(line).and_then(|f| {
            if f.len() != header.len() {
                return Err(format!(
                    "expected {} fields, found {}",
                    header.len(),
                    f.len()
                ));
            }
            let get = |c: Option<usize>| c.and_then(|c| f.get(c)).map(String::as_str);
            let voice = match get(c_voice) {
                Some(v) => csv_bool(v, "voice")?,
                None => None,
            };
            let sms = match get(c_sms) {
                Some(v) => csv_bool(v, "sms")?,
                None => None,
            };
            number_spec(
                get(Some(c_number)).unwrap_or(""),
                get(c_area),
                voice,
                sms,
                country,
            )
        });
        match entry {
            Ok(spec) => specs.push((origin, spec)),
            Err(m) => errors.push(ImportErrorView::new(origin, m)),
        }
    }
    Ok((specs, errors))
}

fn parse_json_import(bytes: &[u8], country: u16) -> Result<Parsed, HttpError> {
    let body: ImportBody = json::parse(bytes)?;
    let mut specs = Vec::new();
    let mut errors = Vec::new();
    for (i, v) in body.numbers.into_iter().enumerate() {
        let origin = Origin::Index(i);
        let entry = json::parse_value::<NumberEntry>(v)
            .map_err(|e| e.message)
            .and_then(|e| number_spec(&e.number, e.area.as_deref(), e.voice, e.sms, country));
        match entry {
            Ok(spec) => specs.push((origin, spec)),
            Err(m) => errors.push(ImportErrorView::new(origin, m)),
        }
    }
    Ok((specs, errors))
}

/// `POST /v1/pools/{pool}/numbers` (JSON or `text/csv`)
pub(crate) async fn import(
    State(st): State<AppState>,
    caller: Caller,
    PathParams(pool): PathParams<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, HttpError> {
    caller.require(POOL_WRITERS)?;
    pool_in_path(&pool)?;
    let media = json::media_type(&headers);
    let csv = match media.as_deref() {
        None => false,
        Some(m) if json::is_json(m) => false,
        Some("text/csv") => true,
        Some(_) => {
            return Err(HttpError::unsupported_media_type(
                "application/json or text/csv",
            ))
        }
    };
    let bytes = json::read_body(&headers, body, st.max_body, st.body_timeout).await?;
    let country = st.store.get_pool(&pool).await?.country;
    let (entries, mut errors) = if csv {
        let text = std::str::from_utf8(&bytes).map_err(|_| {
            HttpError::new(StatusCode::BAD_REQUEST, "invalid_csv", "CSV must be UTF-8")
        })?;
        parse_csv(text, country)?
    } else {
        parse_json_import(&bytes, country)?
    };
    // The pool's virtual numbers are all of its country.
    let (entries, foreign): (Vec<_>, Vec<_>) = entries
        .into_iter()
        .partition(|(_, n)| n.number.country_code() == country.to_string());
    for (origin, _) in foreign {
        errors.push(ImportErrorView::new(
            origin,
            format!("number: not of this pool's country (+{country})"),
        ));
    }
    let (origins, specs): (Vec<Origin>, Vec<NumberSpec>) = entries.into_iter().unzip();
    let outcome = st.store.import_numbers(&pool, specs).await?;
    for (i, message) in outcome.errors {
        let origin = origins.get(i).copied().unwrap_or(Origin::Index(i));
        errors.push(ImportErrorView::new(origin, message));
    }
    errors.sort_by_key(|e| e.line.or(e.index).unwrap_or(0));
    tracing::info!(
        added = outcome.added,
        skipped = outcome.skipped,
        errors = errors.len(),
        "numbers imported"
    );
    Ok(json::respond(
        StatusCode::OK,
        &ImportView {
            added: outcome.added,
            skipped: outcome.skipped,
            errors,
        },
    ))
}

/// `DELETE /v1/pools/{pool}/numbers/{number}`: retire (drain) a number.
pub(crate) async fn retire(
    State(st): State<AppState>,
    caller: Caller,
    PathParams((pool, number)): PathParams<(String, String)>,
) -> Result<Response, HttpError> {
    caller.require(POOL_WRITERS)?;
    pool_in_path(&pool)?;
    let country = st.store.get_pool(&pool).await?.country;
    let number = parse_number(&number, "number", Some(country))?;
    st.store.retire_number(&pool, &number).await?;
    tracing::info!(%number, "number retired");
    Ok(no_content())
}

#[derive(Serialize)]
struct RouteView {
    binding_id: uuid::Uuid,
    pool: String,
    number: String,
    callee: String,
    expires_at: String,
}

/// `GET /v1/pools/{pool}/numbers/{number}/route?caller=...`
pub(crate) async fn route(
    State(st): State<AppState>,
    caller: Caller,
    PathParams((pool, number)): PathParams<(String, String)>,
    query: QueryPairs,
) -> Result<Response, HttpError> {
    caller.require(POOL_READERS)?;
    pool_in_path(&pool)?;
    query.only(&["caller"])?;
    let raw = query.get("caller").ok_or_else(|| {
        HttpError::new(
            StatusCode::BAD_REQUEST,
            "missing_field",
            "query parameter 'caller' is required",
        )
        .with_field("caller")
    })?;
    // An unencoded '+' in a query string arrives as a space.
    let raw = match raw.strip_prefix(' ') {
        Some(rest) => format!("+{rest}"),
        None => raw.to_owned(),
    };
    let country = st.store.get_pool(&pool).await?.country;
    let number = parse_number(&number, "number", Some(country))?;
    let from = parse_number(&raw, "caller", Some(country))?;
    match st.store.route(&pool, &number, &from, now_ms()).await? {
        Some(r) => Ok(json::respond(
            StatusCode::OK,
            &RouteView {
                binding_id: r.binding_id,
                pool: r.pool,
                number: number.expose().to_owned(),
                callee: r.callee.masked(),
                expires_at: fmt_time(r.expires_at),
            },
        )),
        None => Err(HttpError::new(
            StatusCode::NOT_FOUND,
            "no_route",
            "no live binding routes this caller on this number",
        )),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn csv_reports_bad_lines_by_number() {
        let text = "number,area,voice,sms\r\n+8613800000001,sh,true,false\n\nnot-a-number,sh,,\n\"+86 138 0000 0003\",\"bj\",1,1\n13800000004,gz,maybe,1\n";
        let (ok, errs) = parse_csv(text, 86).unwrap();
        assert_eq!(ok.len(), 2);
        assert_eq!(ok[0].1.number.expose(), "+8613800000001");
        assert!(!ok[0].1.capabilities.sms);
        assert_eq!(ok[1].1.number.expose(), "+8613800000003");
        assert_eq!(ok[1].1.area.as_deref(), Some("bj"));
        let lines: Vec<_> = errs.iter().map(|e| e.line.unwrap()).collect();
        assert_eq!(lines, vec![4, 6]);
        assert!(errs[1].message.contains("voice"));
    }

    #[test]
    fn csv_header_is_checked() {
        assert_eq!(parse_csv("", 86).unwrap_err().code, "invalid_csv");
        assert_eq!(parse_csv("area\nsh\n", 86).unwrap_err().code, "invalid_csv");
        assert_eq!(
            parse_csv("number,colour\n+8613800000001,red\n", 86)
                .unwrap_err()
                .code,
            "invalid_csv"
        );
        let (ok, errs) = parse_csv("number\n+8613800000001\n", 86).unwrap();
        assert_eq!((ok.len(), errs.len()), (1, 0));
    }

    #[test]
    fn json_import_reports_bad_entries_by_index() {
        let body = br#"{"numbers":[{"number":"+8613800000001","area":"sh"},{"number":5},{"number":"13800000002","colour":"x"},{"number":"13800000003"}]}"#;
        let (ok, errs) = parse_json_import(body, 86).unwrap();
        assert_eq!(ok.len(), 2);
        assert_eq!(ok[1].1.number.expose(), "+8613800000003");
        let idx: Vec<_> = errs.iter().map(|e| e.index.unwrap()).collect();
        assert_eq!(idx, vec![1, 2]);
    }
}
