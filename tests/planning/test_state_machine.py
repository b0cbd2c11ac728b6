"""Hypothesis state machine: random edits on both sides, crashes, replays; then convergence."""

from __future__ import annotations

import os
from typing import Any, ClassVar

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    precondition,
    rule,
)

from sync_service.planning import (
    ConflictPolicy,
    PassKind,
    Policy,
    bind,
    snapshot_crm,
    snapshot_exchange,
)
from sync_service.planning.mapping import comparison_keys

from .profiles import APPOINTMENT, CONTACT, TASK, Profile
from .world import World

POLICIES = st.sampled_from(
    [
        ConflictPolicy(Policy.CRM_WINS),
        ConflictPolicy(Policy.EXCHANGE_WINS),
        ConflictPolicy(Policy.NEWEST_WINS),
        ConflictPolicy(Policy.MERGE, Policy.CRM_WINS),
        ConflictPolicy(Policy.MERGE, Policy.NEWEST_WINS),
    ]
)
PASSES = st.sampled_from([PassKind.COMPLETE, PassKind.EXPRESS])


class SyncMachine(RuleBasedStateMachine):
    profile: ClassVar[Profile]

    def __init__(self) -> None:
        super().__init__()
        self.world = World(bind(self.profile.map))
        self.policy = ConflictPolicy()
        self.tokens = 0
        # Tokens deleted on one side while the other side's copy was untouched: must stay gone.
        self.gone: set[str] = set()
        self.dirty_crm: set[str] = set()
        self.dirty_ex: set[str] = set()

    # -- helpers ---------------------------------------------------------------------------

    def token_of(self, fields: Any) -> str:
        return str(fields[self.profile.token])

    def crm_token(self, crm_id: str) -> str:
        return self.token_of(snapshot_crm(self.world.binding, self.world.crm[crm_id]).fields)

    def ex_token(self, item_id: str) -> str:
        return self.token_of(snapshot_exchange(self.world.binding, self.world.ex[item_id]).fields)

    def new_token(self) -> str:
        self.tokens += 1
        return f"T{self.tokens}"

    # -- rules -----------------------------------------------------------------------------

    @initialize(policy=POLICIES, data=st.data(), shared=st.integers(0, 3))
    def start(self, policy: ConflictPolicy, data: st.DataObject, shared: int) -> None:
        """Both sides may already hold the same items before the first (initial) pass."""
        self.policy = policy
        for _ in range(shared):
            fields = data.draw(self.profile.shared(self.new_token()))
            self.world.crm_put(self.world.new_id("crm"), fields)
            self.world.ex_put(self.world.new_id("ex"), fields, None)
        self.world.sync(PassKind.INITIAL, policy)

    @rule(data=st.data())
    def create_crm(self, data: st.DataObject) -> None:
        fields = data.draw(self.profile.fields(self.new_token()))
        self.world.crm_put(self.world.new_id("crm"), fields)

    @rule(data=st.data())
    def create_ex(self, data: st.DataObject) -> None:
        fields = data.draw(self.profile.fields(self.new_token()))
        self.world.ex_put(self.world.new_id("ex"), fields, None)

    @precondition(lambda self: self.world.crm)
    @rule(data=st.data())
    def edit_crm(self, data: st.DataObject) -> None:
        crm_id = data.draw(st.sampled_from(sorted(self.world.crm)))
        current = snapshot_crm(self.world.binding, self.world.crm[crm_id]).fields
        self.world.crm_put(crm_id, {**current, **data.draw(self.profile.edit())})
        self.dirty_crm.add(self.crm_token(crm_id))
        self.gone.discard(self.crm_token(crm_id))

    @precondition(lambda self: self.world.ex)
    @rule(data=st.data())
    def edit_ex(self, data: st.DataObject) -> None:
        item_id = data.draw(st.sampled_from(sorted(self.world.ex)))
        item = self.world.ex[item_id]
        current = snapshot_exchange(self.world.binding, item).fields
        self.world.ex_put(item_id, {**current, **data.draw(self.profile.edit())}, item.crm_id)
        self.dirty_ex.add(self.ex_token(item_id))
        self.gone.discard(self.ex_token(item_id))

    @precondition(lambda self: self.world.ex)
    @rule(data=st.data())
    def touch_ex(self, data: st.DataObject) -> None:
        self.world.ex_touch(data.draw(st.sampled_from(sorted(self.world.ex))))

    @precondition(lambda self: self.world.ex)
    @rule(data=st.data())
    def copy_ex(self, data: st.DataObject) -> None:
        """Outlook copy: the copy carries the original's CRM-id property."""
        item = self.world.ex[data.draw(st.sampled_from(sorted(self.world.ex)))]
        fields = dict(snapshot_exchange(self.world.binding, item).fields)
        fields[self.profile.token] = self.new_token()
        self.world.ex_put(self.world.new_id("ex"), fields, item.crm_id)

    @precondition(lambda self: self.world.crm)
    @rule(data=st.data())
    def delete_crm(self, data: st.DataObject) -> None:
        crm_id = data.draw(st.sampled_from(sorted(self.world.crm)))
        token = self.crm_token(crm_id)
        self.world.crm_delete(crm_id)
        if token not in self.dirty_ex:
            self.gone.add(token)

    @precondition(lambda self: self.world.ex)
    @rule(data=st.data())
    def delete_ex(self, data: st.DataObject) -> None:
        item_id = data.draw(st.sampled_from(sorted(self.world.ex)))
        token = self.ex_token(item_id)
        confirmed = any(
            row.exchange_id == item_id and not row.pending for row in self.world.links.values()
        )
        self.world.ex_delete(item_id)
        # An item whose create was never confirmed may come back once (see _pending_exchange).
        if token not in self.dirty_crm and confirmed:
            self.gone.add(token)

    @rule(kind=PASSES, crash=st.none() | st.integers(0, 6))
    def sync(self, kind: PassKind, crash: int | None) -> None:
        self.world.sync(kind, self.policy, crash)
        if crash is None:
            self.dirty_crm.clear()
            self.dirty_ex.clear()

    @rule(crash=st.none() | st.integers(0, 6))
    def replay(self, crash: int | None) -> None:
        """Replay every change since the beginning (a lost sync state and watermark)."""
        self.world.sync(PassKind.EXPRESS, self.policy, crash, replay_from=(0, 0))
        if crash is None:
            self.dirty_crm.clear()
            self.dirty_ex.clear()

    # -- the end ---------------------------------------------------------------------------

    def teardown(self) -> None:
        world = self.world
        world.sync(PassKind.COMPLETE, self.policy)
        for kind in (PassKind.COMPLETE, PassKind.EXPRESS):
            again = world.plan(kind, self.policy)
            assert again.actions == (), f"{kind} pass after convergence: {again.actions}"
        crm_tokens = [self.crm_token(i) for i in world.crm]
        ex_tokens = [self.ex_token(i) for i in world.ex]
        assert len(set(crm_tokens)) == len(crm_tokens), f"duplicate in CRM: {crm_tokens}"
        assert len(set(ex_tokens)) == len(ex_tokens), f"duplicate in Exchange: {ex_tokens}"
        assert sorted(crm_tokens) == sorted(ex_tokens)
        assert len(world.links) == len(world.crm) == len(world.ex)
        for row in world.links.values():
            left = snapshot_crm(world.binding, world.crm[row.crm_id]).fields
            right = snapshot_exchange(world.binding, world.ex[row.exchange_id]).fields
            assert comparison_keys(world.binding, left) == comparison_keys(world.binding, right)
            assert world.ex[row.exchange_id].crm_id == row.crm_id
        back = self.gone & set(crm_tokens)
        assert not back, f"deleted and untouched, came back: {back}"


SETTINGS = settings(
    max_examples=int(os.environ.get("ENGINE_EXAMPLES", "60")),
    stateful_step_count=int(os.environ.get("ENGINE_STEPS", "25")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)


class ContactMachine(SyncMachine):
    profile = CONTACT


class TaskMachine(SyncMachine):
    profile = TASK


class AppointmentMachine(SyncMachine):
    profile = APPOINTMENT


TestContacts = ContactMachine.TestCase
TestContacts.settings = SETTINGS
TestTasks = TaskMachine.TestCase
TestTasks.settings = SETTINGS
TestAppointments = AppointmentMachine.TestCase
TestAppointments.settings = SETTINGS
