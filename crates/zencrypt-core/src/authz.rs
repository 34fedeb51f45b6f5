//! Authorization: which role may do what (the rules below). Checked in the domain layer for
//! every action, against the role read from the database.

use crate::error::Error;
use crate::events::AuditAction;
use crate::model::Role;

/// What an action needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Permission {
    /// The user's own keys, data, usage and audit records: every role.
    Own,
    /// Everyone's usage and audit records, `audit verify`: auditors and admins.
    ReadAll,
    /// User administration: admins.
    Administer,
}

impl Permission {
    /// The least role that holds this permission.
    pub fn least_role(self) -> Role {
        match self {
            Permission::Own => Role::User,
            Permission::ReadAll => Role::Auditor,
            Permission::Administer => Role::Admin,
        }
    }
}

/// Whether `role` holds `permission`.
pub fn allows(role: Role, permission: Permission) -> bool {
    role >= permission.least_role()
}

/// `Ok` when `role` may perform `action`, else a denial naming the role it needs.
pub fn check(role: Role, permission: Permission, action: AuditAction) -> Result<(), Error> {
    if allows(role, permission) {
        Ok(())
    } else {
        Err(Error::Denied {
            action: action.as_str().to_string(),
            needs: permission.least_role().to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_design_matrix() {
        use Permission::*;
        let expect = [
            (Role::User, [true, false, false]),
            (Role::Auditor, [true, true, false]),
            (Role::Admin, [true, true, true]),
        ];
        for (role, row) in expect {
            for (perm, want) in [Own, ReadAll, Administer].into_iter().zip(row) {
                assert_eq!(allows(role, perm), want, "{role} {perm:?}");
            }
        }
        let e = check(Role::User, Administer, AuditAction::UserList).unwrap_err();
        assert_eq!(
            e.to_string(),
            "permission denied: user.list requires the admin role"
        );
        assert_eq!(e.exit_code(), 4);
    }
}
