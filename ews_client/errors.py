"""Exceptions of the Exchange client, sorted by what the caller can do about them.

One root (`ExchangeError`); a small set of classes; the raw server code (an EWS ResponseCode,
a Graph error code or an HTTP status) stays on the exception as `code`.
"""

from __future__ import annotations


class ExchangeError(Exception):
    """Root of every error raised by `ews_client`."""

    def __init__(self, message: str, *, code: str = "") -> None:
        super().__init__(message)
        self.code = code


class TransientError(ExchangeError):
    """Worth retrying later: timeouts, resets, 5xx, a server that is busy."""


class ThrottledError(TransientError):
    """The server asked us to back off for `backoff_s` seconds."""

    def __init__(self, message: str, *, code: str = "", backoff_s: float = 0.0) -> None:
        super().__init__(message, code=code)
        self.backoff_s = backoff_s


class InvalidSyncStateError(ExchangeError):
    """The stored sync state / delta link is dead: resynchronize from scratch and reconcile."""


class ItemNotFoundError(ExchangeError):
    """The item (or folder) does not exist (any more)."""


class FolderNotFoundError(ItemNotFoundError):
    """A folder the caller named (by id, name or path) is not in the mailbox: it was deleted,
    or never existed. Raised for a linked folder, never for a mailbox's default folders."""


class ConflictError(ExchangeError):
    """The item changed since we read it (stale change key / etag): re-read and re-plan."""


class ItemRejectedError(ExchangeError):
    """The server refused this one item (too long, invalid value); the rest can go on."""


class QuotaExceededError(ExchangeError):
    """A mailbox quota (storage, named properties) is exhausted."""


class MailboxError(ExchangeError):
    """Permanent for this mailbox: it does not exist, or we may not impersonate it."""


class AuthError(ExchangeError):
    """The service identity was refused (bad credentials, no token): permanent until fixed."""


class OutboundRefusedError(ExchangeError):
    """We refused to send: the server's address is in a range the outbound policy denies
    (code DeniedAddress), or it answered with a redirect, which is never followed (code
    HTTP3xx). Not worth retrying: it stays so until the server's URL or the policy changes."""


class ProtocolError(ExchangeError):
    """The answer was malformed, hostile (DTD, entities), too large, or not what we asked."""
