"""EwsClient: build -> send (through throttle and transport) -> parse, a few lines per call;
and the `ExchangeBackend` the sync engine uses, on top of those operations."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from types import TracebackType
from typing import TypeVar

from ews_client.errors import (
    ExchangeError,
    InvalidSyncStateError,
    ItemNotFoundError,
    ProtocolError,
    TransientError,
)
from ews_client.ews import find, folders, items, notifications, summary, sync, userconfig
from ews_client.ews.calendar import OCCURRENCE_READ
from ews_client.ews.convert import READ_PATHS, folder_for, item_to_xml, item_updates
from ews_client.ews.convert_ids import (
    MAX_IDS_PER_CALL,
    IdFormat,
    build_convert_id,
    parse_convert_id,
)
from ews_client.ews.find import FolderInfo
from ews_client.ews.ids import DistinguishedFolder, FolderRef, OccurrenceRef
from ews_client.ews.items import (
    AnyItemId,
    BatchTooLarge,
    DeleteType,
    FetchedItem,
    ItemChange,
    raise_retryable,
    successes,
)
from ews_client.ews.occurrences import plan_exceptions
from ews_client.ews.sync import SyncPage
from ews_client.io import ews_folders
from ews_client.io.auth import Auth
from ews_client.io.failures import AMBIGUOUS_CODES
from ews_client.io.outbound import OutboundPolicy
from ews_client.io.tasks import first_error, gather_ordered
from ews_client.io.throttle import Throttle, ThrottleLimits
from ews_client.io.transport import Transport, TransportLimits
from ews_client.models import (
    MARKER_CONFIG_NAME,
    Appointment,
    EntityKind,
    ExchangeBackend,
    FolderChoice,
    Item,
    ItemRef,
    KnownKeys,
    LinkedFolder,
    ModifiedOccurrence,
    Removal,
    SyncMarker,
    SyncResult,
    Upsert,
)

T = TypeVar("T")
R = TypeVar("R")
OnRequest = Callable[[str, str, float], None]


class EwsClient:
    """Async EWS client for one server; `async with EwsClient(url, auth) as client`."""

    # A mailbox's write batches (CreateItem, UpdateItem of up to 50 items) side by side: well
    # within its ~10 concurrent requests (throttle.py), leaving room for reads.
    write_batches_in_flight = 4

    def __init__(
        self,
        url: str,
        auth: Auth,
        *,
        transport_limits: TransportLimits | None = None,
        throttle_limits: ThrottleLimits | None = None,
        ca_file: str | None = None,
        outbound: OutboundPolicy | None = None,
        on_request: OnRequest | None = None,
        on_backoff: Callable[[float], None] | None = None,
        get_item_batch: int = 50,
        delete_type: DeleteType = "HardDelete",
        marker_folder: str = "root",
    ) -> None:
        self.transport = Transport(
            url, auth, limits=transport_limits, ca_file=ca_file, outbound=outbound
        )
        limits = throttle_limits or ThrottleLimits()
        # A request admitted by the throttle must find a pooled connection at once: one that
        # queued inside aiohttp could be sent after a back-off arrived meanwhile.
        ceiling = min(limits.max_concurrency, self.transport.limits.connections)
        limits = replace(limits, max_concurrency=ceiling,
                         min_concurrency=min(limits.min_concurrency, ceiling))  # fmt: skip
        self.throttle = Throttle(limits, on_backoff=on_backoff)
        self._on_request = on_request
        self._batch = max(1, min(50, get_item_batch))
        self._delete_type: DeleteType = delete_type
        self._marker_folder = marker_folder

    async def __aenter__(self) -> EwsClient:
        self.transport.open()
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.transport.close()
        self.transport.auth.close()

    async def check_connection(self) -> int:
        """Reach the server without credentials: the HTTP status it answered (`servers test`)."""
        return await self.transport.reach()

    # -- plumbing -------------------------------------------------------------------------------
    async def _call(
        self,
        mailbox: str,
        operation: str,
        body: bytes,
        parse: Callable[[bytes], R],
        *,
        sync_call: bool = False,
        idempotent: bool = False,
        retry_ambiguous: bool = True,
    ) -> R:
        async def attempt() -> R:
            started = time.perf_counter()
            outcome = "ok"
            try:
                return parse(await self.transport.post(body, mailbox))
            except BatchTooLarge:
                outcome = "TimeoutExpired"
                raise
            except ExchangeError as exc:
                outcome = type(exc).__name__
                raise
            finally:
                if self._on_request is not None:
                    self._on_request(operation, outcome, time.perf_counter() - started)

        return await self.throttle.run(
            mailbox, attempt, sync=sync_call, idempotent=idempotent, retry_ambiguous=retry_ambiguous
        )

    # -- operations -----------------------------------------------------------------------------
    async def get_folder(self, mailbox: str, folders: Sequence[FolderRef]) -> list[FolderInfo]:
        body = find.build_get_folder(mailbox, folders)
        return await self._call(mailbox, "GetFolder", body, find.parse_get_folder, idempotent=True)

    async def find_folder(
        self, mailbox: str, parent: FolderRef, name: str | None
    ) -> list[FolderInfo]:
        body = find.build_find_folder(mailbox, parent, name)
        return await self._call(
            mailbox, "FindFolder", body, find.parse_find_folder, idempotent=True
        )

    async def create_folder(
        self, mailbox: str, parent: FolderRef, entity: EntityKind, name: str
    ) -> FolderInfo:
        body = folders.build_create_folder(mailbox, parent, entity, name)
        return await self._call(mailbox, "CreateFolder", body, folders.parse_create_folder)

    async def resolve_folder(
        self, mailbox: str, entity: EntityKind, choice: FolderChoice, *, create: bool = False
    ) -> LinkedFolder:
        return await ews_folders.resolve(self, mailbox, entity, choice, create)

    async def sync_folder_items(
        self,
        mailbox: str,
        folder: FolderRef,
        sync_state: str | None,
        kind: EntityKind | None = None,
    ) -> SyncPage:
        """One page; for a `kind` it asks for what a listing can give of such items, so that
        an item the page carries whole needs no GetItem (ews_client/ews/summary.py)."""
        props = () if kind is None else summary.listed_paths(kind)
        body = sync.build_sync_folder_items(mailbox, folder, sync_state, props=props)
        parse = sync.parse_sync_folder_items
        # Reading a page does not consume the state: a lost answer can be asked for again.
        return await self._call(
            mailbox, "SyncFolderItems", body, parse, sync_call=True, idempotent=True
        )

    async def _get_batch(
        self, mailbox: str, ids: Sequence[AnyItemId], kind: EntityKind
    ) -> list[FetchedItem | ExchangeError]:
        def parse(data: bytes) -> list[FetchedItem | ExchangeError]:
            results = items.parse_get_item(data)
            raise_retryable(results)
            return results

        body = items.build_get_item(mailbox, ids, READ_PATHS[kind])
        return await self._call(mailbox, "GetItem", body, parse, idempotent=True)

    async def get_items(
        self, mailbox: str, refs: Sequence[ItemRef], kind: EntityKind
    ) -> list[FetchedItem | ExchangeError]:
        """GetItem in batches of <= 50 sent side by side (the throttle keeps the mailbox within
        its concurrent requests), a batch halved on ErrorTimeoutExpired; results in order."""
        batches = [refs[i : i + self._batch] for i in range(0, len(refs), self._batch)]
        done = await gather_ordered(self._get_halving(mailbox, b, kind) for b in batches)
        return [result for batch in done for result in batch]

    async def _get_halving(
        self, mailbox: str, refs: Sequence[ItemRef], kind: EntityKind
    ) -> list[FetchedItem | ExchangeError]:
        try:
            return await self._get_batch(mailbox, refs, kind)
        except BatchTooLarge:
            if len(refs) == 1:
                msg = "GetItem timed out for one item"
                raise TransientError(msg, code="ErrorTimeoutExpired") from None
        half = len(refs) // 2
        first = await self._get_halving(mailbox, refs[:half], kind)
        return [*first, *await self._get_halving(mailbox, refs[half:], kind)]

    async def get_occurrences(
        self, mailbox: str, ids: Sequence[ItemRef]
    ) -> list[ModifiedOccurrence | ExchangeError]:
        body = items.build_get_item(mailbox, ids, OCCURRENCE_READ)
        return await self._call(
            mailbox, "GetItem", body, items.parse_get_occurrences, idempotent=True
        )

    async def create_items(
        self, mailbox: str, folder: FolderRef, new: Sequence[Item], *, blind_retry: bool = True
    ) -> list[ItemRef | ExchangeError]:
        """CreateItem. `blind_retry=False`: a lost answer is raised, not retried (the caller
        looks the CRM id up first, so that a retry never creates a duplicate)."""
        calendar = any(isinstance(i, Appointment) for i in new)
        elements = [item_to_xml(i) for i in new]
        body = items.build_create_item(mailbox, folder, elements, calendar=calendar)
        parse = items.parse_create_item
        return await self._call(mailbox, "CreateItem", body, parse, retry_ambiguous=blind_retry)

    async def update_items(
        self, mailbox: str, changes: Sequence[ItemChange], *, calendar: bool = False
    ) -> list[ItemRef | ExchangeError]:
        body = items.build_update_item(mailbox, changes, calendar=calendar)
        return await self._call(mailbox, "UpdateItem", body, items.parse_update_item)

    async def delete_items(
        self, mailbox: str, ids: Sequence[AnyItemId], *, delete_type: DeleteType | None = None
    ) -> list[ExchangeError | None]:
        body = items.build_delete_item(mailbox, ids, delete_type=delete_type or self._delete_type)
        return await self._call(
            mailbox, "DeleteItem", body, items.parse_delete_item, idempotent=True
        )

    async def find_items_by_crm_id(
        self, mailbox: str, folder: FolderRef, crm_id: str
    ) -> list[ItemRef]:
        body = find.build_find_by_crm_id(mailbox, folder, crm_id)
        return await self._call(mailbox, "FindItem", body, find.parse_find_item, idempotent=True)

    async def convert_ids(
        self,
        mailbox: str,
        ids: Sequence[str],
        source: IdFormat,
        target: IdFormat,
    ) -> list[str | ExchangeError]:
        """Each id of `mailbox` in `target` format (or its error), in order; requests of at
        most MAX_IDS_PER_CALL ids, one after another (a conversion is cheap, a move rare)."""
        out: list[str | ExchangeError] = []
        for start in range(0, len(ids), MAX_IDS_PER_CALL):
            chunk = ids[start : start + MAX_IDS_PER_CALL]
            body = build_convert_id(mailbox, chunk, source, target)

            def parse(data: bytes, count: int = len(chunk)) -> list[str | ExchangeError]:
                return parse_convert_id(data, count)

            out += await self._call(mailbox, "ConvertId", body, parse, idempotent=True)
        return out

    async def get_user_configuration(
        self, mailbox: str, folder: FolderRef, name: str
    ) -> dict[str, str]:
        body = userconfig.build_get_user_configuration(mailbox, folder, name)
        parse = userconfig.parse_get_user_configuration
        return await self._call(mailbox, "GetUserConfiguration", body, parse, idempotent=True)

    async def create_user_configuration(
        self, mailbox: str, folder: FolderRef, name: str, entries: dict[str, str]
    ) -> None:
        body = userconfig.build_create_user_configuration(mailbox, folder, name, entries)
        parse = userconfig.parse_create_user_configuration
        await self._call(mailbox, "CreateUserConfiguration", body, parse)

    async def update_user_configuration(
        self, mailbox: str, folder: FolderRef, name: str, entries: dict[str, str]
    ) -> None:
        body = userconfig.build_update_user_configuration(mailbox, folder, name, entries)
        parse = userconfig.parse_update_user_configuration
        await self._call(mailbox, "UpdateUserConfiguration", body, parse)

    async def subscribe(self, mailbox: str, folders: Sequence[FolderRef]) -> str:
        body = notifications.build_subscribe(mailbox, folders)
        return await self._call(mailbox, "Subscribe", body, notifications.parse_subscribe)

    async def unsubscribe(self, mailbox: str, subscription_id: str) -> None:
        body = notifications.build_unsubscribe(mailbox, subscription_id)
        await self._call(
            mailbox, "Unsubscribe", body, notifications.parse_unsubscribe, idempotent=True
        )

    async def streaming_events(
        self,
        subscription_ids: Sequence[str],
        *,
        anchor_mailbox: str,
        timeout_minutes: int = 30,
        idle_timeout_s: float | None = None,
    ) -> AsyncIterator[notifications.StreamBatch]:
        """One GetStreamingEvents connection; yields each envelope's batch as it arrives.

        Streaming connections are long-lived and not subject to the per-mailbox request
        limits (they count against a separate hanging-connection limit), so no throttle slot.
        """
        body = notifications.build_get_streaming_events(
            anchor_mailbox, subscription_ids, timeout_minutes
        )
        splitter = notifications.EnvelopeSplitter()
        read_s = timeout_minutes * 60 + 30
        chunks = self.transport.stream(
            body, anchor_mailbox, read_timeout_s=read_s, idle_timeout_s=idle_timeout_s
        )
        async for chunk in chunks:
            for doc in splitter.feed(chunk):
                batch = notifications.parse_streaming_events(doc)
                yield batch
                if batch.closed:
                    return
        if splitter.pending():
            raise ProtocolError("streaming answer ended inside a document", code="Truncated")

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
        where = folder_for(entity, mailbox, folder)
        try:
            try:
                return await self._read_changes(mailbox, entity, where, sync_state, known)
            except InvalidSyncStateError as exc:
                if sync_state is None or (folder and exc.code in ews_folders.FOLDER_GONE_CODES):
                    raise
            # The state was refused: resynchronize from no state (the caller reconciles).
            again = await self._read_changes(mailbox, entity, where, None, None)
            return replace(again, restarted=True)
        except ExchangeError as exc:
            # A linked folder that is gone is told apart from a dead state or a lost item.
            if folder and exc.code in ews_folders.FOLDER_GONE_CODES:
                raise ews_folders.gone(exc, f"id {folder!r}") from exc
            raise

    async def _read_changes(
        self,
        mailbox: str,
        entity: EntityKind,
        folder: FolderRef,
        state: str | None,
        known: KnownKeys | None,
    ) -> SyncResult:
        """SyncFolderItems to its last page; the items each page names and does not carry whole
        are fetched while the next page is asked for (an id named again later is read again:
        the later read wins, so no change a page reported is missed)."""
        changes: list[sync.SyncChange] = []
        reads = _Reads(known)
        try:
            async with asyncio.TaskGroup() as tg:
                while True:
                    page = await self.sync_folder_items(mailbox, folder, state, entity)
                    changes.extend(page.changes)
                    state = page.sync_state
                    for chunk in await reads.wanted(page, self._batch):
                        reads.started(
                            chunk, tg.create_task(self._get_halving(mailbox, chunk, entity))
                        )
                    if page.includes_last:
                        break
        except BaseExceptionGroup as group:
            raise first_error(group) from None
        upserts, deletes = sync.coalesce(changes)
        fetched = await self._with_occurrences(mailbox, reads.results(upserts))
        result = [Upsert(i) for i in fetched] + [Removal(d) for d in deletes]
        return SyncResult(tuple(result), state or "", False)

    async def _with_occurrences(self, mailbox: str, fetched: list[FetchedItem]) -> list[Item]:
        """Fill in the modified occurrences of every master, <= 50 occurrences per GetItem
        (the batches side by side)."""
        infos = [info for f in fetched for info in f.occurrences]
        chunks = [infos[i : i + self._batch] for i in range(0, len(infos), self._batch)]
        answers = await gather_ordered(
            self.get_occurrences(mailbox, [o.ref for o in chunk]) for chunk in chunks
        )
        got: list[ModifiedOccurrence] = [occ for answer in answers for occ in successes(answer)]
        # The master's OriginalStart is authoritative for identifying the occurrence.
        merged = iter(
            replace(occ, original_start=info.original_start)
            for info, occ in zip(infos, got, strict=True)
        )
        out: list[Item] = []
        for f in fetched:
            item = f.item
            if isinstance(item, Appointment) and f.occurrences:
                mine = tuple(next(merged) for _ in f.occurrences)
                item = replace(item, modified_occurrences=mine)
            out.append(item)
        return out

    async def list_items(
        self, mailbox: str, entity: EntityKind, *, folder: str | None = None
    ) -> list[Item]:
        result = await self.sync_changes(mailbox, entity, None, folder=folder)
        return [c.item for c in result.changes if isinstance(c, Upsert)]

    async def create_item(self, mailbox: str, item: Item, *, folder: str | None = None) -> ItemRef:
        ref = await self._create_once(mailbox, item, folder)
        if isinstance(item, Appointment) and item.recurrence is not None:
            ref = await self._write_exceptions(mailbox, ref, item, None)
        return ref

    async def create_many(
        self, mailbox: str, new: Sequence[Item], *, folder: str | None = None
    ) -> list[ItemRef | ExchangeError]:
        """One CreateItem for several items of one kind (EWS takes many per request)."""
        if not new:
            return []
        where = folder_for(new[0].kind, mailbox, folder)
        return await self.create_items(mailbox, where, new, blind_retry=False)

    async def update_many(
        self,
        mailbox: str,
        changes: Sequence[tuple[ItemRef, Item, frozenset[str]]],
        *,
        folder: str | None = None,  # an EWS item id names its item in any folder
    ) -> list[ItemRef | ExchangeError]:
        """One UpdateItem with an ItemChange per item (plain fields only)."""
        if not changes:
            return []
        item_changes = [ItemChange(ref, tuple(item_updates(item, fields)))
                        for ref, item, fields in changes]  # fmt: skip
        calendar = any(isinstance(item, Appointment) for _, item, _ in changes)
        return await self.update_items(mailbox, item_changes, calendar=calendar)

    async def _create_once(
        self, mailbox: str, item: Item, folder: str | None, attempts: int = 4
    ) -> ItemRef:
        """Create, and after a lost answer look the CRM id up before creating again
        (architecture: "before creating, a retry ... looks the id up")."""
        where = folder_for(item.kind, mailbox, folder)
        if item.crm_id is None:
            return successes(await self.create_items(mailbox, where, [item]))[0]
        for attempt in range(1, attempts + 1):
            try:
                res = await self.create_items(mailbox, where, [item], blind_retry=False)
                return successes(res)[0]
            except TransientError as exc:
                if exc.code not in AMBIGUOUS_CODES or attempt == attempts:
                    raise
            found = await self.find_by_crm_id(mailbox, item.kind, item.crm_id, folder=folder)
            if found is not None:
                return found
        raise AssertionError("unreachable")

    async def _write_exceptions(
        self, mailbox: str, ref: ItemRef, wanted: Appointment, current: Appointment | None
    ) -> ItemRef:
        plan = plan_exceptions(ref.id, wanted, current)
        if not plan.updates and not plan.deletes:
            return ref
        for change in plan.updates:
            # One occurrence per request: each write moves the master's change key, and an
            # AutoResolve update must carry the current one.
            occ = replace(change.ref, change_key=ref.change_key)
            successes(
                await self.update_items(mailbox, [ItemChange(occ, change.updates)], calendar=True)
            )
            ref = await self._current_ref(mailbox, ref, EntityKind.APPOINTMENT)
        if plan.deletes:
            for err in await self.delete_items(mailbox, plan.deletes, delete_type="HardDelete"):
                if err is not None and not isinstance(err, ItemNotFoundError):
                    raise err
            ref = await self._current_ref(mailbox, ref, EntityKind.APPOINTMENT)
        return ref

    async def _current_ref(self, mailbox: str, ref: ItemRef, kind: EntityKind) -> ItemRef:
        """The master's change key moved with each occurrence write: read it back."""
        body = items.build_get_item(mailbox, [ItemRef(ref.id)], [])
        parse = items.parse_get_item
        res = successes(await self._call(mailbox, "GetItem", body, parse, idempotent=True))
        fetched = res[0]
        if isinstance(fetched, FetchedItem) and fetched.item.ref is not None:
            return fetched.item.ref
        raise ProtocolError("GetItem returned no item", code=str(kind))

    async def update_item(
        self,
        mailbox: str,
        ref: ItemRef,
        item: Item,
        fields: frozenset[str],
        *,
        folder: str | None = None,
    ) -> ItemRef:
        updates = tuple(item_updates(item, fields))
        calendar = isinstance(item, Appointment)
        if updates:
            change = ItemChange(ref, updates)
            ref = successes(await self.update_items(mailbox, [change], calendar=calendar))[0]
        wants = {"modified_occurrences", "deleted_occurrences", "recurrence"}
        if isinstance(item, Appointment) and item.recurrence is not None and fields & wants:
            current = await self._read_one(mailbox, ref, EntityKind.APPOINTMENT)
            assert isinstance(current, Appointment)
            ref = await self._write_exceptions(mailbox, ref, item, current)
        return ref

    async def _read_one(self, mailbox: str, ref: ItemRef, kind: EntityKind) -> Item:
        fetched = successes(await self.get_items(mailbox, [ref], kind))
        return (await self._with_occurrences(mailbox, fetched))[0]

    async def delete_item(
        self, mailbox: str, ref: ItemRef, entity: EntityKind, *, folder: str | None = None
    ) -> None:
        [err] = await self.delete_items(mailbox, [ItemRef(ref.id)])
        if err is not None and not isinstance(err, ItemNotFoundError):
            raise err

    async def find_by_crm_id(
        self, mailbox: str, entity: EntityKind, crm_id: str, *, folder: str | None = None
    ) -> ItemRef | None:
        where = folder_for(entity, mailbox, folder)
        found = await self.find_items_by_crm_id(mailbox, where, crm_id)
        return found[0] if found else None

    def _marker_location(self, mailbox: str) -> DistinguishedFolder:
        return DistinguishedFolder(self._marker_folder, mailbox)

    async def read_marker(self, mailbox: str) -> SyncMarker | None:
        folder = self._marker_location(mailbox)
        try:
            entries = await self.get_user_configuration(mailbox, folder, MARKER_CONFIG_NAME)
        except ItemNotFoundError:
            return None
        try:
            synced_at = datetime.fromisoformat(entries["synced_at"])
            return SyncMarker(int(entries["generation"]), synced_at)
        except (KeyError, ValueError) as exc:
            raise ProtocolError("unreadable sync marker", code="Marker") from exc

    async def write_marker(self, mailbox: str, marker: SyncMarker) -> None:
        folder = self._marker_location(mailbox)
        entries = {"generation": str(marker.generation), "synced_at": marker.synced_at.isoformat()}
        try:
            await self.update_user_configuration(mailbox, folder, MARKER_CONFIG_NAME, entries)
            return
        except ItemNotFoundError:
            pass
        try:
            await self.create_user_configuration(mailbox, folder, MARKER_CONFIG_NAME, entries)
        except ExchangeError as exc:
            if exc.code != "ErrorItemSave":
                raise
            # Created meanwhile (or by our own attempt whose answer was lost): update it.
            await self.update_user_configuration(mailbox, folder, MARKER_CONFIG_NAME, entries)


def _conforms(client: EwsClient) -> ExchangeBackend:
    return client  # mypy proves EwsClient implements the engine's ExchangeBackend Protocol


__all__ = ["EwsClient", "OccurrenceRef"]


Fetch = asyncio.Task[list[FetchedItem | ExchangeError]]
Read = tuple[Fetch, int] | FetchedItem  # a GetItem answer's place, or the item a page carried


class _Reads:
    """The GetItem reads of one sync: which task read each id last, and at which place."""

    def __init__(self, known: KnownKeys | None) -> None:
        self._known = known
        self._keys: Mapping[str, str] | None = None
        self._latest: dict[str, Read] = {}

    async def wanted(self, page: SyncPage, size: int) -> list[list[ItemRef]]:
        """The page's changed items to read, in batches of `size`; an item the page carried
        whole is taken as it is. Items still at the change key the caller last synced (its own
        writes, typically) are not read: the caller treats an item it is not given as
        unchanged."""
        changed = [c for c in page.changes if c.kind not in ("delete", "read_flag")]
        if self._known is not None and changed and self._keys is None:
            self._keys = await self._known()
        refs = []
        for change in changed:
            if self._unchanged(change.ref):
                continue
            if change.listed is not None:
                self._latest[change.ref.id] = FetchedItem(change.listed)
            else:
                refs.append(change.ref)
        return [refs[i : i + size] for i in range(0, len(refs), size)]

    def started(self, chunk: list[ItemRef], task: Fetch) -> None:
        for place, ref in enumerate(chunk):
            self._latest[ref.id] = (task, place)

    def results(self, upserts: list[ItemRef]) -> list[FetchedItem]:
        """The items as read last, for the net upserts of the sync (all reads have ended)."""
        out: list[FetchedItem] = []
        for ref in upserts:
            read = self._latest.get(ref.id)
            if read is None or self._unchanged(ref):
                continue
            if isinstance(read, FetchedItem):
                out.append(read)
                continue
            task, place = read
            res = task.result()[place]
            if isinstance(res, ItemNotFoundError):
                continue  # deleted since the sync page; the next sync reports the deletion
            if isinstance(res, ExchangeError):
                raise res
            out.append(res)
        return out

    def _unchanged(self, ref: ItemRef) -> bool:
        keys = self._keys
        return keys is not None and bool(ref.change_key) and keys.get(ref.id) == ref.change_key
