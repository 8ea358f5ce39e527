//! Deterministic input mutation for the corpus tests (`crates/*/tests/corpus.rs`, which include
//! this file by path): a cheap, nightly-free stand-in for libFuzzer that CI runs on every push.
//! Seeds are the fuzz corpus files; the generator is a fixed-seed xorshift, so a failure
//! reproduces exactly (the failing input is printed).

use std::path::Path;

/// xorshift64*: small, fast, and good enough to pick mutations.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.max(1))
    }

    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Uniform-ish in `0..n` (`n > 0`).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// Every file of `dir` (sorted by name), or nothing if it does not exist.
pub fn corpus(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<_> = entries
        .filter_map(Result::ok)
        .filter(|e| e.path().is_file())
        .map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            (name, std::fs::read(e.path()).expect("readable corpus file"))
        })
        .collect();
    files.sort();
    files
}

/// Fragments that tend to matter to JSON, SDP, URL and packet parsers.
const TOKENS: &[&[u8]] = &[
    b"{",
    b"}",
    b"[",
    b"]",
    b"\"",
    b":",
    b",",
    b"null",
    b"true",
    b"-1",
    b"1e400",
    b"-0.0",
    b"18446744073709551616",
    b"\\u0000",
    b"\\ud800",
    b"\\",
    b"\"type\":",
    b"\r\n",
    b"\n",
    b"m=audio 9 UDP/TLS/RTP/SAVPF 111\r\n",
    b"a=mid:",
    b"a=ssrc:",
    b"a=rtpmap:",
    b"a=extmap:",
    b"a=fingerprint:sha-256 ",
    b"c=IN IP6 ::\r\n",
    b"=",
    b" ",
    b":",
    b"/",
    b"?",
    b"#",
    b"@",
    b"[::1]",
    b"%",
    b"\0",
    b"\xff",
    b"\xc3\xa9",
    b"\x80",
    b"\x00\x01",
    b"\x21\x12\xa4\x42",
];

/// One to four random edits of `input`, sometimes spliced with `other`.
pub fn mutate(rng: &mut Rng, input: &[u8], other: &[u8]) -> Vec<u8> {
    let mut v = input.to_vec();
    for _ in 0..1 + rng.below(4) {
        let len = v.len();
        match rng.below(9) {
            // Flip a bit.
            0 if len > 0 => {
                let i = rng.below(len);
                v[i] ^= 1 << rng.below(8);
            }
            // Set a byte to an interesting value.
            1 if len > 0 => {
                let i = rng.below(len);
                v[i] = [0, 1, 0x7f, 0x80, 0xff, b'"', b'{', b'\n', b'0', b'9'][rng.below(10)];
            }
            // Delete a range.
            2 if len > 0 => {
                let i = rng.below(len);
                let n = 1 + rng.below((len - i).min(64));
                v.drain(i..i + n);
            }
            // Duplicate a range in place.
            3 if len > 0 && len < 1 << 20 => {
                let i = rng.below(len);
                let n = 1 + rng.below((len - i).min(256));
                let chunk = v[i..i + n].to_vec();
                let at = rng.below(len + 1);
                v.splice(at..at, chunk);
            }
            // Insert a token.
            4 | 5 => {
                let t = TOKENS[rng.below(TOKENS.len())];
                let at = rng.below(len + 1);
                v.splice(at..at, t.iter().copied());
            }
            // Truncate.
            6 if len > 0 => v.truncate(rng.below(len)),
            // Splice: our head with the other input's tail.
            7 if !other.is_empty() => {
                let at = rng.below(len + 1);
                let from = rng.below(other.len());
                v.truncate(at);
                v.extend_from_slice(&other[from..]);
            }
            // Overwrite with a random byte run.
            _ => {
                let at = rng.below(len + 1);
                let n = rng.below(16);
                let bytes: Vec<u8> = (0..n).map(|_| rng.next() as u8).collect();
                v.splice(at..at, bytes);
            }
        }
    }
    v
}

/// Runs `check` on every seed and on `rounds` mutants; a panic names the input that caused it.
pub fn run(seeds: &[(String, Vec<u8>)], rounds: usize, seed: u64, check: impl Fn(&[u8])) {
    assert!(!seeds.is_empty(), "no corpus files");
    let attempt = |what: &str, input: &[u8]| {
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| check(input)));
        if let Err(e) = r {
            eprintln!(
                "failing input ({what}, {} bytes): {:?}",
                input.len(),
                String::from_utf8_lossy(&input[..input.len().min(2000)])
            );
            std::panic::resume_unwind(e);
        }
    };
    for (name, data) in seeds {
        attempt(name, data);
    }
    let mut rng = Rng::new(seed);
    for round in 0..rounds {
        let (_, a) = &seeds[rng.below(seeds.len())];
        let (_, b) = &seeds[rng.below(seeds.len())];
        let m = mutate(&mut rng, a, b);
        attempt(&format!("mutant {round}"), &m);
    }
}
