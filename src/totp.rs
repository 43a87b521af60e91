//! The operators' second factor: time-based one-time passwords (RFC 6238)
//! with HMAC-SHA-1, six digits and 30-second steps, the only parameters every
//! authenticator app reads the same way; the secret written as RFC 4648
//! base32; the `otpauth://` URI that carries it to the app; and that URI's
//! QR code, drawn as an inline SVG.

use qrcode::render::svg;
use qrcode::{EcLevel, QrCode};
use ring::hmac;
use std::fmt;

/// Seconds in one time step.
pub const STEP_SECS: u64 = 30;

/// Digits in a code.
pub const DIGITS: usize = 6;

/// Steps either side of now that are accepted: one covers a phone clock a
/// little off and a code typed just as it rolled over.
pub const SKEW_STEPS: u64 = 1;

/// The RFC 4648 base32 alphabet.
const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

/// Pixels per QR module in the SVG's coordinates; also its default size, so
/// that a page without CSS still shows a code a phone can read.
const MODULE_PX: u32 = 4;

/// What `qr_svg` draws when the text fits no QR code: a white square.
const EMPTY_SVG: &str = r##"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 1 1"><rect width="1" height="1" fill="#fff"/></svg>"##;

/// A 20-byte (160-bit) TOTP secret, the length RFC 4226 recommends.
#[derive(Clone, PartialEq, Eq)]
pub struct TotpSecret([u8; 20]);

impl fmt::Debug for TotpSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TotpSecret(…)")
    }
}

impl TotpSecret {
    /// The secret of raw bytes: fresh from the random source, or as stored.
    pub fn from_bytes(bytes: [u8; 20]) -> TotpSecret {
        TotpSecret(bytes)
    }

    /// The raw bytes, for storing.
    pub fn bytes(&self) -> &[u8; 20] {
        &self.0
    }

    /// RFC 4648 base32, upper case, without padding: 32 characters.
    pub fn base32(&self) -> String {
        base32_encode(&self.0)
    }

    /// Reads the secret as a person might type it: upper or lower case,
    /// spaces and `=` padding ignored. None unless it is exactly 20 bytes.
    pub fn from_base32(text: &str) -> Option<TotpSecret> {
        let bytes = base32_decode(text)?;
        bytes.try_into().ok().map(TotpSecret)
    }

    /// The code of time step `step`: RFC 4226 HOTP with the step as the
    /// counter, zero-padded to six digits.
    pub fn code_at_step(&self, step: u64) -> String {
        let key = hmac::Key::new(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, &self.0);
        let tag = hmac::sign(&key, &step.to_be_bytes());
        let tag = tag.as_ref();
        // Dynamic truncation (RFC 4226 §5.3): the low nibble of the last byte
        // picks four bytes, of which the top bit is dropped. A SHA-1 tag has
        // 20 bytes, so `offset + 3` is at most 18.
        let offset = usize::from(tag[tag.len() - 1] & 0x0f);
        let word = tag[offset..offset + 4]
            .iter()
            .fold(0, |n, &b| n << 8 | u32::from(b));
        let code = (word & 0x7fff_ffff) % 10u32.pow(DIGITS as u32);
        format!("{code:0DIGITS$}")
    }

    /// The code for unix time `now`.
    pub fn code_at(&self, now: u64) -> String {
        self.code_at_step(step_of(now))
    }
}

/// The time step of unix time `now`.
pub fn step_of(now: u64) -> u64 {
    now / STEP_SECS
}

/// Checks a typed code against the steps around `now` and returns the step
/// it matched, but only one later than `last_used`: a code is accepted once,
/// and never after a newer one was used. Spaces are removed first (apps
/// show "123 456"); anything but six ASCII digits is refused.
pub fn verify(secret: &TotpSecret, typed: &str, now: u64, last_used: Option<u64>) -> Option<u64> {
    let typed: String = typed.chars().filter(|&c| c != ' ').collect();
    if typed.len() != DIGITS || !typed.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let now_step = step_of(now);
    let mut matched = None;
    // Every step is computed and compared in full, whatever matched, so the
    // time taken says nothing about which step or digit was right.
    for step in now_step.saturating_sub(SKEW_STEPS)..=now_step.saturating_add(SKEW_STEPS) {
        let equal = equal_in_constant_time(secret.code_at_step(step).as_bytes(), typed.as_bytes());
        if equal && last_used.is_none_or(|used| step > used) {
            matched = Some(step);
        }
    }
    matched
}

/// Whether two byte strings of the same length are equal, looking at every
/// byte whatever the first difference.
fn equal_in_constant_time(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The `otpauth://` URI an authenticator app reads from the QR code
/// (the Key Uri Format of Google Authenticator, which all apps follow).
pub fn otpauth_uri(issuer: &str, account: &str, secret: &TotpSecret) -> String {
    format!(
        "otpauth://totp/{issuer}:{account}?secret={secret}&issuer={issuer}\
         &algorithm=SHA1&digits={DIGITS}&period={STEP_SECS}",
        issuer = percent_encode(issuer),
        account = percent_encode(account),
        secret = secret.base32(),
    )
}

/// RFC 3986 percent-encoding: unreserved characters kept, every other UTF-8
/// byte written as `%XX`.
fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// The QR code of `text` as an inline `<svg>` element for an HTML page:
/// black modules on white with the quiet zone, a `viewBox` so that CSS can
/// scale it, `role="img"` and `label` as its `aria-label`. A text too long
/// for any QR code (over 2,331 bytes) gives the same element with no modules:
/// the page stays whole, and the secret can still be typed in by hand.
pub fn qr_svg(text: &str, label: &str) -> String {
    let rendered = match QrCode::with_error_correction_level(text, EcLevel::M) {
        Ok(code) => code
            .render()
            .dark_color(svg::Color("#000"))
            .light_color(svg::Color("#fff"))
            .quiet_zone(true)
            .module_dimensions(MODULE_PX, MODULE_PX)
            .build(),
        Err(_) => EMPTY_SVG.to_string(),
    };
    // The renderer starts with an XML prolog, which has no place inside
    // HTML; what follows its `<svg` are the element's own attributes.
    let attributes = rendered.split_once("<svg").map_or("", |(_, rest)| rest);
    format!(
        r#"<svg role="img" aria-label="{}"{attributes}"#,
        xml_escape(label)
    )
}

/// Escapes text for an XML attribute value.
fn xml_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            _ => out.push(c),
        }
    }
    out
}

/// RFC 4648 base32 of `bytes`, upper case, without padding.
fn base32_encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(5) * 8);
    let (mut buffer, mut bits) = (0u32, 0u32);
    for &byte in bytes {
        buffer = (buffer << 8) | u32::from(byte);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(char::from(ALPHABET[((buffer >> bits) & 31) as usize]));
        }
    }
    if bits > 0 {
        out.push(char::from(ALPHABET[((buffer << (5 - bits)) & 31) as usize]));
    }
    out
}

/// The bytes of RFC 4648 base32 `text`, in either case, spaces and `=`
/// ignored. None for a character outside the alphabet, a length no encoding
/// has, or leftover bits that are not zero.
fn base32_decode(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len() * 5 / 8);
    let (mut buffer, mut bits) = (0u32, 0u32);
    for c in text.bytes().filter(|&c| c != b' ' && c != b'=') {
        let value = ALPHABET.iter().position(|&a| a == c.to_ascii_uppercase())?;
        buffer = (buffer << 5) | value as u32;
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push((buffer >> bits) as u8);
        }
    }
    // Five or more leftover bits mean a length of 1, 3 or 6 modulo 8, which
    // no byte string encodes to; fewer must be the zero bits of padding.
    (bits < 5 && buffer & ((1 << bits) - 1) == 0).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ring::rand::{SecureRandom, SystemRandom};

    /// The secret of the test vectors of RFC 4226 and RFC 6238.
    const RFC: TotpSecret = TotpSecret(*b"12345678901234567890");
    const NOW: u64 = 1_234_567_890;

    #[test]
    fn codes_match_the_sha1_vectors_of_rfc_6238_and_rfc_4226() {
        let times = "59 1111111109 1111111111 1234567890 2000000000 20000000000";
        let totp = "287082 081804 050471 005924 279037 353130";
        for (now, code) in times.split(' ').zip(totp.split(' ')) {
            assert_eq!(RFC.code_at(now.parse().expect("a time")), code, "T = {now}");
        }
        let hotp = "755224 287082 359152 969429 338314 254676 287922 162583 399871 520489";
        for (counter, code) in (0..).zip(hotp.split(' ')) {
            assert_eq!(RFC.code_at_step(counter), code, "counter {counter}");
        }
    }

    #[test]
    fn base32_matches_rfc_4648_without_padding_and_refuses_what_no_bytes_encode_to() {
        // The leading space stands for the empty encoding of the empty string.
        let encoded = " MY MZXQ MZXW6 MZXW6YQ MZXW6YTB MZXW6YTBOI";
        for (n, encoded) in encoded.split(' ').enumerate() {
            assert_eq!(base32_encode(&b"foobar"[..n]), encoded);
            assert_eq!(base32_decode(encoded).as_deref(), Some(&b"foobar"[..n]));
        }
        assert_eq!(base32_decode("MZXW6YQ=").as_deref(), Some(&b"foob"[..]));
        // Lengths of 1, 3 or 6 modulo 8 (of zero bits), and leftover bits not zero.
        for bad in ["A", "AAA", "AAAAAA", "AAAAAAAAA", "MZ", "MZXW6YR"] {
            assert_eq!(base32_decode(bad), None, "{bad}");
        }
    }

    #[test]
    fn a_secret_survives_base32_and_may_be_typed_in_lower_case_with_spaces() {
        let mut bytes = [0u8; 20];
        for _ in 0..100 {
            SystemRandom::new().fill(&mut bytes).expect("random bytes");
            let text = TotpSecret::from_bytes(bytes).base32();
            assert_eq!(text.len(), 32);
            assert_eq!(
                TotpSecret::from_base32(&text).map(|s| *s.bytes()),
                Some(bytes)
            );
        }
        let typed = "gezd gnbv gy3t qojq gezd gnbv gy3t qojq";
        assert_eq!(TotpSecret::from_base32(typed), Some(RFC));
        assert_eq!(format!("{RFC:?}"), "TotpSecret(…)");
    }

    #[test]
    fn a_secret_of_the_wrong_length_or_alphabet_is_refused() {
        let good = RFC.base32();
        let long = format!("{good}AAAAAAAA");
        for bad in [
            &good[..24],
            &long,
            &good.replace('G', "1"),
            &good.replace('G', "!"),
        ] {
            assert_eq!(TotpSecret::from_base32(bad), None, "{bad}");
        }
    }

    #[test]
    fn codes_of_the_steps_beside_now_are_accepted_but_not_two_away() {
        let now = step_of(NOW);
        for step in [now - 1, now, now + 1] {
            assert_eq!(verify(&RFC, &RFC.code_at_step(step), NOW, None), Some(step));
        }
        for step in [now - 2, now + 2] {
            assert_eq!(verify(&RFC, &RFC.code_at_step(step), NOW, None), None);
        }
    }

    #[test]
    fn a_code_is_accepted_once_and_an_older_one_not_after_a_newer() {
        let (now, older) = (step_of(NOW), RFC.code_at_step(step_of(NOW) - 1));
        assert_eq!(verify(&RFC, &RFC.code_at(NOW), NOW, Some(now)), None);
        assert_eq!(verify(&RFC, &older, NOW, Some(now)), None);
        assert_eq!(verify(&RFC, &older, NOW, Some(now - 1)), None);
        assert_eq!(verify(&RFC, &older, NOW, Some(now - 2)), Some(now - 1));
    }

    #[test]
    fn only_six_ascii_digits_are_read_with_spaces_ignored() {
        let code = RFC.code_at(NOW);
        let (head, tail) = code.split_at(3);
        let spaced = format!("  {head} {tail} ");
        assert_eq!(verify(&RFC, &spaced, NOW, None), Some(step_of(NOW)));
        // Each refused form but the first three holds the right code.
        let wide: String = code
            .chars()
            .filter_map(|c| char::from_u32(u32::from(c) + 0xFEE0))
            .collect();
        assert!(wide.chars().all(|c| ('０'..='９').contains(&c)) && wide.chars().count() == 6);
        let letter = format!("{head}a{tail}");
        let tab = format!("{head}\t{tail}");
        let longer = format!("{code}0");
        let short = &code[..5];
        let bad = [
            "12345", "1234567", "12a456", &wide, &letter, &tab, &longer, short,
        ];
        for bad in bad {
            assert_eq!(verify(&RFC, bad, NOW, None), None, "{bad:?}");
        }
    }

    #[test]
    fn the_otpauth_uri_is_what_apps_read_with_label_and_issuer_percent_encoded() {
        let secret = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ";
        let rest = "algorithm=SHA1&digits=6&period=30";
        let uri = otpauth_uri("kagi", "demo-operator", &RFC);
        let expected =
            format!("otpauth://totp/kagi:demo-operator?secret={secret}&issuer=kagi&{rest}");
        assert_eq!(uri, expected);
        let issuer = "kagi%20%26%20co";
        let account = "%E5%B1%B1%E7%94%B0%20%E5%A4%AA%E9%83%8E%3Ax";
        let expected =
            format!("otpauth://totp/{issuer}:{account}?secret={secret}&issuer={issuer}&{rest}");
        assert_eq!(otpauth_uri("kagi & co", "山田 太郎:x", &RFC), expected);
    }

    #[test]
    fn the_qr_svg_is_an_inline_labelled_image_even_for_a_text_too_long() {
        let label = r#"Code for "Tom & Jerry's" <kagi>"#;
        let start = r#"<svg role="img" aria-label="Code for &quot;Tom &amp; Jerry&apos;s&quot; &lt;kagi&gt;" "#;
        for svg in [
            qr_svg("otpauth://totp/kagi", label),
            qr_svg(&"x".repeat(3000), label),
        ] {
            assert!(svg.starts_with(start) && svg.ends_with("</svg>"), "{svg}");
            assert!(
                !svg.contains("<?xml") && svg.matches("<svg").count() == 1,
                "{svg}"
            );
        }
    }

    #[test]
    fn the_qr_svg_draws_the_dark_modules_of_the_code_inside_the_quiet_zone() {
        let uri = otpauth_uri("kagi", "demo-operator", &RFC);
        let code = QrCode::with_error_correction_level(&uri, EcLevel::M).expect("fits");
        let (svg, width, px) = (qr_svg(&uri, "QR"), code.width() as u32, MODULE_PX);
        let side = (width + 8) * px;
        let size = format!(r#" width="{side}" height="{side}" viewBox="0 0 {side} {side}""#);
        // One square per dark module, in reading order, past a quiet zone of four.
        let dark = (0..)
            .zip(code.to_colors())
            .filter(|(_, c)| *c == qrcode::Color::Dark);
        let squares = dark.map(|(i, _)| ((i % width + 4) * px, (i / width + 4) * px));
        let path: String = squares
            .map(|(x, y)| format!("M{x} {y}h{px}v{px}H{x}V{y}"))
            .collect();
        assert!(path.len() > 1000 && svg.contains(&size), "{svg}");
        assert!(svg.contains(&format!(r##"<path fill="#000" d="{path}"/>"##)));
    }
}
