//! `wif-host`: mint Anthropic access tokens through Workload Identity
//! Federation with the embedded component.
//!
//! Exit codes ([`Exit`]): 0 success, 2 usage, 3 invalid config or policy,
//! 4 denied by the policy, 5 no token could be obtained (1: the demo
//! failed; `exec`: the program's own status, 127 when it cannot start). The token goes to stdout only; every diagnostic goes to stderr.

#![deny(unsafe_code)]

#[cfg(not(unix))]
compile_error!(
    "anthropic-wif-host supports Unix (Linux, macOS) only: wif-host runs commands in \
     process groups and keeps its caches in private folders opened with openat"
);

mod demo;
mod doctor;
mod exec;
mod gateway;
mod sdk_profile;
mod shell;
mod sync;

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use crate::gateway::{
    AddressError, ClientKey, ClientKeyError, Gateway, GatewayError, Listen, ListenError, Listener,
    SHUTDOWN_GRACE,
};
use crate::sdk_profile::{ProfileError, ProfileWriter, resolve_input};
use crate::sync::{Stop, SyncError};
use anthropic_wif_host::config_file::LocatedAuth;
use anthropic_wif_host::policy::{MinimalPolicy, PolicyError};
use anthropic_wif_host::spread::RefreshSpread;
use anthropic_wif_host::token_cache::{PolicyInEffect, TokenCache};
use anthropic_wif_host::{
    AccessToken, Clock, Error, Policy, Provider, ProviderBuilder, Requirements, SystemClock,
    private_dir,
};
use clap::{Parser, Subcommand, ValueEnum};

#[derive(Parser)]
#[command(
    name = "wif-host",
    version = version(),
    about = "Anthropic access tokens through Workload Identity Federation"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// The version line: this crate's version and the embedded component's
/// SHA-256.
fn version() -> &'static str {
    static VERSION: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    VERSION.get_or_init(|| {
        format!(
            "{} (component sha256 {})",
            env!("CARGO_PKG_VERSION"),
            anthropic_wif_host::EMBEDDED_COMPONENT_SHA256
        )
    })
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
    /// Keep an official SDK profile's credentials file fresh (a sidecar):
    /// applications run with ANTHROPIC_CONFIG_DIR and ANTHROPIC_PROFILE.
    Sync(SyncArgs),
    /// A local authenticating gateway for clients that only take a base URL:
    /// forwards /v1/* to the config's base_url with the token, for clients
    /// that present its client key.
    #[command(alias = "proxy")]
    Gateway(GatewayArgs),
    /// Run a program with a private gateway of its own: it gets
    /// ANTHROPIC_BASE_URL and ANTHROPIC_API_KEY for a loopback gateway with
    /// a random key, never a token; exits with the program's status.
    Exec(ExecArgs),
    /// Check every origin, file, variable and command a config needs: DNS,
    /// proxy, TCP, TLS, HTTP, existence and grants (never contents).
    Doctor(doctor::DoctorArgs),
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
    /// Without it, as the official SDKs: ANTHROPIC_PROFILE's profile, else
    /// the SDK variables (ANTHROPIC_FEDERATION_RULE_ID, …), else the active
    /// profile (`active_config`, else `default`) of ANTHROPIC_CONFIG_DIR.
    #[arg(long)]
    config: Option<PathBuf>,
    /// In an agent config, the model whose auth to use.
    #[arg(long)]
    model: Option<String>,
    /// An official SDK profile (`oidc_federation`) to read instead of a
    /// config file: ANTHROPIC_CONFIG_DIR/configs/NAME.json.
    #[arg(long, value_name = "NAME", conflicts_with = "config")]
    profile: Option<String>,
}

impl ConfigArgs {
    /// The `auth` block, with its place in an agent config.
    fn load(&self) -> Result<LocatedAuth, ProfileError> {
        resolve_input(
            self.config.as_deref(),
            self.model.as_deref(),
            self.profile.as_deref(),
            env_var,
        )
        .map(|input| input.auth)
    }
}

#[derive(clap::Args)]
struct GatewayArgs {
    #[command(flatten)]
    config: ConfigArgs,
    /// Policy file (TOML); without it, the minimal policy is derived.
    #[arg(long)]
    policy: Option<PathBuf>,
    /// Where to listen: 127.0.0.1:PORT, [::1]:PORT or unix:PATH (loopback
    /// only). A socket file at PATH that nobody listens on is replaced; the
    /// socket is removed on SIGTERM or SIGINT.
    #[arg(long, value_name = "ADDRESS")]
    listen: String,
    /// The file holding the key clients must present (as ANTHROPIC_API_KEY
    /// or ANTHROPIC_AUTH_TOKEN): read when it exists (a regular file of
    /// this user's, mode 0600 or stricter, not a symlink), created 0600
    /// with a fresh random key when it does not. Default:
    /// $XDG_RUNTIME_DIR/anthropic-wif/gateway.key, else gateway/gateway.key
    /// in the user's cache folder.
    #[arg(long, value_name = "PATH")]
    client_key_file: Option<PathBuf>,
}

#[derive(clap::Args)]
struct ExecArgs {
    #[command(flatten)]
    config: ConfigArgs,
    /// Policy file (TOML); without it, the minimal policy is derived.
    #[arg(long)]
    policy: Option<PathBuf>,
    /// The program and its arguments, after `--`.
    #[arg(last = true, required = true, value_name = "PROGRAM")]
    command: Vec<std::ffi::OsString>,
}

#[derive(clap::Args)]
struct SyncArgs {
    /// Config file, as for `token`. Without it, as for `token` (SDK
    /// variables and profiles), with --from-profile for --profile.
    #[arg(long)]
    config: Option<PathBuf>,
    /// In an agent config, the model whose auth to use.
    #[arg(long)]
    model: Option<String>,
    /// An official SDK profile (`oidc_federation`) to read instead of a
    /// config file.
    #[arg(long, value_name = "NAME", conflicts_with = "config")]
    from_profile: Option<String>,
    /// Policy file (TOML); without it, the minimal policy is derived.
    #[arg(long)]
    policy: Option<PathBuf>,
    /// The profile to keep fresh: writes DIR/credentials/NAME.json, and
    /// DIR/configs/NAME.json when it is missing.
    #[arg(long, value_name = "NAME")]
    profile: String,
    /// The SDKs' config folder. Default: ANTHROPIC_CONFIG_DIR, else
    /// ~/.config/anthropic (%APPDATA%\\Anthropic on Windows).
    #[arg(long, value_name = "DIR")]
    config_dir: Option<PathBuf>,
    /// Write one token and exit.
    #[arg(long)]
    once: bool,
}

#[derive(Clone, Copy, ValueEnum)]
enum Format {
    Raw,
    Json,
    Env,
}

/// The exit codes of `wif-host`: the one table, which [`Failure::exit`]
/// maps every failure to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
enum Exit {
    /// A token was printed, or the command did what it was asked.
    Success = 0,
    /// The demo's loopback flow failed.
    DemoFailed = 1,
    /// The command line is wrong: an argument clap refuses (clap exits with
    /// 2 itself) or a `--listen` address that cannot be used.
    Usage = 2,
    /// The config or the policy is invalid (or cannot be read), or the
    /// gateway's upstream and proxy settings are unusable.
    InvalidConfig = 3,
    /// The policy denies something the config needs.
    Denied = 4,
    /// No token could be obtained: the identity-token source, the token
    /// exchange, the component or the system failed.
    NoToken = 5,
    /// `exec` could not start the program (it exits with the program's own
    /// status otherwise).
    CannotRun = 127,
}

impl From<Exit> for ExitCode {
    fn from(exit: Exit) -> ExitCode {
        ExitCode::from(exit as u8)
    }
}

/// Why a command failed: each error it can end with, printed after
/// `wif-host: `.
#[derive(Debug, thiserror::Error)]
enum Failure {
    /// The component (or loading it) failed.
    #[error(transparent)]
    Token(#[from] Error),
    /// The policy file is unreadable or invalid.
    #[error(transparent)]
    Policy(#[from] PolicyError),
    /// The config, the SDK profile or its folder is unusable.
    #[error(transparent)]
    Profile(#[from] ProfileError),
    /// A sync step failed.
    #[error(transparent)]
    Sync(#[from] SyncError),
    /// The `--listen` address is refused.
    #[error(transparent)]
    ListenAddress(#[from] AddressError),
    /// The gateway cannot listen.
    #[error(transparent)]
    Listen(#[from] ListenError),
    /// The gateway cannot be set up.
    #[error("gateway: {0}")]
    Gateway(Box<GatewayError>),
    /// The gateway's client key cannot be read or made.
    #[error("gateway: {0}")]
    ClientKey(#[from] ClientKeyError),
    /// Serving ended with an error.
    #[error("gateway on {listen}: {source}")]
    Serve {
        /// Where the gateway listened.
        listen: Listen,
        /// The failure.
        source: Box<GatewayError>,
    },
    /// SIGTERM and SIGINT cannot be watched.
    #[error("cannot watch for SIGTERM and SIGINT: {0}")]
    Signals(#[source] std::io::Error),
    /// The token is not an RFC 6750 `b64token` (see [`check_printable`]).
    #[error(
        "the access token has characters outside the RFC 6750 token alphabet; \
         it is neither printed nor cached"
    )]
    Unprintable,
    /// `doctor` found needed items denied or failing.
    #[error("doctor: {denied} needed item(s) denied, {unreachable} unreachable or failing")]
    Doctor {
        /// Items the policy denies.
        denied: usize,
        /// Items unreachable or failing.
        unreachable: usize,
    },
    /// `exec` was given no program.
    #[error("exec: name the program to run after `--`")]
    NoProgram,
    /// `exec` could not start or wait for the program.
    #[error("exec: cannot run {}: {source}", program.to_string_lossy())]
    Spawn {
        /// The program.
        program: std::ffi::OsString,
        /// The failure.
        source: std::io::Error,
    },
    /// The demo failed.
    #[error("{0}")]
    Demo(String),
}

impl From<GatewayError> for Failure {
    fn from(error: GatewayError) -> Failure {
        Failure::Gateway(Box::new(error))
    }
}

impl Failure {
    /// Whether running the same command again may succeed (an endpoint
    /// down, a port still in use) rather than needing a change.
    fn is_transient(&self) -> bool {
        match self {
            Failure::Token(error) | Failure::Sync(SyncError::Token(error)) => error.is_transient(),
            Failure::Listen(error) => error.is_transient(),
            Failure::Gateway(error) => error.is_transient(),
            Failure::ListenAddress(error) => error.is_transient(),
            Failure::Serve { source, .. } => source.is_transient(),
            _ => false,
        }
    }

    /// The exit code of this failure: the one mapping to [`Exit`].
    fn exit(&self) -> Exit {
        match self {
            Failure::Token(error) | Failure::Sync(SyncError::Token(error)) => match error {
                Error::InvalidConfig { .. } => Exit::InvalidConfig,
                Error::Denied { .. } => Exit::Denied,
                _ => Exit::NoToken,
            },
            Failure::Policy(_)
            | Failure::Profile(_)
            | Failure::Sync(SyncError::Profile(_))
            | Failure::Gateway(_)
            | Failure::ClientKey(_) => Exit::InvalidConfig,
            Failure::ListenAddress(_) | Failure::Listen(_) => Exit::Usage,
            Failure::Serve { .. } | Failure::Signals(_) | Failure::Unprintable => Exit::NoToken,
            Failure::Doctor { denied, .. } if *denied > 0 => Exit::Denied,
            Failure::Doctor { .. } => Exit::NoToken,
            Failure::Demo(_) => Exit::DemoFailed,
            Failure::NoProgram => Exit::Usage,
            Failure::Spawn { .. } => Exit::CannotRun,
        }
    }
}

fn main() -> ExitCode {
    // A parent may start this program with SIGCHLD ignored, and then the
    // system would discard the exit status of every command it runs (the
    // library refuses to run commands then). The disposition is the
    // program's to set, never the library's: restore the default.
    // SAFETY: setting the default disposition of SIGCHLD, before any
    // thread or child exists, touches no memory of this process (rustix
    // has no safe `signal`).
    #[allow(unsafe_code)]
    unsafe {
        libc::signal(libc::SIGCHLD, libc::SIG_DFL);
    }
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
        Command::Exec(args) => match exec(&args) {
            Ok(status) => return ExitCode::from(status),
            Err(failure) => Err(failure),
        },
        Command::Demo => demo::run(),
        Command::Token(args) => token(&args),
        Command::Check(args) => check(&args),
        Command::Policy(args) => policy(&args),
        Command::Sync(args) => sync(&args),
        Command::Gateway(args) => gateway(&args),
        Command::Doctor(args) => doctor::run(&args),
    };
    match result {
        Ok(()) => Exit::Success.into(),
        Err(failure) => {
            eprintln!("wif-host: {failure}");
            if failure.is_transient() {
                eprintln!("wif-host: note: this failure may pass when retried");
            }
            failure.exit().into()
        }
    }
}

/// The user's cache folder (`$XDG_CACHE_HOME/anthropic-wif` or
/// `$HOME/.cache/anthropic-wif`), when it is safe; when it is not, one
/// warning says why and the run goes on without the cache.
fn user_cache() -> Option<PathBuf> {
    match private_dir::user_cache_root() {
        Ok(root) => root.map(|root| root.path().to_path_buf()),
        Err(problem) => {
            tracing::warn!(%problem, "cache folder refused; running without the cache");
            None
        }
    }
}

/// A provider builder that keeps the compiled component in the cache
/// folder, so that later runs skip compilation.
fn builder(cache: Option<&Path>) -> ProviderBuilder {
    let builder = Provider::builder();
    match cache {
        Some(dir) => builder.compile_cache(dir.join("compiled")),
        None => builder,
    }
}

fn env_var(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

fn token(args: &TokenArgs) -> Result<(), Failure> {
    let located = args.config.load()?;
    let config = located.json();
    let given = args.policy.as_deref().map(Policy::from_file).transpose()?;
    let in_effect = match &given {
        Some(policy) => PolicyInEffect::Given(policy),
        None => PolicyInEffect::Derived,
    };
    let cache_dir = user_cache();
    let cache = if args.no_cache {
        None
    } else {
        cache_dir
            .as_ref()
            .map(|dir| TokenCache::new(dir.join("tokens")))
    };
    let spread = RefreshSpread::random();
    // The fast path, without compiling the component: a token another run
    // left that may still be served. Otherwise the provider takes the
    // entry's lock, reads it again, and lets the component decide.
    let now = SystemClock.now().as_secs();
    let cached = cache
        .as_ref()
        .and_then(|cache| match cache.load(&config, in_effect, env_var) {
            Ok(token) => token,
            Err(problem) => {
                tracing::warn!(%problem, "token cache not used; exchanging afresh");
                None
            }
        });
    if let Some(token) = cached.filter(|t| spread.serves(t, now)) {
        tracing::debug!("token served from the token cache");
        return print_token(&token, args.format);
    }
    let mut builder = builder(cache_dir.as_deref()).refresh_spread(spread);
    if let Some(cache) = &cache {
        builder = builder.token_cache(cache.dir().to_path_buf(), in_effect.origin());
    }
    if let Some(path) = &args.component {
        builder = builder.component_file(path)?;
    }
    let inspector = builder.build()?;
    let needs = inspector
        .requirements(&config)
        .map_err(|e| in_file(&located, e))?;
    let policy = match &given {
        Some(policy) => policy.clone(),
        None => Policy::minimal(&needs, env_var).policy,
    };
    let token = inspector
        .with_policy(policy)
        .get_token(&config)
        .map_err(|e| in_file(&located, e))?;
    print_token(&token, args.format)
}

fn sync(args: &SyncArgs) -> Result<(), Failure> {
    let input = resolve_input(
        args.config.as_deref(),
        args.model.as_deref(),
        args.from_profile.as_deref(),
        env_var,
    )?;
    let dir = match &args.config_dir {
        Some(dir) => dir.clone(),
        None => sdk_profile::config_dir(&env_var)?,
    };
    let writer = ProfileWriter::new(dir, &args.profile)?;
    writer.refuse_as_input(&input.origin)?;
    let inspector = builder(user_cache().as_deref()).build()?;
    let policy = match &args.policy {
        Some(path) => Policy::from_file(path)?,
        None => derive(&inspector, &input.auth)?.policy,
    };
    let provider = inspector.with_policy(policy);
    let auth = input.auth.json();
    writer.prepare(&auth)?;
    let client = provider.client(&auth)?;
    if args.once {
        sync::refresh_once(&client, &writer, 0)?;
        return Ok(());
    }
    let stop = Stop::on_signals().map_err(Failure::Signals)?;
    eprintln!(
        "wif-host: sync: keeping {} fresh",
        writer.credentials_path().display()
    );
    sync::run(&client, &writer, &stop);
    Ok(())
}

/// The provider a gateway serves `located` with: under the policy file
/// `policy`, else the minimal policy derived from the config, and checked
/// against the config before anything listens or runs.
fn serving_provider(located: &LocatedAuth, policy: Option<&Path>) -> Result<Provider, Failure> {
    let inspector = builder(user_cache().as_deref()).build()?;
    let policy = match policy {
        Some(path) => Policy::from_file(path)?,
        None => derive(&inspector, located)?.policy,
    };
    let provider = inspector.with_policy(policy);
    provider
        .requirements(&located.json())
        .map_err(|e| in_file(located, e))?;
    Ok(provider)
}

fn exec(args: &ExecArgs) -> Result<u8, Failure> {
    let located = args.config.load()?;
    let config = located.json();
    let upstream = Gateway::upstream_of(&config);
    let provider = serving_provider(&located, args.policy.as_deref())?;
    exec::run(provider, config, &upstream, &args.command)
}

fn gateway(args: &GatewayArgs) -> Result<(), Failure> {
    let listen = Listen::parse(&args.listen)?;
    let located = args.config.load()?;
    let config = located.json();
    let upstream = Gateway::upstream_of(&config);
    listen.refuse_loop(&upstream)?;
    let (client_key, key_path, created) = match &args.client_key_file {
        Some(path) => {
            let (key, created) = ClientKey::load_or_create(path)?;
            (key, path.clone(), created)
        }
        None => ClientKey::load_or_create_default()?,
    };
    // Watched before the socket exists, so that a signal never leaves it
    // behind.
    let stop = Stop::on_signals().map_err(Failure::Signals)?;
    let listener = Listener::bind(&listen)?;
    let bound = listener.address().map_err(|source| Failure::Serve {
        listen: listen.clone(),
        source: Box::new(GatewayError::Serve(source)),
    })?;
    let provider = serving_provider(&located, args.policy.as_deref())?;
    let gateway = Gateway::new(provider, config, &upstream, client_key)?;
    eprintln!("wif-host: gateway: forwarding {bound} /v1/* to {upstream}");
    let made = if created { "made a new one" } else { "read" };
    eprintln!(
        "wif-host: gateway: clients must present the key in {} ({made}):",
        key_path.display()
    );
    if let Listen::Tcp(address) = &bound {
        eprintln!("  export ANTHROPIC_BASE_URL=http://{address}");
    }
    eprintln!(
        "  export ANTHROPIC_API_KEY=\"$(cat {})\"",
        shell::quote(&key_path.to_string_lossy())
    );
    let cut = Arc::new(gateway)
        .serve(listener, stop, SHUTDOWN_GRACE)
        .map_err(|source| Failure::Serve {
            listen: bound.clone(),
            source: Box::new(source),
        })?;
    if cut == 0 {
        eprintln!("wif-host: gateway: stopped");
    } else {
        eprintln!(
            "wif-host: gateway: stopped; {cut} connections still open after the {} s grace period were cut short",
            SHUTDOWN_GRACE.as_secs()
        );
    }
    Ok(())
}

/// Refuses a token that is not an RFC 6750 `b64token` before it is printed
/// or cached: the embedded component never issues one, but a cache file or
/// a `--component` might hand one over, and a quote or a line break in it
/// would be read by the shell that `eval`s the output.
fn check_printable(token: &AccessToken) -> Result<(), Failure> {
    if token.is_b64token() {
        Ok(())
    } else {
        Err(Failure::Unprintable)
    }
}

fn print_token(token: &AccessToken, format: Format) -> Result<(), Failure> {
    check_printable(token)?;
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
        Format::Env => println!("export ANTHROPIC_AUTH_TOKEN={}", shell::quote(secret)),
    }
    Ok(())
}

fn check(args: &ConfigArgs) -> Result<(), Failure> {
    let located = args.load()?;
    let needs = builder(user_cache().as_deref())
        .build()?
        .requirements(&located.json())
        .map_err(|e| in_file(&located, e))?;
    println!("config is valid; it requires:");
    print_requirements(&needs);
    Ok(())
}

fn policy(args: &ConfigArgs) -> Result<(), Failure> {
    let located = args.load()?;
    let minimal = derive(&builder(user_cache().as_deref()).build()?, &located)?;
    print!("{}", minimal.toml);
    for note in &minimal.notes {
        eprintln!("wif-host: note: {note}");
    }
    Ok(())
}

/// The minimal policy for a config, with origins that variables decide
/// resolved from this process's environment.
fn derive(provider: &Provider, located: &LocatedAuth) -> Result<MinimalPolicy, Failure> {
    let needs = provider
        .requirements(&located.json())
        .map_err(|e| in_file(located, e))?;
    Ok(Policy::minimal(&needs, env_var))
}

/// A component error as a failure, an invalid field named by its path in
/// the config file (`providers.NAME.auth.workload_identity_federation.…`).
fn in_file(located: &LocatedAuth, error: Error) -> Failure {
    match error {
        Error::InvalidConfig { field, message } => Error::InvalidConfig {
            field: located.field_in_file(&field),
            message,
        }
        .into(),
        other => other.into(),
    }
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
    line(
        "environment variables read when set",
        needs.optional_env.clone(),
    );
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
        "URLs used when their variables are set",
        needs
            .when_set_urls
            .iter()
            .map(|(template, origin)| match origin {
                Some(origin) => format!("{template} (origin {origin})"),
                None => template.clone(),
            })
            .collect(),
    );
    line(
        "commands",
        needs.commands.iter().map(|argv| argv.join(" ")).collect(),
    );
}
