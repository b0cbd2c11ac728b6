"""ResponseCode -> exception class: ONE table, like asyncpg's SQLSTATE map.

The raw code stays on the exception (`.code`); callers dispatch on the class, which says what
to do (retry after a back-off, resynchronize, re-read, skip the item, disable the mailbox).
"""

from __future__ import annotations

from ews_client.errors import (
    ConflictError,
    ExchangeError,
    InvalidSyncStateError,
    ItemNotFoundError,
    ItemRejectedError,
    MailboxError,
    ProtocolError,
    QuotaExceededError,
    ThrottledError,
    TransientError,
)

CODE_TABLE: dict[str, type[ExchangeError]] = {
    # Throttling: ErrorServerBusy carries BackOffMilliseconds
    # (ews_client/PROTOCOL_NOTES.md, "Throttling").
    "ErrorServerBusy": ThrottledError,
    "ErrorExceededConnectionCount": ThrottledError,
    "ErrorTooManyObjectsOpened": ThrottledError,
    # Transient server-side trouble: retry later.
    "ErrorInternalServerTransientError": TransientError,
    "ErrorInternalServerError": TransientError,
    "ErrorMailboxStoreUnavailable": TransientError,
    "ErrorMailboxMoveInProgress": TransientError,
    "ErrorMailboxFailover": TransientError,
    "ErrorConnectionFailed": TransientError,
    "ErrorTimeoutExpired": TransientError,
    # A dead sync state: "resynchronize from no state, and reconcile".
    "ErrorInvalidSyncStateData": InvalidSyncStateError,
    "ErrorSyncFolderNotFound": InvalidSyncStateError,
    # Gone.
    "ErrorItemNotFound": ItemNotFoundError,
    "ErrorFolderNotFound": ItemNotFoundError,
    "ErrorParentFolderNotFound": ItemNotFoundError,
    "ErrorSubscriptionNotFound": ItemNotFoundError,
    "ErrorExpiredSubscription": ItemNotFoundError,
    # Stale change key: "re-read and re-plan".
    "ErrorIrresolvableConflict": ConflictError,
    "ErrorStaleObject": ConflictError,
    "ErrorInvalidChangeKey": ConflictError,
    # Permanent for the mailbox.
    "ErrorNonExistentMailbox": MailboxError,
    "ErrorImpersonateUserDenied": MailboxError,
    "ErrorImpersonationDenied": MailboxError,
    "ErrorImpersonationFailed": MailboxError,
    "ErrorInvalidSmtpAddress": MailboxError,
    "ErrorMailboxLogonFailed": MailboxError,
    "ErrorAccessDenied": MailboxError,
    # Quotas (storage, named-property definitions).
    "ErrorQuotaExceeded": QuotaExceededError,
    "ErrorExceededSubscriptionCount": QuotaExceededError,
    # This one item was refused; the rest of the batch goes on.
    "ErrorInvalidPropertySet": ItemRejectedError,
    "ErrorPropertyValidationFailure": ItemRejectedError,
    "ErrorInvalidValueForProperty": ItemRejectedError,
    "ErrorInvalidPropertyRequest": ItemRejectedError,
    "ErrorInvalidExtendedPropertyValue": ItemRejectedError,
    "ErrorInvalidContactEmailAddress": ItemRejectedError,
    "ErrorInvalidContactEmailIndex": ItemRejectedError,
    "ErrorInvalidPercentCompleteValue": ItemRejectedError,
    "ErrorInvalidCompleteDate": ItemRejectedError,
    "ErrorCalendarInvalidRecurrence": ItemRejectedError,
    "ErrorCalendarInvalidTimeZone": ItemRejectedError,
    "ErrorCalendarInvalidPropertyValue": ItemRejectedError,
    "ErrorCalendarDurationIsTooLong": ItemRejectedError,
    "ErrorCalendarInvalidDayForWeeklyRecurrence": ItemRejectedError,
    "ErrorRecurrenceEndDateTooBig": ItemRejectedError,
    "ErrorOccurrenceTimeSpanTooBig": ItemRejectedError,
    "ErrorInvalidRecipients": ItemRejectedError,
    # We built something the server could not read: our bug, not retryable.
    "ErrorSchemaValidation": ProtocolError,
    "ErrorInvalidRequest": ProtocolError,
    "ErrorInvalidServerVersion": ProtocolError,
    "ErrorInvalidIdMalformed": ProtocolError,
    "ErrorInvalidId": ItemNotFoundError,
}


def error_for(code: str, message: str, *, backoff_s: float = 0.0) -> ExchangeError:
    """The exception for an EWS ResponseCode; unknown codes are ExchangeError itself."""
    cls = CODE_TABLE.get(code, ExchangeError)
    text = f"{code}: {message}" if message else code
    if cls is ThrottledError:
        return ThrottledError(text, code=code, backoff_s=backoff_s)
    return cls(text, code=code)
