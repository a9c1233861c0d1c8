//! The overwrite methods people ask for by name: one declarative table, each entry
//! with the source its pass list comes from. `docs/methods.md` describes the same
//! table for people; a unit test keeps both in step.
//!
//! Every method here is a host overwrite, so NIST SP 800-88 counts it as *Clear*
//! whatever its pass count; none of them is *Purge* on any medium.

use serde::{Deserialize, Serialize};
use thiserror::Error;

/// One pass of a method as the standard states it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// A byte pattern repeated over the medium (one byte, or several kept in phase).
    Fixed(&'static [u8]),
    /// A pass of the cryptographic random stream with a fresh seed.
    Random,
}

#[derive(Debug)]
pub struct Method {
    pub id: &'static str,
    pub name: &'static str,
    pub steps: &'static [Step],
    /// Where the pass list comes from: document, year, section.
    pub source: &'static str,
    pub note: &'static str,
}

const R: Step = Step::Random;
const fn b(pattern: &'static [u8]) -> Step {
    Step::Fixed(pattern)
}

/// The table. Keep `docs/methods.md` in step (a test compares them).
pub static METHODS: &[Method] = &[
    Method {
        id: "random",
        name: "One random pass",
        steps: &[R],
        source: "NIST SP 800-88 Rev. 1 (2014) App. A Table A-5 (hard disk drives, Clear: at least one write pass; more complex values optional) and §2.4",
        note: "Default. Incompressible, so drives that compress or deduplicate still write every block.",
    },
    Method {
        id: "zero",
        name: "Zero fill",
        steps: &[b(&[0x00])],
        source: "NIST SP 800-88 Rev. 1 (2014) App. A Table A-5: a single write pass with a fixed data value, such as all zeros",
        note: "",
    },
    Method {
        id: "one",
        name: "One fill",
        steps: &[b(&[0xFF])],
        source: "Common practice (nwipe 'one', since 0.34)",
        note: "",
    },
    Method {
        id: "nist-clear",
        name: "NIST SP 800-88 Clear",
        steps: &[b(&[0x00])],
        source: "NIST SP 800-88 Rev. 1 (2014) App. A Table A-5, Clear for ATA/SCSI hard disk drives: at least a single write pass with a fixed data value such as all zeros; verification per §4.7",
        note: "Use with the default full verification of the pass (--verify last).",
    },
    Method {
        id: "dod-short",
        name: "DoD 5220.22-M (3 passes)",
        steps: &[b(&[0x00]), b(&[0xFF]), R],
        source: "DoD 5220.22-M (NISPOM, 1995) §8-306 Clearing and Sanitization Matrix, method d: a character, its complement, then a random character, and verify",
        note: "The matrix leaves the character open; certwipe fixes it at 0x00 as KillDisk and Eraser do (nwipe draws a random byte), so the pass list is reproducible.",
    },
    Method {
        id: "dod-7",
        name: "DoD 5220.22-M ECE (7 passes)",
        steps: &[b(&[0x00]), b(&[0xFF]), R, b(&[0x00]), b(&[0x00]), b(&[0xFF]), R],
        source: "DoD 5220.22-M (NISPOM, 1995) §8-306 matrix, methods E, C, E: character, complement, random; a character; character, complement, random",
        note: "nwipe draws the three characters at random; certwipe fixes them (0x00, 0x00, 0x00) so the pass list is reproducible.",
    },
    Method {
        id: "gutmann",
        name: "Gutmann (35 passes)",
        steps: &[
            R,
            R,
            R,
            R,
            b(&[0x55]),
            b(&[0xAA]),
            b(&[0x92, 0x49, 0x24]),
            b(&[0x49, 0x24, 0x92]),
            b(&[0x24, 0x92, 0x49]),
            b(&[0x00]),
            b(&[0x11]),
            b(&[0x22]),
            b(&[0x33]),
            b(&[0x44]),
            b(&[0x55]),
            b(&[0x66]),
            b(&[0x77]),
            b(&[0x88]),
            b(&[0x99]),
            b(&[0xAA]),
            b(&[0xBB]),
            b(&[0xCC]),
            b(&[0xDD]),
            b(&[0xEE]),
            b(&[0xFF]),
            b(&[0x92, 0x49, 0x24]),
            b(&[0x49, 0x24, 0x92]),
            b(&[0x24, 0x92, 0x49]),
            b(&[0x6D, 0xB6, 0xDB]),
            b(&[0xB6, 0xDB, 0x6D]),
            b(&[0xDB, 0x6D, 0xB6]),
            R,
            R,
            R,
            R,
        ],
        source: "P. Gutmann, Secure Deletion of Data from Magnetic and Solid-State Memory, 6th USENIX Security Symposium (1996), section Overwrite Data, table of 35 passes",
        note: "Aimed at MFM/RLL encodings of the 1990s; Gutmann himself calls it pointless for modern drives. The paper shuffles passes 5-31; certwipe keeps the table order so the pass list is reproducible.",
    },
    Method {
        id: "ops2",
        name: "RCMP TSSIT OPS-II",
        steps: &[b(&[0x00]), b(&[0xFF]), b(&[0x00]), b(&[0xFF]), b(&[0x00]), b(&[0xFF]), R],
        source: "RCMP Technical Security Standard for IT (TSSIT), Appendix OPS-II Media Sanitation: a value and its complement alternated, then a random value, verified",
        note: "Superseded (CSE ITSG-06). nwipe writes eight alternating passes and a random one; certwipe follows the common seven-pass reading.",
    },
    Method {
        id: "hmg-is5-baseline",
        name: "HMG IS5 Baseline",
        steps: &[b(&[0x00])],
        source: "HMG IA Standard No. 5 (CESG), Baseline: one pass of zeros, verified (as implemented by Eraser and KillDisk; the standard is not public)",
        note: "",
    },
    Method {
        id: "hmg-is5-enhanced",
        name: "HMG IS5 Enhanced",
        steps: &[b(&[0x00]), b(&[0xFF]), R],
        source: "HMG IA Standard No. 5 (CESG), Enhanced: zeros, ones, random, the random pass verified; nwipe 'is5enh'",
        note: "",
    },
    Method {
        id: "bsi-vsitr",
        name: "BSI VSITR",
        steps: &[b(&[0x00]), b(&[0xFF]), b(&[0x00]), b(&[0xFF]), b(&[0x00]), b(&[0xFF]), b(&[0xAA])],
        source: "BSI/BMI Richtlinien zum Geheimschutz von Verschlusssachen beim Einsatz von Informationstechnik (VSITR, 1998): 0x00/0xFF alternated six times, then 0xAA",
        note: "Replaced in 2009; kept because users ask for it by name.",
    },
    Method {
        id: "schneier",
        name: "Schneier (7 passes)",
        steps: &[b(&[0xFF]), b(&[0x00]), R, R, R, R, R],
        source: "B. Schneier, Applied Cryptography, 2nd ed. (Wiley, 1996) §10.9 Destroying Information: all ones, all zeros, five cryptographically secure pseudo-random passes",
        note: "",
    },
    Method {
        id: "bmb21",
        name: "BMB21-2019",
        steps: &[b(&[0xFF]), b(&[0x00]), R, R, R, b(&[0xFF])],
        source: "BMB21-2019 (National Administration of State Secrets Protection, China) as implemented by nwipe 0.40 'bmb' (PR #668, 2025); the standard's text is not public",
        note: "Chinese state-secret media sanitization; for classified media the rules still require destruction.",
    },
];

/// A pass as planned for one run; random passes get their seed when they start.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum PassKind {
    Fixed {
        #[serde(with = "crate::stream::hex_bytes")]
        pattern: Vec<u8>,
    },
    Random,
}

impl From<Step> for PassKind {
    fn from(step: Step) -> Self {
        match step {
            Step::Fixed(pattern) => PassKind::Fixed { pattern: pattern.to_vec() },
            Step::Random => PassKind::Random,
        }
    }
}

impl std::fmt::Display for PassKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PassKind::Fixed { pattern } => write!(f, "0x{}", hex::encode(pattern)),
            PassKind::Random => f.write_str("random"),
        }
    }
}

/// The longest pattern `--passes` accepts; longer ones are almost surely a typo.
pub const MAX_PATTERN_BYTES: usize = 64;
/// Repetitions beyond this are no longer a sanitization method but a mistake.
pub const MAX_ROUNDS: u32 = 100;
/// Passes in all (rounds included): Gutmann's 35 seven times over still fits,
/// and a certificate stays small enough to read and print.
pub const MAX_PASSES: usize = 256;

#[derive(Debug, Error, PartialEq, Eq)]
pub enum MethodError {
    #[error("unknown method {0:?}; `certwipe methods` lists them")]
    UnknownMethod(String),
    #[error("empty pass list; give e.g. --passes 0x00,random")]
    EmptyPassList,
    #[error(
        "bad pass {0:?} in --passes: write `random` or a hex pattern such as 0x00 or 0x924924 (1 to {MAX_PATTERN_BYTES} bytes)"
    )]
    BadPass(String),
    #[error("--rounds must be between 1 and {MAX_ROUNDS}, got {0}")]
    BadRounds(u64),
    #[error("{0} passes in all is more than the {MAX_PASSES} certwipe runs; use fewer passes or rounds")]
    TooManyPasses(u64),
}

// A plan is made before anything is written.
impl crate::exit::ExitStatus for MethodError {
    fn exit_status(&self) -> u8 {
        crate::exit::USAGE
    }
}

pub fn find(id: &str) -> Result<&'static Method, MethodError> {
    let wanted = id.trim().to_ascii_lowercase();
    METHODS.iter().find(|m| m.id == wanted).ok_or_else(|| MethodError::UnknownMethod(id.to_string()))
}

/// Parses `--passes`, e.g. `0x00,0xff,random,0x924924`.
pub fn parse_passes(list: &str) -> Result<Vec<PassKind>, MethodError> {
    if list.trim().is_empty() {
        return Err(MethodError::EmptyPassList);
    }
    let count = list.split(',').count();
    if count > MAX_PASSES {
        return Err(MethodError::TooManyPasses(count as u64));
    }
    list.split(',').map(parse_pass).collect()
}

fn parse_pass(token: &str) -> Result<PassKind, MethodError> {
    let token = token.trim();
    if token.eq_ignore_ascii_case("random") {
        return Ok(PassKind::Random);
    }
    let bad = || MethodError::BadPass(token.to_string());
    let digits = token.strip_prefix("0x").or_else(|| token.strip_prefix("0X")).ok_or_else(bad)?;
    if digits.is_empty() || digits.len() > 2 * MAX_PATTERN_BYTES {
        return Err(bad());
    }
    let pattern = hex::decode(digits).map_err(|_| bad())?;
    Ok(PassKind::Fixed { pattern })
}

/// What a run will do: the method's passes, repeated `rounds` times.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Plan {
    /// Method id, or `custom` for `--passes`.
    pub method: String,
    pub method_name: String,
    pub source: String,
    pub rounds: u32,
    pub passes: Vec<PassKind>,
}

impl Plan {
    pub fn from_method(method: &Method, rounds: u64) -> Result<Plan, MethodError> {
        let steps = method.steps.iter().copied().map(PassKind::from).collect();
        Plan::build(method.id, method.name, method.source, steps, rounds)
    }

    pub fn custom(passes: Vec<PassKind>, rounds: u64) -> Result<Plan, MethodError> {
        Plan::build("custom", "Custom pass list", "operator's --passes", passes, rounds)
    }

    fn build(
        id: &str,
        name: &str,
        source: &str,
        one_round: Vec<PassKind>,
        rounds: u64,
    ) -> Result<Plan, MethodError> {
        let rounds = u32::try_from(rounds)
            .ok()
            .filter(|r| (1..=MAX_ROUNDS).contains(r))
            .ok_or(MethodError::BadRounds(rounds))?;
        let total = one_round.len() as u64 * u64::from(rounds);
        if total > MAX_PASSES as u64 {
            return Err(MethodError::TooManyPasses(total));
        }
        let passes = (0..rounds).flat_map(|_| one_round.iter().cloned()).collect();
        Ok(Plan {
            method: id.to_string(),
            method_name: name.to_string(),
            source: source.to_string(),
            rounds,
            passes,
        })
    }

    /// The pass list a method id and round count must produce; `None` for `custom`.
    pub fn expected_passes(method: &str, rounds: u32) -> Option<Vec<PassKind>> {
        let method = find(method).ok()?;
        Plan::from_method(method, u64::from(rounds)).ok().map(|p| p.passes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixed(pattern: &[u8]) -> PassKind {
        PassKind::Fixed { pattern: pattern.to_vec() }
    }

    #[test]
    fn ids_are_unique_and_every_method_has_a_source() {
        let mut ids: Vec<_> = METHODS.iter().map(|m| m.id).collect();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), METHODS.len());
        assert!(METHODS.iter().all(|m| !m.source.is_empty() && !m.steps.is_empty()));
    }

    #[test]
    fn gutmann_matches_the_1996_table() {
        let g = Plan::from_method(find("gutmann").unwrap(), 1).unwrap().passes;
        assert_eq!(g.len(), 35);
        assert!(g[..4].iter().chain(&g[31..]).all(|p| *p == PassKind::Random));
        assert_eq!(g[4], fixed(&[0x55]));
        assert_eq!(g[5], fixed(&[0xAA]));
        let thirds = [[0x92, 0x49, 0x24], [0x49, 0x24, 0x92], [0x24, 0x92, 0x49]];
        for (i, p) in thirds.iter().enumerate() {
            assert_eq!(g[6 + i], fixed(p));
            assert_eq!(g[25 + i], fixed(p));
        }
        for (i, value) in (0x00..=0xFFu8).step_by(0x11).enumerate() {
            assert_eq!(g[9 + i], fixed(&[value]), "pass {}", 10 + i);
        }
        let last = [[0x6D, 0xB6, 0xDB], [0xB6, 0xDB, 0x6D], [0xDB, 0x6D, 0xB6]];
        for (i, p) in last.iter().enumerate() {
            assert_eq!(g[28 + i], fixed(p));
        }
    }

    #[test]
    fn short_methods_match_their_sources() {
        let passes = |id| Plan::from_method(find(id).unwrap(), 1).unwrap().passes;
        let (z, o, r) = (fixed(&[0x00]), fixed(&[0xFF]), PassKind::Random);
        assert_eq!(passes("dod-short"), [z.clone(), o.clone(), r.clone()]);
        assert_eq!(
            passes("dod-7"),
            [z.clone(), o.clone(), r.clone(), z.clone(), z.clone(), o.clone(), r.clone()]
        );
        assert_eq!(passes("hmg-is5-baseline"), std::slice::from_ref(&z));
        assert_eq!(passes("hmg-is5-enhanced"), [z.clone(), o.clone(), r.clone()]);
        let mut vsitr = [z.clone(), o.clone(), z.clone(), o.clone(), z.clone(), o.clone()].to_vec();
        vsitr.push(fixed(&[0xAA]));
        assert_eq!(passes("bsi-vsitr"), vsitr);
        let mut schneier = vec![o.clone(), z.clone()];
        schneier.extend(std::iter::repeat_n(r.clone(), 5));
        assert_eq!(passes("schneier"), schneier);
        assert_eq!(passes("bmb21"), [o.clone(), z.clone(), r.clone(), r.clone(), r.clone(), o.clone()]);
        let ops2 = passes("ops2");
        assert_eq!(ops2.last(), Some(&r));
        assert!(ops2[..ops2.len() - 1].chunks(2).all(|pair| pair == [z.clone(), o.clone()]));
    }

    #[test]
    fn pass_lists_parse_and_reject_garbage() {
        assert_eq!(
            parse_passes("0x00, 0xFF,random,0x924924").unwrap(),
            [fixed(&[0]), fixed(&[0xff]), PassKind::Random, fixed(&[0x92, 0x49, 0x24])]
        );
        for bad in ["", "0x", "0x0", "ff", "0xzz", "random,,0x00", "rand", "0x1234567"] {
            assert!(parse_passes(bad).is_err(), "{bad:?} accepted");
        }
        let too_long = format!("0x{}", "ab".repeat(MAX_PATTERN_BYTES + 1));
        assert!(parse_passes(&too_long).is_err());
    }

    #[test]
    fn rounds_repeat_the_pass_list_and_absurd_rounds_are_refused() {
        let plan = Plan::from_method(find("dod-short").unwrap(), 2).unwrap();
        assert_eq!(plan.passes.len(), 6);
        assert_eq!(plan.passes[..3], plan.passes[3..]);
        assert_eq!(Plan::from_method(find("zero").unwrap(), 0), Err(MethodError::BadRounds(0)));
        assert!(Plan::custom(vec![PassKind::Random], 101).is_err());
        assert!(Plan::custom(vec![PassKind::Random], u64::MAX).is_err());
        assert!(Plan::from_method(find("gutmann").unwrap(), 7).is_ok());
        assert_eq!(Plan::from_method(find("gutmann").unwrap(), 8), Err(MethodError::TooManyPasses(280)));
        let many = vec!["0x00"; MAX_PASSES + 1].join(",");
        assert_eq!(parse_passes(&many), Err(MethodError::TooManyPasses(MAX_PASSES as u64 + 1)));
    }

    #[test]
    fn docs_list_every_method_with_its_pass_count() {
        let docs = include_str!("../docs/methods.md");
        for method in METHODS {
            let heading = format!("## `{}`", method.id);
            let section =
                docs.split(&heading).nth(1).unwrap_or_else(|| panic!("docs/methods.md lacks {heading}"));
            let passes: Vec<String> = method.steps.iter().map(|s| PassKind::from(*s).to_string()).collect();
            let line = format!("Passes ({}): {}", passes.len(), passes.join(", "));
            assert!(section.contains(&line), "docs/methods.md `{}` should say: {line}", method.id);
        }
    }
}
