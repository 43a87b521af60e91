//! Every secret kagi makes or checks passes through here: random tokens,
//! one-time passwords, keyed digests and argon2id password hashes.

use crate::config::Argon2Config;
use argon2::password_hash::{PasswordHash, PasswordVerifier};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use base64ct::{Base64Unpadded, Encoding};
use ring::hmac;
use std::cell::{Cell, RefCell};
use std::fmt;
use std::sync::RwLock;

/// `N` bytes from the operating system's random source.
pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    // Without randomness kagi must not hand out codes at all; the panic
    // becomes a 500 page in the request loop.
    getrandom::fill(&mut bytes).expect("the operating system's random source failed");
    bytes
}

/// Lower-case hex: URL-safe, cookie-safe, and unambiguous when read aloud.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A bearer secret handed to a browser or a mail: 256 random bits as hex.
#[derive(Clone, PartialEq, Eq)]
pub struct Token(String);

impl Token {
    pub fn generate() -> Token {
        Token(hex(&random_bytes::<32>()))
    }

    /// Accepts a token presented by a client if it has the right shape.
    pub fn parse(s: &str) -> Option<Token> {
        (s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')))
            .then(|| Token(s.to_string()))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Token(…)")
    }
}

/// A one-time password: six digits, uniform over 000000–999999.
#[derive(Clone, PartialEq, Eq)]
pub struct Otp(String);

impl Otp {
    pub fn generate() -> Otp {
        // Rejection sampling: 4_294_000_000 is the largest multiple of one
        // million below 2^32, so every code keeps exactly 4_294 preimages.
        const LIMIT: u32 = u32::MAX - u32::MAX % 1_000_000;
        loop {
            let n = u32::from_le_bytes(random_bytes::<4>());
            if n < LIMIT {
                return Otp(format!("{:06}", n % 1_000_000));
            }
        }
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

/// The characters of a temporary password: letters and digits that no
/// type face confuses with another (no 0/O/o, 1/l/I).
const UNMISTAKABLE: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnpqrstuvwxyz23456789";

/// A temporary password of `len` characters drawn uniformly from
/// `UNMISTAKABLE` (about 5.8 bits each), to be read off a letter and typed.
pub fn temporary_password(len: usize) -> String {
    // Rejection sampling: 224 is the largest multiple of 56 below 256.
    let limit = (256 / UNMISTAKABLE.len() * UNMISTAKABLE.len()) as u8;
    let mut out = String::with_capacity(len);
    while out.len() < len {
        for b in random_bytes::<32>() {
            if b < limit && out.len() < len {
                out.push(UNMISTAKABLE[b as usize % UNMISTAKABLE.len()] as char);
            }
        }
    }
    out
}

impl fmt::Debug for Otp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Otp(…)")
    }
}

/// What a keyed digest is of; part of the digested bytes, so a digest made
/// for one purpose never matches another.
#[derive(Clone, Copy, Debug)]
pub enum Purpose {
    /// The browser's visit cookie, as the key of its flow or session record.
    Visit,
    /// The CSRF token derived from a visit cookie.
    Csrf,
    /// A one-time password.
    Otp,
    /// A mailed reset link's token.
    Link,
    /// A CAPTCHA's id, as the key of its record.
    CaptchaId,
    /// A CAPTCHA's answer.
    CaptchaAnswer,
    /// A claimed identity (user or office plus address), as the key of its
    /// guard record.
    Claim,
    /// An operator's TOTP secret, derived from the enrolment link's token.
    OperatorTotp,
}

impl Purpose {
    fn label(self) -> &'static [u8] {
        match self {
            Purpose::Visit => b"visit",
            Purpose::Csrf => b"csrf",
            Purpose::Otp => b"otp",
            Purpose::Link => b"link",
            Purpose::CaptchaId => b"captcha-id",
            Purpose::CaptchaAnswer => b"captcha-answer",
            Purpose::Claim => b"claim",
            Purpose::OperatorTotp => b"operator-totp",
        }
    }
}

/// HMAC-SHA-256 under the server's key: how codes, tokens and cookies are
/// stored, so that a stolen database holds nothing a client could replay.
pub struct Digester {
    key: hmac::Key,
}

impl fmt::Debug for Digester {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Digester(…)")
    }
}

impl Digester {
    pub fn new(key: &[u8; 32]) -> Digester {
        Digester {
            key: hmac::Key::new(hmac::HMAC_SHA256, key),
        }
    }

    /// The digest of `value` for `purpose`, as 64 hex characters.
    pub fn digest(&self, purpose: Purpose, value: &str) -> String {
        let mut ctx = hmac::Context::with_key(&self.key);
        ctx.update(purpose.label());
        ctx.update(&[0]);
        ctx.update(value.as_bytes());
        hex(ctx.sign().as_ref())
    }
}

/// The server's three keys, kept in the key file beside the database and
/// never inside it: a copy of the database alone reveals no live code or
/// link, reverses no digest, and cannot have its audit trail re-chained.
pub struct Keys {
    /// Digests of codes, tokens, cookies and claims.
    pub digester: Digester,
    /// Seals the text of queued and captured mail at rest.
    pub sealer: Sealer,
    /// Links the audit trail's entries (HMAC-SHA-256).
    audit: hmac::Key,
    /// The key bytes, for writing the file.
    raw: [[u8; 32]; 3],
    /// The database these keys came from kept its digest key inside, and
    /// the move out (the audit trail chained anew, old mail sealed) is not
    /// finished. Marked in the key file, never in the database, so that
    /// whoever can write the database cannot start it again.
    pub moving: bool,
}

impl fmt::Debug for Keys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Keys(…)")
    }
}

/// What each key file line names, in order.
const KEY_NAMES: [&str; 3] = ["digest", "seal", "audit"];

impl Keys {
    /// Fresh keys; the digest key may be carried over from a database made
    /// before the key file existed (it kept that key inside).
    pub fn generate(digest: Option<[u8; 32]>) -> Keys {
        Keys::from_raw([
            digest.unwrap_or_else(random_bytes),
            random_bytes(),
            random_bytes(),
        ])
    }

    fn from_raw(raw: [[u8; 32]; 3]) -> Keys {
        let [digest, seal, audit] = raw;
        Keys {
            digester: Digester::new(&digest),
            sealer: Sealer::new(&seal),
            audit: hmac::Key::new(hmac::HMAC_SHA256, &audit),
            raw,
            moving: false,
        }
    }

    /// The key file's text: a comment, then `name = hex` per key.
    pub fn to_file(&self) -> String {
        let mut text = String::from(
            "# kagi's keys: digests, sealed mail, audit chain. Keep this file secret\n\
             # (mode 0600) and back it up apart from the database: the database\n\
             # without it holds no usable code, link or mail text.\n",
        );
        for (name, key) in KEY_NAMES.iter().zip(&self.raw) {
            text.push_str(&format!("{name} = {}\n", hex(key)));
        }
        if self.moving {
            text.push_str("move = pending\n");
        }
        text
    }

    /// Reads a key file's text; the error says what is wrong with it.
    pub fn from_file(text: &str) -> Result<Keys, String> {
        let mut raw: [Option<[u8; 32]>; 3] = [None; 3];
        let mut moving = false;
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (name, value) = line
                .split_once('=')
                .ok_or_else(|| format!("line {}: not `name = value`", n + 1))?;
            if name.trim() == "move" && value.trim() == "pending" {
                moving = true;
                continue;
            }
            let slot = KEY_NAMES
                .iter()
                .position(|k| *k == name.trim())
                .ok_or_else(|| format!("line {}: unknown key `{}`", n + 1, name.trim()))?;
            raw[slot] = Some(
                unhex32(value.trim())
                    .ok_or_else(|| format!("line {}: not 64 hex digits", n + 1))?,
            );
        }
        match raw {
            [Some(d), Some(s), Some(a)] => Ok(Keys {
                moving,
                ..Keys::from_raw([d, s, a])
            }),
            _ => Err(format!("needs the keys {}", KEY_NAMES.join(", "))),
        }
    }

    /// Whether `key` is the digest key (a database from before the key file
    /// kept it inside).
    #[cfg(test)]
    pub fn digest_key_is(&self, key: &[u8; 32]) -> bool {
        constant_time_eq(&hex(key), &hex(&self.raw[0]))
    }

    /// A link of the audit chain: an HMAC of `bytes` for `label`, as hex.
    /// Without the key file nobody can make one, so an edited trail cannot
    /// be chained anew.
    /// A name for these keys that gives none of them away: a backup
    /// carries it, so that a restore can tell whether the key file it is
    /// given is the one the backup was made under.
    pub fn fingerprint(&self) -> String {
        let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
        ctx.update(b"kagi key fingerprint\0");
        for key in &self.raw {
            ctx.update(key);
        }
        hex(&ctx.finish().as_ref()[..16])
    }

    pub fn audit_mac(&self, label: &str, bytes: &[u8]) -> String {
        let mut ctx = hmac::Context::with_key(&self.audit);
        ctx.update(label.as_bytes());
        ctx.update(&[0]);
        ctx.update(bytes);
        hex(ctx.sign().as_ref())
    }
}

fn unhex32(text: &str) -> Option<[u8; 32]> {
    let mut out = [0u8; 32];
    if text.len() != 64 || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    for (i, b) in out.iter_mut().enumerate() {
        *b = u8::from_str_radix(text.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

/// Seals text at rest with ChaCha20-Poly1305 under the key file's key: a
/// random nonce per message, and the record's own name as associated data,
/// so that a sealed text cannot be moved to another record.
pub struct Sealer {
    key: ring::aead::LessSafeKey,
}

impl fmt::Debug for Sealer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Sealer(…)")
    }
}

impl Sealer {
    pub fn new(key: &[u8; 32]) -> Sealer {
        use ring::aead::{LessSafeKey, UnboundKey, CHACHA20_POLY1305};
        let key = UnboundKey::new(&CHACHA20_POLY1305, key).expect("a 32-byte key");
        Sealer {
            key: LessSafeKey::new(key),
        }
    }

    /// Nonce, ciphertext and tag, in one buffer.
    pub fn seal(&self, record: &[u8], plain: &[u8]) -> Vec<u8> {
        use ring::aead::{Aad, Nonce, NONCE_LEN};
        let nonce = random_bytes::<NONCE_LEN>();
        let mut sealed = plain.to_vec();
        self.key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(record),
                &mut sealed,
            )
            .expect("a message far below ChaCha20's limit");
        [&nonce[..], &sealed].concat()
    }

    /// The text, if `sealed` was sealed under this key for this record.
    pub fn open(&self, record: &[u8], sealed: &[u8]) -> Option<Vec<u8>> {
        use ring::aead::{Aad, Nonce, NONCE_LEN};
        let (nonce, body) = sealed.split_at_checked(NONCE_LEN)?;
        let mut body = body.to_vec();
        let nonce = Nonce::try_assume_unique_for_key(nonce).ok()?;
        let plain = self
            .key
            .open_in_place(nonce, Aad::from(record), &mut body)
            .ok()?;
        Some(plain.to_vec())
    }
}

/// Compares two strings in time that depends only on their lengths.
pub fn constant_time_eq(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// argon2id with the configured cost. Besides, the costs of the password
/// hashes the database holds (its census, which an import with other
/// parameters widens): a login computes one hash at each of them, the
/// stored one at its own and decoys at the others, so that a wrong password
/// for an existing account and any password for an unknown name cost the
/// same, whatever parameters the stored hash has.
pub struct Hasher {
    argon2: Argon2<'static>,
    /// The configured cost, `m=…,t=…,p=…` as a PHC string writes it.
    cost: String,
    /// A hash of nothing in particular at the configured cost, verified
    /// for a security code when the account has none.
    decoy: String,
    /// A decoy hash at each cost of the census, the configured one included.
    census: RwLock<Vec<(String, String)>>,
}

impl fmt::Debug for Hasher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Hasher(…)")
    }
}

/// The cost of a PHC string, as `m=…,t=…,p=…`; None if it does not parse.
pub fn cost_of(phc: &str) -> Option<String> {
    let parsed = PasswordHash::new(phc).ok()?;
    let params = Params::try_from(&parsed).ok()?;
    Some(format!(
        "m={},t={},p={}",
        params.m_cost(),
        params.t_cost(),
        params.p_cost()
    ))
}

/// A hash of a random secret at `cost` (`m=…,t=…,p=…`).
fn decoy_at(cost: &str) -> Option<String> {
    let mut values = cost
        .split(',')
        .map(|kv| kv.split_once('=')?.1.parse::<u32>().ok());
    let (m, t, p) = (values.next()??, values.next()??, values.next()??);
    let params = Params::new(m, t, p, None).ok()?;
    Some(hash_phc(&params, Token::generate().0.as_bytes()))
}

thread_local! {
    /// Whether this thread keeps its argon2id memory between hashes.
    static KEEPS_MEMORY: Cell<bool> = const { Cell::new(false) };
    /// The memory this thread's hashes run in, when it keeps it.
    static MEMORY: RefCell<Vec<Block>> = const { RefCell::new(Vec::new()) };
}

/// The calling thread (a hashing worker) keeps its argon2id memory from
/// one hash to the next: a hash then neither allocates its 19 MiB nor
/// faults them in. Other threads (start-up, the census, an import) hash
/// rarely and give the memory back each time.
pub fn keep_hash_memory_on_this_thread() {
    KEEPS_MEMORY.with(|keep| keep.set(true));
}

/// Computes argon2id of `secret` and `salt` at `params` into `out`, in this
/// thread's kept memory if it keeps one, else in memory of its own.
fn argon2id(
    params: &Params,
    version: Version,
    secret: &[u8],
    salt: &[u8],
    out: &mut [u8],
) -> Result<(), argon2::Error> {
    let argon2 = Argon2::new(Algorithm::Argon2id, version, params.clone());
    let blocks = params.block_count();
    if !KEEPS_MEMORY.with(Cell::get) {
        let mut memory = vec![Block::default(); blocks];
        return argon2.hash_password_into_with_memory(secret, salt, out, &mut memory);
    }
    MEMORY.with(|memory| {
        let mut memory = memory.borrow_mut();
        if memory.len() < blocks {
            memory.resize(blocks, Block::default());
        }
        argon2.hash_password_into_with_memory(secret, salt, out, &mut memory[..blocks])
    })
}

/// A PHC string (`$argon2id$v=19$m=…,t=…,p=…$salt$hash`) of `secret` at
/// `params`, with a fresh random salt.
fn hash_phc(params: &Params, secret: &[u8]) -> String {
    let salt = random_bytes::<16>();
    let mut out = [0u8; 32];
    argon2id(params, Version::V0x13, secret, &salt, &mut out)
        .expect("argon2 accepts any password with validated parameters");
    format!(
        "$argon2id$v=19$m={},t={},p={}${}${}",
        params.m_cost(),
        params.t_cost(),
        params.p_cost(),
        Base64Unpadded::encode_string(&salt),
        Base64Unpadded::encode_string(&out)
    )
}

impl Hasher {
    pub fn new(cost: &Argon2Config) -> Result<Hasher, String> {
        let params = Params::new(cost.memory_kib, cost.iterations, cost.parallelism, None)
            .map_err(|e| format!("argon2 parameters: {e}"))?;
        let argon2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
        let mut hasher = Hasher {
            argon2,
            cost: format!(
                "m={},t={},p={}",
                cost.memory_kib, cost.iterations, cost.parallelism
            ),
            decoy: String::new(),
            census: RwLock::new(Vec::new()),
        };
        hasher.decoy = hasher.hash(&Token::generate().0);
        let configured = hasher.cost.clone();
        *hasher.census.get_mut().unwrap_or_else(|e| e.into_inner()) =
            vec![(configured, hasher.decoy.clone())];
        Ok(hasher)
    }

    /// The configured cost, `m=…,t=…,p=…`.
    pub fn cost(&self) -> &str {
        &self.cost
    }

    /// Whether `phc` was made at the configured cost.
    pub fn is_current(&self, phc: &str) -> bool {
        cost_of(phc).as_deref() == Some(self.cost.as_str())
    }

    /// The costs logins spend a hash at, the configured one included.
    #[cfg(test)]
    pub fn census(&self) -> Vec<String> {
        let census = self.census.read().unwrap_or_else(|e| e.into_inner());
        census.iter().map(|(cost, _)| cost.clone()).collect()
    }

    /// Sets the costs of the stored password hashes (the configured one is
    /// always among them); a decoy is made for each new one.
    pub fn set_census(&self, costs: impl IntoIterator<Item = String>) {
        let mut wanted: std::collections::BTreeSet<String> = costs.into_iter().collect();
        wanted.insert(self.cost.clone());
        let current = self
            .census
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let next: Vec<(String, String)> = wanted
            .into_iter()
            .filter_map(|cost| match current.iter().find(|(c, _)| *c == cost) {
                Some(known) => Some(known.clone()),
                None => decoy_at(&cost).map(|decoy| (cost, decoy)),
            })
            .collect();
        *self.census.write().unwrap_or_else(|e| e.into_inner()) = next;
    }

    /// A PHC string (`$argon2id$v=19$m=…`) with a fresh random salt.
    pub fn hash(&self, secret: &str) -> String {
        hash_phc(self.argon2.params(), secret.as_bytes())
    }

    /// Whether `secret` matches `phc`; `None` spends the same time (at the
    /// configured cost) and fails.
    pub fn verify(&self, phc: Option<&str>, secret: &str) -> bool {
        let (phc, real) = match phc {
            Some(p) => (p, true),
            None => (self.decoy.as_str(), false),
        };
        verify_phc(&self.argon2, phc, secret) && real
    }

    /// Whether a password matches the stored hash (None: no account). One
    /// hash is computed at each cost of the census: the stored hash at its
    /// own, a decoy at each other, so the time tells nothing of whether
    /// the account exists or what its hash was made with.
    pub fn verify_login(&self, stored: Option<&str>, secret: &str) -> bool {
        let census = self
            .census
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let stored_cost = stored.and_then(cost_of);
        let mut answer = None;
        for (cost, decoy) in &census {
            if answer.is_none() && stored_cost.as_deref() == Some(cost.as_str()) {
                answer = stored.map(|phc| verify_phc(&self.argon2, phc, secret));
            } else {
                verify_phc(&self.argon2, decoy, secret);
            }
        }
        // A cost the census does not know yet (it is being counted).
        answer.unwrap_or_else(|| stored.is_some_and(|phc| verify_phc(&self.argon2, phc, secret)))
    }
}

/// Verifies with the hash's own parameters, so that hashes made under
/// another cost setting still verify. argon2id runs in this thread's kept
/// memory (`argon2id`); another algorithm, which kagi never makes, through
/// the argon2 crate's own verifier.
fn verify_phc(argon2: &Argon2<'_>, phc: &str, secret: &str) -> bool {
    let Ok(parsed) = PasswordHash::new(phc) else {
        return false;
    };
    if parsed.algorithm != argon2::ARGON2ID_IDENT {
        return argon2.verify_password(secret.as_bytes(), &parsed).is_ok();
    }
    let (Some(salt), Some(expected)) = (parsed.salt, parsed.hash) else {
        return false;
    };
    let Ok(params) = Params::try_from(&parsed) else {
        return false;
    };
    let version = parsed
        .version
        .and_then(|v| Version::try_from(v).ok())
        .unwrap_or(Version::V0x13);
    let mut salt_bytes = [0u8; 64];
    let Ok(salt) = salt.decode_b64(&mut salt_bytes) else {
        return false;
    };
    let mut out = vec![0u8; expected.len()];
    argon2id(&params, version, secret.as_bytes(), salt, &mut out).is_ok()
        && out
            .iter()
            .zip(expected.as_bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn otps_are_six_digits_and_uniform() {
        // Chi-square over the leading digit and over the last digit, 9
        // degrees of freedom. 45.0 is the 1e-6 critical value, so a fair
        // generator fails by chance about twice in a million runs. A digit
        // drawn 10% too rarely scores about 111, a digit never drawn about
        // 11,000.
        const DRAWS: usize = 100_000;
        let mut first = [0usize; 10];
        let mut last = [0usize; 10];
        for _ in 0..DRAWS {
            let otp = Otp::generate();
            let s = otp.expose();
            assert_eq!(s.len(), 6);
            assert!(s.bytes().all(|b| b.is_ascii_digit()));
            first[(s.as_bytes()[0] - b'0') as usize] += 1;
            last[(s.as_bytes()[5] - b'0') as usize] += 1;
        }
        for counts in [first, last] {
            let expected = DRAWS as f64 / 10.0;
            let chi2: f64 = counts
                .iter()
                .map(|&c| (c as f64 - expected).powi(2) / expected)
                .sum();
            assert!(
                chi2 < 27.9,
                "digit counts {counts:?} give chi-square {chi2}"
            );
        }
    }

    #[test]
    fn otps_reach_both_ends_of_the_range() {
        // The range check in the other direction: a biased generator that
        // never emits a leading zero, say, fails the uniformity test; this
        // one makes sure values are not clipped.
        let max = (0..20_000)
            .map(|_| Otp::generate().0.parse::<u32>().unwrap())
            .max();
        let min = (0..20_000)
            .map(|_| Otp::generate().0.parse::<u32>().unwrap())
            .min();
        assert!(max.unwrap() > 990_000 && max.unwrap() <= 999_999);
        assert!(min.unwrap() < 10_000);
    }

    #[test]
    fn temporary_passwords_use_every_unmistakable_character_and_no_other() {
        let mut seen = std::collections::BTreeMap::new();
        for _ in 0..2_000 {
            let p = temporary_password(12);
            assert_eq!(p.len(), 12);
            for c in p.bytes() {
                *seen.entry(c).or_insert(0u32) += 1;
            }
        }
        assert_eq!(seen.len(), UNMISTAKABLE.len(), "every character, no other");
        for c in b"0O1lIo" {
            assert!(!seen.contains_key(c), "{}", *c as char);
        }
        // 24,000 draws of 56 characters: about 429 each.
        assert!(seen.values().all(|n| (300..600).contains(n)), "{seen:?}");
    }

    #[test]
    fn tokens_carry_256_bits_and_differ() {
        let a = Token::generate();
        let b = Token::generate();
        assert_eq!(a.expose().len(), 64);
        assert!(Token::parse(a.expose()).is_some());
        assert_ne!(a, b);
        assert!(Token::parse("../etc").is_none());
        assert_eq!(format!("{a:?}"), "Token(…)");
        // Each of the 32 bytes takes many values over a few thousand tokens.
        let mut seen = vec![std::collections::HashSet::new(); 32];
        for _ in 0..2000 {
            let t = Token::generate();
            for (i, pair) in t.expose().as_bytes().chunks(2).enumerate() {
                seen[i].insert(pair.to_vec());
            }
        }
        assert!(seen.iter().all(|s| s.len() > 200));
    }

    #[test]
    fn digests_depend_on_key_and_purpose() {
        let a = Digester::new(&[1; 32]);
        let b = Digester::new(&[2; 32]);
        assert_eq!(
            a.digest(Purpose::Otp, "123456"),
            a.digest(Purpose::Otp, "123456")
        );
        assert_ne!(
            a.digest(Purpose::Otp, "123456"),
            b.digest(Purpose::Otp, "123456")
        );
        assert_ne!(
            a.digest(Purpose::Otp, "123456"),
            a.digest(Purpose::Csrf, "123456")
        );
        assert!(!a.digest(Purpose::Otp, "123456").contains("123456"));
    }

    /// A hasher at a test cost of `memory_kib` and `iterations`.
    fn hasher_at(memory_kib: u32, iterations: u32) -> Hasher {
        Hasher::new(&Argon2Config {
            memory_kib,
            iterations,
            parallelism: 1,
            ..Argon2Config::default()
        })
        .unwrap()
    }

    #[test]
    fn hashes_in_kept_memory_are_the_argon2_crates_own() {
        use argon2::password_hash::{PasswordHasher, SaltString};
        let params = Params::new(64, 1, 1, None).unwrap();
        let crate_argon2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone());
        let salt = SaltString::encode_b64(b"sixteen bytes!!!").unwrap();
        let theirs = crate_argon2
            .hash_password(b"kaigoDemo27", &salt)
            .unwrap()
            .to_string();
        // On a thread that keeps its memory, twice, and on one that does not.
        let kept = std::thread::spawn(move || {
            keep_hash_memory_on_this_thread();
            let ours = hash_phc(&Params::new(64, 1, 1, None).unwrap(), b"kaigoDemo27");
            let a = Argon2::default();
            (
                ours,
                verify_phc(&a, &theirs, "kaigoDemo27"),
                verify_phc(&a, &theirs, "kaigoDemo28"),
            )
        })
        .join()
        .unwrap();
        let (ours, right, wrong) = kept;
        assert!(right && !wrong);
        let parsed = PasswordHash::new(&ours).unwrap();
        assert!(crate_argon2
            .verify_password(b"kaigoDemo27", &parsed)
            .is_ok());
        assert!(crate_argon2
            .verify_password(b"kaigoDemo28", &parsed)
            .is_err());
        assert!(verify_phc(&Argon2::default(), &ours, "kaigoDemo27"));
    }

    #[test]
    fn hashes_are_argon2id_and_verify() {
        let h = hasher_at(64, 1);
        let phc = h.hash("kaigoDemo13");
        assert!(phc.starts_with("$argon2id$v=19$m=64,t=1,p=1$"), "{phc}");
        assert!(h.verify(Some(&phc), "kaigoDemo13"));
        assert!(!h.verify(Some(&phc), "kaigoDemo14"));
        assert!(!h.verify(None, "kaigoDemo13"));
        assert_ne!(phc, h.hash("kaigoDemo13"), "salts must differ");
    }

    #[test]
    fn a_login_spends_one_hash_per_cost_of_the_census_and_checks_the_right_one() {
        let h = hasher_at(64, 1);
        let other = hasher_at(128, 2);
        let imported = other.hash("Imported2020x");
        assert_eq!(cost_of(&imported).as_deref(), Some("m=128,t=2,p=1"));
        assert!(!h.is_current(&imported));
        assert!(h.is_current(&h.hash("x")));
        // Before the census knows the imported cost, and after.
        assert!(h.verify_login(Some(&imported), "Imported2020x"));
        h.set_census(["m=128,t=2,p=1".to_string()]);
        assert_eq!(h.census(), ["m=128,t=2,p=1", "m=64,t=1,p=1"]);
        assert!(h.verify_login(Some(&imported), "Imported2020x"));
        assert!(!h.verify_login(Some(&imported), "wrong"));
        assert!(h.verify_login(Some(&h.hash("mine")), "mine"));
        assert!(!h.verify_login(None, "Imported2020x"));
        assert!(!h.verify_login(Some("not a hash"), "x"));
        // The configured cost cannot be dropped.
        h.set_census(Vec::new());
        assert_eq!(h.census(), ["m=64,t=1,p=1"]);
    }

    #[test]
    fn keys_survive_their_file_and_seal_per_record() {
        let keys = Keys::generate(Some([7; 32]));
        let text = keys.to_file();
        assert!(text.contains(&hex(&[7; 32])), "the carried-over digest key");
        let again = Keys::from_file(&text).unwrap();
        assert_eq!(
            again.digester.digest(Purpose::Otp, "123456"),
            Digester::new(&[7; 32]).digest(Purpose::Otp, "123456")
        );
        assert_eq!(again.audit_mac("a", b"x"), keys.audit_mac("a", b"x"));
        assert_ne!(keys.audit_mac("a", b"x"), keys.audit_mac("b", b"x"));
        let sealed = keys.sealer.seal(b"mail 1", b"code 123456");
        assert!(!sealed.windows(6).any(|w| w == b"123456"));
        assert_eq!(
            again.sealer.open(b"mail 1", &sealed).as_deref(),
            Some(&b"code 123456"[..])
        );
        assert_eq!(
            again.sealer.open(b"mail 2", &sealed),
            None,
            "another record"
        );
        let other = Keys::generate(None);
        assert_eq!(other.sealer.open(b"mail 1", &sealed), None, "another key");
        assert!(Keys::from_file("digest = 00").is_err());
        let signed = text.replacen(&hex(&[7; 32])[..2], "+7", 1);
        assert!(Keys::from_file(&signed).is_err(), "hex digits only");
        assert!(!again.moving);
        let mut moving = Keys::generate(None);
        moving.moving = true;
        assert!(Keys::from_file(&moving.to_file()).unwrap().moving);
        assert!(Keys::from_file("nonsense").is_err());
        assert_eq!(format!("{keys:?}"), "Keys(…)");
    }

    #[test]
    fn constant_time_eq_is_eq() {
        assert!(constant_time_eq("abc", "abc"));
        assert!(!constant_time_eq("abc", "abd"));
        assert!(!constant_time_eq("abc", "abcd"));
    }
}
