//! Printed numbers over the API: extensions on bindings (pool default and per
//! request, kept across handover, exhaustion as `409 pool_exhausted`), and the
//! waybill label: hidden digits, printed line, dial string, and a QR code that a
//! real QR decoder (`rqrr`) reads back as the dial string. A property test checks
//! that a label hides at least six digits of every number length and rule.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod api_support;

use api_support::*;
use maskline::label::{MaskRule, MIN_HIDDEN};
use proptest::prelude::*;
use serde_json::json;

/// Rasterises the QR SVG (`M{x} {y}h{w}v{h}H..V..` rectangles) and decodes it.
fn decode_qr(svg: &str) -> String {
    let attr = |name: &str| -> usize {
        let at = svg.find(&format!(" {name}=\"")).unwrap() + name.len() + 3;
        svg[at..].split('"').next().unwrap().parse().unwrap()
    };
    let (w, h) = (attr("width"), attr("height"));
    let d = svg
        .split(" d=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap();
    let mut dark = vec![false; w * h];
    for rect in d.split('M').filter(|s| !s.is_empty()) {
        let nums: Vec<usize> = rect
            .split(|c: char| c.is_ascii_alphabetic() || c == ' ')
            .filter(|s| !s.is_empty())
            .map(|s| s.parse().unwrap())
            .collect();
        let (x, y, rw, rh) = (nums[0], nums[1], nums[2], nums[3]);
        for yy in y..y + rh {
            for xx in x..x + rw {
                dark[yy * w + xx] = true;
            }
        }
    }
    let mut img =
        rqrr::PreparedImage::prepare_from_greyscale(
            w,
            h,
            |x, y| if dark[y * w + x] { 0 } else { 255 },
        );
    let grids = img.detect_grids();
    assert_eq!(grids.len(), 1, "one QR code in the SVG");
    grids[0].decode().unwrap().1
}

#[tokio::test]
async fn a_label_hides_the_customer_and_its_qr_code_dials_the_extension() {
    let srv = start(memory()).await;
    let c = &srv.client;
    let r = c
        .post(
            "/v1/pools",
            Some(ADMIN),
            &json!({"name": "printed", "country": 86, "extensions": true, "extension_len": 4}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(
        (
            r.json()["extensions"].as_bool(),
            r.json()["extension_len"].as_u64()
        ),
        (Some(true), Some(4))
    );
    let r = c
        .post(
            "/v1/pools/printed/numbers",
            Some(ADMIN),
            &json!({"numbers": [{"number": "+8617100001234"}]}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());

    // The pool default gives the binding an extension.
    let r = c
        .post("/v1/bindings", Some(APP), &binding_req("printed", "SF-L1"))
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let b = r.json();
    let ext = b["extension"].as_str().unwrap().to_owned();
    assert_eq!(ext.len(), 4);
    assert_eq!(
        b["dial_string"],
        format!("tel:+8617100001234,{ext}").as_str()
    );
    let id = b["id"].as_str().unwrap().to_owned();

    let r = c.get(&format!("/v1/bindings/{id}/label"), Some(APP)).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let l = r.json();
    assert_eq!(
        l["customer"], "137******33",
        "{CUSTOMER} with 6 digits hidden"
    );
    assert_eq!(l["number"], "171 0000 1234");
    assert_eq!(l["extension"], ext.as_str());
    assert_eq!(l["printed"], format!("171 0000 1234 转 {ext}").as_str());
    assert_eq!(
        l["dial_string"],
        format!("tel:+8617100001234,{ext}").as_str()
    );
    assert_eq!(
        decode_qr(l["qr_svg"].as_str().unwrap()),
        format!("tel:+8617100001234,{ext}")
    );
    assert_no_party_in_clear(&r.text());

    // Labels are the app's: ops may not print them.
    let r = c.get(&format!("/v1/bindings/{id}/label"), Some(OPS)).await;
    assert_eq!(r.status, 403);

    // A courier handover keeps number and extension: the printed label stays valid.
    let r = c
        .patch(
            &format!("/v1/bindings/{id}"),
            Some(APP),
            &json!({"party_a": COURIER2}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["extension"], ext.as_str());
    let r = c.get(&format!("/v1/bindings/{id}/label"), Some(APP)).await;
    assert_eq!(r.json()["printed"], l["printed"]);
}

#[tokio::test]
async fn a_binding_can_ask_for_an_extension_and_a_full_number_is_pool_exhausted() {
    let srv = start(memory()).await;
    let c = &srv.client;
    let r = c
        .post(
            "/v1/pools",
            Some(ADMIN),
            &json!({"name": "one", "country": 86, "extension_len": 1}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    c.post(
        "/v1/pools/one/numbers",
        Some(ADMIN),
        &json!({"numbers": [{"number": X1}]}),
    )
    .await;
    // No pool default: no extension unless asked.
    let r = c
        .post("/v1/bindings", Some(APP), &binding_req("one", "SF-P0"))
        .await;
    assert_eq!(r.status, 201);
    assert!(r.json().get("extension").is_none(), "{}", r.text());
    let l = c
        .get(
            &format!("/v1/bindings/{}/label", r.json()["id"].as_str().unwrap()),
            Some(APP),
        )
        .await
        .json();
    assert_eq!(l["dial_string"], format!("tel:{X1}").as_str());
    assert_eq!(
        decode_qr(l["qr_svg"].as_str().unwrap()),
        format!("tel:{X1}")
    );
    for i in 0..10 {
        let req = json!({"pool": "one", "shipment_id": format!("SF-P{}", i + 1),
            "party_a": format!("+861390000{:04}", i), "party_b": format!("+861370000{:04}", i),
            "ttl_s": 3600, "extension": true});
        let r = c.post("/v1/bindings", Some(APP), &req).await;
        assert_eq!(r.status, 201, "{}", r.text());
    }
    let req = json!({"pool": "one", "shipment_id": "SF-P11", "party_a": "+8613900009999",
        "party_b": "+8613700009999", "ttl_s": 3600, "extension": true});
    let r = c.post("/v1/bindings", Some(APP), &req).await;
    assert_eq!(err_of(&r), e(409, "pool_exhausted", None), "{}", r.text());
}

proptest! {
    #[test]
    fn a_label_always_hides_at_least_six_digits(
        digits in "[0-9]{1,17}",
        keep_first in 0usize..20,
        keep_last in 0usize..20,
    ) {
        let shown = MaskRule { keep_first, keep_last }.hide(&digits);
        let hidden = shown.chars().filter(|c| *c == '*').count();
        prop_assert_eq!(shown.chars().count(), digits.len());
        prop_assert!(hidden >= MIN_HIDDEN.min(digits.len()), "{} -> {}", digits, shown);
        // What is shown is the number's own digits in place.
        for (a, b) in shown.chars().zip(digits.chars()) {
            prop_assert!(a == '*' || a == b);
        }
    }
}
