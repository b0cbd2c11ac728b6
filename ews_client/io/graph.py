"""GraphClient: build -> send (through the throttle and the JSON transport) -> parse, and the
`ExchangeBackend` the sync engine uses, so that the engine does not care which backend a
server speaks. Calendar specifics live in `graph_calendar.py`."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from types import TracebackType

from ews_client.errors import (
    AuthError,
    ConflictError,
    ExchangeError,
    FolderNotFoundError,
    InvalidSyncStateError,
    ItemNotFoundError,
    ItemRejectedError,
    MailboxError,
    ProtocolError,
    ThrottledError,
)
from ews_client.graph import requests as rq
from ews_client.graph.calendar_delta import EventWindow
from ews_client.graph.convert import create_body, item_from_json, patch_body
from ews_client.graph.responses import (
    MAILBOX_CODES,
    InnerResponse,
    Page,
    coalesce,
    error_body,
    error_for,
    listed_keys,
    parse_batch,
    parse_json,
    parse_page,
    unseen,
)
from ews_client.graph.series import plan_occurrence_writes
from ews_client.graph.tasks import read_link
from ews_client.graph.wire import Json, etag_of, fmt_utc, parse_dt
from ews_client.io import graph_folders
from ews_client.io.auth import Auth
from ews_client.io.graph_calendar import CalendarSync
from ews_client.io.graph_meetings import MeetingWrites
from ews_client.io.graph_transport import GraphTransport
from ews_client.io.outbound import OutboundPolicy
from ews_client.io.tasks import gather_ordered
from ews_client.io.throttle import Throttle, ThrottleLimits
from ews_client.io.transport import TransportLimits
from ews_client.models import (
    Appointment,
    EntityKind,
    FolderChoice,
    Item,
    ItemRef,
    KnownKeys,
    LinkedFolder,
    Removal,
    SyncMarker,
    SyncResult,
    Task,
    Upsert,
)

GRAPH_ROOT = "https://graph.microsoft.com/v1.0"  # national clouds have their own roots
GRAPH_SCOPE = "https://graph.microsoft.com/.default"  # OAuthClientCredentials(scope=...)
# Graph: "per app per mailbox ... 4 concurrent requests".
GRAPH_LIMITS = ThrottleLimits(per_mailbox=4, per_mailbox_sync=4)
OCCURRENCE_FIELDS = frozenset({"recurrence", "modified_occurrences", "deleted_occurrences"})
OnRequest = Callable[[str, str, float], None]


@dataclass(frozen=True, slots=True)
class Subscription:
    id: str
    resource: str
    expires: datetime


class GraphClient:
    """Async Graph client for one tenant; `async with GraphClient(root, auth) as client`."""

    # A mailbox's write batches one at a time: a `$batch` already uses its four concurrent
    # requests (ews_client/PROTOCOL_NOTES.md, "Graph throttling and batch").
    write_batches_in_flight = 1

    def __init__(
        self,
        base_url: str,
        auth: Auth,
        *,
        transport_limits: TransportLimits | None = None,
        throttle_limits: ThrottleLimits | None = None,
        ca_file: str | None = None,
        outbound: OutboundPolicy | None = None,
        window: EventWindow | None = None,
        on_request: OnRequest | None = None,
        on_backoff: Callable[[float], None] | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        max_batch_rounds: int = 8,
        send_invitations: bool = False,  # meeting messages for meetings the CRM organized
    ) -> None:
        self.transport = GraphTransport(
            base_url, auth, limits=transport_limits, ca_file=ca_file, outbound=outbound
        )
        limits = throttle_limits or GRAPH_LIMITS
        # An admitted request must find a pooled connection at once (see EwsClient).
        ceiling = min(limits.max_concurrency, self.transport.limits.connections)
        limits = replace(limits, max_concurrency=ceiling,
                         min_concurrency=min(limits.min_concurrency, ceiling))  # fmt: skip
        self.throttle = Throttle(limits, on_backoff=on_backoff)
        self._on_request = on_request
        self._rounds = max_batch_rounds
        self._clock = clock
        self._lists: dict[str, str] = {}
        self.calendar = CalendarSync(self, window or EventWindow(), clock)
        self.meetings = MeetingWrites(self, send_invitations=send_invitations)

    async def __aenter__(self) -> GraphClient:
        self.transport.open()
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.transport.close()
        self.transport.auth.close()  # msal's HTTP session, as EwsClient does

    async def check_connection(self) -> int:
        """Reach the Graph root without a token: the HTTP status it answered (`servers test`)."""
        return await self.transport.reach()

    # -- plumbing -------------------------------------------------------------------------------
    async def call(self, mailbox: str, req: rq.GraphRequest, *, idempotent: bool = False) -> Json:
        """One request under the mailbox's limits; the JSON body of a 2xx answer."""

        async def attempt() -> Json:
            started = time.perf_counter()
            outcome = "ok"
            try:
                raw = await self.transport.send(req, mailbox)
                if 200 <= raw.status < 300:
                    return parse_json(raw.body)
                body = error_body(raw.body)
                raise error_for(raw.status, body, raw.headers.get("Retry-After"))
            except ExchangeError as exc:
                outcome = type(exc).__name__
                raise
            finally:
                if self._on_request is not None:
                    name = rq.operation_name(req)
                    self._on_request(name, outcome, time.perf_counter() - started)

        safe = idempotent or req.method in ("GET", "DELETE")
        try:
            return await self.throttle.run(mailbox, attempt, idempotent=safe)
        except AuthError as exc:
            if exc.code != "HTTP401":
                raise
            # The token was refused (expired early, revoked): the transport dropped it; one
            # more try with a fresh one, then the refusal stands.
            return await self.throttle.run(mailbox, attempt, idempotent=safe)

    async def batch(self, mailbox: str, reqs: list[rq.GraphRequest]) -> list[InnerResponse]:
        """`$batch` in chunks of <= 20; an inner 429 is retried after its own Retry-After
        (the deadline goes to the throttle, which the next round waits out); inner requests
        that succeeded are never sent again."""
        results: dict[int, InnerResponse] = {}
        pending, attempts = list(range(len(reqs))), dict.fromkeys(range(len(reqs)), 0)
        while pending:
            chunk = pending[: rq.BATCH_MAX]
            body = rq.batch_body([reqs[i] for i in chunk], [str(i) for i in chunk])
            every_get = all(reqs[i].method == "GET" for i in chunk)
            post = rq.GraphRequest("POST", "/$batch", body)
            answer = parse_batch(await self.call(mailbox, post, idempotent=every_get))
            again = []
            for i in chunk:
                inner = answer.get(str(i))
                if inner is None:
                    raise ProtocolError(f"$batch answer lacks response {i}", code="Batch")
                attempts[i] += 1
                err = inner.error()
                if isinstance(err, ThrottledError) and attempts[i] < self._rounds:
                    self.throttle.record_backoff(mailbox, err)
                    again.append(i)
                else:
                    results[i] = inner
            pending = again + pending[len(chunk) :]
        return [results[i] for i in range(len(reqs))]

    async def pages(self, mailbox: str, first: rq.GraphRequest, kind: EntityKind) -> list[Page]:
        """Follow `@odata.nextLink` until the `@odata.deltaLink` (or the last page)."""
        out, req = [], first
        while True:
            page = parse_page(await self.call(mailbox, req, idempotent=True))
            out.append(page)
            if page.next_link is None:
                return out
            req = rq.follow(page.next_link, kind)

    async def fetch(
        self, mailbox: str, kind: EntityKind, ids: list[str], list_id: str = ""
    ) -> list[Json]:
        """Items in full (with the CRM id) through `$batch`; items gone meanwhile are skipped
        (the next delta reports their deletion)."""
        reqs = [rq.get_item(mailbox, kind, i, list_id) for i in ids]
        out = []
        for inner in await self.batch(mailbox, reqs):
            err = inner.error()
            if isinstance(err, ItemNotFoundError):
                continue
            if err is not None:
                raise err
            out.append(inner.body)
        return out

    async def list_id(self, mailbox: str) -> str:
        """The mailbox's default To Do list (`wellknownListName` "defaultList")."""
        if mailbox not in self._lists:
            for page in await self.pages(mailbox, rq.todo_lists(mailbox), EntityKind.TASK):
                for obj in page.values:
                    if obj.get("wellknownListName") == "defaultList":
                        self._lists[mailbox] = str(obj["id"])
            if mailbox not in self._lists:
                raise ItemNotFoundError("no default To Do list", code="NoDefaultList")
        return self._lists[mailbox]

    async def _list_for(self, mailbox: str, kind: EntityKind, folder: str | None = None) -> str:
        """The folder part of the entity's URLs: a linked folder, else the default To Do list
        for tasks and nothing (the default folder) for the others."""
        if folder:
            return folder
        return await self.list_id(mailbox) if kind is EntityKind.TASK else ""

    async def resolve_folder(
        self, mailbox: str, entity: EntityKind, choice: FolderChoice, *, create: bool = False
    ) -> LinkedFolder:
        return await graph_folders.resolve(self, mailbox, entity, choice, create)

    # -- ExchangeBackend ------------------------------------------------------------------------
    async def sync_changes(
        self,
        mailbox: str,
        entity: EntityKind,
        sync_state: str | None,
        known: KnownKeys | None = None,
        *,
        folder: str | None = None,
    ) -> SyncResult:
        try:
            try:
                return await self._sync(
                    mailbox, entity, sync_state, restarted=False, known=known, folder=folder
                )
            except InvalidSyncStateError:
                if sync_state is None:
                    raise
                # The delta token is dead: a fresh delta, and the caller reconciles.
                return await self._sync(mailbox, entity, None, restarted=True, folder=folder)
        except ItemNotFoundError as exc:
            # A delta of a linked folder answered 404: the folder is gone (items gone
            # meanwhile are skipped by `fetch`, never raised).
            if not folder or isinstance(exc, FolderNotFoundError):
                raise
            raise FolderNotFoundError(f"folder id {folder!r} is not in the mailbox: {exc}",
                                      code=exc.code) from exc  # fmt: skip

    async def _sync(
        self,
        mailbox: str,
        entity: EntityKind,
        state: str | None,
        *,
        restarted: bool,
        known: KnownKeys | None = None,
        folder: str | None = None,
    ) -> SyncResult:
        if entity is EntityKind.APPOINTMENT:
            return await self.calendar.sync(
                mailbox, state, restarted=restarted, known=known, calendar=folder or ""
            )
        list_id = await self._list_for(mailbox, entity, folder)
        if state is not None:
            first = rq.follow(state, entity)
        elif entity is EntityKind.CONTACT:
            first = rq.contacts_delta(mailbox, list_id)
        else:
            first = rq.tasks_delta(mailbox, list_id)
        pages = await self.pages(mailbox, first, entity)
        upserts, removed = coalesce(pages)
        if known is not None and upserts and state is not None:
            upserts = unseen(upserts, listed_keys(pages), await known())
        fetched = await self.fetch(mailbox, entity, upserts, list_id)
        changes = [Upsert(item_from_json(entity, o)) for o in fetched]
        link = pages[-1].delta_link
        if link is None:
            raise ProtocolError("delta ended without a deltaLink", code="Delta")
        return SyncResult((*changes, *(Removal(r) for r in removed)), link, restarted)

    async def list_items(
        self, mailbox: str, entity: EntityKind, *, folder: str | None = None
    ) -> list[Item]:
        result = await self.sync_changes(mailbox, entity, None, folder=folder)
        return [c.item for c in result.changes if isinstance(c, Upsert)]

    async def create_item(self, mailbox: str, item: Item, *, folder: str | None = None) -> ItemRef:
        list_id = await self._list_for(mailbox, item.kind, folder)
        body = create_body(item)
        if isinstance(item, Appointment):
            body = self.meetings.create_body(mailbox, body, item)
        req = rq.create(mailbox, item.kind, body, list_id)
        obj = await self.call(mailbox, req)
        ref = ItemRef(str(obj["id"]), etag_of(obj))
        if isinstance(item, Appointment) and item.recurrence is not None:
            ref = await self._write_occurrences(mailbox, ref, item)
        return ref

    async def create_many(
        self, mailbox: str, items: Sequence[Item], *, folder: str | None = None
    ) -> list[ItemRef | ExchangeError]:
        """Creates side by side, each its own POST (the throttle lets four run at once, the
        mailbox's limit); a result per item, in order."""
        return await gather_ordered(
            self._result(self.create_item(mailbox, i, folder=folder)) for i in items
        )

    async def update_many(
        self,
        mailbox: str,
        changes: Sequence[tuple[ItemRef, Item, frozenset[str]]],
        *,
        folder: str | None = None,
    ) -> list[ItemRef | ExchangeError]:
        """Per-item outcomes, in order. A change that is one PATCH (a CRM-id stamp, plain
        fields) goes 20 to a `$batch`; the others (a task's CRM link, a series' occurrences)
        one by one."""
        out: dict[int, ItemRef | ExchangeError] = {}
        batched: list[tuple[int, ItemRef, rq.GraphRequest]] = []
        for n, (ref, item, fields) in enumerate(changes):
            if not _one_patch(item, fields):
                call = self.update_item(mailbox, ref, item, fields, folder=folder)
                out[n] = await self._result(call)
                continue
            try:
                req = await self._patch_request(mailbox, ref, item, fields, folder)
            except ITEM_ERRORS as exc:
                out[n] = exc
                continue
            if req is None:
                out[n] = ref
            else:
                batched.append((n, ref, req))
        answers = await self.batch(mailbox, [req for _, _, req in batched]) if batched else []
        for (n, ref, _), inner in zip(batched, answers, strict=True):
            err = inner.error()
            if err is None:
                out[n] = ItemRef(ref.id, etag_of(inner.body) or ref.change_key)
            elif isinstance(err, ITEM_ERRORS):
                out[n] = err
            else:
                raise err  # transient or permanent for the mailbox: the pass ends, as one by one
        return [out[n] for n in range(len(changes))]

    @staticmethod
    async def _result(call: Awaitable[ItemRef]) -> ItemRef | ExchangeError:
        """Per-item outcomes as values; errors that end the pass still raise."""
        try:
            return await call
        except ITEM_ERRORS as exc:
            return exc

    async def _write_occurrences(self, mailbox: str, ref: ItemRef, item: Appointment) -> ItemRef:
        if not item.modified_occurrences and not item.deleted_occurrences:
            current = await self.calendar.master(mailbox, ref.id)
            if not current.modified_occurrences and not current.deleted_occurrences:
                return ref
        instances = await self.calendar.instances(mailbox, replace(item, ref=ref))
        plan = plan_occurrence_writes(item, instances)
        kind = EntityKind.APPOINTMENT
        reqs = [rq.update(mailbox, kind, oid, "", body) for oid, body in plan.patches]
        reqs += [rq.delete(mailbox, kind, oid) for oid in plan.deletes]
        for inner in await self.batch(mailbox, reqs):
            err = inner.error()
            if err is not None and not isinstance(err, ItemNotFoundError):
                raise err
        obj = await self.call(mailbox, rq.get_item(mailbox, kind, ref.id), idempotent=True)
        return ItemRef(ref.id, etag_of(obj))

    async def update_item(
        self,
        mailbox: str,
        ref: ItemRef,
        item: Item,
        fields: frozenset[str],
        *,
        folder: str | None = None,
    ) -> ItemRef:
        list_id = await self._list_for(mailbox, item.kind, folder)
        req = await self._patch_request(mailbox, ref, item, fields, folder)
        if req is not None:
            obj = await self.call(mailbox, req)
            ref = ItemRef(ref.id, etag_of(obj) or ref.change_key)
        if isinstance(item, Task) and _links_task(item, fields) and item.crm_id is not None:
            ref = await self._link_task(mailbox, list_id, ref, item.crm_id)
        if isinstance(item, Appointment) and _writes_occurrences(item, fields):
            ref = await self._write_occurrences(mailbox, ref, item)
        return ref

    async def _patch_request(
        self,
        mailbox: str,
        ref: ItemRef,
        item: Item,
        fields: frozenset[str],
        folder: str | None = None,
    ) -> rq.GraphRequest | None:
        """The PATCH of `fields` (None: nothing to send); ItemRejectedError when it would mail
        a meeting's attendees."""
        list_id = await self._list_for(mailbox, item.kind, folder)
        body = patch_body(item, fields)
        if isinstance(item, Appointment):
            body = await self.meetings.patch_body(mailbox, ref, item, fields, body)
        return (
            rq.update(mailbox, item.kind, ref.id, ref.change_key, body, list_id) if body else None
        )

    async def _link_task(self, mailbox: str, list_id: str, ref: ItemRef, crm_id: str) -> ItemRef:
        get = rq.get_item(mailbox, EntityKind.TASK, ref.id, list_id)
        current = await self.call(mailbox, get, idempotent=True)
        if read_link(current)[1] != crm_id:
            await self.call(mailbox, rq.add_link(mailbox, list_id, ref.id, crm_id))
            current = await self.call(mailbox, get, idempotent=True)
        return ItemRef(ref.id, etag_of(current))

    async def delete_item(
        self, mailbox: str, ref: ItemRef, entity: EntityKind, *, folder: str | None = None
    ) -> None:
        list_id = await self._list_for(mailbox, entity, folder)
        with contextlib.suppress(ItemNotFoundError):  # already gone: not an error
            if entity is EntityKind.APPOINTMENT:
                await self.meetings.check_delete(mailbox, ref)
            await self.call(mailbox, rq.delete(mailbox, entity, ref.id, list_id))

    async def find_by_crm_id(
        self, mailbox: str, entity: EntityKind, crm_id: str, *, folder: str | None = None
    ) -> ItemRef | None:
        list_id = await self._list_for(mailbox, entity, folder)
        req = rq.find_by_crm_id(mailbox, entity, crm_id, list_id)
        for page in await self.pages(mailbox, req, entity):
            for obj in page.values:
                return ItemRef(str(obj["id"]), etag_of(obj))
        return None

    async def read_marker(self, mailbox: str) -> SyncMarker | None:
        """The marker lives in an open extension on the user (`com.crmsync.marker`)."""
        try:
            obj = await self.call(mailbox, rq.marker_get(mailbox), idempotent=True)
        except ItemNotFoundError:
            return None
        try:
            return SyncMarker(int(obj["generation"]), parse_dt(str(obj["syncedAt"])))
        except (KeyError, ValueError, TypeError) as exc:
            raise ProtocolError("unreadable sync marker", code="Marker") from exc

    async def write_marker(self, mailbox: str, marker: SyncMarker) -> None:
        values = {"generation": marker.generation, "syncedAt": fmt_utc(marker.synced_at)}
        try:
            await self.call(mailbox, rq.marker_update(mailbox, values), idempotent=True)
            return
        except ItemNotFoundError:
            pass
        try:
            await self.call(mailbox, rq.marker_create(mailbox, values))
        except ExchangeError as exc:
            if exc.code != "HTTP409" and exc.code != "NameAlreadyExists":
                raise
            await self.call(mailbox, rq.marker_update(mailbox, values), idempotent=True)

    # -- change notifications -------------------------------------------------------------------
    async def subscribe(
        self,
        mailbox: str,
        entity: EntityKind,
        notification_url: str,
        client_state: str,
        lifetime: timedelta = timedelta(days=2),
        lifecycle_url: str | None = None,
    ) -> Subscription:
        """Change notifications for one mailbox folder; with `lifecycle_url`, Graph's lifecycle
        notifications too (they can only be asked for at creation)."""
        list_id = await self._list_for(mailbox, entity)
        resource = rq.subscription_resource(mailbox, entity, list_id)
        expires = self._clock() + lifetime
        req = rq.subscribe(resource, notification_url, client_state, expires, lifecycle_url)
        obj = await self.call(mailbox, req)
        return Subscription(str(obj["id"]), resource, parse_dt(str(obj["expirationDateTime"])))

    async def renew(self, mailbox: str, subscription_id: str, lifetime: timedelta) -> datetime:
        """A new expiry (which also reauthorizes); ItemNotFoundError when Graph lost it."""
        req = rq.renew(subscription_id, self._clock() + lifetime)
        obj = await self._on_subscription(mailbox, req)
        return parse_dt(str(obj["expirationDateTime"]))

    async def unsubscribe(self, mailbox: str, subscription_id: str) -> None:
        with contextlib.suppress(ItemNotFoundError):
            await self._on_subscription(mailbox, rq.unsubscribe(subscription_id))

    async def _on_subscription(self, mailbox: str, req: rq.GraphRequest) -> Json:
        """A request on one subscription: Graph's 404 for it names a resource, not a user
        (`ResourceNotFound`), so it means the subscription is gone, never the mailbox."""
        try:
            return await self.call(mailbox, req, idempotent=True)
        except MailboxError as exc:
            if exc.code not in MAILBOX_CODES:
                raise
            raise ItemNotFoundError(str(exc), code=exc.code) from exc

    async def subscription_ids(self) -> set[str]:
        """Ids of the application's live subscriptions, every page."""
        found: set[str] = set()
        req = rq.subscriptions()
        while True:
            page = parse_page(await self.call("", req, idempotent=True))
            found |= {str(obj["id"]) for obj in page.values}
            if page.next_link is None:
                return found
            req = rq.GraphRequest("GET", page.next_link)


# What one item's write can answer without ending the pass: the item is skipped and recorded.
ITEM_ERRORS = (ItemRejectedError, ConflictError, ItemNotFoundError)


def _links_task(item: Item, fields: frozenset[str]) -> bool:
    """A task's CRM id is a linked resource: a request of its own."""
    return isinstance(item, Task) and "crm_id" in fields and item.crm_id is not None


def _writes_occurrences(item: Item, fields: frozenset[str]) -> bool:
    """A series' exceptions and deletions are written occurrence by occurrence."""
    return (
        isinstance(item, Appointment)
        and item.recurrence is not None
        and bool(fields & OCCURRENCE_FIELDS)
    )


def _one_patch(item: Item, fields: frozenset[str]) -> bool:
    """Whether the change is a single PATCH (so it can share a `$batch` with others)."""
    return not (_links_task(item, fields) or _writes_occurrences(item, fields))
