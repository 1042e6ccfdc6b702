//! The `feedback-gateway` command: serve (default), migrate, tenant create.

use std::path::PathBuf;

use clap::{Parser, Subcommand};
use feedback_gateway::config::Config;
use feedback_gateway::{ensure_demo_tenant, shutdown_signal, store, telemetry, App};
use tokio_util::sync::CancellationToken;

#[derive(Parser)]
#[command(name = "feedback-gateway", version, about)]
struct Cli {
    /// A TOML file layered over config/default.toml (environment variables still win).
    #[arg(long, global = true)]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the gateway (the default).
    Serve,
    /// Apply database migrations and exit.
    Migrate,
    /// Manage tenants offline, straight in the database.
    Tenant {
        #[command(subcommand)]
        command: TenantCommand,
    },
}

#[derive(Subcommand)]
enum TenantCommand {
    /// Create a tenant and print its API key (shown only this once).
    Create { slug: String },
}

#[tokio::main]
async fn main() {
    let cli = Cli::parse();
    let config = match Config::load(cli.config.as_deref()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("feedback-gateway: {e}");
            std::process::exit(2);
        }
    };
    telemetry::init_tracing(&config.log);
    if let Err(e) = run(cli.command.unwrap_or(Command::Serve), config).await {
        eprintln!("feedback-gateway: {e:#}");
        std::process::exit(1);
    }
}

async fn run(command: Command, config: Config) -> anyhow::Result<()> {
    match command {
        Command::Migrate => {
            App::build(config).await?;
            println!("migrations applied");
        }
        Command::Tenant {
            command: TenantCommand::Create { slug },
        } => {
            let app = App::build(config).await?;
            let created = store::tenants::create(&app.db, &slug).await?;
            println!("{}", serde_json::to_string_pretty(&created)?);
        }
        Command::Serve => serve(config).await?,
    }
    Ok(())
}

async fn serve(config: Config) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(&config.listen)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", config.listen))?;
    let app = App::build(config).await?;
    let addr = listener.local_addr()?;
    if let Some(demo) = ensure_demo_tenant(&app).await? {
        print_demo(&demo, &app.config.public_url);
    }
    println!(
        "Survey e-mails are {} ([email] in config/default.toml).",
        app.email_transport
    );
    let stop_requested = shutdown_signal();
    tracing::info!(%addr, "feedback-gateway listening");
    let shutdown = CancellationToken::new();
    let trigger = shutdown.clone();
    tokio::spawn(async move {
        stop_requested.await;
        trigger.cancel();
    });
    app.serve(listener, shutdown).await
}

fn print_demo(demo: &store::tenants::CreatedTenant, base: &str) {
    println!(
        "\nCreated demo tenant `{slug}`. Its API key (shown only now):\n\n    {key}\n\n\
         Send an answer:\n\n    curl -s -X POST {base}/v1/feedback \\\n      \
         -H 'Authorization: Bearer {key}' -H 'Content-Type: application/json' \\\n      \
         -d '{{\"metric\": \"nps\", \"score\": 9, \"comment\": \"Quick and friendly\", \"contact\": {{\"email\": \"anna@example.com\"}}}}'\n\n\
         Read the score:\n\n    curl -s '{base}/v1/scores?metric=nps' -H 'Authorization: Bearer {key}'\n",
        slug = demo.slug,
        key = demo.api_key,
    );
}
