//! `wif-host`: mint Anthropic access tokens through Workload Identity
//! Federation with the embedded component.
//!
//! Exit codes: 0 success, 2 usage, 3 invalid config or policy, 4 denied by
//! the policy, 5 no token could be obtained. The token goes to stdout only;
//! every diagnostic goes to stderr.

mod demo;

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use anthropic_wif_host::config_file::{ConfigFileError, resolve};
use anthropic_wif_host::policy::{MinimalPolicy, PolicyError};
use anthropic_wif_host::spread::RefreshSpread;
use anthropic_wif_host::token_cache::TokenCache;
use anthropic_wif_host::{
    AccessToken, Clock, Error, Policy, Provider, ProviderBuilder, Requirements, SystemClock,
    private_dir,
};
use clap::{Parser, Subcommand, ValueEnum};

#[derive(Parser)]
#[command(
    name = "wif-host",
    version = concat!(
        env!("CARGO_PKG_VERSION"),
        " (component sha256 ",
        env!("ANTHROPIC_WIF_COMPONENT_SHA256"),
        ")"
    ),
    about = "Anthropic access tokens through Workload Identity Federation"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the whole flow for all four identity-token sources against
    /// loopback stand-ins (no network beyond 127.0.0.1).
    Demo,
    /// Print an access token for a config.
    Token(TokenArgs),
    /// Validate a config and print what it requires.
    Check(ConfigArgs),
    /// Print the minimal policy a config needs (TOML).
    Policy(ConfigArgs),
}

#[derive(clap::Args)]
struct TokenArgs {
    #[command(flatten)]
    config: ConfigArgs,
    /// Policy file (TOML). Without it, the minimal policy the config needs
    /// is derived, as `wif-host policy` prints it.
    #[arg(long)]
    policy: Option<PathBuf>,
    /// Output: the bare token, JSON, or a shell `export` line.
    #[arg(long, value_enum, default_value_t = Format::Raw)]
    format: Format,
    /// Load this component instead of the embedded one.
    #[arg(long)]
    component: Option<PathBuf>,
    /// Neither read nor write the token cache
    /// (`$XDG_CACHE_HOME/anthropic-wif/tokens`).
    #[arg(long)]
    no_cache: bool,
}

#[derive(clap::Args)]
struct ConfigArgs {
    /// Config file: an `auth` block or an agent config, YAML or JSON.
    /// Without it, the official SDKs' variables are read
    /// (ANTHROPIC_FEDERATION_RULE_ID, ANTHROPIC_ORGANIZATION_ID, …).
    #[arg(long)]
    config: Option<PathBuf>,
    /// In an agent config, the model whose auth to use.
    #[arg(long)]
    model: Option<String>,
}

impl ConfigArgs {
    /// The JSON text of the `auth` block: from the file, or from the SDK
    /// variables when no file is given.
    fn load(&self) -> Result<String, ConfigFileError> {
        resolve(self.config.as_deref(), self.model.as_deref(), |name| {
            std::env::var(name).ok()
        })
    }
}

#[derive(Clone, Copy, ValueEnum)]
enum Format {
    Raw,
    Json,
    Env,
}

/// A failure and its exit code.
struct Failure {
    code: u8,
    message: String,
}

const BAD_CONFIG: u8 = 3;
const DENIED: u8 = 4;
const NO_TOKEN: u8 = 5;

impl From<ConfigFileError> for Failure {
    fn from(e: ConfigFileError) -> Failure {
        Failure {
            code: BAD_CONFIG,
            message: e.to_string(),
        }
    }
}

impl From<PolicyError> for Failure {
    fn from(e: PolicyError) -> Failure {
        Failure {
            code: BAD_CONFIG,
            message: e.to_string(),
        }
    }
}

impl From<Error> for Failure {
    fn from(e: Error) -> Failure {
        let code = match e {
            Error::InvalidConfig { .. } => BAD_CONFIG,
            Error::Denied { .. } => DENIED,
            _ => NO_TOKEN,
        };
        Failure {
            code,
            message: e.to_string(),
        }
    }
}

fn main() -> ExitCode {
    let mut filter = tracing_subscriber::EnvFilter::try_from_env("WIF_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    // The compiler's own tracing is gigabytes at trace level, and the HTTP
    // client logs whole URLs (which can hold expanded secrets) at debug
    // level: keep both to warnings, whatever WIF_LOG says.
    for noisy in [
        "cranelift_codegen",
        "cranelift_frontend",
        "regalloc2",
        "wasmtime",
        "ureq",
        "ureq_proto",
        "rustls",
    ] {
        if let Ok(directive) = format!("{noisy}=warn").parse() {
            filter = filter.add_directive(directive);
        }
    }
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_env_filter(filter)
        .init();
    let result = match Cli::parse().command {
        Command::Demo => demo::run(),
        Command::Token(args) => token(&args),
        Command::Check(args) => check(&args),
        Command::Policy(args) => policy(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            eprintln!("wif-host: {}", failure.message);
            ExitCode::from(failure.code)
        }
    }
}

/// A provider builder that keeps the compiled component in the user's cache
/// folder, so that later runs skip compilation.
fn builder() -> ProviderBuilder {
    let builder = Provider::builder();
    match private_dir::user_cache_dir() {
        Some(dir) => builder.compile_cache(dir.join("compiled")),
        None => builder,
    }
}

fn token(args: &TokenArgs) -> Result<(), Failure> {
    let config = args.config.load()?;
    let cache = if args.no_cache {
        None
    } else {
        TokenCache::user()
    };
    let spread = RefreshSpread::random();
    // The fast path, without compiling the component: a token another run
    // left that may still be served. Otherwise the provider takes the
    // entry's lock, reads it again, and lets the component decide.
    let now = SystemClock.now().as_secs();
    let cached = cache.as_ref().and_then(|cache| match cache.load(&config) {
        Ok(token) => token,
        Err(problem) => {
            tracing::warn!(%problem, "token cache not read");
            None
        }
    });
    if let Some(token) = cached.filter(|t| now < spread.serve_until(t)) {
        tracing::debug!("token served from the token cache");
        print_token(&token, args.format);
        return Ok(());
    }
    let mut builder = builder().refresh_spread(spread);
    if let Some(cache) = &cache {
        builder = builder.token_cache(cache.dir().to_path_buf());
    }
    if let Some(path) = &args.component {
        builder = builder.component_file(path)?;
    }
    let inspector = builder.build()?;
    let policy = match &args.policy {
        Some(path) => Policy::from_file(path)?,
        None => derive(&inspector, &config)?.policy,
    };
    let token = inspector.with_policy(policy).get_token(&config)?;
    print_token(&token, args.format);
    Ok(())
}

fn print_token(token: &AccessToken, format: Format) {
    let secret = token.token.expose();
    match format {
        Format::Raw => println!("{secret}"),
        Format::Json => println!(
            "{}",
            serde_json::json!({
                "access_token": secret,
                "token_type": token.token_type,
                "expires_at": token.expires_at,
                "refresh_after": token.refresh_after,
            })
        ),
        Format::Env => println!("export ANTHROPIC_AUTH_TOKEN='{secret}'"),
    }
}

fn check(args: &ConfigArgs) -> Result<(), Failure> {
    let config = args.load()?;
    let needs = builder().build()?.requirements(&config)?;
    println!("config is valid; it requires:");
    print_requirements(&needs);
    Ok(())
}

fn policy(args: &ConfigArgs) -> Result<(), Failure> {
    let config = args.load()?;
    let minimal = derive(&builder().build()?, &config)?;
    print!("{}", minimal.toml);
    for note in &minimal.notes {
        eprintln!("wif-host: note: {note}");
    }
    Ok(())
}

/// The minimal policy for a config, with `${VAR}` origins resolved from this
/// process's environment.
fn derive(provider: &Provider, config: &str) -> Result<MinimalPolicy, Failure> {
    let needs = provider.requirements(config)?;
    Ok(Policy::minimal(&needs, |name| std::env::var(name).ok()))
}

fn print_requirements(needs: &Requirements) {
    let line = |label: &str, items: Vec<String>| {
        if !items.is_empty() {
            println!("  {label}:");
            for item in items {
                println!("    {item}");
            }
        }
    };
    line("environment variables", needs.env.clone());
    line("files", needs.files.clone());
    line("origins", needs.origins.clone());
    line(
        "identity URLs",
        needs
            .urls
            .iter()
            .map(|(template, origin)| match origin {
                Some(origin) => format!("{template} (origin {origin})"),
                None => format!("{template} (origin set by a variable)"),
            })
            .collect(),
    );
    line(
        "commands",
        needs.commands.iter().map(|argv| argv.join(" ")).collect(),
    );
}
