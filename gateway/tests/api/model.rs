//! Randomised sequences of PUT, POST and DELETE over a small, colliding vocabulary,
//! checked step by step against a model of upstream's rules: a push is rejected (400,
//! nothing changes) when afterwards one name would have two types across groups or one
//! series would exist twice; otherwise it replaces the whole group (PUT) or the families
//! it names (POST). Summaries and histograms bring upstream's suffix collisions
//! (`a_count` next to summary `a`, `a_bucket` next to histogram `a`).

use std::collections::BTreeMap;

use crate::helpers::{is_own, series, spawn_gateway};

/// Small deterministic generator (xorshift64*).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// A grouping key: path and labels (with `instance`).
struct Group {
    path: &'static str,
    labels: &'static [(&'static str, &'static str)],
}

const GROUPS: &[Group] = &[
    Group {
        path: "/metrics/job/j1",
        labels: &[("instance", ""), ("job", "j1")],
    },
    Group {
        path: "/metrics/job/j2",
        labels: &[("instance", ""), ("job", "j2")],
    },
    Group {
        path: "/metrics/job/j1/x/1",
        labels: &[("instance", ""), ("job", "j1"), ("x", "1")],
    },
];
const NAMES: &[&str] = &["a", "a_count", "a_bucket", "b"];
const TYPES: &[&str] = &["counter", "gauge", "untyped", "summary", "histogram"];
/// Optional body label `x`.
const XS: &[Option<&str>] = &[None, Some("1"), Some("2")];

/// One family as pushed: type and its series (final label sets, value).
#[derive(Clone, Debug)]
struct Family {
    kind: &'static str,
    series: Vec<(String, u64)>,
}

/// Stored state: group index -> family name -> family.
type Model = BTreeMap<usize, BTreeMap<&'static str, Family>>;

/// Builds a random body for group `g`; returns the text and the families it pushes.
fn random_body(rng: &mut Rng, g: usize, step: usize) -> (String, BTreeMap<&'static str, Family>) {
    let mut text = String::new();
    let mut families = BTreeMap::new();
    for &name in NAMES {
        if rng.below(2) == 0 {
            continue;
        }
        // Summaries and histograms only under the unsuffixed name `a`.
        let kinds = if name == "a" { TYPES.len() } else { 3 };
        let kind = TYPES[rng.below(kinds)];
        text.push_str(&format!("# TYPE {name} {kind}\n"));
        let mut fam = Family {
            kind,
            series: Vec::new(),
        };
        let complex = kind == "summary" || kind == "histogram";
        // One metric per summary/histogram: repeated label sets would merge in the parser.
        let count = if complex { 1 } else { 1 + rng.below(2) };
        for i in 0..count {
            let x = XS[rng.below(XS.len())];
            let value = (step * 10 + i) as u64;
            let body_labels = x.map(|x| format!("x=\"{x}\"")).unwrap_or_default();
            let braces = |extra: &str| {
                let all: Vec<&str> = [body_labels.as_str(), extra]
                    .into_iter()
                    .filter(|s| !s.is_empty())
                    .collect();
                if all.is_empty() {
                    String::new()
                } else {
                    format!("{{{}}}", all.join(","))
                }
            };
            match kind {
                "summary" => {
                    text.push_str(&format!("{name}_sum{} {value}\n", braces("")));
                    text.push_str(&format!("{name}_count{} {value}\n", braces("")));
                }
                "histogram" => {
                    let le = "le=\"+Inf\"";
                    text.push_str(&format!("{name}_bucket{} {value}\n", braces(le)));
                    text.push_str(&format!("{name}_sum{} {value}\n", braces("")));
                    text.push_str(&format!("{name}_count{} {value}\n", braces("")));
                }
                _ => text.push_str(&format!("{name}{} {value}\n", braces(""))),
            }
            // Grouping labels win over body labels.
            let mut labels: BTreeMap<&str, &str> = BTreeMap::new();
            if let Some(x) = x {
                labels.insert("x", x);
            }
            for (k, v) in GROUPS[g].labels {
                labels.insert(k, v);
            }
            let labels: Vec<(&str, &str)> = labels.into_iter().collect();
            // The identity of the metric: family name and labels.
            fam.series.push((series(name, &labels), value));
        }
        families.insert(name, fam);
    }
    (text, families)
}

/// Whether `model` is consistent: one type per name, no series twice.
fn consistent(model: &Model) -> bool {
    let mut types: BTreeMap<&str, &str> = BTreeMap::new();
    let mut seen = std::collections::BTreeSet::new();
    for families in model.values() {
        for (name, fam) in families {
            if *types.entry(name).or_insert(fam.kind) != fam.kind {
                return false;
            }
            for (s, _) in &fam.series {
                if !seen.insert(s.clone()) {
                    return false;
                }
            }
        }
    }
    // Upstream's suffix collisions: `_count`/`_sum` next to a summary or histogram,
    // `_bucket` next to a histogram.
    for name in types.keys() {
        for (suffix, reserved_by) in [
            ("_count", &["summary", "histogram"][..]),
            ("_sum", &["summary", "histogram"][..]),
            ("_bucket", &["histogram"][..]),
        ] {
            if let Some(base) = name.strip_suffix(suffix) {
                if types.get(base).is_some_and(|k| reserved_by.contains(k)) {
                    return false;
                }
            }
        }
    }
    true
}

fn expected_samples(model: &Model) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for families in model.values() {
        for (name, fam) in families {
            for (s, v) in &fam.series {
                let v = v.to_string();
                let labels = &s[name.len()..];
                match fam.kind {
                    "summary" => {
                        out.insert(format!("{name}_sum{labels}"), v.clone());
                        out.insert(format!("{name}_count{labels}"), v);
                    }
                    "histogram" => {
                        // `le` comes last in upstream's exposition.
                        let inner = labels.trim_start_matches('{').trim_end_matches('}');
                        let bucket = format!("{name}_bucket{{{inner},le=\"+Inf\"}}");
                        out.insert(bucket, v.clone());
                        out.insert(format!("{name}_sum{labels}"), v.clone());
                        out.insert(format!("{name}_count{labels}"), v);
                    }
                    _ => {
                        out.insert(s.clone(), v);
                    }
                }
            }
        }
    }
    out
}

fn run_seed(seed: u64, steps: usize) {
    let gw = spawn_gateway(&[]);
    let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
    let mut model: Model = BTreeMap::new();
    let mut log = Vec::new();
    let mut counts: BTreeMap<u16, usize> = BTreeMap::new();
    for step in 0..steps {
        let g = rng.below(GROUPS.len());
        let op = rng.below(5);
        let (method, status, body) = if op == 0 {
            model.remove(&g);
            ("DELETE", 202, String::new())
        } else {
            let (body, families) = random_body(&mut rng, g, step);
            let mut next = model.clone();
            let group = next.entry(g).or_default();
            if op <= 2 {
                *group = families.clone();
            } else {
                group.extend(families.clone());
            }
            // Duplicates inside the push itself.
            let mut inside = std::collections::BTreeSet::new();
            let dup_inside = families
                .values()
                .flat_map(|f| f.series.iter())
                .any(|(s, _)| !inside.insert(s.clone()));
            let method = if op <= 2 { "PUT" } else { "POST" };
            if !dup_inside && consistent(&next) {
                model = next;
                (method, 200, body)
            } else {
                (method, 400, body)
            }
        };
        let r = gw.request(method, GROUPS[g].path, &[], body.as_bytes());
        log.push(format!(
            "{method} {} -> {}\n{body}",
            GROUPS[g].path, r.status
        ));
        *counts.entry(status).or_default() += 1;
        assert_eq!(
            r.status,
            status,
            "seed {seed} step {step}: {}\nhistory:\n{}",
            r.text(),
            log.join("\n")
        );
        let actual: BTreeMap<String, String> = gw
            .state()
            .into_iter()
            .filter(|(s, _)| !is_own(s) && !s.starts_with("push_"))
            .collect();
        assert_eq!(
            actual,
            expected_samples(&model),
            "seed {seed} step {step}, history:\n{}",
            log.join("\n")
        );
    }
    // The sequence must exercise acceptance, rejection and deletion.
    for status in [200, 202, 400] {
        assert!(
            counts.get(&status).is_some_and(|n| *n >= 5),
            "seed {seed}: {counts:?}"
        );
    }
}

#[test]
fn random_sequences_follow_the_model_seeds_1_to_4() {
    for seed in 1..=4 {
        run_seed(seed, 150);
    }
}

#[test]
fn random_sequences_follow_the_model_seeds_5_to_8() {
    for seed in 5..=8 {
        run_seed(seed, 150);
    }
}
