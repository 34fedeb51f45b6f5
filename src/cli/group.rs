//! `group create|add|remove|list|show|transfer|receive`: groups of users to share records
//! and keys with.

use clap::Subcommand;
use serde_json::{Value, json};

use super::{Ctx, emitted};
use crate::ui::views;
use zencrypt_core::error::Result;

/// Groups.
#[derive(Debug, Subcommand)]
#[command(defer = true)]
pub enum GroupCommand {
    /// Make a group that you manage (you are its first member).
    #[command(
        after_help = "Example:\n  zencrypt group create ops\n  zencrypt group add ops bob\n  zencrypt data share prod/db/password --with @ops\n\nA group has its own keypair; its private key is wrapped to each member's public key\n(pinned the first time, as for a share) and the rows are signed with your key. Sharing\nwith @ops wraps to the group's key: members added later read what was shared before."
    )]
    Create {
        /// The group's name (1-64 characters from A-Z a-z 0-9 . _ -), used as @NAME.
        name: String,
    },
    /// Add a user to a group you manage.
    #[command(
        after_help = "Example:\n  zencrypt group add ops bob --fingerprint 'd12e 3557 ca74 fa91 fe1f bdce 1268 32f0'\n\nThe group's private key is wrapped to bob's public key, pinned the first time: compare\nfingerprints with `zencrypt user show bob`."
    )]
    Add {
        /// The group (with or without the @).
        group: String,
        /// The user to add.
        user: String,
        /// The fingerprint the user gave you: refused unless their key has it.
        #[arg(long, value_name = "FP")]
        fingerprint: Option<String>,
    },
    /// Remove a user from a group you manage: the group gets a new keypair.
    #[command(
        after_help = "Example:\n  zencrypt group remove ops bob\n\nThe group's keypair is replaced and wrapped to the remaining members only. Records you\nshared with the group are re-encrypted under new data keys at once; other owners' records\nat their next zencrypt command. The records bob could read are listed: what he read, he\nknows, so rotate those secrets at their source if that matters."
    )]
    Remove {
        /// The group (with or without the @).
        group: String,
        /// The member to remove.
        user: String,
    },
    /// Every group, its manager and how many members it has.
    #[command(after_help = "Example:\n  zencrypt group list --json")]
    List,
    /// A group's manager, members and key fingerprint, checked against the manager's
    /// signature.
    #[command(after_help = "Example:\n  zencrypt group show ops")]
    Show {
        /// The group (with or without the @).
        group: String,
    },
    /// Offer a group you manage to one of its members, who takes it over with
    /// `group receive`.
    #[command(
        after_help = "Example:\n  zencrypt group transfer ops --to bob\n  (bob) zencrypt group receive\n\nYour offer, signed with your key, names bob and his key as you added him. Until bob\ntakes it over you still manage the group; `--cancel` withdraws the offer. Once he has,\nevery member's client follows the hand-over from you to bob, and only bob changes the\nmembers: he can then remove you, and an administrator can `user remove` you.",
        group(clap::ArgGroup::new("what").required(true).args(["to", "cancel"]))
    )]
    Transfer {
        /// The group (with or without the @).
        group: String,
        /// The member to hand it to.
        #[arg(long, value_name = "USER")]
        to: Option<String>,
        /// The fingerprint the member gave you: refused unless their key has it.
        #[arg(long, value_name = "FP", conflicts_with = "cancel")]
        fingerprint: Option<String>,
        /// Withdraw the offer instead.
        #[arg(long, conflicts_with = "to")]
        cancel: bool,
    },
    /// Take over the groups offered to you.
    #[command(
        after_help = "Example:\n  zencrypt group receive\n\nEach group is checked under its manager's key; then its rows are signed with yours."
    )]
    Receive,
}

/// Runs a `group` subcommand.
pub fn run(ctx: &Ctx, cmd: GroupCommand) -> Result<()> {
    let mut vault = ctx.vault()?;
    let session = ctx.session(&mut vault)?;
    let out = &ctx.out;
    match cmd {
        GroupCommand::Create { name } => {
            let g = vault.group_create(&session, &name)?;
            if out.json {
                return emitted(out.json_doc(&views::group_json(&g)));
            }
            out.note(&format!(
                "{}\n{}",
                views::group_created_text(&g),
                views::group_text(&g)
            ));
            Ok(())
        }
        GroupCommand::Add {
            group,
            user,
            fingerprint,
        } => {
            let expected = crate::ui::input::fingerprint_arg(fingerprint.as_deref())?;
            let a = vault.group_add(&session, &group, &user, expected)?;
            if a.pinned_now {
                out.note(&views::pinned_text(&a.user, &a.fingerprint));
            }
            out.note(&views::member_added_text(&a));
            if out.json {
                emitted(out.json_doc(&json!({
                    "group": a.group,
                    "user": a.user,
                    "fingerprint": a.fingerprint.to_string(),
                    "pinned_now": a.pinned_now,
                })))?;
            }
            Ok(())
        }
        GroupCommand::Remove { group, user } => {
            let r = vault.group_remove(&session, &group, &user)?;
            out.note(&views::member_removed_text(&r));
            if out.json {
                emitted(out.json_doc(&json!({
                    "group": r.group,
                    "user": r.user,
                    "epoch": r.epoch,
                    "could_read": r.could_read,
                    "reencrypted": r.reencrypted,
                    "pending": r.pending,
                    "suspended": r.suspended,
                })))?;
            }
            Ok(())
        }
        GroupCommand::List => {
            let groups = vault.group_list(&session)?;
            if out.json {
                let list: Vec<Value> = groups
                    .iter()
                    .map(|g| {
                        json!({
                            "name": g.name,
                            "manager": g.manager,
                            "members": g.members,
                            "member": g.member,
                        })
                    })
                    .collect();
                return emitted(out.json_doc(&json!(list)));
            }
            if groups.is_empty() {
                out.note("No groups yet (`zencrypt group create NAME` makes one).");
                return Ok(());
            }
            emitted(out.data_line(&views::groups_table(&groups)))
        }
        GroupCommand::Show { group } => {
            let g = vault.group_show(&session, &group)?;
            if out.json {
                return emitted(out.json_doc(&views::group_json(&g)));
            }
            emitted(out.data_line(&views::group_text(&g)))
        }
        GroupCommand::Transfer {
            group,
            to,
            fingerprint,
            cancel: _,
        } => {
            let expected = crate::ui::input::fingerprint_arg(fingerprint.as_deref())?;
            let o = vault.group_transfer(&session, &group, to.as_deref(), expected)?;
            out.note(&views::group_offer_text(&o));
            if out.json {
                emitted(out.json_doc(&views::group_offer_json(&o)))?;
            }
            Ok(())
        }
        GroupCommand::Receive => {
            let received = vault.group_receive(&session)?;
            if out.json {
                let list: Vec<Value> = received
                    .iter()
                    .map(|r| json!({ "group": r.group, "from": r.from, "members": r.members }))
                    .collect();
                return emitted(out.json_doc(&json!(list)));
            }
            emitted(out.data_line(&views::groups_received_text(&received)))
        }
    }
}
