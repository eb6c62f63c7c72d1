use std::process::ExitCode;

use clap::error::ErrorKind;
use clap::Parser;
use tracing_subscriber::EnvFilter;

use riskgate::cli::{run_operator_command, with_default_command, Cli, Command};
use riskgate::config::{LogFormat, ServeConfig};
use riskgate::simulator::SimulatorConfig;

// See Cargo.toml: an allocator that gives memory back after a flood.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let args = with_default_command(std::env::args_os().collect());
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(err)
            if matches!(
                err.kind(),
                ErrorKind::DisplayHelp | ErrorKind::DisplayVersion
            ) =>
        {
            let _ = err.print();
            return ExitCode::SUCCESS;
        }
        Err(err) => {
            // One line that names the flag or value at fault; clap's usage
            // block would bury it in a service manager's log.
            let rendered = err.render().to_string();
            let first = rendered
                .lines()
                .next()
                .unwrap_or("error: invalid arguments");
            eprintln!("riskgate: {}", first.trim_start_matches("error: "));
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(err) => {
            eprintln!("riskgate: cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    match cli.command {
        Command::Serve(config) => runtime.block_on(serve(*config)),
        Command::SimulateProviders(config) => runtime.block_on(simulate_providers(config)),
        Command::SimulateTraffic(config) => runtime.block_on(simulate_traffic(config)),
        command => {
            init_logging(LogFormat::Text, "warn");
            match runtime.block_on(run_operator_command(command)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(err) => {
                    eprintln!("riskgate: {err}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}

fn init_logging(format: LogFormat, default_level: &str) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_level));
    // Colours only on a terminal: a log file or a collector gets plain text.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(ansi);
    match format {
        LogFormat::Json => builder.json().flatten_event(true).init(),
        LogFormat::Text => builder.init(),
    }
}

async fn serve(mut config: ServeConfig) -> ExitCode {
    init_logging(config.log_format, "info,tower_http=info,sqlx=warn");
    // --demo: the provider simulator runs in this process and the adapters call it.
    let simulator = if config.demo {
        let sim_config = SimulatorConfig::default();
        match riskgate::simulator::start(&sim_config).await {
            Ok(sim) => {
                let base = url::Url::parse(&format!("http://{}", sim.addr)).ok();
                config.fingerprint_base_url = base.clone();
                config.stytch_base_url = base.clone();
                config.fingerprintiq_base_url = base;
                Some(sim)
            }
            Err(err) => {
                eprintln!("riskgate: --demo: cannot start the provider simulator: {err}");
                return ExitCode::FAILURE;
            }
        }
    } else {
        None
    };
    let running = match riskgate::app::start(&config, true).await {
        Ok(running) => running,
        Err(err) => {
            eprintln!("riskgate: {err}");
            return ExitCode::FAILURE;
        }
    };
    if let Some(token) = &running.generated_admin_token {
        println!(
            "riskgate: generated an admin token; it is shown only this once and stored hashed:"
        );
        println!("  {token}");
    }
    println!("riskgate listening on http://{}", running.addr);
    tracing::info!(addr = %running.addr, "listening");
    if simulator.is_some() {
        match riskgate::demo::prepare(&running.state).await {
            Ok(api_key) => println!(
                "{}",
                riskgate::demo::instructions(&format!("http://{}", running.addr), &api_key)
            ),
            Err(err) => eprintln!(
                "riskgate: --demo: {}",
                riskgate::http::error::ApiError::from(err).message
            ),
        }
    }
    let result = running.wait().await;
    if let Some(sim) = simulator {
        let _ = sim.shutdown().await;
    }
    match result {
        Ok(()) => {
            tracing::info!("stopped");
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("riskgate: server error: {err}");
            ExitCode::FAILURE
        }
    }
}

async fn simulate_providers(config: SimulatorConfig) -> ExitCode {
    init_logging(LogFormat::Text, "info");
    let running = match riskgate::simulator::start(&config).await {
        Ok(running) => running,
        Err(err) => {
            eprintln!("riskgate: simulate-providers: {err}");
            return ExitCode::FAILURE;
        }
    };
    println!(
        "riskgate provider simulator listening on http://{}",
        running.addr
    );
    tracing::info!(addr = %running.addr, "provider simulator listening");
    match running.run_until_signal().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("riskgate: simulator error: {err}");
            ExitCode::FAILURE
        }
    }
}

async fn simulate_traffic(config: riskgate::traffic::TrafficConfig) -> ExitCode {
    init_logging(LogFormat::Text, "warn");
    if config.dry_run {
        return match riskgate::traffic::dry_run(&config) {
            Ok(text) => {
                println!("{text}");
                ExitCode::SUCCESS
            }
            Err(err) => {
                eprintln!("riskgate: simulate-traffic: {err:#}");
                ExitCode::FAILURE
            }
        };
    }
    let report = match riskgate::traffic::run(&config).await {
        Ok(report) => report,
        Err(err) => {
            eprintln!("riskgate: simulate-traffic: {err:#}");
            return ExitCode::FAILURE;
        }
    };
    if config.json {
        match serde_json::to_string_pretty(&report) {
            Ok(text) => println!("{text}"),
            Err(err) => {
                eprintln!("riskgate: simulate-traffic: {err}");
                return ExitCode::FAILURE;
            }
        }
    } else {
        println!("{}", riskgate::traffic::table(&report));
    }
    if report.errors > 0 {
        eprintln!(
            "riskgate: simulate-traffic: {} of {} transactions failed",
            report.errors, report.transactions
        );
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}
