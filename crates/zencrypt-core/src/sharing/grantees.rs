//! Whom a record or key is shared with (a user, or a group at one epoch of its keypair),
//! for shares of both: the key a grant wraps to, checked against the session user's
//! pins; the key a reader opens a share with; and how grantees are named to people.

use super::*;
use crate::crypto::keypair::group_fingerprint;

/// Whom a share wraps a key to: a user's pinned key, or a group's current key.
pub(crate) struct Wrapping {
    pub(crate) to: Grantee,
    pub(crate) fingerprint: Fingerprint,
    pub(crate) recipient: age::x25519::Recipient,
}

impl Wrapping {
    fn user(id: i64, keys: &PublicKeys) -> Result<Wrapping> {
        Ok(Wrapping {
            to: Grantee::User(id),
            fingerprint: keys.fingerprint(),
            recipient: keys.age_recipient().ok_or_else(|| not_a_recipient(id))?,
        })
    }

    fn group(group: &groups::Checked) -> Result<Wrapping> {
        Ok(Wrapping {
            to: group.grantee(),
            fingerprint: group.fingerprint(),
            recipient: group.recipient()?,
        })
    }
}

/// The session user's own key as a target (a group's manager taking a record the group
/// reads for themselves).
pub(crate) fn own_target(me: i64, mine: &PublicKeys) -> Result<Wrapping> {
    Wrapping::user(me, mine)
}

/// A new share's grantee, named by the owner (`bob` or `@ops`): the user's key, pinned on
/// first use, or the group's current key, checked. `own` is the error when the owner names
/// themselves ("the key is yours already: ..."); with `confirmed`, the fingerprint the owner was
/// shown, a key that changed meanwhile is refused (exit 7). Returns the target, how it is
/// named and whether a key was pinned just now.
pub(crate) fn new_target(
    tx: &mut dyn Tx,
    session: &Session,
    with: &str,
    own: &str,
    confirmed: Option<Fingerprint>,
) -> Result<(Wrapping, String, bool)> {
    let (to, named, pinned_now) = match groups::group_name(with) {
        Some(g) => {
            let group = groups::load_group(tx, session, g)?;
            (
                Wrapping::group(&group)?,
                format!("@{}", group.row.name),
                false,
            )
        }
        None => {
            let (user, keys, pinned_now) = pinned_keys(tx, session, with)?;
            if user.id == session.user_id.0 {
                return Err(Error::Usage(own.to_string()));
            }
            (Wrapping::user(user.id, &keys)?, user.username, pinned_now)
        }
    };
    if let Some(shown) = confirmed
        && shown != to.fingerprint
    {
        return Err(Error::Integrity(format!(
            "the key of '{named}' is now {}, not the {shown} you confirmed: nothing was shared",
            to.fingerprint
        )));
    }
    Ok((to, named, pinned_now))
}

/// The current target of an existing grant, checked: the user's key as pinned (a key never
/// pinned means the grant did not come from this owner's client; nothing is pinned), or
/// the group's current key under its manager's signature. `None` when the grant is
/// suspended (a disabled recipient or group manager): it gets nothing new. `what` names
/// the record or key shared, for errors.
pub(crate) fn current_target(
    tx: &mut dyn Tx,
    session: &Session,
    to: Grantee,
    what: &str,
) -> Result<Option<Wrapping>> {
    match to {
        Grantee::User(id) => {
            let user = tx
                .user_by_id(id)?
                .ok_or_else(|| no_such_user(&format!("#{id}")))?;
            if user.status != UserStatus::Active {
                return Ok(None);
            }
            let (user, keys) = known_keys(tx, session, &user.username, what)?;
            Wrapping::user(user.id, &keys).map(Some)
        }
        Grantee::Group { id, .. } => {
            let group = tx.group_by_id(id)?.ok_or_else(|| {
                Error::NotFound(format!(
                    "{what} is shared with a group that no longer exists"
                ))
            })?;
            if tx
                .user_by_id(group.manager_id)?
                .is_some_and(|m| m.status != UserStatus::Active)
            {
                return Ok(None);
            }
            let group = groups::check_group(tx, session, group)?;
            Wrapping::group(&group).map(Some)
        }
    }
}

/// The private key a reader opens a share with: their own, or (a member) the group's of
/// the share's epoch, with the fingerprint the owner signed the share for.
pub(crate) struct Opener {
    pub(crate) fingerprint: Fingerprint,
    identity: age::x25519::Identity,
}

impl Opener {
    /// A 32-byte key wrapped to this opener; `None` when it does not open.
    pub(crate) fn unwrap(&self, wrapped: &[u8]) -> Option<Key32> {
        crate::crypto::keypair::unwrap_key_with_any(&[&self.identity], wrapped)
    }

    /// The private key itself.
    pub(crate) fn into_identity(self) -> age::x25519::Identity {
        self.identity
    }
}

/// The session user's opener of a share with `to`; `None` when the share is not for them
/// (another user, a group they are not a member of, an epoch the group never had).
pub(crate) fn opener(tx: &mut dyn Tx, session: &Session, to: Grantee) -> Result<Option<Opener>> {
    match to {
        Grantee::User(id) if id == session.user_id.0 => {
            let (me, _) = own_keypair(tx, session)?;
            Ok(Some(Opener {
                fingerprint: me.public().fingerprint(),
                identity: me.identity().clone(),
            }))
        }
        Grantee::User(_) => Ok(None),
        Grantee::Group { id, epoch } => {
            let Some(group) = tx.group_by_id(id)? else {
                return Ok(None);
            };
            let group = groups::check_group(tx, session, group)?;
            let Some(keys) = groups::member_keys(tx, session, &group)? else {
                return Ok(None);
            };
            Ok(
                groups::key_of_epoch(&group, &keys, epoch).map(|key| Opener {
                    fingerprint: group_fingerprint(&key.recipient()),
                    identity: key.identity().clone(),
                }),
            )
        }
    }
}

/// How a grantee is named to people: a user name, or `@group`.
pub(crate) fn grantee_name(tx: &mut dyn Tx, to: Grantee) -> Result<String> {
    Ok(match to {
        Grantee::User(id) => tx
            .user_by_id(id)?
            .map(|u| u.username)
            .unwrap_or_else(|| format!("#{id}")),
        Grantee::Group { id, .. } => tx
            .group_by_id(id)?
            .map(|g| format!("@{}", g.name))
            .unwrap_or_else(|| format!("@#{id}")),
    })
}

/// A user or `@group` named in an unshare, as a grantee (any epoch), and how it is named.
pub(crate) fn named_grantee(tx: &mut dyn Tx, name: &str) -> Result<(Grantee, String)> {
    match groups::group_name(name) {
        Some(g) => {
            let row = tx
                .group_by_name(g)?
                .ok_or_else(|| Error::NotFound(format!("no group named '@{g}'")))?;
            Ok((
                Grantee::Group {
                    id: row.id,
                    epoch: 0,
                },
                format!("@{}", row.name),
            ))
        }
        None => {
            let user = tx.user_by_name(name)?.ok_or_else(|| no_such_user(name))?;
            Ok((Grantee::User(user.id), user.username))
        }
    }
}
