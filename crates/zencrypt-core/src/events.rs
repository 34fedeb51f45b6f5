//! What the logs record: audit actions, key lifecycle events and usage operations. Each
//! is stored as the text [`as_str`](AuditAction::as_str) returns.

use std::fmt;

macro_rules! names {
    (
        $(#[$doc:meta])*
        pub enum $name:ident {
            $($(#[$vdoc:meta])* $variant:ident => $text:literal,)*
        }
    ) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name {
            $($(#[$vdoc])* $variant,)*
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant,)*];

            /// The text stored and shown.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text,)*
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

names! {
    /// An audited action: `family.verb`, so that a family can be listed by its prefix.
    pub enum AuditAction {
        /// An account was created by signing up.
        AuthSignup => "auth.signup",
        /// A login.
        AuthLogin => "auth.login",
        /// A logout.
        AuthLogout => "auth.logout",
        /// Who the session belongs to.
        AuthWhoami => "auth.whoami",
        /// A password change.
        AuthPasswd => "auth.passwd",
        /// A new recovery key replaced the old one.
        AuthRecoveryKey => "auth.recovery-key",
        /// A password was reset with a recovery key.
        AuthRecover => "auth.recover",
        /// A session token that did not validate.
        SessionCheck => "session.check",
        /// The users were listed.
        UserList => "user.list",
        /// An administrator created an account.
        UserAdd => "user.add",
        /// A user's role changed.
        UserRole => "user.role",
        /// A user was enabled.
        UserEnable => "user.enable",
        /// A user was disabled.
        UserDisable => "user.disable",
        /// A user was removed for good (their data crypto-shredded).
        UserRemove => "user.remove",
        /// A user's sessions were revoked.
        UserRevoke => "user.revoke",
        /// An owner granted records to a service account.
        ServiceGrant => "service.grant",
        /// An owner took a grant back.
        ServiceUngrant => "service.ungrant",
        /// An owner issued a token of a service account.
        ServiceToken => "service.token",
        /// Tokens of a service account were revoked.
        ServiceRevoke => "service.revoke",
        /// Service accounts were listed.
        ServiceList => "service.list",
        /// A user's rows from before row bindings were bound.
        AccountBindRows => "account.bind-rows",
        /// The user's public key was shown (and made, the first time).
        AccountPubkey => "account.pubkey",
        /// Another user's public key fingerprint was shown.
        UserShow => "user.show",
        /// A user's public key was pinned on first use.
        UserPin => "user.pin",
        /// A user's changed public key was trusted after comparing fingerprints.
        UserTrust => "user.trust",
        /// A database from before row bindings was bound.
        DbBindRows => "db.bind-rows",
        /// The database status was read.
        DbStatus => "db.status",
        /// The database was backed up.
        DbBackup => "db.backup",
        /// `db copy`, in the source.
        DbCopy => "db.copy",
        /// A copy's hand-over entry, the first written in the copy.
        DbCopiedFrom => "db.copied-from",
        /// The schema was migrated (`db migrate`), recorded once the new schema is in.
        DbMigrate => "db.migrate",
        /// A restored database's audit head was accepted.
        AuditAcceptHead => "audit.accept-head",
        /// The audit key was rotated: the hand-over entry, the first under the new key.
        AuditKeyRotate => "audit.key-rotate",
        /// Audit rows were listed.
        AuditList => "audit.list",
        /// The audit head was taken as a checkpoint.
        AuditCheckpoint => "audit.checkpoint",
        /// Audit rows were exported.
        AuditExport => "audit.export",
        /// The audit chain was verified.
        AuditVerify => "audit.verify",
        /// A key was created.
        KeyCreate => "key.create",
        /// A key was imported.
        KeyImport => "key.import",
        /// Keys were listed.
        KeyList => "key.list",
        /// A key was shown.
        KeyShow => "key.show",
        /// A key's lifecycle log was read.
        KeyHistory => "key.history",
        /// A key was rotated.
        KeyRotate => "key.rotate",
        /// Keys were checked for due rotations, expiry and the encryption limit.
        KeyCheck => "key.check",
        /// A key's settings changed.
        KeySet => "key.set",
        /// A key's material was exported.
        KeyExport => "key.export",
        /// A key was enabled.
        KeyEnable => "key.enable",
        /// A key was disabled.
        KeyDisable => "key.disable",
        /// A key's material was destroyed.
        KeyDestroy => "key.destroy",
        /// An expired key was refused for encryption.
        KeyExpiredOnUse => "key.expired-on-use",
        /// A message was encrypted.
        CryptoEncrypt => "crypto.encrypt",
        /// A message was decrypted.
        CryptoDecrypt => "crypto.decrypt",
        /// A message's data key was rewrapped.
        CryptoRewrap => "crypto.rewrap",
        /// A record was stored.
        DataPut => "data.put",
        /// Records were read.
        DataGet => "data.get",
        /// A record's value was replaced.
        DataUpdate => "data.update",
        /// Records were listed.
        DataList => "data.list",
        /// A record's earlier versions were listed.
        DataHistory => "data.history",
        /// A record was set back to an earlier version's value (as a new version).
        DataRollback => "data.rollback",
        /// Records were deleted.
        DataRm => "data.rm",
        /// A deleted record was restored.
        DataRestore => "data.restore",
        /// Expired or deleted records were purged.
        DataPurge => "data.purge",
        /// A record password was changed.
        DataRekey => "data.rekey",
        /// Records were imported.
        DataImport => "data.import",
        /// Records were exported.
        DataExport => "data.export",
        /// A named key was shared with a user.
        KeyShare => "key.share",
        /// A named key's share with a user ended.
        KeyUnshare => "key.unshare",
        /// A record was shared with a user.
        DataShare => "data.share",
        /// A record's share with a user ended (and the record was re-encrypted).
        DataUnshare => "data.unshare",
        /// A value a recipient wrote was taken in (or dropped) by the owner's client.
        DataTake => "data.take",
        /// A record was handed to another user.
        DataTransfer => "data.transfer",
        /// A record handed to this user was taken in (or dropped) by their client.
        DataReceive => "data.receive",
        /// A group was made.
        GroupCreate => "group.create",
        /// A member was added to a group.
        GroupAdd => "group.add",
        /// A member was removed from a group (its keypair replaced).
        GroupRemove => "group.remove",
        /// Groups were listed.
        GroupList => "group.list",
        /// A group was shown.
        GroupShow => "group.show",
        /// Records shared with a group were re-encrypted for the group's new keypair.
        GroupRekey => "group.rekey",
        /// A group was offered to a member to manage (or the offer withdrawn).
        GroupTransfer => "group.transfer",
        /// Groups offered to this user were taken over.
        GroupReceive => "group.receive",
        /// A usage report was read.
        Usage => "usage",
    }
}

names! {
    /// An entry of a key's lifecycle log.
    pub enum KeyEventKind {
        /// Made with random material.
        Created => "created",
        /// Made with material supplied by the user.
        Imported => "imported",
        /// A new version became the latest.
        Rotated => "rotated",
        /// Records' data keys moved to the latest version.
        Rewrapped => "rewrapped",
        /// Refused for encryption after its expiry.
        ExpiredOnUse => "expired-on-use",
        /// Disabled.
        Disabled => "disabled",
        /// Enabled again.
        Enabled => "enabled",
        /// Every version's material wiped.
        Destroyed => "destroyed",
        /// A version's material exported.
        Exported => "exported",
        /// The minimum decryption version changed.
        MinDecryptionChanged => "min-decryption-changed",
        /// The rotation period or expiry changed.
        SettingsChanged => "settings-changed",
    }
}

names! {
    /// An operation of the usage log.
    pub enum UsageOp {
        /// A message encrypted.
        Encrypt => "encrypt",
        /// A message decrypted.
        Decrypt => "decrypt",
        /// Data keys moved to a key's latest version.
        Rewrap => "rewrap",
        /// A key's material exported.
        Export => "export",
        /// A record stored.
        DataPut => "data.put",
        /// A record read.
        DataGet => "data.get",
        /// A record's value replaced.
        DataUpdate => "data.update",
        /// A record exported.
        DataExport => "data.export",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    fn distinct(texts: impl Iterator<Item = &'static str>) -> bool {
        let mut seen = HashSet::new();
        texts.into_iter().all(|t| seen.insert(t))
    }

    #[test]
    fn every_name_is_distinct_and_lowercase() {
        assert!(distinct(AuditAction::ALL.iter().map(|a| a.as_str())));
        assert!(distinct(KeyEventKind::ALL.iter().map(|e| e.as_str())));
        assert!(distinct(UsageOp::ALL.iter().map(|o| o.as_str())));
        let all = AuditAction::ALL
            .iter()
            .map(|a| a.as_str())
            .chain(KeyEventKind::ALL.iter().map(|e| e.as_str()))
            .chain(UsageOp::ALL.iter().map(|o| o.as_str()));
        for t in all {
            assert!(
                t.bytes()
                    .all(|b| b.is_ascii_lowercase() || b == b'.' || b == b'-'),
                "{t}"
            );
        }
    }

    #[test]
    fn audit_actions_are_a_family_and_a_verb() {
        for a in AuditAction::ALL {
            let t = a.as_str();
            assert!(*a == AuditAction::Usage || t.split('.').count() == 2, "{t}");
        }
        assert_eq!(
            AuditAction::KeyExpiredOnUse.to_string(),
            "key.expired-on-use"
        );
    }
}
