use std::process::ExitCode;

use clap::error::ErrorKind;
use clap::Parser;
use tracing_subscriber::EnvFilter;

use riskgate::cli::{run_operator_command, with_default_command, Cli, Command};
use riskgate::config::{LogFormat, ServeConfig};

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
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Json => builder.json().flatten_event(true).init(),
        LogFormat::Text => builder.init(),
    }
}

async fn serve(config: ServeConfig) -> ExitCode {
    init_logging(config.log_format, "info,tower_http=info,sqlx=warn");
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
    match running.wait().await {
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
