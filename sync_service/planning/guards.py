"""Guards: refuse plans that look like a wiped or replaced mailbox or a runaway deletion."""

from __future__ import annotations

from dataclasses import dataclass

from sync_service.errors import IntegrityStop

from .actions import PassKind, Plan


@dataclass(frozen=True, slots=True)
class GuardLimits:
    """A plan is refused when its deletions exceed BOTH the share and the count."""

    max_delete_share: float = 0.20
    max_delete_count: int = 50


class GuardError(IntegrityStop):
    """A plan was refused; `summary` says why and what it would have done."""

    def __init__(self, reason: str, plan: Plan) -> None:
        self.reason = reason
        self.plan = plan
        self.summary = f"{reason}; plan: {plan.summary()}"
        super().__init__(self.summary)


def check(plan: Plan, limits: GuardLimits, *, exchange_empty: bool) -> None:
    """Raise GuardError when the plan must not run without an explicit force."""
    if exchange_empty and plan.total and plan.kind in (PassKind.COMPLETE, PassKind.INITIAL):
        # A folder that held synced items and is now empty was most likely wiped or the
        # mailbox replaced; deleting every CRM record to match would be the worst outcome.
        raise GuardError(f"the Exchange folder is empty but {plan.total} items were synced", plan)
    deletions = plan.deletions
    share = deletions / plan.total if plan.total else 1.0 if deletions else 0.0
    if deletions > limits.max_delete_count and share > limits.max_delete_share:
        raise GuardError(
            f"{deletions} deletions ({share:.0%} of {plan.total} items) exceed the limits"
            f" ({limits.max_delete_share:.0%} and {limits.max_delete_count})",
            plan,
        )
