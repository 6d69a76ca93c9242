//! Administration from the command line: users, API tokens, the audit trail, backups. Each
//! works on the store file next to a running collector, as the Unix user who can open it.
//! Accounts are made by `actions::accounts`, the same functions the web side calls.

use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};

use clap::Subcommand;

use crate::actions::accounts::{add_user, create_token, generate_password, hash};
use crate::app::cli::CliError;
use crate::auth::{self, Role};
use crate::store::Store;
use crate::store::audit::Who;

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Add a user. The password is read from standard input with --password-stdin,
    /// otherwise one is generated and printed once.
    Add {
        name: String,
        /// Make the user an admin (same as --role admin).
        #[arg(long)]
        admin: bool,
        /// viewer, technician or admin.
        #[arg(long, default_value = "viewer")]
        role: String,
        #[arg(long)]
        password_stdin: bool,
    },
    /// List users and their roles.
    List,
    /// Change a user's role, password (ends their sessions and revokes their tokens), or
    /// disable / enable them.
    Set {
        name: String,
        #[arg(long)]
        role: Option<String>,
        #[arg(long)]
        password_stdin: bool,
        #[arg(long, conflicts_with = "enable")]
        disable: bool,
        #[arg(long)]
        enable: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Create an API token for a user; it is printed once and stored only as a hash.
    Create {
        /// The owner (the token never has more rights than the owner's role).
        #[arg(long)]
        user: String,
        /// What it is for.
        #[arg(long)]
        name: String,
        /// Comma-separated: read, triage, intake, admin.
        #[arg(long, default_value = "read")]
        scopes: String,
        /// Lifetime, e.g. 90d (at most 400d).
        #[arg(long, default_value = "90d")]
        expires: humantime::Duration,
    },
    /// List tokens (never their secrets).
    List,
    /// Revoke a token by id.
    Revoke { id: i64 },
}

#[derive(Debug, Subcommand)]
pub enum EnrollCommand {
    /// Create an enrollment token for new agents; it is printed once and stored only as a hash.
    Create {
        /// Lifetime, e.g. 24h (1m to 30d).
        #[arg(long, default_value = "24h")]
        expires: humantime::Duration,
        /// How many agents it may enrol (default: any number until it expires).
        #[arg(long)]
        uses: Option<u32>,
        /// The agent ids it may enrol; `*` matches any run of characters, e.g. 'web-*'.
        #[arg(long, default_value = "*")]
        agents: String,
    },
    /// List enrollment tokens (never their secrets).
    List,
    /// Revoke an enrollment token by id: agents not yet enrolled with it cannot use it.
    Revoke { id: i64 },
}

#[derive(Debug, Subcommand)]
pub enum CaCommand {
    /// Print where the CA certificate is and its SHA-256 (what brokers' `cafile` names).
    Show,
    /// Issue a client certificate for one of Vakt's own services (`vakt-…`, e.g. the
    /// collector's broker login): key and certificate written to DIR as NAME.key/NAME.pem.
    Issue {
        name: String,
        #[arg(long)]
        out: PathBuf,
        /// Lifetime (at most 398d).
        #[arg(long, default_value = "90d")]
        lifetime: humantime::Duration,
    },
}

#[derive(Debug, Subcommand)]
pub enum AgentsCommand {
    /// Enrolled agents: enrolment time, certificate end, version, revocation.
    List,
    /// Revoke an enrolled agent: within seconds nothing it sends is stored, and its
    /// certificates no longer renew. A new enrollment token enrols it again.
    Revoke { agent: String },
}

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Walk the hash chain and check every record's mac; exit 1 naming the first record
    /// edited, deleted, moved or written without the audit key.
    Verify {
        /// A head line printed earlier by `audit head` (and kept elsewhere): the chain must still
        /// hold that record. Repeat for several.
        #[arg(long = "head")]
        heads: Vec<String>,
    },
    /// Print the chain's head as a signed line, to keep away from this host.
    Head,
    /// Print records as JSON lines (oldest first).
    Export {
        /// Only records after this sequence number.
        #[arg(long, default_value_t = 0)]
        after: i64,
    },
}

/// The store of `--data-dir` or `--config`, and its policy.
pub fn open_target(
    data_dir: &Path,
    config: Option<&Path>,
) -> Result<(PathBuf, crate::rules::policy::Policy), CliError> {
    let (database, policy) = match config {
        Some(path) => {
            let c = crate::app::config::CollectorConfig::load(path)?;
            (c.database, c.policy)
        }
        // Beside a running `up`: the policy it runs with (its --config, its local agent's
        // components), not the bare default.
        None => match crate::app::cli::up_note::UpNote::read(data_dir) {
            Some(note) => (data_dir.join("vakt.db"), note.policy(data_dir)?),
            None => (data_dir.join("vakt.db"), crate::rules::policy::Policy::default()),
        },
    };
    if !database.exists() {
        return Err(CliError::Usage(format!("no store at {}", database.display())));
    }
    Ok((database, policy))
}

fn cli_admin() -> Who {
    Who::cli(&crate::app::cli::whoami())
}

fn read_password() -> Result<String, CliError> {
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line).map_err(|e| CliError::Usage(format!("reading the password: {e}")))?;
    let password = line.trim_end_matches(['\n', '\r']).to_string();
    auth::check_password(&password).map_err(CliError::Usage)?;
    Ok(password)
}

/// `vakt-collector user …`
pub async fn user(command: UserCommand, database: &Path) -> Result<(), CliError> {
    let store = Store::open(database).await?;
    match command {
        UserCommand::Add { name, admin, role, password_stdin } => {
            let role: Role = if admin { Role::Admin } else { role.parse().map_err(CliError::Usage)? };
            let (password, generated) =
                if password_stdin { (read_password()?, false) } else { (generate_password(), true) };
            if !add_user(&store, &cli_admin(), &name, role, password.clone()).await? {
                return Err(CliError::Usage(format!("user {name} exists")));
            }
            println!("user {name} added ({role})");
            if generated {
                println!("password (shown once): {password}");
            }
        }
        UserCommand::List => {
            for u in store.users().await? {
                println!("{:<24} {:<10} {}", u.name, u.role, if u.disabled_ms.is_some() { "disabled" } else { "" });
            }
        }
        UserCommand::Set { name, role, password_stdin, disable, enable } => {
            let role = role.map(|r| r.parse::<Role>()).transpose().map_err(CliError::Usage)?;
            let phc = if password_stdin { Some(hash(read_password()?).await?) } else { None };
            let disabled = if disable {
                Some(true)
            } else if enable {
                Some(false)
            } else {
                None
            };
            if role.is_none() && phc.is_none() && disabled.is_none() {
                return Err(CliError::Usage(
                    "nothing to change: give --role, --password-stdin, --disable or --enable".into(),
                ));
            }
            if !store.update_user(&cli_admin(), &name, role, phc.as_deref(), disabled, crate::now_ms()).await? {
                return Err(CliError::Usage(format!("no user {name}")));
            }
            println!("user {name} changed");
        }
    }
    Ok(())
}

/// `vakt-collector token …`
pub async fn token(command: TokenCommand, database: &Path) -> Result<(), CliError> {
    let store = Store::open(database).await?;
    match command {
        TokenCommand::Create { user, name, scopes, expires } => {
            let (id, token) = create_token(&store, &cli_admin(), &user, &name, &scopes, *expires).await?;
            println!("token #{id} for {user} (shown once): {token}");
        }
        TokenCommand::List => {
            let now = crate::now_ms();
            for t in store.tokens(None).await? {
                let state = if t.revoked_ms.is_some() {
                    "revoked"
                } else if t.expires_ms <= now {
                    "expired"
                } else {
                    "active"
                };
                println!("#{:<4} {:<16} {:<24} {:<22} {state}", t.id, t.user, t.name, auth::scopes_text(&t.scopes));
            }
        }
        TokenCommand::Revoke { id } => {
            if !store.revoke_token(&cli_admin(), id, crate::now_ms()).await? {
                return Err(CliError::Usage(format!("no active token #{id}")));
            }
            println!("token #{id} revoked");
        }
    }
    Ok(())
}

/// `vakt-collector enroll …`
pub async fn enroll(command: EnrollCommand, database: &Path) -> Result<(), CliError> {
    use crate::rules::enrollment;
    let store = Store::open(database).await?;
    let now = crate::now_ms();
    match command {
        EnrollCommand::Create { expires, uses, agents } => {
            let lifetime = i64::try_from(expires.as_millis()).unwrap_or(i64::MAX);
            enrollment::check_new(&agents, uses, lifetime).map_err(CliError::Usage)?;
            let secret = auth::new_secret();
            let expires_ms = now.saturating_add(lifetime);
            let id = store
                .create_enrollment(&cli_admin(), &agents, uses, &auth::sha256_hex(&secret), now, expires_ms)
                .await?;
            let limit = uses.map_or_else(|| "any number of agents".to_string(), |n| format!("at most {n} agents"));
            let token = enrollment::token_string(id, &secret);
            // The running collector notes where it serves HTTPS; before it has, the operator fills in.
            let (url, pin, note) = match crate::app::ca::read_enroll_hint(database) {
                Some(hint) => (hint.url, hint.fingerprint, ""),
                None => (
                    "https://THIS-COLLECTOR".to_string(),
                    "SHA256-OF-ITS-HTTPS-CERTIFICATE".to_string(),
                    "\n(the collector has not served HTTPS yet: fill in its URL and certificate's SHA-256)",
                ),
            };
            println!(
                "enrollment token #{id} (shown once) for agents {agents:?}, {limit}, until {}:\n{token}\n\n\
                 On the new host, as the agent's user:\n    \
                 vakt-agent enroll {url} --token {token} --ca-fingerprint {pin}{note}",
                when(expires_ms),
            );
        }
        EnrollCommand::List => {
            for t in store.enrollments().await? {
                let uses = t.max_uses.map_or_else(|| format!("{}", t.uses), |max| format!("{}/{max}", t.uses));
                println!(
                    "#{:<4} {:<24} uses {:<10} until {}  {:<8} by {}",
                    t.id,
                    t.agents,
                    uses,
                    when(t.expires_ms),
                    t.state(now),
                    t.created_by
                );
            }
        }
        EnrollCommand::Revoke { id } => {
            if !store.revoke_enrollment(&cli_admin(), id, now).await? {
                return Err(CliError::Usage(format!("no unrevoked enrollment token #{id}")));
            }
            println!("enrollment token #{id} revoked");
        }
    }
    Ok(())
}

/// `vakt-collector ca …` (the CA is made beside the store when there is none yet).
pub fn ca(command: CaCommand, data_dir: &Path, config: Option<&Path>) -> Result<(), CliError> {
    let database = match config {
        Some(path) => crate::app::config::CollectorConfig::load(path)?.database,
        None => data_dir.join("vakt.db"),
    };
    let dir = database.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(|source| CliError::DataDir { path: dir.to_path_buf(), source })?;
    let (key, cert) = crate::app::ca::paths(&database);
    let now = std::time::SystemTime::now();
    let ca = crate::app::ca::load_or_create(&key, &cert, now)?;
    match command {
        CaCommand::Show => println!("{}\nsha256 {}", cert.display(), ca.fingerprint()),
        CaCommand::Issue { name, out, lifetime } => {
            if !crate::rules::enrollment::is_reserved(&name) {
                return Err(CliError::Usage(format!(
                    "`{name}`: service certificates are for `vakt-…` names; agents enrol with a token"
                )));
            }
            let id = protocol::AgentId::new(&name).map_err(|e| CliError::Usage(format!("`{name}`: {e}")))?;
            let pair = rcgen::KeyPair::generate().map_err(|e| CliError::Usage(e.to_string()))?;
            let csr = rcgen::CertificateParams::new(Vec::<String>::new())
                .and_then(|p| p.serialize_request(&pair))
                .and_then(|r| r.pem())
                .map_err(|e| CliError::Usage(e.to_string()))?;
            let issued = ca.issue_for_service(&csr, &id, now, lifetime.into()).map_err(CliError::Usage)?;
            std::fs::create_dir_all(&out).map_err(|source| CliError::DataDir { path: out.clone(), source })?;
            let io = |path: &Path| {
                let path = path.to_path_buf();
                move |source| CliError::DataDir { path, source }
            };
            let key_file = out.join(format!("{name}.key"));
            crate::app::identity::write_private(&key_file, pair.serialize_pem().as_bytes()).map_err(io(&key_file))?;
            let cert_file = out.join(format!("{name}.pem"));
            std::fs::write(&cert_file, &issued.pem).map_err(io(&cert_file))?;
            println!(
                "{} and {} for `{name}`, until {} (CA: {})",
                cert_file.display(),
                key_file.display(),
                humantime::format_rfc3339_seconds(issued.not_after),
                cert.display()
            );
        }
    }
    Ok(())
}

/// `vakt-collector mosquitto-acl`
pub fn mosquitto_acl(collector_user: &str, prefix: &str) -> Result<(), CliError> {
    let topics = protocol::Topics::new(prefix).map_err(|e| CliError::Usage(format!("--prefix: {e}")))?;
    if collector_user.is_empty() || collector_user.contains(char::is_whitespace) {
        return Err(CliError::Usage("--collector-user must be one word".into()));
    }
    print!("{}", topics.mosquitto_acl(collector_user));
    Ok(())
}

/// `vakt-collector mosquitto-passwd ID… --out DIR`
pub fn mosquitto_passwd(ids: &[String], out: &Path) -> Result<(), CliError> {
    for id in ids {
        // The collector's own login is the one `vakt-…` name allowed; the others are reserved.
        let valid = protocol::AgentId::new(id.as_str()).is_ok()
            && (id == crate::app::broker::COLLECTOR_CLIENT_PREFIX || !crate::rules::enrollment::is_reserved(id));
        if !valid {
            return Err(CliError::Usage(format!("`{id}` is not an agent id (or is reserved for Vakt)")));
        }
    }
    std::fs::create_dir_all(out).map_err(|source| CliError::DataDir { path: out.to_path_buf(), source })?;
    let mut lines = String::new();
    for id in ids {
        let password = auth::new_secret();
        let file = out.join(format!("{id}.password"));
        crate::app::identity::write_private(&file, format!("{password}\n").as_bytes())
            .map_err(|source| CliError::DataDir { path: file.clone(), source })?;
        lines.push_str(&auth::broker_password::mosquitto_line(id, &password, &rand::random()));
        lines.push('\n');
    }
    print!("{lines}");
    Ok(())
}

/// `vakt-collector agents …`
pub async fn agents(command: AgentsCommand, database: &Path) -> Result<(), CliError> {
    let store = Store::open(database).await?;
    let now = crate::now_ms();
    match command {
        AgentsCommand::List => {
            for a in store.enrolled_agents().await? {
                let state = match a.revoked_ms {
                    Some(at) => format!("revoked {} by {}", when(at), a.revoked_by.as_deref().unwrap_or("?")),
                    None if a.not_after_ms <= now => "certificate expired".into(),
                    None => "active".into(),
                };
                println!(
                    "{:<24} enrolled {} (token #{})  certificate until {}  version {:<8} {state}",
                    a.agent,
                    when(a.enrolled_ms),
                    a.enrollment,
                    when(a.not_after_ms),
                    a.version.as_deref().unwrap_or("-"),
                );
            }
        }
        AgentsCommand::Revoke { agent } => {
            if !store.revoke_agent(&cli_admin(), &agent, now).await? {
                return Err(CliError::Usage(format!("no enrolled, unrevoked agent `{agent}`")));
            }
            println!("agent {agent} revoked: its messages are refused within seconds");
        }
    }
    Ok(())
}

fn when(ms: crate::incident::engine::Ms) -> String {
    let at = std::time::UNIX_EPOCH + std::time::Duration::from_millis(u64::try_from(ms).unwrap_or(0));
    humantime::format_rfc3339_seconds(at).to_string()
}

/// `vakt-collector audit …`
pub async fn audit(command: AuditCommand, database: &Path) -> Result<(), CliError> {
    let store = Store::open(database).await?;
    match command {
        AuditCommand::Verify { heads } => match store.verify_audit_with(&heads).await {
            Ok(v) => {
                let unkeyed = if v.unkeyed > 0 {
                    format!(" ({} from before the audit key, without a mac)", v.unkeyed)
                } else {
                    String::new()
                };
                println!(
                    "audit trail intact: {} records{unkeyed}, head {}{}",
                    v.records,
                    v.head,
                    if heads.is_empty() { String::new() } else { format!("; {} exported heads found", heads.len()) }
                );
            }
            Err(e) => return Err(CliError::Usage(e.to_string())),
        },
        AuditCommand::Head => println!("{}", store.audit_head_line(crate::now_ms()).await?),
        AuditCommand::Export { after } => {
            let mut out = std::io::stdout().lock();
            let mut from = after;
            loop {
                let batch = store.audit_records(from, 5000).await?;
                let Some(last) = batch.last() else { break };
                from = last.seq;
                for r in &batch {
                    let line = serde_json::to_string(r).map_err(|e| CliError::Usage(e.to_string()))?;
                    writeln!(out, "{line}").map_err(|e| CliError::Usage(format!("writing: {e}")))?;
                }
            }
        }
    }
    Ok(())
}

/// `vakt-collector backup FILE`: a consistent copy of the live database (SQLite `VACUUM INTO`
/// reads one snapshot while the collector keeps writing), checked before it is reported.
pub async fn backup(file: &Path, database: &Path) -> Result<(), CliError> {
    if file.exists() {
        return Err(CliError::Usage(format!("{} exists; backups never overwrite", file.display())));
    }
    let store = Store::open(database).await?;
    let (bytes, records) = store.backup_to(&cli_admin(), file, crate::now_ms()).await?;
    println!(
        "backup written to {} ({bytes} bytes; integrity ok; audit trail {records} records intact)",
        file.display()
    );
    Ok(())
}
