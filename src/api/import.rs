//! `POST /v1/pools/{pool}/numbers`: number import, JSON or CSV, and the
//! `ImportNumbers` / `NumberEntry` / `ImportResult` schemas of the document.
//!
//! Imports never fail as a whole for one bad entry: each bad entry is reported by
//! index (JSON) or line number (CSV, the header is line 1) and the rest are imported.

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde::{Deserialize, Serialize};
use utoipa::openapi::schema::{ArrayBuilder, ObjectBuilder, SchemaType, Type};
use utoipa::openapi::{RefOr, Schema};
use utoipa::{PartialSchema, ToSchema};

use super::auth::POOL_WRITERS;
use super::error::HttpError;
use super::openapi::responses::{BadInput, BodyErrors, KeyedErrors, NotJsonOrCsv, PoolNotFound};
use super::openapi::roles;
use super::params::PoolPath;
use super::pools::pool_in_path;
use super::{json, AppState, Caller, PathParams};
use crate::bindings::{validate_area, Capabilities, NumberSpec};
use crate::numbers::E164;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = ImportNumbers, example = json!({
    "numbers": [
        {"number": "+8617000000101", "area": "shanghai"},
        {"number": "17000000102", "voice": true, "sms": false}
    ]
}))]
struct ImportBody {
    #[schema(schema_with = import_entries)]
    numbers: Vec<serde_json::Value>,
}

/// `ImportNumbers.numbers`: any values, each read as a [`NumberEntry`] on its own.
fn import_entries() -> ArrayBuilder {
    let entry = ObjectBuilder::new()
        .schema_type(SchemaType::AnyValue)
        .description(Some(
            "Normally a `NumberEntry`. The import is partial: an entry that is not a valid \
         `NumberEntry` (not an object, no `number`, an unknown field, a wrong type, a bad or \
         foreign number, a bad area) is not imported and is reported in the answer's `errors` \
         with its `index`; the other entries are imported.",
        ));
    ArrayBuilder::new().items(entry).description(Some(
        "The numbers to import, in any number (the body is limited by `api.max_body_bytes`).",
    ))
}

/// One number to import (an entry of `ImportNumbers.numbers`).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct NumberEntry {
    /// A virtual number of the pool's country. A phone number: E.164
    /// (`+8613800138000`), or with `00` for `+`, or in national format for the
    /// pool's country; spaces, `-`, `.`, `(` and `)` are ignored. At most 32
    /// characters.
    #[schema(
        min_length = 1,
        max_length = 32,
        pattern = r"^[ ().-]*(\+[ ().-]*[1-9]([ ().-]*[0-9]){7,14}|0[ ().-]*0[ ().-]*[1-9]([ ().-]*[0-9]){7,14}|[0-9]([ ().-]*[0-9]){4,14})[ ().-]*$"
    )]
    number: String,
    /// Area tag; empty means none.
    #[serde(default, deserialize_with = "json::non_null")]
    #[schema(nullable = false, max_length = 32, pattern = "^[A-Za-z0-9_-]+$")]
    area: Option<String>,
    #[serde(default, deserialize_with = "json::non_null")]
    #[schema(nullable = false, default = true)]
    voice: Option<bool>,
    #[serde(default, deserialize_with = "json::non_null")]
    #[schema(nullable = false, default = true)]
    sms: Option<bool>,
}

/// The `text/csv` body of an import.
enum CsvImport {}

impl PartialSchema for CsvImport {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .description(Some(
                "A header line naming the columns, `number` required, `area`, `voice` and \
                 `sms` optional, in any order (e.g. `number,area` or `number,area,voice,sms`), \
                 then one number per line. Fields may be double-quoted; `voice`/`sms` are \
                 `true`/`false`/`1`/`0`/`yes`/`no`, empty for the default (true). A bad header \
                 is 400 `invalid_csv`; a bad line is not imported and is reported in `errors` \
                 with its `line` (the header is line 1), the other lines are imported.",
            ))
            .into()
    }
}

impl ToSchema for CsvImport {}

/// Where an import entry came from: JSON index or CSV line.
#[derive(Debug, Clone, Copy)]
enum Origin {
    Index(usize),
    Line(usize),
}

#[derive(Debug, Serialize, ToSchema)]
struct ImportErrorView {
    /// Line number (CSV; header = 1).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    line: Option<usize>,
    /// Entry index (JSON).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
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

#[derive(Serialize, ToSchema)]
#[schema(as = ImportResult)]
struct ImportView {
    added: u64,
    /// Already in this pool.
    skipped: u64,
    #[schema(inline)]
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
#[utoipa::path(
    post,
    path = "/v1/pools/{pool}/numbers",
    operation_id = "importNumbers",
    tag = "pools",
    summary = "Import virtual numbers (JSON or CSV). Bad entries are reported one by one and do \
               not stop the import.",
    description = roles(
        POOL_WRITERS,
        "\n\nThe import is partial: the body as a whole must be a JSON object with a `numbers` \
         array (or a CSV text with a valid header), else 400; each bad entry is reported in \
         `errors` (by `index` for JSON, by `line` for CSV) and the others are imported. Numbers \
         already in the pool are counted in `skipped`.",
    ),
    params(PoolPath),
    request_body(content(
        (ImportBody = "application/json"),
        (inline(CsvImport) = "text/csv",
            example = json!("number,area\n+8617000000103,shanghai\n+8617000000104,beijing\n")),
    )),
    responses(
        (status = 200, description = "Import result.", body = ImportView),
        BadInput,
        KeyedErrors,
        PoolNotFound,
        BodyErrors,
        NotJsonOrCsv,
    ),
)]
pub(crate) async fn import(
    State(st): State<AppState>,
    caller: Caller,
    PathParams(PoolPath { pool }): PathParams<PoolPath>,
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
