"""Shared (firm) records: the rules for a CRM record held by more than one user. Pure.

A firm contact linked to several users has one copy per mailbox. Each copy's pass compares
its mailbox with the CRM record against that copy's own last-synced content, so an edit that
another user's copy already carried into the CRM looks like a CRM change there. Under a
whole-record policy (crm_wins) a user who edited a *different* field in the meantime would
lose that edit silently. So a shared record is always merged field by field: a field changed
on one side only takes that side's value; a field both sides changed to different values
follows the entity's policy (crm_wins, exchange_wins, newest_wins; merge's own fallback), and
the conflict names that policy and the side kept, so the audit trail records the losing value.

The deletes of a shared record (what the CRM adapter does with them):

- A linked user's delete in Outlook drops only that user's link: the record stays, the other
  mailboxes keep their copies. The deleting user's mailbox stays without it (the link's
  removal is that user's own change, never sent back), and nothing re-creates it there until
  an operator links the user again.
- The owner's delete follows `OwnerDelete` (SYNC_SHARED_OWNER_DELETE): `keep` (default) drops
  only the owner's copy while linked users still hold the record (the owner stays its owner in
  the CRM, their mailbox no longer holds it); `transfer` hands the record to the linked user
  linked first, whose link becomes the ownership; `delete_all` deletes the record for everyone.
  Held by nobody else, the owner's delete deletes the record in every mode.
"""

from __future__ import annotations

from enum import StrEnum

from .actions import Conflict
from .mapping import Binding
from .policy import ConflictPolicy, Policy, Resolution, Side3, resolve, winner_of
from .values import Fields


class OwnerDelete(StrEnum):
    """What the owner's delete (in Outlook) of a record other users hold does."""

    KEEP = "keep"  # only the owner's copy goes; the others keep the record
    TRANSFER = "transfer"  # the record passes to another linked user
    DELETE_ALL = "delete_all"  # the record is deleted for everyone


def shared_policy(policy: ConflictPolicy) -> ConflictPolicy:
    """The policy a shared record is resolved under: merge, the entity's policy deciding the
    fields both sides changed (an entity already under merge keeps its own fallback)."""
    if policy.policy == Policy.MERGE:
        return policy
    return ConflictPolicy(Policy.MERGE, fallback=policy.policy)


def resolve_shared(
    binding: Binding,
    base: Fields | None,
    crm: Side3,
    exchange: Side3,
    policy: ConflictPolicy,
) -> Resolution:
    """`resolve` for a record held by several users: per-field merge; a clash follows the
    entity's policy and is reported under it, with the side it kept."""
    found = resolve(binding, base, crm, exchange, shared_policy(policy))
    if found.conflict is None or policy.policy == Policy.MERGE:
        return found
    side = winner_of(policy.policy, crm, exchange)
    return Resolution(found.target, Conflict(policy.policy.value, side, found.conflict.fields))
