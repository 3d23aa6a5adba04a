//! `scanfleet bus`: the bus's one-time set-up, done by an operator with the
//! admin NATS identity, so that no service needs the right to create,
//! change, purge or delete a stream (`docs/bus-topology.md`).
//!
//! - `bus identities --out DIR` makes the four user nkeys the shipped
//!   nats-server authorization names (`deploy/nats/`): a seed file per
//!   identity (0600) and an env file of the public keys for the server.
//! - `bus init` creates every stream, consumer and bucket that is missing,
//!   with the limits given as flags, and reports what it found: existing
//!   ones are never changed, only their differences from the flags listed.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use scanfleet_bus::{BusIdentity, NatsArgs, Provision, TopologyArgs, UserNkey};

use super::EXIT_OK;

/// The bus's set-up commands.
#[derive(Debug, clap::Subcommand)]
pub enum BusCommand {
    #[command(after_help = super::examples::BUS_INIT)]
    /// Create the streams, consumers and buckets that are missing (needs the
    /// admin identity); existing ones are left as they are, and where their
    /// limits differ from the flags the differences are listed.
    Init(Box<InitArgs>),
    #[command(after_help = super::examples::BUS_IDENTITIES)]
    /// Generate the NATS user nkeys of the admin and the three services.
    Identities(IdentitiesArgs),
}

/// `bus init`.
#[derive(Debug, clap::Args)]
pub struct InitArgs {
    /// How to reach NATS, as the admin identity.
    #[command(flatten)]
    nats: NatsArgs,
    /// The topology's limits.
    #[command(flatten)]
    topology: TopologyArgs,
}

/// `bus identities`.
#[derive(Debug, clap::Args)]
pub struct IdentitiesArgs {
    /// Directory for the seed files and `nats-server.env`; existing seed
    /// files are never overwritten.
    #[arg(long)]
    out: PathBuf,
}

/// Runs a `bus` command.
///
/// # Errors
/// Bad flags (every one named), an unreachable or refusing server, a
/// topology that could not be created, or files that cannot be written.
pub fn run(command: BusCommand) -> Result<ExitCode> {
    match command {
        BusCommand::Init(args) => init(*args),
        BusCommand::Identities(args) => identities(&args.out),
    }
}

fn init(args: InitArgs) -> Result<ExitCode> {
    let mut problems = Vec::new();
    let settings = args.nats.settings(&mut problems);
    let topology = args.topology.config().unwrap_or_else(|mut more| {
        problems.append(&mut more);
        scanfleet_bus::TopologyConfig::default()
    });
    if !problems.is_empty() {
        bail!("invalid flags:\n  - {}", problems.join("\n  - "));
    }
    let report = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(async {
            let client = scanfleet_bus::connect(&settings, BusIdentity::Admin).await?;
            let js = async_nats::jetstream::new(client);
            anyhow::Ok(topology.ensure(&js).await?)
        })
        .context(
            "bus init needs the NATS admin identity (a permissions violation logged above \
             means these credentials are a service's, which may not create streams)",
        )?;
    for line in report {
        match line.outcome {
            Provision::Created => println!("created  {}", line.what),
            Provision::Exists { differences } if differences.is_empty() => {
                println!("exists   {}", line.what);
            }
            Provision::Exists { differences } => {
                println!(
                    "exists   {} (left unchanged; differs from the flags: {})",
                    line.what,
                    differences.join("; ")
                );
            }
            Provision::Removed => println!(
                "removed  {} (an older fleet-wide consumer; its intents stay queued for the per-cluster ones)",
                line.what
            ),
        }
    }
    Ok(EXIT_OK)
}

fn identities(out: &Path) -> Result<ExitCode> {
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let mut env = String::from(
        "# Public nkeys for nats-server's environment (deploy/nats/scanfleet-authorization.conf).\n",
    );
    for identity in BusIdentity::ALL {
        let path = out.join(format!("{}.nk", identity.name()));
        let public = if path.exists() {
            let seed = scanfleet_bus::read_small_file(&path, 4096).map_err(anyhow::Error::msg)?;
            UserNkey::public_of(&seed).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?
        } else {
            let key = UserNkey::generate();
            let mut file = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&path)
                .with_context(|| format!("writing {}", path.display()))?;
            file.write_all(key.seed.as_bytes())?;
            key.public
        };
        env.push_str(&format!("{}={public}\n", identity.nkey_variable()));
        println!("{identity}: {} ({public})", path.display());
    }
    let env_path = out.join("nats-server.env");
    std::fs::write(&env_path, env).with_context(|| format!("writing {}", env_path.display()))?;
    println!("server environment: {}", env_path.display());
    Ok(EXIT_OK)
}
