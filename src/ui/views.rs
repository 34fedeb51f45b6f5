//! The tables and texts both front ends show: records, keys, key history and checks,
//! audit entries, usage and users.

use serde_json::{Value, json};

use crate::ui::output::{fitted_table, table};
use zencrypt_core::accounts::UserSummary;
use zencrypt_core::duration;
use zencrypt_core::keys::{CheckReport, KeyInfo, VersionInfo};
use zencrypt_core::model::{AuditEntry, KeyEvent};
use zencrypt_core::records::RecordInfo;
use zencrypt_core::storage::UsageGroup;
use zencrypt_core::usage::UsageRow;

/// Audit records as a table.
pub fn entries_table(rows: &[AuditEntry]) -> String {
    fitted_table(
        &[
            "seq", "at", "actor", "action", "target", "outcome", "detail",
        ],
        rows.iter().map(|e| fields(e)[..7].to_vec()).collect(),
        &["detail", "outcome"],
    )
}

/// Records as a table; on a terminal too narrow for a token and a name side by side,
/// each record takes two lines (its name, then its token and the rest), so that neither
/// is ever wrapped.
pub fn records_table(rows: &[RecordInfo]) -> String {
    let now = duration::now();
    let state = |r: &RecordInfo| {
        if r.deleted_at.is_some() {
            "deleted"
        } else if r.expires_at.is_some_and(|e| now >= e) {
            "expired"
        } else {
            "live"
        }
    };
    let key = |r: &RecordInfo| r.key.clone().unwrap_or_else(|| "(password)".into());
    let text = fitted_table(
        &[
            "token", "name", "version", "updated", "expires", "state", "key",
        ],
        rows.iter()
            .map(|r| {
                vec![
                    r.token.clone(),
                    r.name.clone().unwrap_or_else(|| "-".into()),
                    r.version.to_string(),
                    duration::rfc3339(r.updated_at),
                    r.expires_at
                        .map(duration::rfc3339)
                        .unwrap_or_else(|| "-".into()),
                    state(r).to_string(),
                    key(r),
                ]
            })
            .collect(),
        &["expires", "key", "state", "version", "updated"],
    );
    let fits = |width: usize| text.lines().all(|l| l.chars().count() <= width);
    match crate::ui::output::terminal_width() {
        Some(width) if !fits(width) => rows
            .iter()
            .map(|r| {
                let mut s = format!(
                    "{}\n  {}  v{}  {}  {}",
                    crate::ui::output::printable(r.name.as_deref().unwrap_or("(unnamed)")),
                    r.token,
                    r.version,
                    duration::rfc3339(r.updated_at),
                    state(r),
                );
                let key = format!("key {}", crate::ui::output::printable(&key(r)));
                let mut details = Vec::new();
                if s.lines().last().map_or(0, |l| l.chars().count()) + 2 + key.len() <= width {
                    s.push_str("  ");
                    s.push_str(&key);
                } else {
                    details.push(key);
                }
                if let Some(e) = r.expires_at {
                    details.push(format!("expires {}", duration::rfc3339(e)));
                }
                if !details.is_empty() {
                    s.push_str("\n  ");
                    s.push_str(&details.join("  "));
                }
                s
            })
            .collect::<Vec<_>>()
            .join("\n"),
        _ => text,
    }
}

/// Record names as a tree of their `/` parts, sorted; a leaf shows its version and, when
/// not live, its state. Unnamed records follow by token.
pub fn records_tree(rows: &[RecordInfo]) -> String {
    use std::collections::BTreeMap;
    #[derive(Default)]
    struct Node {
        children: BTreeMap<String, Node>,
        leaf: Option<String>,
    }
    let now = duration::now();
    let mut root = Node::default();
    let mut unnamed = Vec::new();
    for r in rows {
        let note = if r.deleted_at.is_some() {
            format!("v{}, deleted", r.version)
        } else if r.expires_at.is_some_and(|e| now >= e) {
            format!("v{}, expired", r.version)
        } else {
            format!("v{}", r.version)
        };
        match &r.name {
            Some(name) => {
                let mut node = &mut root;
                for part in name.split('/') {
                    node = node.children.entry(part.to_string()).or_default();
                }
                node.leaf = Some(match node.leaf.take() {
                    Some(earlier) => format!("{earlier}; {note}"),
                    None => note,
                });
            }
            None => unnamed.push(format!("{}  ({note})", r.token)),
        }
    }
    fn draw(node: &Node, prefix: &str, out: &mut Vec<String>) {
        let n = node.children.len();
        for (i, (part, child)) in node.children.iter().enumerate() {
            let last = i + 1 == n;
            let branch = if last { "└── " } else { "├── " };
            let mut line = format!("{prefix}{branch}{}", crate::ui::output::printable(part));
            if let Some(leaf) = &child.leaf {
                line.push_str(&format!("  ({leaf})"));
            }
            out.push(line);
            let deeper = format!("{prefix}{}", if last { "    " } else { "│   " });
            draw(child, &deeper, out);
        }
    }
    let mut out = Vec::new();
    draw(&root, "", &mut out);
    out.extend(unnamed);
    out.join("\n")
}

/// A record's versions as a table (newest first).
pub fn versions_table(rows: &[zencrypt_core::records::VersionInfo]) -> String {
    table(
        &["version", "written", "wrapped by", ""],
        rows.iter()
            .map(|v| {
                vec![
                    v.version.to_string(),
                    duration::rfc3339(v.written_at),
                    match &v.key {
                        Some((name, version)) => format!("{name} v{version}"),
                        None => "(password)".into(),
                    },
                    if v.current { "current" } else { "" }.to_string(),
                ]
            })
            .collect(),
    )
}

/// A record's versions as JSON.
pub fn versions_json(r: &RecordInfo, rows: &[zencrypt_core::records::VersionInfo]) -> Value {
    json!({
        "token": r.token,
        "name": r.name,
        "version": r.version,
        "versions": rows.iter().map(|v| json!({
            "version": v.version,
            "written_at": duration::rfc3339(v.written_at),
            "key": v.key.as_ref().map(|(n, _)| n),
            "key_version": v.key.as_ref().map(|(_, k)| k),
            "protected": v.protected,
            "current": v.current,
        })).collect::<Vec<_>>(),
    })
}

/// Keys as a table.
pub fn keys_table(keys: &[KeyInfo]) -> String {
    fitted_table(
        &["name", "version", "status", "rotation", "expires", "notes"],
        keys.iter()
            .map(|i| {
                let k = &i.key;
                let mut notes = Vec::new();
                if i.due {
                    notes.push("rotation due");
                }
                if i.expired {
                    notes.push("expired");
                }
                if k.exportable {
                    notes.push("exportable");
                }
                vec![
                    k.name.clone(),
                    k.latest_version.to_string(),
                    k.status.as_str().to_string(),
                    k.rotation_period
                        .map(|p| format!("every {}", duration::format(p as u64)))
                        .unwrap_or_else(|| "-".into()),
                    k.expires_at
                        .map(duration::rfc3339)
                        .unwrap_or_else(|| "-".into()),
                    notes.join(", "),
                ]
            })
            .collect(),
        &["notes", "rotation", "expires"],
    )
}

/// One key with its versions as text.
pub fn show_text(i: &KeyInfo, versions: &[VersionInfo]) -> String {
    let k = &i.key;
    let mut s = format!(
        "name: {}\nstatus: {}\nlatest version: {}\nminimum decryption version: {}\nexportable: {}\nrotation: {}\nexpires: {}\ncreated: {}\n",
        k.name,
        k.status.as_str(),
        k.latest_version,
        k.min_decrypt_version,
        if k.exportable { "yes" } else { "no" },
        k.rotation_period
            .map(|p| format!(
                "every {}{}",
                duration::format(p as u64),
                if i.due { " (due now)" } else { "" }
            ))
            .unwrap_or_else(|| "manual".into()),
        k.expires_at
            .map(|e| format!(
                "{}{}",
                duration::rfc3339(e),
                if i.expired { " (expired)" } else { "" }
            ))
            .unwrap_or_else(|| "never".into()),
        duration::rfc3339(k.created_at),
    );
    s.push('\n');
    s.push_str(&table(
        &["version", "created", "encryptions", "bytes", "material"],
        versions
            .iter()
            .map(|v| {
                vec![
                    v.version.to_string(),
                    duration::rfc3339(v.created_at),
                    v.encryptions.to_string(),
                    v.bytes.to_string(),
                    if v.destroyed { "destroyed" } else { "present" }.to_string(),
                ]
            })
            .collect(),
    ));
    s
}

/// The lifecycle log as a table.
pub fn history_table(events: &[KeyEvent]) -> String {
    fitted_table(
        &["at", "event", "version", "actor", "detail"],
        events
            .iter()
            .map(|e| {
                vec![
                    duration::rfc3339(e.at),
                    e.event.clone(),
                    e.version
                        .map(|v| v.to_string())
                        .unwrap_or_else(|| "-".into()),
                    e.actor.clone(),
                    if e.detail == "{}" {
                        String::new()
                    } else {
                        e.detail.clone()
                    },
                ]
            })
            .collect(),
        &["detail", "actor"],
    )
}

/// The check report as text.
pub fn check_text(r: &CheckReport) -> String {
    if r.is_clear() {
        return "All keys are fine: none due for rotation, expired or near the encryption limit."
            .into();
    }
    let mut lines = Vec::new();
    for (label, names) in [
        ("rotation due", &r.due),
        ("expired", &r.expired),
        ("near the encryption limit", &r.near_limit),
    ] {
        if !names.is_empty() {
            lines.push(format!("{label}: {}", names.join(", ")));
        }
    }
    lines.join("\n")
}

/// A report as a table.
pub fn usage_table(by: UsageGroup, rows: &[UsageRow]) -> String {
    table(
        &[by.field(), "count", "bytes"],
        rows.iter()
            .map(|r| vec![r.group.clone(), r.count.to_string(), r.bytes.to_string()])
            .collect(),
    )
}

/// Users as a table.
pub fn users_table(users: &[UserSummary]) -> String {
    fitted_table(
        &["username", "role", "status", "created", "last login"],
        users
            .iter()
            .map(|u| {
                vec![
                    u.username.clone(),
                    u.role.to_string(),
                    u.state().to_string(),
                    duration::rfc3339(u.created_at),
                    u.last_login_at
                        .map(duration::rfc3339)
                        .unwrap_or_else(|| "never".into()),
                ]
            })
            .collect(),
        &["created", "last login"],
    )
}

/// A record's fields as text: seq, at, actor, action, target, outcome, detail, prev_mac,
/// mac.
pub fn fields(e: &AuditEntry) -> Vec<String> {
    vec![
        e.seq.to_string(),
        duration::rfc3339(e.at),
        e.actor.clone(),
        e.action.clone(),
        e.target.clone(),
        e.outcome.as_str().to_string(),
        e.detail.clone(),
        zencrypt_core::crypto::hex(&e.prev_mac),
        zencrypt_core::crypto::hex(&e.mac),
    ]
}

/// A record as JSON (the `data list` shape).
pub fn record_json(r: &RecordInfo) -> Value {
    let mut doc = json!({
        "token": r.token,
        "name": r.name,
        "version": r.version,
        "created_at": duration::rfc3339(r.created_at),
        "updated_at": duration::rfc3339(r.updated_at),
        "expires_at": r.expires_at.map(duration::rfc3339),
        "deleted_at": r.deleted_at.map(duration::rfc3339),
        "protected": r.protected,
        "key": r.key,
    });
    if let Some(owner) = &r.owner {
        doc["owner"] = json!(owner);
    }
    doc
}

/// Service accounts as `service list` shows them: one line each, its grants and live
/// tokens counted (the grants themselves with `--json`).
pub fn services_table(services: &[zencrypt_core::services::ServiceInfo]) -> String {
    let now = duration::now();
    fitted_table(
        &[
            "service",
            "owner",
            "status",
            "grants",
            "readable",
            "live tokens",
        ],
        services
            .iter()
            .map(|s| {
                let live = s
                    .tokens
                    .iter()
                    .filter(|t| t.revoked_at.is_none() && t.expires_at > now)
                    .count();
                vec![
                    s.name.clone(),
                    s.owner.clone(),
                    s.status.as_str().to_string(),
                    s.grants
                        .as_ref()
                        .map_or_else(|| "-".to_string(), |g| g.join(" ")),
                    s.readable
                        .map_or_else(|| "-".to_string(), |n| n.to_string()),
                    live.to_string(),
                ]
            })
            .collect(),
        &["readable", "status"],
    )
}

/// A service account's tokens, newest first (never the tokens themselves).
pub fn tokens_table(tokens: &[zencrypt_core::services::TokenInfo]) -> String {
    let now = duration::now();
    fitted_table(
        &["token id", "created", "expires", "state"],
        tokens
            .iter()
            .map(|t| {
                let state = match t.revoked_at {
                    Some(_) => "revoked",
                    None if t.expires_at <= now => "expired",
                    None => "live",
                };
                vec![
                    t.id.clone(),
                    duration::rfc3339(t.created_at),
                    duration::rfc3339(t.expires_at),
                    state.to_string(),
                ]
            })
            .collect(),
        &["created"],
    )
}

/// What `data unshare` did, in words (within 80 columns).
pub fn unshared_text(reference: &str, from: &str, u: &zencrypt_core::sharing::Unshared) -> String {
    let mut lines = vec![if u.reencrypted {
        format!(
            "Stopped sharing {reference} with {from}; re-encrypted as version {}.",
            u.version
        )
    } else {
        format!(
            "Stopped sharing {reference} with {from}. Not re-encrypted (its key may no\n\
             longer encrypt, or it is deleted): {from}'s old data key opens this version\n\
             until the record is written again under a usable key."
        )
    }];
    if u.all_ended {
        lines.push(
            "Its share rows were changed outside zencrypt: every share of it ended.\n\
             Share it again with those who should have it."
                .into(),
        );
    }
    if !u.also_ended.is_empty() {
        lines.push(format!(
            "Also ended (their keys could not be wrapped for): {}.",
            u.also_ended.join(", ")
        ));
    }
    lines.push(format!(
        "What {from} already read cannot be taken back: rotate it at its source\n\
         if that matters."
    ));
    lines.join("\n")
}

/// What `data share` did, in words: the access given and how the recipient names it.
pub fn shared_text(s: &zencrypt_core::sharing::Shared, owner: &str) -> String {
    let shown = s.name.clone().unwrap_or_else(|| s.token.clone());
    let verb = if s.changed {
        "Changed the share of"
    } else {
        "Shared"
    };
    let mut text = format!(
        "{verb} {shown} with {} ({}). They read it as:\n  {owner}:{shown}",
        s.with,
        if s.write {
            "read and write"
        } else {
            "read-only"
        }
    );
    if s.write {
        text.push_str(&format!(
            "\nand replace its value with `zencrypt data update {owner}:{shown}`; your client\n\
             makes each such write the record's next version at your next command."
        ));
    }
    text
}

/// What `key share` did, in words.
pub fn key_shared_text(s: &zencrypt_core::sharing::KeyShared) -> String {
    let versions: Vec<String> = s.versions.iter().map(i64::to_string).collect();
    format!(
        "{} key {} with {} ({}): version(s) {}; later versions follow\n\
         at each rotation.",
        if s.changed {
            "Changed the share of"
        } else {
            "Shared"
        },
        s.name,
        s.with,
        if s.write {
            "decrypt and encrypt"
        } else {
            "decrypt only"
        },
        versions.join(", ")
    )
}

/// What `user remove` did, in words.
pub fn removed_text(r: &zencrypt_core::sharing::Removed) -> String {
    let mut text = format!(
        "Removed {}: their data can no longer be opened by anyone; {} session(s) ended.",
        r.username, r.sessions_revoked
    );
    if !r.services.is_empty() {
        text.push_str(&format!(
            "\nTheir service accounts went with them: {}.",
            r.services.join(", ")
        ));
    }
    if r.keys_unshared > 0 {
        text.push_str(&format!(
            "\n{} key(s) of theirs are no longer shared: files under them no longer open.",
            r.keys_unshared
        ));
    }
    text
}

/// What `data transfer` did, in words.
pub fn transferred_text(t: &zencrypt_core::sharing::Transferred) -> String {
    let taken = format!(
        "Handed {} to {}: it becomes theirs when they run `zencrypt data receive`.",
        t.record, t.to
    );
    if t.own {
        format!(
            "{taken}\nIt is deleted on your side (`zencrypt data restore {}` takes it back).",
            t.record
        )
    } else {
        format!("{taken}\nIts owner's record stays as it is.")
    }
}

/// What `data receive` did, one line per transfer.
pub fn received_text(all: &[zencrypt_core::sharing::Received]) -> String {
    use zencrypt_core::sharing::Receipt;
    if all.is_empty() {
        return "No record is waiting for you.".into();
    }
    all.iter()
        .map(|r| {
            let given = if r.by == r.from {
                format!("from {}", r.from)
            } else {
                format!("from {} (handed on by {})", r.from, r.by)
            };
            match &r.outcome {
                Receipt::Taken { token, name } => format!(
                    "Received {} {given}: {token}",
                    name.as_deref().unwrap_or("a record")
                ),
                Receipt::Waiting(why) => format!("Still waiting: {} {given}: {why}", r.token),
                Receipt::Dropped(why) => format!("Dropped {} {given}: {why}", r.token),
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// What `data update` did: an own record's new version, or a write to a shared record.
pub fn updated_text(r: &RecordInfo) -> String {
    match &r.owner {
        None => format!("Updated {} to version {}.", r.token, r.version),
        Some(owner) => format!(
            "Wrote {owner}:{} as version {}: everyone it is shared with reads it now;\n\
             {owner}'s client makes it the record's version at {owner}'s next command.",
            r.name.as_deref().unwrap_or(&r.token),
            r.version
        ),
    }
}

/// Said when a share pinned the recipient's key for the first time.
pub fn pinned_text(
    with: &str,
    fingerprint: &zencrypt_core::crypto::keypair::Fingerprint,
) -> String {
    format!(
        "Pinned {with}'s key: {fingerprint}\nCompare it with theirs (`zencrypt account pubkey` on their side)."
    )
}

/// How a user's key stands against the viewer's pins, in words.
pub fn pin_words(pin: zencrypt_core::sharing::PinState) -> String {
    match pin {
        zencrypt_core::sharing::PinState::Own => "your own key".into(),
        zencrypt_core::sharing::PinState::Pinned => "pinned by you".into(),
        zencrypt_core::sharing::PinState::NotPinned => {
            "not pinned yet: compare it with them; the first share pins it".into()
        }
        zencrypt_core::sharing::PinState::Changed(old) => format!("CHANGED since you pinned {old}"),
    }
}

/// `user show` as text: one field a line.
pub fn user_card_text(card: &zencrypt_core::sharing::UserCard) -> String {
    let mut lines = vec![
        format!("User:        {}", card.username),
        format!("Role:        {}", card.role),
        format!("Status:      {}", card.status.as_str()),
    ];
    match &card.key {
        Some(k) => {
            lines.push(format!("Fingerprint: {}", k.fingerprint));
            lines.push(format!("Recipient:   {}", k.recipient));
            lines.push(format!("Pin:         {}", pin_words(card.pin)));
        }
        None => lines.push("Fingerprint: none yet (made at their next login)".into()),
    }
    lines.join("\n")
}

/// `user show` as JSON.
pub fn user_card_json(card: &zencrypt_core::sharing::UserCard) -> serde_json::Value {
    let (pin, pinned) = match card.pin {
        zencrypt_core::sharing::PinState::Own => ("own", None),
        zencrypt_core::sharing::PinState::Pinned => ("pinned", None),
        zencrypt_core::sharing::PinState::NotPinned => ("not_pinned", None),
        zencrypt_core::sharing::PinState::Changed(old) => ("changed", Some(old.to_string())),
    };
    json!({
        "username": card.username,
        "role": card.role.as_str(),
        "status": card.status.as_str(),
        "fingerprint": card.key.as_ref().map(|k| k.fingerprint.to_string()),
        "recipient": card.key.as_ref().map(|k| k.recipient.clone()),
        "pin": pin,
        "pinned_fingerprint": pinned,
    })
}

/// `group list` as a table.
pub fn groups_table(groups: &[zencrypt_core::sharing::GroupSummary]) -> String {
    fitted_table(
        &["group", "manager", "members", "you"],
        groups
            .iter()
            .map(|g| {
                vec![
                    format!("@{}", g.name),
                    g.manager.clone(),
                    g.members.to_string(),
                    if g.member { "member" } else { "-" }.to_string(),
                ]
            })
            .collect(),
        &["you", "members"],
    )
}

/// `group show` (and `group create`) as text: one field a line.
pub fn group_text(g: &zencrypt_core::sharing::GroupInfo) -> String {
    let mut lines = vec![
        format!("Group:       @{}", g.name),
        format!("Manager:     {}", g.manager),
    ];
    if let Some(to) = &g.offered_to {
        lines.push(format!(
            "Offered to:  {to} (manages it once they run `zencrypt group receive`)"
        ));
    }
    lines.extend([
        format!("Members:     {}", g.members.join(", ")),
        format!("Fingerprint: {}", g.fingerprint),
        format!("Recipient:   {}", g.recipient),
        format!(
            "Epoch:       {} (a new key each time a member is removed)",
            g.epoch
        ),
    ]);
    lines.join("\n")
}

/// `group show` as JSON.
pub fn group_json(g: &zencrypt_core::sharing::GroupInfo) -> serde_json::Value {
    json!({
        "name": g.name,
        "manager": g.manager,
        "members": g.members,
        "fingerprint": g.fingerprint.to_string(),
        "recipient": g.recipient,
        "epoch": g.epoch,
        "created_at": duration::rfc3339(g.created_at),
        "offered_to": g.offered_to,
    })
}

/// What `group transfer` did, in words.
pub fn group_offer_text(o: &zencrypt_core::sharing::GroupOffer) -> String {
    use zencrypt_core::sharing::GroupOffer;
    match o {
        GroupOffer::Made {
            group,
            to,
            fingerprint,
        } => format!(
            "Offered @{group} to {to} (key {fingerprint}): they manage it once they run \
             `zencrypt group receive`; until then you do, and `group transfer {group} \
             --cancel` withdraws the offer."
        ),
        GroupOffer::Withdrawn { group, was } => {
            format!("Withdrew the offer of @{group} to {was}.")
        }
    }
}

/// What `group transfer` did, as JSON.
pub fn group_offer_json(o: &zencrypt_core::sharing::GroupOffer) -> serde_json::Value {
    use zencrypt_core::sharing::GroupOffer;
    match o {
        GroupOffer::Made {
            group,
            to,
            fingerprint,
        } => json!({ "group": group, "to": to, "fingerprint": fingerprint.to_string() }),
        GroupOffer::Withdrawn { group, was } => {
            json!({ "group": group, "to": null, "withdrawn": was })
        }
    }
}

/// What `group create` did, in words.
pub fn group_created_text(g: &zencrypt_core::sharing::GroupInfo) -> String {
    format!(
        "Created @{} with you as its manager and first member.",
        g.name
    )
}

/// What `group add` did, in words.
pub fn member_added_text(a: &zencrypt_core::sharing::MemberAdded) -> String {
    format!(
        "Added {} to @{}: they read what is shared with @{} from now on.",
        a.user, a.group, a.group
    )
}

/// What `group receive` did, in words.
pub fn groups_received_text(received: &[zencrypt_core::sharing::GroupReceived]) -> String {
    if received.is_empty() {
        return "No group is offered to you.".to_string();
    }
    received
        .iter()
        .map(|r| {
            format!(
                "You manage @{} now (handed over by {}; {} member rows signed with your key).",
                r.group, r.from, r.members
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// What `group remove` did, in words.
pub fn member_removed_text(r: &zencrypt_core::sharing::MemberRemoved) -> String {
    let mut lines = vec![format!(
        "Removed {} from @{}; the group has a new key (epoch {}).",
        r.user, r.group, r.epoch
    )];
    if r.could_read.is_empty() {
        lines.push(format!("Nothing was shared with @{}.", r.group));
    } else {
        lines.push(format!("{} could read through @{}:", r.user, r.group));
        lines.extend(r.could_read.iter().map(|c| format!("  {c}")));
    }
    if !r.reencrypted.is_empty() {
        lines.push(format!(
            "Re-encrypted now under new data keys: {}.",
            r.reencrypted.join(", ")
        ));
    }
    if !r.pending.is_empty() {
        lines.push(format!(
            "Re-encrypted at their owner's next zencrypt command: {}.",
            r.pending.join(", ")
        ));
    }
    if !r.suspended.is_empty() {
        lines.push(format!(
            "Without the new key (disabled, or a key you have not trusted; add them again once settled): {}.",
            r.suspended.join(", ")
        ));
    }
    if !r.could_read.is_empty() {
        lines.push(format!(
            "What {} already read, they know: rotate those secrets at their source if that matters.",
            r.user
        ));
    }
    lines.join("\n")
}
