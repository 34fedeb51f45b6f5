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
    /// Reading the records granted to a service account, and its own `whoami`: service
    /// accounts only.
    Granted,
}

impl Permission {
    /// The least role that holds this permission.
    pub fn least_role(self) -> Role {
        match self {
            Permission::Own => Role::User,
            Permission::ReadAll => Role::Auditor,
            Permission::Administer => Role::Admin,
            Permission::Granted => Role::Service,
        }
    }

    /// What acting on one's own account needs: [`Permission::Own`] for people,
    /// [`Permission::Granted`] for a service account.
    pub fn own_for(role: Role) -> Permission {
        if role == Role::Service {
            Permission::Granted
        } else {
            Permission::Own
        }
    }
}

/// Whether `role` holds `permission`. A service account holds only
/// [`Permission::Granted`], which no person holds.
pub fn allows(role: Role, permission: Permission) -> bool {
    match (role, permission) {
        (Role::Service, p) | (_, p @ Permission::Granted) => {
            role == Role::Service && p == Permission::Granted
        }
        (role, p) => role >= p.least_role(),
    }
}

/// `Ok` when `role` may perform `action`, else a denial naming the role it needs.
pub fn check(role: Role, permission: Permission, action: AuditAction) -> Result<(), Error> {
    if allows(role, permission) {
        Ok(())
    } else if role == Role::Service {
        Err(Error::ServiceDenied(action.as_str().to_string()))
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
            assert!(!allows(role, Granted), "{role}");
        }
        for perm in [Own, ReadAll, Administer] {
            assert!(!allows(Role::Service, perm), "{perm:?}");
        }
        assert!(allows(Role::Service, Granted));
        let e = check(Role::Service, Own, AuditAction::KeyCreate).unwrap_err();
        assert_eq!(
            e.to_string(),
            "permission denied: a service account only reads the records granted to it (key.create)"
        );
        assert_eq!(e.exit_code(), 4);
        let e = check(Role::User, Administer, AuditAction::UserList).unwrap_err();
        assert_eq!(
            e.to_string(),
            "permission denied: user.list requires the admin role"
        );
        assert_eq!(e.exit_code(), 4);
    }
}
