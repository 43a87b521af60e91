//! Strict `application/x-www-form-urlencoded` and cookie parsing: malformed
//! input is an error (400), never a guess.

/// Decodes a urlencoded string into (name, value) pairs. Fails on a bad
/// percent escape or bytes that are not UTF-8.
pub fn parse_urlencoded(input: &str) -> Option<Vec<(String, String)>> {
    let mut pairs = Vec::new();
    for part in input.split('&').filter(|p| !p.is_empty()) {
        let (name, value) = part.split_once('=').unwrap_or((part, ""));
        pairs.push((decode(name)?, decode(value)?));
    }
    Some(pairs)
}

fn decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = bytes.get(i + 1..i + 3)?;
                let hex = std::str::from_utf8(hex).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).ok()
}

/// Whether some name appears more than once.
pub fn has_repeated_name(pairs: &[(String, String)]) -> bool {
    let mut names: Vec<&str> = pairs.iter().map(|(n, _)| n.as_str()).collect();
    names.sort_unstable();
    names.windows(2).any(|w| w[0] == w[1])
}

/// The `name=value` pairs of a Cookie header.
pub fn parse_cookies(header: &str) -> Vec<(String, String)> {
    header
        .split(';')
        .filter_map(|c| c.trim().split_once('='))
        .map(|(n, v)| (n.trim().to_string(), v.trim().to_string()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_forms() {
        let f = parse_urlencoded("a=1&b=%E4%BA%8B%E6%A5%AD+x&c&=&d=a%2Bb").unwrap();
        assert_eq!(
            f,
            [
                ("a", "1"),
                ("b", "事業 x"),
                ("c", ""),
                ("", ""),
                ("d", "a+b")
            ]
            .map(|(a, b)| (a.to_string(), b.to_string()))
        );
    }

    #[test]
    fn refuses_malformed_forms() {
        assert_eq!(parse_urlencoded("a=%"), None);
        assert_eq!(parse_urlencoded("a=%G1"), None);
        assert_eq!(parse_urlencoded("a=%FF%FE"), None);
        assert_eq!(parse_urlencoded("a=%E4%BA"), None);
    }

    #[test]
    fn reads_cookies() {
        assert_eq!(
            parse_cookies("a=1; kagi_kaigo=abc ;x"),
            [("a", "1"), ("kagi_kaigo", "abc")].map(|(a, b)| (a.to_string(), b.to_string()))
        );
    }
}
