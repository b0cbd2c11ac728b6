"""The root of every exception `sync_service` raises, and the few families under it.

Callers sort errors by what can be done about them, so the families follow that:

- `OperatorError`: input an operator can fix and retry (a bad setting, an unknown server or
  mailbox, a request that contradicts the current state, a backend this build cannot serve).
  `FieldError` carries the name of the offending field, which the CLI prints and the API
  returns as the problem's field (`InvalidInput`, `NotFound`, `Conflict`).
- `IntegrityStop`: a pass stopped before it could do harm (a refused plan: `GuardError`; a
  mailbox restored from a backup: `MarkerMismatch`); the mailbox waits for an operator.
- `CrmError` (in `sync_service.crm.port`): what the CRM port raises about one record.
- `DatabaseError`: the state database is not usable as it is (`MigrationError`).
- `ControlFlow`: internal signals between the service's own tasks (`LeadershipLost`, private
  stop sentinels); never shown to an operator.

The concrete classes live beside the code that raises them; this module stays free of imports
so that the pure planning core can use it too.
"""

from __future__ import annotations


class SyncServiceError(Exception):
    """Root of every error raised by `sync_service`."""


class OperatorError(SyncServiceError):
    """Something an operator can correct: the message says what and how."""


class FieldError(OperatorError):
    """Bad operator input; `field` names the offending field, `message` what is wrong."""

    def __init__(self, field: str, message: str, text: str | None = None) -> None:
        super().__init__(message if text is None else text)
        self.field = field
        self.message = message


class IntegrityStop(SyncServiceError):
    """A pass stopped so as not to damage data; the mailbox needs an operator's look."""


class DatabaseError(SyncServiceError):
    """The state database cannot be used as it is."""


class ControlFlow(SyncServiceError):
    """An internal signal between the service's own tasks, not an error to report."""
