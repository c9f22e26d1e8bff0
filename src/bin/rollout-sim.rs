//! `rollout-sim`: the simulator's command line. Reads scenario files (or a grid directory),
//! runs every gate many seeded times through the same decision core, and prints decision
//! quality as a table, Markdown or JSON. Arguments are parsed by hand (no clap).
//! Native, or wasm32-wasip1 for `--tick-cost` under a WebAssembly engine
//! (scripts/bench/tick-cost.sh): `rollout_gate::sim` is not built for the Worker's
//! wasm32-unknown-unknown, where this binary is an empty stub so that checking every target
//! for it still compiles.

#[cfg(any(not(target_arch = "wasm32"), target_os = "wasi"))]
fn main() -> std::process::ExitCode {
    cli::main()
}

#[cfg(all(target_arch = "wasm32", not(target_os = "wasi")))]
fn main() {}

#[cfg(any(not(target_arch = "wasm32"), target_os = "wasi"))]
mod cli {
    use rollout_gate::sim::{self, report, validity, GateKind, Options, Scenario};
    use serde_json::{Map, Value};
    use std::io::{IsTerminal, Write};
    use std::path::PathBuf;
    use std::process::ExitCode;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Instant;

    const USAGE: &str = "\
Usage: rollout-sim [OPTIONS] [SCENARIO.json ...]

Replays rollout scenarios through rollout-gate's decision core, comparator gates and an
oracle, and reports decision quality (see docs/benchmark.md, docs/scenarios.md).

Options:
  --grid DIR        run every *.json in DIR (default: scenarios/ when no file is given)
  --runs N          seeded runs per scenario and gate (default 300)
  --seed S          base seed (default 1)
  --gates LIST      comma-separated subset of: ours,flagger-1,flagger-5,window,fixed-z
  --no-oracle       skip the oracle
  --calibration N   null runs that calibrate the oracle's critical value (default 20000)
  --policy JSON     policy fields laid over every scenario's, e.g. '{\"rho_detect\": 12}'
  --filter TEXT     only scenarios whose name contains TEXT
  --threads N       worker threads (default: all cores)
  --json            print JSON
  --markdown        print Markdown tables
  --save FILE       also write the JSON report to FILE
  --trace RUN       print our gate's audit log for run RUN of each scenario, then exit
  --tick-cost       time our gate's work each tick (decode the stored state, plan, step,
                    encode the state and events) over --runs runs of each scenario after
                    one untimed run, one thread; print a Markdown table (JSON with --json),
                    then exit
  --validity        measure each statistical test alone (no scenarios): its false
                    rejections of seeded healthy releases against its α, its power on
                    regressions, and the bounds on the split e-process's power; print
                    Markdown and exit 1 if a test rejects more than it may beyond Monte
                    Carlo error. --runs sets every cell's runs (default: each cell's own,
                    800 to 20000), --seed and --threads apply, --filter TEXT keeps
                    the cells whose 'test, releases' contains TEXT (and drops the bounds)
  --quiet           no progress bar
  -h, --help        print this help
";

    /// Output format.
    #[derive(Clone, Copy, PartialEq)]
    enum Format {
        Table,
        Json,
        Markdown,
    }

    /// Validated command line.
    struct Args {
        files: Vec<PathBuf>,
        grid: Option<PathBuf>,
        options: Options,
        policy: Option<Map<String, Value>>,
        filter: Option<String>,
        format: Format,
        quiet: bool,
        trace: Option<u64>,
        tick_cost: bool,
        validity: bool,
        /// `--runs` as given (the validity cells have their own counts otherwise).
        runs: Option<usize>,
        save: Option<PathBuf>,
    }

    /// A usage error: message for stderr, exit code 2.
    struct UsageError(String);

    pub fn main() -> ExitCode {
        let raw: Vec<String> = std::env::args().skip(1).collect();
        if raw.iter().any(|a| a == "-h" || a == "--help") {
            print!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        match parse(&raw).and_then(run) {
            Ok(code) => code,
            Err(UsageError(message)) => {
                eprintln!("rollout-sim: {message}");
                ExitCode::from(2)
            }
        }
    }

    fn parse(raw: &[String]) -> Result<Args, UsageError> {
        let threads = std::thread::available_parallelism().map_or(1, usize::from);
        let mut args = Args {
            files: Vec::new(),
            grid: None,
            options: Options {
                threads,
                ..Options::default()
            },
            policy: None,
            filter: None,
            format: Format::Table,
            quiet: false,
            trace: None,
            tick_cost: false,
            validity: false,
            runs: None,
            save: None,
        };
        let mut it = raw.iter();
        while let Some(arg) = it.next() {
            let mut value = |name: &str| {
                it.next()
                    .cloned()
                    .ok_or_else(|| UsageError(format!("{name} needs a value (see --help)")))
            };
            match arg.as_str() {
                "--grid" => args.grid = Some(PathBuf::from(value("--grid")?)),
                "--runs" => {
                    let runs = number("--runs", &value("--runs")?, 1)?;
                    args.options.runs = runs;
                    args.runs = Some(runs);
                }
                "--seed" => {
                    let text = value("--seed")?;
                    args.options.seed = text.parse().map_err(|_| {
                        UsageError(format!("--seed: {text:?} is not a whole number"))
                    })?;
                }
                "--calibration" => {
                    args.options.calibration_runs =
                        number("--calibration", &value("--calibration")?, 100)?
                }
                "--threads" => args.options.threads = number("--threads", &value("--threads")?, 1)?,
                "--gates" => args.options.gates = gates(&value("--gates")?)?,
                "--no-oracle" => args.options.oracle = false,
                "--policy" => {
                    let text = value("--policy")?;
                    let parsed: Map<String, Value> = serde_json::from_str(&text)
                        .map_err(|e| UsageError(format!("--policy: not a JSON object: {e}")))?;
                    args.policy = Some(parsed);
                }
                "--filter" => args.filter = Some(value("--filter")?),
                "--json" => args.format = Format::Json,
                "--save" => args.save = Some(PathBuf::from(value("--save")?)),
                "--markdown" => args.format = Format::Markdown,
                "--quiet" => args.quiet = true,
                "--tick-cost" => args.tick_cost = true,
                "--validity" => args.validity = true,
                "--trace" => args.trace = Some(number("--trace", &value("--trace")?, 0)? as u64),
                flag if flag.starts_with('-') => {
                    return Err(UsageError(format!("unknown option {flag} (see --help)")))
                }
                file => args.files.push(PathBuf::from(file)),
            }
        }
        Ok(args)
    }

    fn number(name: &str, text: &str, min: usize) -> Result<usize, UsageError> {
        match text.parse::<usize>() {
            Ok(n) if n >= min => Ok(n),
            _ => Err(UsageError(format!(
                "{name}: {text:?} is not a whole number ≥ {min}"
            ))),
        }
    }

    fn gates(list: &str) -> Result<Vec<GateKind>, UsageError> {
        let names = GateKind::ALL.map(GateKind::name).join(", ");
        list.split(',')
            .map(str::trim)
            .filter(|name| !name.is_empty())
            .map(|name| {
                GateKind::parse(name).ok_or_else(|| {
                    UsageError(format!("--gates: unknown gate {name:?} (known: {names})"))
                })
            })
            .collect::<Result<Vec<_>, _>>()
            .and_then(|g| {
                if g.is_empty() {
                    Err(UsageError("--gates: name at least one gate".into()))
                } else {
                    Ok(g)
                }
            })
    }

    /// Loads the scenarios: the files given, then the grid (default `scenarios/` when neither).
    fn load(args: &Args) -> Result<Vec<Scenario>, UsageError> {
        let mut paths = args.files.clone();
        let grid = match (&args.grid, paths.is_empty()) {
            (Some(dir), _) => Some(dir.clone()),
            (None, true) => Some(PathBuf::from("scenarios")),
            (None, false) => None,
        };
        if let Some(dir) = grid {
            let found = sim::scenario::grid_files(&dir).map_err(|e| UsageError(e.to_string()))?;
            if found.is_empty() {
                return Err(UsageError(format!(
                    "no *.json scenario in {}",
                    dir.display()
                )));
            }
            paths.extend(found);
        }
        let mut scenarios = Vec::with_capacity(paths.len());
        for path in &paths {
            let mut scenario =
                Scenario::load(path).map_err(|e| UsageError(format!("{}: {e}", path.display())))?;
            if let Some(policy) = &args.policy {
                scenario
                    .apply_policy_overrides(policy)
                    .map_err(|e| UsageError(format!("{}: --policy: {e}", path.display())))?;
            }
            let wanted = args
                .filter
                .as_ref()
                .is_none_or(|f| scenario.name.contains(f.as_str()));
            if wanted {
                scenarios.push(scenario);
            }
        }
        let mut names: Vec<&str> = scenarios.iter().map(|s| s.name.as_str()).collect();
        names.sort_unstable();
        if let Some(pair) = names.windows(2).find(|w| w[0] == w[1]) {
            return Err(UsageError(format!("two scenarios are named {:?}", pair[0])));
        }
        if scenarios.is_empty() {
            return Err(UsageError("no scenario matches --filter".into()));
        }
        Ok(scenarios)
    }

    /// `--tick-cost`: times every tick of `--runs` runs of our gate in each scenario.
    fn tick_cost(args: &Args, scenarios: &[Scenario]) -> Result<(), UsageError> {
        let started = Instant::now();
        let summaries: Vec<report::TickCostSummary> = scenarios
            .iter()
            .flat_map(|scenario| {
                // One untimed run first, so that a JIT's compiling and tiering up (under a
                // WebAssembly engine) is not counted as the gate's work.
                let _ = sim::tick_costs(scenario, args.options.seed.wrapping_add(1), 0);
                let costs: Vec<sim::TickCost> = (0..args.options.runs as u64)
                    .flat_map(|run| sim::tick_costs(scenario, args.options.seed, run).1)
                    .collect();
                if !args.quiet {
                    eprintln!(
                        "rollout-sim: timed {} ({} ticks)",
                        scenario.name,
                        costs.len()
                    );
                }
                report::summarize_tick_costs(&scenario.name, args.options.runs, &costs)
            })
            .collect();
        if !args.quiet {
            eprintln!(
                "rollout-sim: {} scenarios × {} runs timed in {:.1} s (seed {})",
                scenarios.len(),
                args.options.runs,
                started.elapsed().as_secs_f64(),
                args.options.seed,
            );
        }
        let text = if args.format == Format::Json {
            serde_json::to_string_pretty(&summaries)
                .map_err(|e| UsageError(format!("cannot encode the tick costs: {e}")))?
        } else {
            report::render_tick_costs(&summaries)
        };
        println!("{text}");
        Ok(())
    }

    /// `--validity`: measures every statistical test's cells; failure when a check exceeds
    /// its limit.
    fn validity(args: &Args) -> ExitCode {
        let started = Instant::now();
        let cells: Vec<validity::Cell> = validity::cells()
            .into_iter()
            .filter(|cell| {
                let name = format!("{}, {}", cell.test, cell.case);
                args.filter
                    .as_ref()
                    .is_none_or(|f| name.contains(f.as_str()))
            })
            .collect();
        let quiet = args.quiet;
        let progress = |done: usize, total: usize, m: &validity::Measured| {
            if !quiet {
                eprintln!(
                    "rollout-sim: {done}/{total} {}, {}: {:.4} over {} runs",
                    m.test, m.case, m.rate, m.runs
                );
            }
        };
        let measured = validity::measure_all(
            &cells,
            args.runs,
            args.options.seed,
            args.options.threads,
            &progress,
        );
        let limits_runs = args.runs.unwrap_or(validity::limits::LIMITS_RUNS);
        let exposure_runs = args.runs.unwrap_or(validity::limits::EXPOSURE_RUNS);
        println!("{}", validity::render(&measured));
        if args.filter.is_none() {
            println!(
                "Bounds on the split e-process's power ({limits_runs} runs a cell):\n\n{}",
                validity::limits::render_limits(limits_runs, args.options.seed)
            );
            println!(
                "Exposure rule against the power it claims ({exposure_runs} runs a cell):\n\n{}",
                validity::limits::render_exposure(exposure_runs, args.options.seed)
            );
        }
        if !quiet {
            eprintln!(
                "rollout-sim: {} cells in {:.1} s (seed {}, {} threads)",
                cells.len(),
                started.elapsed().as_secs_f64(),
                args.options.seed,
                args.options.threads
            );
        }
        let exceeded: Vec<String> = measured
            .iter()
            .filter(|m| m.exceeds)
            .map(|m| format!("{}, {}", m.test, m.case))
            .collect();
        if exceeded.is_empty() {
            ExitCode::SUCCESS
        } else {
            eprintln!(
                "rollout-sim: false rejections above the limit in: {}",
                exceeded.join("; ")
            );
            ExitCode::FAILURE
        }
    }

    fn run(args: Args) -> Result<ExitCode, UsageError> {
        if args.validity {
            return Ok(validity(&args));
        }
        let scenarios = load(&args)?;
        if let Some(run) = args.trace {
            for scenario in &scenarios {
                let (outcome, lines) = sim::run::trace_ours(scenario, args.options.seed, run);
                println!(
                    "== {} (run {run}, seed {})",
                    scenario.name, args.options.seed
                );
                for line in lines {
                    println!("{line}");
                }
                println!("outcome: {outcome:?}\n");
            }
            return Ok(ExitCode::SUCCESS);
        }
        if args.tick_cost {
            return tick_cost(&args, &scenarios).map(|()| ExitCode::SUCCESS);
        }
        let show_bar = !args.quiet && std::io::stderr().is_terminal();
        let shown = AtomicUsize::new(usize::MAX);
        let bar = |done: usize, total: usize| {
            if !show_bar || total == 0 {
                return;
            }
            let percent = done * 100 / total;
            if shown.swap(percent, Ordering::Relaxed) == percent {
                return;
            }
            let filled = percent * 40 / 100;
            eprint!(
                "\r[{}{}] {percent:>3}% {done}/{total} runs",
                "#".repeat(filled),
                ".".repeat(40 - filled)
            );
            let _ = std::io::stderr().flush();
        };
        let started = Instant::now();
        let reports = sim::simulate(&scenarios, &args.options, &bar);
        if show_bar {
            eprintln!();
        }
        if !args.quiet {
            eprintln!(
                "rollout-sim: {} scenarios × {} runs in {:.1} s (seed {}, {} threads)",
                scenarios.len(),
                args.options.runs,
                started.elapsed().as_secs_f64(),
                args.options.seed,
                args.options.threads
            );
        }
        let json = serde_json::to_string_pretty(&reports)
            .map_err(|e| UsageError(format!("cannot encode the report: {e}")))?;
        if let Some(path) = &args.save {
            std::fs::write(path, &json)
                .map_err(|e| UsageError(format!("--save {}: {e}", path.display())))?;
        }
        let text = match args.format {
            Format::Table => report::render_table(&reports),
            Format::Markdown => report::render_markdown(&reports),
            Format::Json => json,
        };
        println!("{text}");
        Ok(ExitCode::SUCCESS)
    }
}
