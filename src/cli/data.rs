//! `data put|get|update|list|rm|restore|purge|rekey|import|export`.

use crate::ui::transfer::{read_import, write_export};
use crate::ui::views::{record_json, records_table};
use std::io::{IsTerminal, Write};
use std::path::PathBuf;

use clap::{Args, Subcommand, ValueEnum};
use serde_json::{Value, json};

use super::{Ctx, emitted};
use crate::ui::files::write_through;
use crate::ui::input::{self, prompt_error};
use crate::ui::prompt::{Prompter, TermPrompter};
use zencrypt_core::duration;
use zencrypt_core::error::{Error, Result};
use zencrypt_core::glob::Glob;
use zencrypt_core::model::{RecordFilter, RecordOrder};
use zencrypt_core::records::{
    self, GetOutcome, PurgeOptions, PutOptions, TokenChoice, token, value_json,
};
use zencrypt_core::vault::{Session, Vault};

/// Encrypted data commands.
#[derive(Debug, Subcommand)]
#[command(defer = true)]
pub enum DataCommand {
    /// Store a value (from --file, stdin, or a hidden prompt) and print its token.
    #[command(
        after_help = "Examples:\n  echo -n 's3cret' | zencrypt data put --name db-password\n  zencrypt data put --file cert.pem --expires-in 90d --protect --password-file pw.txt"
    )]
    Put(PutArgs),
    /// Print one record's value (byte-exact), or several as JSON.
    #[command(
        after_help = "Examples:\n  zencrypt data get db-password\n  zencrypt data get zt_abc... zt_def... --json"
    )]
    Get(GetArgs),
    /// Replace a record's value (version + 1).
    #[command(
        after_help = "Example:\n  echo -n new | zencrypt data update db-password --if-version 1"
    )]
    Update(UpdateArgs),
    /// List a record's versions: the current one and the earlier ones kept.
    #[command(
        after_help = "Examples:\n  zencrypt data history prod/db/password\n  zencrypt data get prod/db/password --version 3\n  zencrypt data rollback prod/db/password --to 3\n\nUpdates keep the current version and up to 9 before it (ZENCRYPT_HISTORY sets how many\nearlier ones, 0-100). A soft delete keeps them; every hard delete removes them all."
    )]
    History {
        /// Token or name.
        #[arg(value_name = "TOKEN|NAME", add = clap_complete::ArgValueCandidates::new(crate::ui::complete::records))]
        reference: String,
    },
    /// Set a record back to an earlier version's value (stored as a new version).
    #[command(after_help = "Example:\n  zencrypt data rollback prod/db/password --to 3")]
    Rollback {
        /// Token or name.
        #[arg(value_name = "TOKEN|NAME", add = clap_complete::ArgValueCandidates::new(crate::ui::complete::records))]
        reference: String,
        /// The version whose value to bring back.
        #[arg(long, value_name = "N")]
        to: i64,
        /// Record password file, for password-protected records.
        #[arg(long, value_name = "FILE")]
        password_file: Option<PathBuf>,
    },
    /// Print the current TOTP code of a record stored with `data put --totp`.
    #[command(
        after_help = "Examples:\n  zbarimg -q --raw qr.png | zencrypt data put --name github/otp --totp\n  zencrypt data totp github/otp            the code; seconds left on stderr\n  zencrypt data totp github/otp --json     {\"code\",\"seconds_left\",\"period\",\"digits\"}"
    )]
    Totp {
        /// Token or name.
        #[arg(value_name = "TOKEN|NAME", add = clap_complete::ArgValueCandidates::new(crate::ui::complete::records))]
        reference: String,
        /// Record password file, for password-protected records.
        #[arg(long, value_name = "FILE")]
        password_file: Option<PathBuf>,
    },
    /// Edit a record's value in $VISUAL or $EDITOR (saved as a new version if changed).
    #[command(
        after_help = "Examples:\n  zencrypt data edit prod/app/config.yml\n  EDITOR='code --wait' zencrypt data edit notes\n\nThe value is written to a private temp file (0600, in a 0700 directory on a tmpfs such\nas $XDG_RUNTIME_DIR or /dev/shm when there is one), which is wiped and removed however\nthe edit ends. Nothing is saved unless the editor exits with 0 and the content changed;\na trailing newline the editor added to a value that had none is dropped. If the record\nchanged meanwhile, the edit is refused (exit 6) unless you confirm on a terminal."
    )]
    Edit(EditArgs),
    /// List your records (never their values).
    #[command(after_help = "Example:\n  zencrypt data list 'prod/*' --order-by name --asc")]
    List(ListArgs),
    /// Delete records: soft (restorable) by default, --hard wipes them.
    #[command(
        after_help = "Examples:\n  zencrypt data rm old-token\n  zencrypt data rm zt_abc... --hard --yes\n\n--hard means the same in rm and purge: the rows, their data keys and every version are\nwiped for good (not restorable); it asks for confirmation on a terminal and needs --yes\notherwise."
    )]
    Rm(RmArgs),
    /// Bring back a soft-deleted record.
    #[command(after_help = "Example:\n  zencrypt data restore db-password")]
    Restore {
        /// Token or name.
        #[arg(value_name = "TOKEN|NAME", add = clap_complete::ArgValueCandidates::new(crate::ui::complete::records))]
        reference: String,
    },
    /// Clear out expired records (soft delete) or, with --hard, wipe expired and deleted ones.
    #[command(
        after_help = "Examples:\n  zencrypt data purge --expired\n  zencrypt data purge --expired --deleted --hard --older-than 30d --yes\n\n--hard means the same in rm and purge: the rows, their data keys and every version are\nwiped for good (not restorable); it asks for confirmation on a terminal and needs --yes\notherwise. Without --hard, purge only soft-deletes expired records (restorable)."
    )]
    Purge(PurgeArgs),
    /// Change a record password for every record it protects (one key is rewrapped).
    #[command(
        after_help = "Example:\n  zencrypt data rekey --old-password-file old.txt --new-password-file new.txt"
    )]
    Rekey(RekeyArgs),
    /// Import records in one transaction: JSON lines, .env, CSV or a Bitwarden export.
    #[command(
        after_help = "Examples:\n  zencrypt data import secrets.jsonl --key app\n  zencrypt data import --format dotenv .env --prefix prod/app/ --dry-run\n  zencrypt data import --format csv export.csv --name-column title --value-column password\n  zencrypt data import --format bitwarden-json bitwarden_export.json --prefix bw/\n\njsonl lines are {\"name\"?, \"value\"|\"value_base64\", \"expires_in\"?}. From the other formats,\nnames are mapped to record names: characters a name may not hold become '-' (--dry-run\nshows each mapped name with the original). All or nothing: the first bad line is named\nand nothing is stored. Bitwarden: a login's password is FOLDER/NAME, its TOTP secret\nFOLDER/NAME/totp, a secure note's text FOLDER/NAME; cards and identities are skipped.\npass: FILE is the store's directory (default $PASSWORD_STORE_DIR or ~/.password-store);\neach entry is decrypted with your gpg."
    )]
    Import(ImportArgs),
    /// Write every record, decrypted, as JSON lines.
    #[command(after_help = "Example:\n  zencrypt data export -o backup.jsonl")]
    Export(ExportArgs),
    /// Share a record with another user or a group, end to end: read-only, or with
    /// --write.
    #[command(
        after_help = "Examples:\n  zencrypt data share prod/db/password --with bob\n  zencrypt data share prod/db/password --with bob --fingerprint 'd12e 3557 ca74 fa91 fe1f bdce 1268 32f0'\n  zencrypt data share prod/db/password --with @ops --write\n  # bob: zencrypt data get alice:prod/db/password\n  # @ops members: zencrypt data update alice:prod/db/password -f new.txt\n\nThe record's data key is wrapped to bob's public key (pinned the first time: compare\nfingerprints with `zencrypt user show bob`), or to the group's key, and signed with yours;\nthe server learns neither. Every later update of the record is wrapped for them too. With\n--write they may also replace its value: their write is signed with their key, read by\neveryone the record is shared with at once, and made the record's next version by your\nclient at your next command. Sharing again with or without --write changes the access. A\nrecord protected by a record password cannot be shared."
    )]
    Share {
        /// Token or name of your record.
        #[arg(value_name = "TOKEN|NAME", add = clap_complete::ArgValueCandidates::new(crate::ui::complete::records))]
        reference: String,
        /// The user, or @group, to share it with.
        #[arg(long, value_name = "USER|@GROUP")]
        with: String,
        /// The fingerprint the user gave you (a group: `group show` prints it): the share
        /// is refused unless their key has it.
        #[arg(long, value_name = "FP")]
        fingerprint: Option<String>,
        /// Let them replace the value too (`data update OWNER:NAME`).
        #[arg(long)]
        write: bool,
    },
    /// Hand a record to another user: it becomes theirs, re-encrypted under their key.
    #[command(
        after_help = "Examples:\n  zencrypt data transfer prod/db/password --to carol\n  zencrypt data transfer alice:prod/db/password --to carol   # as the manager of a group it is shared with\n\nThe record's data key is wrapped to carol's public key (pinned the first time) and signed\nwith yours; `zencrypt data receive` makes it a record of hers, under her own key (the same\nname, or NAME.from-OWNER when she has one). Your own record is deleted on your side at\nonce (`zencrypt data restore` takes it back and ends the transfer); its shares end, and\ncarol shares it again if she wants. Once a record's owner is disabled, the manager of a\ngroup it is shared with may hand it to a member of the group: the owner's record stays."
    )]
    Transfer {
        /// Token or name of your record, or OWNER:NAME of one shared with a group you manage
        /// (once its owner is disabled).
        #[arg(value_name = "REF")]
        reference: String,
        /// The new owner.
        #[arg(long, value_name = "USER")]
        to: String,
        /// The fingerprint the new owner gave you: refused unless their key has it.
        #[arg(long, value_name = "FP")]
        fingerprint: Option<String>,
    },
    /// Take in the records other users handed you (`data transfer`).
    #[command(
        after_help = "Example:\n  zencrypt data receive --json\n\nEach becomes a record of yours under your default key, with the same name (NAME.from-OWNER\nwhen you have one). The giver's key is pinned the first time, once their signature checks\nout (compare fingerprints: `zencrypt user show NAME`); a forged transfer is dropped."
    )]
    Receive,
    /// Stop sharing a record with a user or a group; the record is re-encrypted under a new
    /// data key.
    #[command(
        after_help = "Example:\n  zencrypt data unshare prod/db/password --from bob\n\nThe record gets a new version with the same value under a new data key, so a data key\nbob kept does not open later versions. What bob already read, he knows: rotate the\nsecret at its source if that matters."
    )]
    Unshare {
        /// Token or name of your record.
        #[arg(value_name = "TOKEN|NAME", add = clap_complete::ArgValueCandidates::new(crate::ui::complete::records))]
        reference: String,
        /// The user, or @group, to stop sharing it with.
        #[arg(long, value_name = "USER|@GROUP")]
        from: String,
    },
}

// `data put` arguments. (A plain comment: see `cli::Command`.)
#[allow(missing_docs)]
#[derive(Debug, Args)]
pub struct PutArgs {
    /// A unique name for the record.
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,
    /// The key to encrypt under (default: 'default', created on first use).
    #[arg(long, value_name = "NAME", conflicts_with = "protect", add = clap_complete::ArgValueCandidates::new(crate::ui::complete::keys))]
    pub key: Option<String>,
    /// Make it unreadable after this long (e.g. 30d).
    #[arg(long, value_name = "DUR")]
    pub expires_in: Option<String>,
    /// Token length, 20-64 including 'zt_' (default 35).
    #[arg(long, value_name = "N", conflicts_with = "token")]
    pub token_length: Option<usize>,
    /// Use this token instead of a random one (8-64 of A-Z a-z 0-9 _ -).
    #[arg(long, value_name = "TOKEN")]
    pub token: Option<String>,
    /// Protect it with a record password instead of a key.
    #[arg(long)]
    pub protect: bool,
    /// Record password file (with --protect).
    #[arg(long, value_name = "FILE", requires = "protect")]
    pub password_file: Option<PathBuf>,
    /// Read the value from this file.
    #[arg(long, value_name = "FILE")]
    pub file: Option<PathBuf>,
    /// The value is a TOTP secret (an otpauth://totp/ URI or a base32 secret), checked and
    /// stored as a URI; `data totp` prints its current code.
    #[arg(long, conflicts_with = "generate")]
    pub totp: bool,
    /// Store a newly generated password (or passphrase, with --words) instead of a value
    /// read; it is never shown (read it with `data get`).
    #[arg(long, conflicts_with = "file")]
    pub generate: bool,
    #[command(flatten)]
    pub gen_opts: super::generate::GenerateArgs,
}

// `data get` arguments. (A plain comment: see `cli::Command`.)
#[allow(missing_docs)]
#[derive(Debug, Args)]
pub struct GetArgs {
    /// Tokens or names.
    #[arg(required = true, value_name = "TOKEN|NAME", add = clap_complete::ArgValueCandidates::new(crate::ui::complete::records))]
    pub refs: Vec<String>,
    /// Write the value here instead of stdout (one record only).
    ///
    /// A regular file is replaced through a temp file and a rename; a character device or
    /// a FIFO is written to directly; a symbolic link is followed to what it names.
    #[arg(short, long, value_name = "OUT")]
    pub output: Option<PathBuf>,
    /// Record password file, for password-protected records.
    #[arg(long, value_name = "FILE")]
    pub password_file: Option<PathBuf>,
    /// An earlier version kept in the record's history (one record only).
    #[arg(long, value_name = "N")]
    pub version: Option<i64>,
    /// Copy the value to the clipboard instead of printing it; it is cleared after 45 s
    /// (ZENCRYPT_CLIP_SECONDS) if the clipboard still holds it.
    #[arg(long, conflicts_with = "output")]
    pub clip: bool,
}

// `data update` arguments. (A plain comment: see `cli::Command`.)
#[allow(missing_docs)]
#[derive(Debug, Args)]
pub struct UpdateArgs {
    /// Token or name.
    #[arg(value_name = "TOKEN|NAME", add = clap_complete::ArgValueCandidates::new(crate::ui::complete::records))]
    pub reference: String,
    /// Only if the record is at this version.
    #[arg(long, value_name = "N")]
    pub if_version: Option<i64>,
    /// Read the new value from this file.
    #[arg(long, value_name = "FILE")]
    pub file: Option<PathBuf>,
    /// Record password file, for password-protected records.
    #[arg(long, value_name = "FILE")]
    pub password_file: Option<PathBuf>,
}

// `data edit` arguments. (A plain comment: see `cli::Command`.)
#[allow(missing_docs)]
#[derive(Debug, Args)]
pub struct EditArgs {
    /// Token or name.
    #[arg(value_name = "TOKEN|NAME", add = clap_complete::ArgValueCandidates::new(crate::ui::complete::records))]
    pub reference: String,
    /// Record password file, for password-protected records.
    #[arg(long, value_name = "FILE")]
    pub password_file: Option<PathBuf>,
}

// `data list` arguments. (A plain comment: see `cli::Command`.)
#[allow(missing_docs)]
#[derive(Debug, Args)]
pub struct ListArgs {
    /// Only names matching this pattern: `*` matches any run of characters (`/`
    /// included), `?` one character; case is ignored (e.g. 'prod/*', '*password*').
    /// An unnamed record is matched by its token.
    #[arg(value_name = "GLOB")]
    pub glob: Option<String>,
    /// Only these tokens (comma-separated).
    #[arg(long, value_name = "T,...", value_delimiter = ',')]
    pub token: Vec<String>,
    /// Only records under this key.
    #[arg(long, value_name = "NAME")]
    pub key: Option<String>,
    /// Only deleted records.
    #[arg(long, conflicts_with = "all")]
    pub deleted: bool,
    /// Live and deleted records.
    #[arg(long)]
    pub all: bool,
    /// Only expired records.
    #[arg(long)]
    pub expired: bool,
    /// Sort order.
    #[arg(long, value_enum, default_value = "created")]
    pub order_by: OrderBy,
    /// Ascending (the default for name).
    #[arg(long, conflicts_with = "desc")]
    pub asc: bool,
    /// Descending (the default for times: newest first).
    #[arg(long)]
    pub desc: bool,
    /// At most N records.
    #[arg(long, value_name = "N")]
    pub limit: Option<i64>,
    /// Skip N records.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub offset: i64,
    /// Show the names as a tree of their `/` parts (unnamed records by token at the end).
    #[arg(long)]
    pub tree: bool,
    /// List the records you shared, with whom.
    #[arg(long, conflicts_with_all = ["shared_with_me", "tree", "glob", "token", "key", "deleted", "all", "expired"])]
    pub shared: bool,
    /// List the records others shared with you (read them as OWNER:NAME).
    #[arg(long, conflicts_with_all = ["tree", "glob", "token", "key", "deleted", "all", "expired"])]
    pub shared_with_me: bool,
}

// `data rm` arguments. (A plain comment: see `cli::Command`.)
#[allow(missing_docs)]
#[derive(Debug, Args)]
pub struct RmArgs {
    /// Tokens or names.
    #[arg(required = true, value_name = "TOKEN|NAME", add = clap_complete::ArgValueCandidates::new(crate::ui::complete::records))]
    pub refs: Vec<String>,
    /// Wipe for good: the rows, their data keys and every version (not restorable).
    #[arg(long)]
    pub hard: bool,
    /// Do not ask for confirmation (required for --hard without a terminal).
    #[arg(long)]
    pub yes: bool,
}

// `data purge` arguments. (A plain comment: see `cli::Command`.)
#[allow(missing_docs)]
#[derive(Debug, Args)]
pub struct PurgeArgs {
    /// Expired records: soft-deleted, or wiped with --hard.
    #[arg(long)]
    pub expired: bool,
    /// Soft-deleted records, wiped (needs --hard).
    #[arg(long)]
    pub deleted: bool,
    /// Wipe for good: the rows, their data keys and every version (not restorable).
    #[arg(long)]
    pub hard: bool,
    /// Only those expired or deleted at least this long ago.
    #[arg(long, value_name = "DUR")]
    pub older_than: Option<String>,
    /// Do not ask for confirmation (required for --hard without a terminal).
    #[arg(long)]
    pub yes: bool,
}

// `data rekey` arguments. (A plain comment: see `cli::Command`.)
#[allow(missing_docs)]
#[derive(Debug, Args)]
pub struct RekeyArgs {
    /// File holding the current record password.
    #[arg(long, value_name = "FILE")]
    pub old_password_file: Option<PathBuf>,
    /// File holding the new record password.
    #[arg(long, value_name = "FILE")]
    pub new_password_file: Option<PathBuf>,
}

// `data import` arguments. (A plain comment: see `cli::Command`.)
#[allow(missing_docs)]
#[derive(Debug, Args)]
pub struct ImportArgs {
    /// Input file (default: stdin).
    #[arg(value_name = "FILE")]
    pub input: Option<PathBuf>,
    /// The key to store them under (default: 'default').
    #[arg(long, value_name = "NAME", conflicts_with = "protect")]
    pub key: Option<String>,
    /// Protect every imported record with one record password instead of a key.
    #[arg(long)]
    pub protect: bool,
    /// Record password file (with --protect).
    #[arg(long, value_name = "FILE", requires = "protect")]
    pub password_file: Option<PathBuf>,
    /// The input's format.
    #[arg(long, value_enum, default_value = "jsonl")]
    pub format: ImportFormat,
    /// Show the names that would be stored (never the values) and store nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// File every record under this path (e.g. 'imported/').
    #[arg(long, value_name = "PATH/")]
    pub prefix: Option<String>,
    /// The CSV column holding the name (default 'name').
    #[arg(long, value_name = "COLUMN", default_value = "name")]
    pub name_column: String,
    /// The CSV column holding the value (default 'value').
    #[arg(long, value_name = "COLUMN", default_value = "value")]
    pub value_column: String,
}

/// `data import --format` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ImportFormat {
    /// JSON lines, as `data export` writes them.
    Jsonl,
    /// NAME=VALUE lines.
    Dotenv,
    /// CSV with a header naming the name and value columns.
    Csv,
    /// Bitwarden's unencrypted JSON export.
    BitwardenJson,
    /// A pass store (FILE: its directory, default $PASSWORD_STORE_DIR or
    /// ~/.password-store), each entry decrypted with gpg.
    Pass,
}

/// `data export --format` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ExportFormat {
    /// JSON lines (every record, binary values as base64).
    Jsonl,
    /// NAME="value" lines, names as environment variables (text values only).
    Dotenv,
    /// CSV with a name,value header.
    Csv,
}

// `data export` arguments. (A plain comment: see `cli::Command`.)
#[allow(missing_docs)]
#[derive(Debug, Args)]
pub struct ExportArgs {
    /// Output file (default: stdout).
    ///
    /// A regular file is replaced through a temp file and a rename; a character device or
    /// a FIFO is written to directly; a symbolic link is followed to what it names.
    #[arg(short, long, value_name = "OUT")]
    pub output: Option<PathBuf>,
    /// Include soft-deleted records.
    #[arg(long)]
    pub include_deleted: bool,
    /// Record password file, to include password-protected records.
    #[arg(long, value_name = "FILE")]
    pub password_file: Option<PathBuf>,
    /// Do not ask for confirmation on a terminal.
    #[arg(long)]
    pub yes: bool,
    /// The output's format.
    #[arg(long, value_enum, default_value = "jsonl")]
    pub format: ExportFormat,
}

/// `--order-by` values.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum OrderBy {
    /// Creation time.
    Created,
    /// Last update.
    Updated,
    /// Name.
    Name,
    /// Expiry.
    Expires,
}

/// The batch-get JSON document.
pub fn get_json(out: &GetOutcome) -> Value {
    let records: Vec<Value> = out
        .records
        .iter()
        .map(|(info, value)| {
            let (field, v) = value_json(value);
            let mut o = json!({ "token": info.token, "name": info.name, "version": info.version });
            o[field] = v;
            // A record another user shared: whose it is.
            if let Some(owner) = &info.owner {
                o["owner"] = json!(owner);
            }
            o
        })
        .collect();
    let missing: Vec<&String> = out.missing.iter().chain(&out.deleted).collect();
    json!({ "records": records, "missing": missing, "expired": out.expired })
}

/// An empty value is stored as it is (pipes are byte-exact), but never without a word.
fn note_if_empty(ctx: &Ctx, value: &[u8]) {
    if value.is_empty() {
        ctx.out
            .note("note: the value is empty (0 bytes); it is stored as it is.");
    }
}

fn count_doc(ctx: &Ctx, n: u64, message: String) -> Result<()> {
    ctx.out.note(&message);
    if ctx.out.json {
        emitted(ctx.out.json_doc(&json!({ "count": n })))?;
    }
    Ok(())
}

pub(super) fn confirm(ctx: &Ctx, yes: bool, question: &str, flag_needed: bool) -> Result<()> {
    if yes {
        return Ok(());
    }
    if !input::is_interactive(&ctx.cfg) {
        if flag_needed {
            return Err(Error::NeedsInput {
                what: "confirmation".into(),
                flag: "--yes".into(),
            });
        }
        return Ok(());
    }
    if TermPrompter::new()
        .confirm(question)
        .map_err(prompt_error)?
    {
        Ok(())
    } else {
        Err(Error::Cancelled)
    }
}

fn password_if_needed(
    ctx: &Ctx,
    vault: &mut Vault,
    session: &Session,
    refs: &[String],
    file: Option<&std::path::Path>,
) -> Result<Option<secrecy::SecretString>> {
    if vault.records_need_password(session, refs)? {
        Ok(Some(input::record_password(
            file,
            &ctx.cfg,
            "Record password",
            false,
        )?))
    } else {
        Ok(None)
    }
}

/// Runs a `data` subcommand.
pub fn run(ctx: &Ctx, cmd: DataCommand) -> Result<()> {
    let mut vault = ctx.vault()?;
    let session = ctx.session(&mut vault)?;
    match cmd {
        DataCommand::Put(a) => put(ctx, &mut vault, &session, a),
        DataCommand::Get(a) => get(ctx, &mut vault, &session, a),
        DataCommand::Update(a) => update(ctx, &mut vault, &session, a),
        DataCommand::Edit(a) => edit(ctx, &mut vault, &session, a),
        DataCommand::History { reference } => history(ctx, &mut vault, &session, &reference),
        DataCommand::Rollback {
            reference,
            to,
            password_file,
        } => {
            let refs = [reference.clone()];
            let password =
                password_if_needed(ctx, &mut vault, &session, &refs, password_file.as_deref())?;
            let row = vault.data_rollback(&session, &reference, to, password.as_ref())?;
            ctx.out.note(&format!(
                "Rolled '{reference}' back to the value of version {to}, stored as version {}.",
                row.version
            ));
            if ctx.out.json {
                emitted(ctx.out.json_doc(
                    &json!({ "token": row.token, "name": row.name, "version": row.version, "from_version": to }),
                ))?;
            }
            Ok(())
        }
        DataCommand::Totp {
            reference,
            password_file,
        } => totp(
            ctx,
            &mut vault,
            &session,
            &reference,
            password_file.as_deref(),
        ),
        DataCommand::List(a) => list(ctx, &mut vault, &session, a),
        DataCommand::Rm(a) => rm(ctx, &mut vault, &session, a),
        DataCommand::Restore { reference } => restore(ctx, &mut vault, &session, &reference),
        DataCommand::Purge(a) => purge(ctx, &mut vault, &session, a),
        DataCommand::Rekey(a) => rekey(ctx, &mut vault, &session, a),
        DataCommand::Import(a) => import(ctx, &mut vault, &session, a),
        DataCommand::Export(a) => export(ctx, &mut vault, &session, a),
        DataCommand::Share {
            reference,
            with,
            fingerprint,
            write,
        } => {
            let expected = crate::ui::input::fingerprint_arg(fingerprint.as_deref())?;
            let s = vault.data_share(&session, &reference, &with, write, expected)?;
            if s.pinned_now {
                ctx.out
                    .note(&crate::ui::views::pinned_text(&s.with, &s.fingerprint));
            }
            ctx.out
                .note(&crate::ui::views::shared_text(&s, &session.username));
            if ctx.out.json {
                emitted(ctx.out.json_doc(&json!({
                    "token": s.token,
                    "name": s.name,
                    "with": s.with,
                    "fingerprint": s.fingerprint.to_string(),
                    "pinned_now": s.pinned_now,
                    "write": s.write,
                    "changed": s.changed,
                })))?;
            }
            Ok(())
        }
        DataCommand::Transfer {
            reference,
            to,
            fingerprint,
        } => {
            let expected = crate::ui::input::fingerprint_arg(fingerprint.as_deref())?;
            let t = vault.data_transfer(&session, &reference, &to, expected)?;
            if t.pinned_now {
                ctx.out
                    .note(&crate::ui::views::pinned_text(&t.to, &t.fingerprint));
            }
            ctx.out.note(&crate::ui::views::transferred_text(&t));
            if ctx.out.json {
                emitted(ctx.out.json_doc(&json!({
                    "record": t.record,
                    "to": t.to,
                    "fingerprint": t.fingerprint.to_string(),
                    "pinned_now": t.pinned_now,
                    "own": t.own,
                })))?;
            }
            Ok(())
        }
        DataCommand::Receive => {
            let all = vault.data_receive(&session)?;
            if ctx.out.json {
                let docs: Vec<serde_json::Value> = all
                    .iter()
                    .map(|r| {
                        use zencrypt_core::sharing::Receipt;
                        let (state, token, name, why) = match &r.outcome {
                            Receipt::Taken { token, name } => {
                                ("taken", Some(token.clone()), name.clone(), None)
                            }
                            Receipt::Waiting(why) => ("waiting", None, None, Some(why.clone())),
                            Receipt::Dropped(why) => ("dropped", None, None, Some(why.clone())),
                        };
                        json!({
                            "from": r.from, "by": r.by, "state": state, "token": token,
                            "name": name, "reason": why,
                        })
                    })
                    .collect();
                return emitted(ctx.out.json_doc(&json!(docs)));
            }
            emitted(ctx.out.data_line(&crate::ui::views::received_text(&all)))
        }
        DataCommand::Unshare { reference, from } => {
            let u = vault.data_unshare(&session, &reference, &from)?;
            ctx.out
                .note(&crate::ui::views::unshared_text(&reference, &from, &u));
            if ctx.out.json {
                emitted(ctx.out.json_doc(&json!({
                    "reference": reference,
                    "from": from,
                    "version": u.version,
                    "reencrypted": u.reencrypted,
                    "also_ended": u.also_ended,
                    "all_ended": u.all_ended,
                })))?;
            }
            Ok(())
        }
    }
}

/// `data list --shared` and `--shared-with-me`.
fn list_shares(ctx: &Ctx, vault: &mut Vault, session: &Session, mine: bool) -> Result<()> {
    let out = &ctx.out;
    let rows: Vec<(Vec<String>, serde_json::Value)> = if mine {
        vault
            .shares_by_me(session)?
            .into_iter()
            .map(|s| {
                let since = duration::rfc3339(s.since);
                let name = s.name.clone().unwrap_or_default();
                let doc = json!({
                    "token": s.token, "name": s.name, "with": s.with, "since": since,
                    "write": s.write,
                });
                (vec![s.token, name, s.with, access(s.write), since], doc)
            })
            .collect()
    } else {
        vault
            .shares_with_me(session)?
            .into_iter()
            .map(|s| {
                let since = duration::rfc3339(s.since);
                let reference = format!(
                    "{}:{}",
                    s.owner,
                    s.name.clone().unwrap_or_else(|| s.token.clone())
                );
                let doc = json!({
                    "reference": reference, "owner": s.owner, "token": s.token,
                    "name": s.name, "version": s.version, "since": since, "via": s.via,
                    "write": s.write,
                });
                (
                    vec![
                        reference,
                        s.token,
                        s.via.unwrap_or_default(),
                        access(s.write),
                        since,
                    ],
                    doc,
                )
            })
            .collect()
    };
    if out.json {
        let docs: Vec<_> = rows.into_iter().map(|(_, d)| d).collect();
        return emitted(out.json_doc(&json!(docs)));
    }
    if rows.is_empty() {
        out.note(if mine {
            "You share no records."
        } else {
            "Nothing is shared with you."
        });
        return Ok(());
    }
    let mut lines: Vec<Vec<String>> = rows.into_iter().map(|(l, _)| l).collect();
    let mut header: Vec<&str> = if mine {
        vec!["token", "name", "with", "access", "since"]
    } else {
        vec!["reference", "token", "via", "access", "since"]
    };
    // The ACCESS column only when some share allows writing; VIA (the group a record
    // reaches you through) only when one does.
    if lines.iter().all(|l| l[3] == "read") {
        lines.iter_mut().for_each(|l| drop(l.remove(3)));
        header.remove(3);
    }
    if !mine && lines.iter().all(|l| l[2].is_empty()) {
        lines.iter_mut().for_each(|l| drop(l.remove(2)));
        header.remove(2);
    }
    emitted(out.data_line(&crate::ui::output::fitted_table(&header, lines, &["since"])))
}

/// A share's access, as `data list --shared` shows it.
fn access(write: bool) -> String {
    if write { "write" } else { "read" }.to_string()
}

/// `data put`: stores a value and prints its token.
fn put(ctx: &Ctx, vault: &mut Vault, session: &Session, a: PutArgs) -> Result<()> {
    let out = &ctx.out;
    let token = match (a.token, a.token_length) {
        (Some(t), _) => TokenChoice::Custom(t),
        (None, Some(n)) => {
            token::check_length(n)?;
            TokenChoice::Random(n)
        }
        (None, None) => TokenChoice::Random(token::DEFAULT_LENGTH),
    };
    let opts = PutOptions {
        name: a.name,
        key: a.key,
        expires_in: a.expires_in.as_deref().map(duration::parse).transpose()?,
        token,
    };
    if a.gen_opts.any() && !a.generate {
        return Err(Error::Usage(
            "--length, --charset, --no-symbols, --words and --separator go with --generate".into(),
        ));
    }
    let spec = a.generate.then(|| a.gen_opts.spec()).transpose()?;
    let value = match &spec {
        Some(spec) => zeroize::Zeroizing::new(spec.generate().as_bytes().to_vec()),
        None => input::value(a.file.as_deref(), &ctx.cfg, records::MAX_VALUE)?,
    };
    let value = if a.totp {
        let text = std::str::from_utf8(&value)
            .map_err(|_| Error::Usage("not a TOTP secret: it is not text".into()))?;
        let uri = zencrypt_core::totp::Totp::parse(text)?.uri();
        zeroize::Zeroizing::new(uri.as_bytes().to_vec())
    } else {
        value
    };
    note_if_empty(ctx, &value);
    let password = if a.protect {
        Some(input::record_password(
            a.password_file.as_deref(),
            &ctx.cfg,
            "Record password",
            true,
        )?)
    } else {
        None
    };
    let row = vault.data_put(session, &value, &opts, password.as_ref())?;
    if out.json {
        let mut doc = json!({ "token": row.token, "name": row.name, "version": row.version });
        if let Some(spec) = &spec {
            doc["generated"] = super::generate::spec_json(spec);
        }
        return emitted(out.json_doc(&doc));
    }
    if let Some(spec) = &spec {
        out.note(&format!(
            "Stored a generated {} ({} bits); `zencrypt data get {}` shows it.",
            spec.describe(),
            spec.entropy_bits().floor(),
            row.name.as_deref().unwrap_or(&row.token)
        ));
    }
    emitted(out.data_line(&row.token))
}

/// `data get`: prints one value, or several records as JSON.
fn get(ctx: &Ctx, vault: &mut Vault, session: &Session, a: GetArgs) -> Result<()> {
    let out = &ctx.out;
    let GetArgs {
        refs,
        output,
        password_file,
        version,
        clip,
    } = a;
    if clip {
        if refs.len() > 1 || out.json {
            return Err(Error::Usage(
                "--clip copies one record's value, without --json".into(),
            ));
        }
        crate::ui::clip::available()?;
        let (info, value) = match version {
            Some(v) => {
                let password =
                    password_if_needed(ctx, vault, session, &refs, password_file.as_deref())?;
                vault.data_get_version(session, &refs[0], v, password.as_ref())?
            }
            None => {
                let (info, value, _) =
                    read_one(ctx, vault, session, &refs[0], password_file.as_deref())?;
                (info, value)
            }
        };
        if std::str::from_utf8(&value).is_err() {
            return Err(Error::Usage(format!(
                "record '{}' holds binary data, which the clipboard takes only as text; use -o FILE",
                refs[0]
            )));
        }
        crate::ui::clip::copy(&value, ctx.cfg.clip_seconds)?;
        out.note(&format!(
            "Copied '{}' (version {}) to the clipboard; it is cleared in {} s if the clipboard still holds it.",
            info.name.as_deref().unwrap_or(&info.token),
            info.version,
            ctx.cfg.clip_seconds
        ));
        return Ok(());
    }
    if let Some(version) = version {
        if refs.len() > 1 {
            return Err(Error::Usage("--version reads one record".into()));
        }
        let password = password_if_needed(ctx, vault, session, &refs, password_file.as_deref())?;
        let (info, value) =
            vault.data_get_version(session, &refs[0], version, password.as_ref())?;
        if out.json {
            let (field, v) = value_json(&value);
            let mut o = json!({ "token": info.token, "name": info.name, "version": info.version });
            o[field] = v;
            return emitted(out.json_doc(&json!({ "records": [o], "missing": [], "expired": [] })));
        }
        return write_value(output, &value);
    }
    if refs.len() > 1 && output.is_some() {
        return Err(Error::Usage(
            "-o writes one record; use --json for several".into(),
        ));
    }
    let password = password_if_needed(ctx, vault, session, &refs, password_file.as_deref())?;
    let got = vault.data_get(session, &refs, password.as_ref())?;
    let incomplete = !got.missing.is_empty() || !got.expired.is_empty() || !got.deleted.is_empty();
    if out.json || refs.len() > 1 {
        emitted(out.json_doc(&get_json(&got)))?;
        if incomplete {
            return Err(Error::NotFound(format!(
                "{} of {} record(s) not found, deleted or expired",
                got.missing.len() + got.deleted.len() + got.expired.len(),
                refs.len()
            )));
        }
        return Ok(());
    }
    if let Some((_, value)) = got.records.first() {
        return write_value(output, value);
    }
    Err(unreadable(&refs[0], &got))
}

/// `data update`: replaces a record's value.
fn update(ctx: &Ctx, vault: &mut Vault, session: &Session, a: UpdateArgs) -> Result<()> {
    let out = &ctx.out;
    let refs = [a.reference.clone()];
    let password = password_if_needed(ctx, vault, session, &refs, a.password_file.as_deref())?;
    let value = input::value(a.file.as_deref(), &ctx.cfg, records::MAX_VALUE)?;
    note_if_empty(ctx, &value);
    let row = vault.data_update(
        session,
        &a.reference,
        &value,
        a.if_version,
        password.as_ref(),
    )?;
    out.note(&crate::ui::views::updated_text(&row));
    if out.json {
        emitted(out.json_doc(&json!({
            "token": row.token,
            "name": row.name,
            "version": row.version,
            "owner": row.owner,
        })))?;
    }
    Ok(())
}

/// `data edit`: the value in an editor, saved back as a new version when it changed.
fn edit(ctx: &Ctx, vault: &mut Vault, session: &Session, a: EditArgs) -> Result<()> {
    use crate::ui::edit;
    let out = &ctx.out;
    let (info, value, password) = read_one(
        ctx,
        vault,
        session,
        &a.reference,
        a.password_file.as_deref(),
    )?;
    let shown = info.name.clone().unwrap_or_else(|| info.token.clone());
    let Some(edited) = edit::edit_record(&edit::Editor::from_config(&ctx.cfg), &info, &value)?
    else {
        out.note(&format!(
            "No change: '{shown}' stays at version {}.",
            info.version
        ));
        return Ok(());
    };
    note_if_empty(ctx, &edited);
    let mut ask = |question: &str| TermPrompter::new().confirm(question).map_err(prompt_error);
    let confirm: Option<&mut edit::Confirm<'_>> =
        input::is_interactive(&ctx.cfg).then_some(&mut ask);
    let saved = edit::save_edit(vault, session, &info, &edited, password.as_ref(), confirm)?;
    out.note(&format!("Saved '{shown}' as version {}.", saved.version));
    if out.json {
        emitted(out.json_doc(
            &json!({ "token": saved.token, "name": saved.name, "version": saved.version }),
        ))?;
    }
    Ok(())
}

/// `data history`: a record's versions.
fn history(ctx: &Ctx, vault: &mut Vault, session: &Session, reference: &str) -> Result<()> {
    let out = &ctx.out;
    let (info, versions) = vault.data_history(session, reference)?;
    if out.json {
        return emitted(out.json_doc(&crate::ui::views::versions_json(&info, &versions)));
    }
    emitted(out.data_line(&crate::ui::views::versions_table(&versions)))
}

/// `data totp`: the current code of a stored TOTP secret (a read of the secret, audited
/// and counted like `data get`).
fn totp(
    ctx: &Ctx,
    vault: &mut Vault,
    session: &Session,
    reference: &str,
    password_file: Option<&std::path::Path>,
) -> Result<()> {
    let out = &ctx.out;
    let (_, value, _) = read_one(ctx, vault, session, reference, password_file)?;
    let generator = zencrypt_core::totp::Totp::from_record(&value, reference)?;
    let (code, left) = generator.code_now();
    if out.json {
        return emitted(out.json_secret_doc(
            &json!({ "seconds_left": left, "period": generator.period, "digits": generator.digits }),
            "code",
            &code,
        ));
    }
    emitted(out.data_line(&code))?;
    out.note(&format!("Valid for {left} more second(s)."));
    Ok(())
}

/// Reads one live record (with its record password, asked for if it has one): an
/// audited get, counted in the usage log.
fn read_one(
    ctx: &Ctx,
    vault: &mut Vault,
    session: &Session,
    reference: &str,
    password_file: Option<&std::path::Path>,
) -> Result<(
    records::RecordInfo,
    zeroize::Zeroizing<Vec<u8>>,
    Option<secrecy::SecretString>,
)> {
    let refs = [reference.to_string()];
    let password = password_if_needed(ctx, vault, session, &refs, password_file)?;
    let got = vault.data_get(session, &refs, password.as_ref())?;
    if got.records.is_empty() {
        return Err(unreadable(reference, &got));
    }
    let (info, value) = got.records.into_iter().next().expect("one record");
    Ok((info, value, password))
}

/// Why one reference could not be read (from a get that found nothing).
fn unreadable(r: &str, got: &GetOutcome) -> Error {
    if !got.expired.is_empty() {
        Error::NotFound(format!("record '{r}' has expired"))
    } else if !got.deleted.is_empty() {
        Error::NotFound(format!(
            "record '{r}' has been deleted; restore it with `zencrypt data restore {r}`"
        ))
    } else {
        records::not_found(r)
    }
}

/// `data list`: lists records without their values.
fn list(ctx: &Ctx, vault: &mut Vault, session: &Session, a: ListArgs) -> Result<()> {
    if a.shared || a.shared_with_me {
        return list_shares(ctx, vault, session, a.shared);
    }
    let out = &ctx.out;
    let filter = RecordFilter {
        tokens: a.token,
        key_id: None,
        deleted: if a.all { None } else { Some(a.deleted) },
        expired: a.expired.then_some(true),
        now: duration::now(),
        order_by: match a.order_by {
            OrderBy::Created => RecordOrder::Created,
            OrderBy::Updated => RecordOrder::Updated,
            OrderBy::Name => RecordOrder::Name,
            OrderBy::Expires => RecordOrder::Expires,
        },
        // Names read A to Z unless --desc; times newest first unless --asc.
        ascending: a.asc || (matches!(a.order_by, OrderBy::Name) && !a.desc),
        limit: a.limit,
        offset: a.offset,
        with_values: false,
    };
    let glob = a.glob.as_deref().map(Glob::new).transpose()?;
    let rows = vault.data_list(session, &filter, a.key.as_deref(), glob.as_ref())?;
    if a.tree && !out.json {
        if rows.is_empty() {
            out.note("No records match.");
            return Ok(());
        }
        return emitted(out.data_line(&crate::ui::views::records_tree(&rows)));
    }
    if out.json {
        return emitted(out.json_doc(&json!(rows.iter().map(record_json).collect::<Vec<_>>())));
    }
    if rows.is_empty() {
        out.note("No records match.");
        return Ok(());
    }
    emitted(out.data_line(&records_table(&rows)))
}

/// `data rm`: soft-deletes records, or wipes them with `--hard`.
fn rm(ctx: &Ctx, vault: &mut Vault, session: &Session, a: RmArgs) -> Result<()> {
    if a.hard {
        confirm(
            ctx,
            a.yes,
            &format!("Wipe {} record(s) for good?", a.refs.len()),
            true,
        )?;
    }
    let n = vault.data_rm(session, &a.refs, a.hard)?;
    count_doc(
        ctx,
        n,
        if a.hard {
            format!("Wiped {n} record(s).")
        } else {
            format!("Deleted {n} record(s); `zencrypt data restore` brings them back.")
        },
    )
}

/// `data restore`: brings back a soft-deleted record.
fn restore(ctx: &Ctx, vault: &mut Vault, session: &Session, reference: &str) -> Result<()> {
    let n = vault.data_restore(session, reference)?;
    count_doc(ctx, n, format!("Restored {reference}."))
}

/// `data purge`: soft-deletes expired records, or wipes expired and deleted ones.
fn purge(ctx: &Ctx, vault: &mut Vault, session: &Session, a: PurgeArgs) -> Result<()> {
    if a.deleted && !a.hard {
        return Err(Error::Usage(
            "--deleted wipes records for good: add --hard to say so (without it, purge only soft-deletes expired records)".into(),
        ));
    }
    if a.hard {
        confirm(
            ctx,
            a.yes,
            "Wipe the purged records for good? This cannot be undone.",
            true,
        )?;
    }
    let opts = PurgeOptions {
        expired: a.expired,
        deleted: a.deleted,
        hard: a.hard,
        older_than: a.older_than.as_deref().map(duration::parse).transpose()?,
    };
    let n = vault.data_purge(session, opts)?;
    count_doc(ctx, n, format!("Purged {n} record(s)."))
}

/// `data rekey`: changes a record password for every record it protects.
fn rekey(ctx: &Ctx, vault: &mut Vault, session: &Session, a: RekeyArgs) -> Result<()> {
    let old = input::record_password(
        a.old_password_file.as_deref(),
        &ctx.cfg,
        "Current record password",
        false,
    )?;
    let new = input::record_password(
        a.new_password_file.as_deref(),
        &ctx.cfg,
        "New record password",
        true,
    )?;
    let n = vault.data_rekey(session, &old, &new)?;
    count_doc(
        ctx,
        n,
        format!("Changed the record password of {n} record(s)."),
    )
}

/// Largest input `data import` reads whole (the non-jsonl formats).
const MAX_IMPORT_FILE: u64 = 512 << 20;

/// The entries of a pass store: every `*.gpg` file below `dir` (hidden directories such
/// as `.git` left out), as (name in the store, path), sorted by name.
fn pass_entries(dir: &std::path::Path) -> Result<Vec<(String, PathBuf)>> {
    fn walk(
        dir: &std::path::Path,
        base: &std::path::Path,
        out: &mut Vec<(String, PathBuf)>,
    ) -> Result<()> {
        let entries = std::fs::read_dir(dir)
            .map_err(|e| Error::io(format!("reading the pass store {}", dir.display()), e))?;
        for entry in entries {
            let entry = entry.map_err(|e| Error::io(format!("reading {}", dir.display()), e))?;
            let path = entry.path();
            let file_name = entry.file_name();
            if file_name.to_string_lossy().starts_with('.') {
                continue;
            }
            let kind = entry
                .file_type()
                .map_err(|e| Error::io(format!("reading {}", path.display()), e))?;
            if kind.is_dir() {
                walk(&path, base, out)?;
            } else if kind.is_file() && path.extension().is_some_and(|x| x == "gpg") {
                let rel = path
                    .strip_prefix(base)
                    .unwrap_or(&path)
                    .with_extension("")
                    .to_string_lossy()
                    .into_owned();
                out.push((rel, path));
            }
        }
        Ok(())
    }
    if !dir.is_dir() {
        return Err(Error::Usage(format!(
            "{} is not a pass store (a directory of .gpg files); name one as FILE or set PASSWORD_STORE_DIR",
            dir.display()
        )));
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out)?;
    out.sort();
    Ok(out)
}

/// One pass entry's content, decrypted by `gpg` (with the user's keys and agent); a
/// single trailing newline, which `pass insert` adds, is dropped.
fn pass_decrypt(path: &std::path::Path) -> Result<zeroize::Zeroizing<Vec<u8>>> {
    let out = crate::ui::scrub_child_env(&mut std::process::Command::new("gpg"))
        .args(["--quiet", "--batch", "--decrypt", "--"])
        .arg(path)
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => Error::Usage(
                "importing from pass needs gpg, which is not installed (apt install gnupg)".into(),
            ),
            _ => Error::io("running gpg", e),
        })?;
    let mut value = zeroize::Zeroizing::new(out.stdout);
    if !out.status.success() {
        let why = String::from_utf8_lossy(&out.stderr);
        let why = why
            .lines()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("no reason given");
        return Err(Error::Usage(format!(
            "gpg could not decrypt {}: {}; nothing was imported",
            path.display(),
            zencrypt_core::text::printable(why.trim(), 120)
        )));
    }
    if value.ends_with(b"\n") {
        value.pop();
    }
    Ok(value)
}

/// Reads and parses a non-jsonl import into items, each with the name it had elsewhere;
/// also what a Bitwarden export had nothing to store for.
/// Items to import, each with the name it had elsewhere.
type Mapped = Vec<(records::ImportItem, String)>;

fn foreign_items(ctx: &Ctx, a: &ImportArgs) -> Result<(Mapped, Vec<String>)> {
    use std::io::Read;
    use zencrypt_core::records::formats;
    let prefix = a.prefix.as_deref().unwrap_or("");
    if a.format == ImportFormat::Pass {
        let dir = a
            .input
            .clone()
            .or_else(|| ctx.cfg.password_store.clone())
            .ok_or_else(|| Error::Usage("name the pass store's directory as FILE".into()))?;
        let entries = pass_entries(&dir)?;
        let foreign = entries
            .into_iter()
            .map(|(name, path)| {
                Ok(formats::Foreign {
                    at: path.display().to_string(),
                    value: if a.dry_run {
                        zeroize::Zeroizing::new(Vec::new())
                    } else {
                        pass_decrypt(&path)?
                    },
                    from: name,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        return Ok((formats::to_items(foreign, prefix)?, Vec::new()));
    }
    let mut input = crate::ui::files::open_input(a.input.as_deref())?;
    let mut bytes = zeroize::Zeroizing::new(Vec::new());
    (&mut input.reader)
        .take(MAX_IMPORT_FILE + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| Error::io(format!("reading {}", input.name), e))?;
    if bytes.len() as u64 > MAX_IMPORT_FILE {
        return Err(Error::Usage(format!(
            "{} is over {} MiB; nothing was imported",
            input.name,
            MAX_IMPORT_FILE >> 20
        )));
    }
    let (foreign, skipped) = match a.format {
        ImportFormat::Dotenv => (formats::parse_dotenv(&bytes)?, Vec::new()),
        ImportFormat::Csv => (
            formats::parse_csv(&bytes, &a.name_column, &a.value_column)?,
            Vec::new(),
        ),
        ImportFormat::BitwardenJson => {
            let bw = formats::parse_bitwarden(&bytes)?;
            (bw.items, bw.skipped)
        }
        ImportFormat::Jsonl | ImportFormat::Pass => {
            return Err(Error::Internal(
                "jsonl is read line by line and pass entry by entry, not here".into(),
            ));
        }
    };
    Ok((formats::to_items(foreign, prefix)?, skipped))
}

/// `data import`: stores records in one transaction and prints the count.
fn import(ctx: &Ctx, vault: &mut Vault, session: &Session, a: ImportArgs) -> Result<()> {
    let out = &ctx.out;
    if let Some(p) = &a.prefix {
        records::formats::check_prefix(p)?;
    }
    type Parsed = (Vec<records::ImportItem>, Vec<Option<String>>, Vec<String>);
    let (items, from, skipped): Parsed = if a.format == ImportFormat::Jsonl {
        let mut items = read_import(a.input.as_deref())?;
        if let Some(prefix) = &a.prefix {
            for item in &mut items {
                if let Some(n) = &item.name {
                    let full = format!("{prefix}{n}");
                    records::validate_name(&full)?;
                    item.name = Some(full);
                }
            }
        }
        let n = items.len();
        (items, vec![None; n], Vec::new())
    } else {
        let (pairs, skipped) = foreign_items(ctx, &a)?;
        let (items, from) = pairs
            .into_iter()
            .map(|(item, from)| {
                // Shown when the name changed beyond the prefix.
                let prefixed = format!("{}{from}", a.prefix.as_deref().unwrap_or(""));
                let changed = item.name.as_deref() != Some(prefixed.as_str());
                (item, changed.then_some(from))
            })
            .unzip();
        (items, from, skipped)
    };
    for s in &skipped {
        out.note(&format!("Skipped '{s}': nothing secret to store (a card, an identity, or a login without a password)."));
    }
    if a.dry_run {
        let names: Vec<(String, Option<String>)> = items
            .iter()
            .zip(&from)
            .map(|(i, f)| {
                (
                    i.name.clone().unwrap_or_else(|| "(unnamed)".into()),
                    f.clone(),
                )
            })
            .collect();
        if out.json {
            emitted(out.json_doc(&json!({
                "records": names.iter().map(|(n, f)| json!({ "name": n, "from": f })).collect::<Vec<_>>(),
                "skipped": skipped,
            })))?;
        } else {
            let width = names.iter().map(|(n, _)| n.len()).max().unwrap_or(0);
            let lines: Vec<String> = names
                .iter()
                .map(|(n, f)| match f {
                    Some(f) => format!("{n:<width$}  <- {f}"),
                    None => n.clone(),
                })
                .collect();
            if !lines.is_empty() {
                emitted(out.data_line(&lines.join("\n")))?;
            }
        }
        out.note(&format!(
            "Would import {} record(s); nothing was stored (--dry-run).",
            items.len()
        ));
        return Ok(());
    }
    let password = if a.protect {
        Some(input::record_password(
            a.password_file.as_deref(),
            &ctx.cfg,
            "Record password",
            true,
        )?)
    } else {
        None
    };
    let n = vault.data_import(session, &items, a.key.as_deref(), password.as_ref())?;
    if out.json {
        return emitted(out.json_doc(&json!({ "count": n })));
    }
    if std::io::stdout().is_terminal() {
        return emitted(out.data_line(&format!("Imported {n} record(s).")));
    }
    emitted(out.data_line(&n.to_string()))
}

/// `data export`: writes every record, decrypted, as JSON lines.
fn export(ctx: &Ctx, vault: &mut Vault, session: &Session, a: ExportArgs) -> Result<()> {
    let out = &ctx.out;
    confirm(
        ctx,
        a.yes,
        "Write every record decrypted, in plain text?",
        false,
    )?;
    let password = match a
        .password_file
        .as_deref()
        .or(ctx.cfg.record_password_file.as_deref())
    {
        Some(f) => Some(input::record_password(Some(f), &ctx.cfg, "", false)?),
        None => None,
    };
    let (rows, skipped) = vault.data_export(session, a.include_deleted, password.as_ref())?;
    write_through(a.output.as_deref(), |w| match a.format {
        ExportFormat::Jsonl => write_export(w, &rows),
        ExportFormat::Dotenv => records::formats::write_dotenv(w, &rows),
        ExportFormat::Csv => records::formats::write_csv(w, &rows),
    })?;
    out.note(&format!("Exported {} record(s).", rows.len()));
    if skipped > 0 {
        out.note(&format!(
            "Skipped {skipped} password-protected record(s): pass --password-file to include them."
        ));
    }
    Ok(())
}

/// Writes one value byte-exact (a trailing newline only on a terminal, and there only
/// if it is text).
fn write_value(output: Option<PathBuf>, value: &[u8]) -> Result<()> {
    if output.is_none() && std::io::stdout().is_terminal() {
        crate::ui::output::terminal_text_check(value)?;
        let mut text = zeroize::Zeroizing::new(value.to_vec());
        text.push(b'\n');
        return emitted(std::io::stdout().lock().write_all(&text));
    }
    crate::ui::files::write_bytes_through(output.as_deref(), value, "the value")
}
