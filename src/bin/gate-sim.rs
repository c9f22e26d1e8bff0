//! `gate-sim`: the command line of the gate's deterministic fault simulation. Runs many
//! seeds (or one, traced), prints what each fault class exercised and every invariant
//! violation with the seed and step that replays it. Exit status 1 when any invariant broke.
//! Native only: on wasm32 this binary is an empty stub so that checking every target
//! still compiles.

#[cfg(not(target_arch = "wasm32"))]
fn main() -> std::process::ExitCode {
    cli::main()
}

#[cfg(target_arch = "wasm32")]
fn main() {}

#[cfg(not(target_arch = "wasm32"))]
mod cli {
    use rollout_gate::gatesim::{run, FaultClass, Invariant, Options, SeedReport};
    use std::collections::BTreeMap;
    use std::io::Write;
    use std::process::ExitCode;
    use std::time::Instant;

    const USAGE: &str = "\
Usage: gate-sim [--seeds N] [--from S] [--seed S --trace] [--only CLASSES] [--json]

Runs the real controller against a seeded simulated world with faults (docs/reliability.md).

Options:
  --seeds N       run seeds FROM..FROM+N (default 200)
  --from S        first seed (default 1)
  --seed S        run one seed (add --trace to print every call and fault)
  --trace         print the run's trace (with --seed)
  --only LIST     comma-separated fault classes a plan may switch on (snake_case names)
  --json          one JSON report per seed on stdout
";

    struct Args {
        from: u64,
        count: u64,
        trace: bool,
        json: bool,
        only: Option<Vec<FaultClass>>,
    }

    fn parse(args: &[String]) -> Result<Args, String> {
        let mut out = Args {
            from: 1,
            count: 200,
            trace: false,
            json: false,
            only: None,
        };
        let mut it = args.iter();
        let number = |v: Option<&String>, flag: &str| -> Result<u64, String> {
            v.ok_or(format!("{flag} needs a value"))?
                .parse()
                .map_err(|_| format!("{flag} needs a whole number"))
        };
        while let Some(arg) = it.next() {
            match arg.as_str() {
                "--seeds" => out.count = number(it.next(), "--seeds")?,
                "--from" => out.from = number(it.next(), "--from")?,
                "--seed" => {
                    out.from = number(it.next(), "--seed")?;
                    out.count = 1;
                }
                "--trace" => out.trace = true,
                "--json" => out.json = true,
                "--only" => {
                    let list = it.next().ok_or("--only needs a value")?;
                    let mut classes = Vec::new();
                    for name in list.split(',') {
                        let class = FaultClass::ALL
                            .into_iter()
                            .find(|c| class_name(*c) == name)
                            .ok_or(format!("unknown fault class '{name}'"))?;
                        classes.push(class);
                    }
                    out.only = Some(classes);
                }
                "-h" | "--help" => return Err(String::new()),
                other => return Err(format!("unknown argument '{other}'")),
            }
        }
        Ok(out)
    }

    fn class_name(class: FaultClass) -> String {
        serde_json::to_value(class)
            .ok()
            .and_then(|v| v.as_str().map(String::from))
            .unwrap_or_default()
    }

    pub fn main() -> ExitCode {
        let args: Vec<String> = std::env::args().skip(1).collect();
        let args = match parse(&args) {
            Ok(a) => a,
            Err(e) => {
                if !e.is_empty() {
                    eprintln!("gate-sim: {e}");
                }
                eprint!("{USAGE}");
                return ExitCode::from(2);
            }
        };
        let started = Instant::now();
        let mut reports: Vec<SeedReport> = Vec::new();
        let stdout = std::io::stdout();
        let mut out = stdout.lock();
        for seed in args.from..args.from + args.count {
            let report = run(&Options {
                seed,
                only: args.only.clone(),
                trace: args.trace,
                keep_saved: false,
            });
            if args.json {
                let _ = writeln!(
                    out,
                    "{}",
                    serde_json::to_string(&report).unwrap_or_default()
                );
            }
            if args.trace {
                for line in &report.trace {
                    let _ = writeln!(out, "{line}");
                }
            }
            if args.count >= 1000 && (seed - args.from + 1) % 1000 == 0 {
                eprintln!("gate-sim: {} of {} seeds", seed - args.from + 1, args.count);
            }
            reports.push(report);
        }
        let summary = summarize(&reports, started.elapsed().as_secs_f64());
        if args.json {
            eprint!("{summary}");
        } else {
            let _ = write!(out, "{summary}");
        }
        if reports.iter().any(|r| !r.violations.is_empty()) {
            ExitCode::from(1)
        } else {
            ExitCode::SUCCESS
        }
    }

    fn summarize(reports: &[SeedReport], secs: f64) -> String {
        let mut s = String::new();
        let violations: Vec<_> = reports.iter().flat_map(|r| r.violations.iter()).collect();
        let mut outcomes: BTreeMap<&str, u32> = BTreeMap::new();
        for r in reports {
            *outcomes.entry(r.outcome.as_str()).or_insert(0) += 1;
        }
        s.push_str(&format!(
            "gate-sim: {} seeds in {secs:.1} s, {} violations\n",
            reports.len(),
            violations.len()
        ));
        s.push_str(&format!("outcomes: {outcomes:?}\n"));
        let max_state = reports.iter().map(|r| r.max_state_bytes).max().unwrap_or(0);
        let repeats: u32 = reports.iter().map(|r| r.slack_repeats).sum();
        s.push_str(&format!(
            "largest stored rollout: {max_state} bytes; Slack posts repeated after an unconfirmed post: {repeats}\n"
        ));
        s.push_str("fault class          seeds fired   events  seeds with a violation  checks right after it fired (split, rollback, no write, read first, slack, audit, bounded)\n");
        for class in FaultClass::ALL {
            let fired: Vec<&SeedReport> = reports
                .iter()
                .filter(|r| r.fired.get(&class).copied().unwrap_or(0) > 0)
                .collect();
            let events: u32 = fired.iter().map(|r| r.fired[&class]).sum();
            let bad = fired.iter().filter(|r| !r.violations.is_empty()).count();
            let exercised: Vec<String> = Invariant::ALL
                .iter()
                .map(|inv| {
                    let n: u64 = fired
                        .iter()
                        .map(|r| r.exercised.get(&(class, *inv)).copied().unwrap_or(0))
                        .sum();
                    n.to_string()
                })
                .collect();
            s.push_str(&format!(
                "{:<20} {:>11} {:>8} {:>8}  {}\n",
                class_name(class),
                fired.len(),
                events,
                bad,
                exercised.join(" / ")
            ));
        }
        s.push_str("invariant              checks  violations\n");
        for inv in Invariant::ALL {
            let checks: u64 = reports
                .iter()
                .map(|r| r.checks.get(&inv).copied().unwrap_or(0))
                .sum();
            let broken = violations.iter().filter(|v| v.invariant == inv).count();
            let name = serde_json::to_value(inv)
                .ok()
                .and_then(|v| v.as_str().map(String::from))
                .unwrap_or_default();
            s.push_str(&format!("{name:<22} {checks:>8} {broken:>10}\n"));
        }
        for v in violations.iter().take(20) {
            s.push_str(&format!(
                "VIOLATION seed {} step {} minute {}: {:?}: {}\n  replay: cargo run --release --bin gate-sim -- --seed {} --trace\n",
                v.seed, v.step, v.minute, v.invariant, v.detail, v.seed
            ));
        }
        s
    }
}
