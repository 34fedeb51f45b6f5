//! Handing a group over (docs/sharing.md, "Handing a group over"). The manager offers the
//! group to a member: a *link* signed with the manager's key names the member and the
//! fingerprint of their key, and is appended to the group row. The member takes it over
//! with `group receive`: they sign the group row and every member row with their own key.
//! Whoever pinned the earlier manager follows the links from that manager, each checked
//! under the key the link before it named, and pins the new manager; a pin also counts
//! the hand-overs seen, so a row rolled back to before a hand-over is refused.

use super::*;
use crate::crypto::keypair::SIGNATURE_LEN;

/// One hand-over: `from`, whose public keys are `from_keys` (kept in the link, so that it
/// still verifies once `from`'s account is removed), signed that `to`, whose key has
/// `to_fingerprint`, manages the group at `epoch` after the hand-over numbered `index` (0
/// first). A link from a manager to themselves is *void*: it stands where an offer was
/// withdrawn, so that the offer no longer fits its place in the chain.
#[derive(Clone, PartialEq, Eq)]
pub(super) struct Link {
    pub(super) from: i64,
    pub(super) to: i64,
    pub(super) epoch: i64,
    pub(super) to_fingerprint: Fingerprint,
    pub(super) from_keys: PublicKeys,
    pub(super) signature: [u8; SIGNATURE_LEN],
}

impl std::fmt::Debug for Link {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Link")
            .field("from", &self.from)
            .field("to", &self.to)
            .finish_non_exhaustive()
    }
}

/// What a manager signs to hand a group over.
fn link_message(group: &GroupRow, index: usize, l: &Link) -> Vec<u8> {
    Aad::new("zencrypt group handover v1")
        .int(group.id)
        .field(&group.name)
        .int(i64::try_from(index).unwrap_or(i64::MAX))
        .int(l.from)
        .int(l.to)
        .int(l.epoch)
        .field(l.to_fingerprint.0)
        .as_bytes()
        .to_vec()
}

impl Link {
    /// A link signed by `manager` (the session user, `from`) at the group's current epoch,
    /// at place `index`.
    fn signed(
        manager: &Keypair,
        from: i64,
        group: &GroupRow,
        index: usize,
        to: i64,
        to_fingerprint: Fingerprint,
    ) -> Link {
        let mut link = Link {
            from,
            to,
            epoch: group.epoch,
            to_fingerprint,
            from_keys: manager.public().clone(),
            signature: [0; SIGNATURE_LEN],
        };
        link.signature = manager.sign(&link_message(group, index, &link));
        link
    }

    fn verifies(&self, group: &GroupRow, index: usize) -> bool {
        self.from_keys
            .verifies(&link_message(group, index, self), &self.signature)
    }
}

/// The links as stored: each is `from`, `to`, `epoch` (8 bytes each), the fingerprint, the
/// signing key, the signature, then the age recipient with a 2-byte length.
pub(crate) fn encode(links: &[Link]) -> Vec<u8> {
    let mut out = Vec::new();
    for l in links {
        out.extend_from_slice(&l.from.to_be_bytes());
        out.extend_from_slice(&l.to.to_be_bytes());
        out.extend_from_slice(&l.epoch.to_be_bytes());
        out.extend_from_slice(&l.to_fingerprint.0);
        out.extend_from_slice(&l.from_keys.signing);
        out.extend_from_slice(&l.signature);
        let recipient = l.from_keys.recipient.as_bytes();
        out.extend_from_slice(&(recipient.len() as u16).to_be_bytes());
        out.extend_from_slice(recipient);
    }
    out
}

/// The links of [`encode`]; `None` when the bytes are not a whole number of them.
pub(crate) fn decode(mut bytes: &[u8]) -> Option<Vec<Link>> {
    let mut links = Vec::new();
    while !bytes.is_empty() {
        let (from, rest) = bytes.split_first_chunk::<8>()?;
        let (to, rest) = rest.split_first_chunk::<8>()?;
        let (epoch, rest) = rest.split_first_chunk::<8>()?;
        let (fp, rest) = rest.split_first_chunk::<FINGERPRINT_LEN>()?;
        let (signing, rest) = rest.split_first_chunk::<32>()?;
        let (signature, rest) = rest.split_first_chunk::<SIGNATURE_LEN>()?;
        let (len, rest) = rest.split_first_chunk::<2>()?;
        let len = usize::from(u16::from_be_bytes(*len));
        let recipient = std::str::from_utf8(rest.get(..len)?).ok()?.to_string();
        links.push(Link {
            from: i64::from_be_bytes(*from),
            to: i64::from_be_bytes(*to),
            epoch: i64::from_be_bytes(*epoch),
            to_fingerprint: Fingerprint(*fp),
            from_keys: PublicKeys {
                recipient,
                signing: *signing,
            },
            signature: *signature,
        });
        bytes = &rest[len..];
    }
    Some(links)
}

/// A group row's hand-over links as stored (`GroupRow::handovers`), decoded; for checks of
/// the format (the fuzz harness).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HandoverChain(Vec<Link>);

impl HandoverChain {
    /// The links in `bytes`; `None` when they are not a whole number of links.
    pub fn decode(bytes: &[u8]) -> Option<HandoverChain> {
        decode(bytes).map(HandoverChain)
    }

    /// The bytes [`HandoverChain::decode`] reads.
    pub fn encode(&self) -> Vec<u8> {
        encode(&self.0)
    }

    /// How many links.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there is none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// A group row's hand-overs: those taken (the last names the current manager) and an
/// offer not yet taken.
pub(super) struct Handovers {
    pub(super) done: Vec<Link>,
    pub(super) offered: Option<Link>,
}

impl Handovers {
    /// The links once the offer, if any, ends: a void link signed by the manager (the
    /// session user) takes its place, so that it fits nowhere in the chain for whoever
    /// sees this.
    pub(super) fn ended(&self, manager: &Keypair, session: &Session, row: &GroupRow) -> Vec<Link> {
        let mut links = self.done.clone();
        if self.offered.is_some() {
            let index = links.len();
            links.push(Link::signed(
                manager,
                session.user_id.0,
                row,
                index,
                session.user_id.0,
                manager.public().fingerprint(),
            ));
        }
        links
    }

    /// The links with an offer of the group to `to` (whose key has `fingerprint`) at the
    /// row's epoch, in place of any offer before.
    pub(super) fn offering(
        &self,
        manager: &Keypair,
        session: &Session,
        row: &GroupRow,
        to: i64,
        fingerprint: Fingerprint,
    ) -> Vec<Link> {
        let mut links = self.ended(manager, session, row);
        let index = links.len();
        links.push(Link::signed(
            manager,
            session.user_id.0,
            row,
            index,
            to,
            fingerprint,
        ));
        links
    }
}

/// Reads a group row's hand-overs. The row's signature covers them; this checks their
/// shape: the last taken one names the current manager, and an offer comes from them.
pub(super) fn handovers(row: &GroupRow) -> Result<Handovers> {
    let mut done = decode(&row.handovers).ok_or_else(|| forged_group(&row.name))?;
    let offered = match done.last() {
        Some(last) if last.to != row.manager_id => {
            if last.from != row.manager_id {
                return Err(forged_group(&row.name));
            }
            done.pop()
        }
        _ => None,
    };
    if done.last().is_some_and(|l| l.to != row.manager_id) {
        return Err(forged_group(&row.name));
    }
    Ok(Handovers { done, offered })
}

/// Whether the hand-overs after the first `seen` lead, link by link, from the manager the
/// session user pinned (`pinned`, with the fingerprint pinned for them) to the row's
/// manager, whose key is `manager_keys`. Each link must be signed at an epoch no older
/// than the one pinned (`epoch`) nor than the link before it: an offer from before a
/// change of the group's key (a member removed) does not come back.
pub(super) fn follows(
    group: &GroupRow,
    done: &[Link],
    seen: usize,
    pinned: (i64, Option<Fingerprint>, i64),
    manager_keys: &PublicKeys,
) -> bool {
    let (mut current, Some(mut fingerprint), mut epoch) = pinned else {
        return false;
    };
    for (index, link) in done.iter().enumerate().skip(seen) {
        if link.from != current
            || link.epoch < epoch
            || link.epoch > group.epoch
            || link.from_keys.fingerprint() != fingerprint
            || !link.verifies(group, index)
        {
            return false;
        }
        epoch = link.epoch;
        current = link.to;
        fingerprint = link.to_fingerprint;
    }
    current == group.manager_id && manager_keys.fingerprint() == fingerprint
}

/// What `group transfer` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GroupOffer {
    /// The group is offered to `to`, whose key has `fingerprint` (as signed in the offer).
    Made {
        /// The group.
        group: String,
        /// Who may take it over.
        to: String,
        /// Their fingerprint.
        fingerprint: Fingerprint,
    },
    /// The offer to `was` was withdrawn.
    Withdrawn {
        /// The group.
        group: String,
        /// Whom it was offered to.
        was: String,
    },
}

/// A group taken over with `group receive`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupReceived {
    /// The group.
    pub group: String,
    /// Who managed it before.
    pub from: String,
    /// How many members' rows were signed again.
    pub members: usize,
}

impl Vault {
    /// Offers a group the session user manages to one of its members, who takes it over
    /// with [`Vault::group_receive`]; until then the session user still manages it and
    /// may offer it to someone else or withdraw the offer (`to` = `None`).
    pub fn group_transfer(
        &mut self,
        session: &Session,
        name: &str,
        to: Option<&str>,
        confirmed: Option<Fingerprint>,
    ) -> Result<GroupOffer> {
        let name = bare(name);
        let to = to.map(a_user).transpose()?;
        let target = match to {
            Some(user) => format!("@{name} -> {user}"),
            None => format!("@{name}"),
        };
        self.authorized(
            session,
            Permission::Own,
            AuditAction::GroupTransfer,
            &target,
            |tx| {
                let group = managed(tx, session, name)?;
                let (me, _) = own_keypair(tx, session)?;
                let Some(user) = to else {
                    let Some(was) = &group.handovers.offered else {
                        return Err(Error::NotFound(format!(
                            "'@{name}' is not offered to anyone"
                        )));
                    };
                    let was = grantee_name(tx, Grantee::User(was.to))?;
                    let mut row = group.row.clone();
                    row.handovers = encode(&group.handovers.ended(&me, session, &row));
                    sign_group(tx, &me, &mut row)?;
                    let detail = json!({ "withdrawn": was });
                    let group = name.to_string();
                    return Ok((GroupOffer::Withdrawn { group, was }, detail));
                };
                let who = tx
                    .user_by_name(user)?
                    .filter(|u| u.role != Role::Service)
                    .ok_or_else(|| no_such_user(user))?;
                if who.id == session.user_id.0 {
                    return Err(Error::Usage(format!("you manage '@{name}' already")));
                }
                if who.status != UserStatus::Active {
                    return Err(Error::Conflict(format!(
                        "'{}' is disabled: a group can be handed only to an active member",
                        who.username
                    )));
                }
                // The member's key as this manager signed it in their member row.
                let keys = who
                    .keys
                    .as_ref()
                    .map(|k| k.public.clone())
                    .filter(|k| group.vouches_for(who.id, k))
                    .ok_or_else(|| {
                        Error::Conflict(format!(
                            "'{}' is not a member of '@{name}' with the key you added them \
                             with: add them first (`group add {name} {}`)",
                            who.username, who.username
                        ))
                    })?;
                let fp = keys.fingerprint();
                if let Some(shown) = confirmed
                    && shown != fp
                {
                    return Err(Error::Integrity(format!(
                        "the key of '{}' is now {fp}, not the {shown} you confirmed: the group \
                         was not offered",
                        who.username
                    )));
                }
                let mut row = group.row.clone();
                row.handovers = encode(&group.handovers.offering(&me, session, &row, who.id, fp));
                sign_group(tx, &me, &mut row)?;
                let replaced = match &group.handovers.offered {
                    Some(o) => Some(grantee_name(tx, Grantee::User(o.to))?),
                    None => None,
                };
                let detail = json!({
                    "to": who.username,
                    "fingerprint": fp.to_string(),
                    "replaced": replaced,
                });
                Ok((
                    GroupOffer::Made {
                        group: name.to_string(),
                        to: who.username.clone(),
                        fingerprint: fp,
                    },
                    detail,
                ))
            },
        )
    }

    /// Takes over every group offered to the session user: each is checked under its
    /// manager's key, then the group row and the member rows are signed with the session
    /// user's key. All or nothing: a group that cannot be taken over fails the command,
    /// naming it, and nothing is taken over.
    pub fn group_receive(&mut self, session: &Session) -> Result<Vec<GroupReceived>> {
        self.authorized_rows(
            session,
            Permission::Own,
            AuditAction::GroupReceive,
            "",
            |tx| {
                let mut out = Vec::new();
                let mut rows = Vec::new();
                for row in tx.groups()? {
                    // (A row whose links do not decode fails its check where it is used.)
                    let offered_to_me = handovers(&row)
                        .ok()
                        .and_then(|h| h.offered)
                        .is_some_and(|o| o.to == session.user_id.0);
                    if !offered_to_me {
                        continue;
                    }
                    let group = check_group(tx, session, row)?;
                    let received = take_over(tx, session, &group)?;
                    rows.push((
                        AuditAction::GroupReceive,
                        json!({
                            "group": received.group,
                            "from": received.from,
                            "members": received.members,
                        }),
                    ));
                    out.push(received);
                }
                if rows.is_empty() {
                    rows.push((AuditAction::GroupReceive, json!({ "groups": 0 })));
                }
                Ok((out, rows))
            },
        )
    }
}

/// Takes over one group offered to the session user (checked under its manager's key).
fn take_over(tx: &mut dyn Tx, session: &Session, group: &Checked) -> Result<GroupReceived> {
    let name = group.row.name.clone();
    let mut done = group.handovers.done.clone();
    let link = group
        .handovers
        .offered
        .clone()
        .filter(|l| l.to == session.user_id.0)
        .ok_or_else(|| forged_group(&name))?;
    let (me, _) = own_keypair(tx, session)?;
    if link.from_keys != group.manager_keys || !link.verifies(&group.row, done.len()) {
        return Err(forged_group(&name));
    }
    if link.to_fingerprint != me.public().fingerprint() {
        return Err(Error::Integrity(format!(
            "the offer of '@{name}' names a key that is not yours: it was changed outside \
             zencrypt (nothing was taken over)"
        )));
    }
    if link.epoch != group.row.epoch {
        return Err(Error::Integrity(format!(
            "the offer of '@{name}' was made for the group's key of epoch {}, not the current \
             {}: it was changed outside zencrypt (ask {} to offer it again)",
            link.epoch, group.row.epoch, group.manager.username
        )));
    }
    if member_keys(tx, session, group)?.is_none() {
        return Err(Error::Conflict(format!(
            "you are no longer a member of '@{name}': ask {} to add you and offer it again",
            group.manager.username
        )));
    }
    let mut row = group.row.clone();
    row.manager_id = session.user_id.0;
    done.push(link);
    row.handovers = encode(&done);
    // Every current member's row, signed again with this key over the same wrapped key;
    // each member's key is the one the former manager signed, pinned here from now on. A
    // member suspended at an earlier epoch keeps the old row until added again.
    let mut signed_again = 0;
    for m in group.members.iter().filter(|m| m.epoch == group.row.epoch) {
        let keys = if m.user_id == session.user_id.0 {
            me.public().clone()
        } else {
            let member = grantee_name(tx, Grantee::User(m.user_id))?;
            let (_, keys, _) = signer_keys_if(tx, session, &member, |u, k| {
                if group.vouches_for(u.id, k) {
                    Ok(())
                } else {
                    Err(Error::Integrity(format!(
                        "the key of '{}' is not the one {} added to '@{name}': nothing was taken \
                         over",
                        u.username, group.manager.username
                    )))
                }
            })?;
            if !group.vouches_for(m.user_id, &keys) {
                return Err(Error::Conflict(format!(
                    "the key you pinned for '{member}' is not the one '@{name}' is wrapped to: ask \
                     {} to remove and add them again, then take the group over",
                    group.manager.username
                )));
            }
            keys
        };
        let mut fresh = m.clone();
        fresh.signature = me
            .sign(&member_message(&row, m, &keys.fingerprint()))
            .to_vec();
        tx.put_group_member(&fresh)?;
        signed_again += 1;
    }
    sign_group(tx, &me, &mut row)?;
    // Pins the new manager for the session user, through the link just taken.
    check_group(tx, session, row)?;
    Ok(GroupReceived {
        group: name,
        from: group.manager.username.clone(),
        members: signed_again,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn link(from: i64, to: i64) -> Link {
        Link {
            from,
            to,
            epoch: 3,
            to_fingerprint: Fingerprint([7; FINGERPRINT_LEN]),
            from_keys: Keypair::generate().public().clone(),
            signature: [9; SIGNATURE_LEN],
        }
    }

    #[test]
    fn links_round_trip_and_a_cut_is_refused() {
        let links = vec![link(1, 2), link(2, 3)];
        let bytes = encode(&links);
        assert_eq!(decode(&bytes), Some(links));
        assert_eq!(decode(&[]), Some(Vec::new()));
        for cut in 1..bytes.len() {
            if cut == bytes.len() / 2 {
                assert_eq!(decode(&bytes[..cut]).map(|l| l.len()), Some(1));
            } else {
                assert_eq!(decode(&bytes[..cut]), None, "cut at {cut}");
            }
        }
    }
}
