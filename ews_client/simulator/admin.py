"""Admin JSON API under `/_sim/`: provisioning, owner edits, snapshots, counters (what a real
server would have mailed to attendees under `/_sim/sent`), access (refused impersonation,
mailbox moves; moving a mailbox between the EWS and Graph personas, moves.py), reset.

Owner edits ("the user in Outlook") go through the same store writes as EWS calls, so they
change change keys, sync states and streaming notifications exactly like a client write.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web
from lxml import etree

from . import meetings, moves
from .mailbox_access import MoveState
from .state import SimState
from .store import FOLDER_ITEM_KIND, ITEM_TYPES, Mailbox, StoredItem
from .writes import WriteError, simple_props
from .xmlutil import insert_ordered, local, t


def add_admin_routes(app: web.Application, sim: SimState) -> None:
    api = _Admin(sim)
    app.router.add_post("/_sim/mailboxes", api.create_mailboxes)
    app.router.add_get("/_sim/mailboxes/{address}/items", api.list_items)
    app.router.add_post("/_sim/mailboxes/{address}/items", api.owner_create)
    app.router.add_patch("/_sim/mailboxes/{address}/items/{item_id}", api.owner_update)
    app.router.add_delete("/_sim/mailboxes/{address}/items/{item_id}", api.owner_delete)
    app.router.add_post("/_sim/mailboxes/{address}/items/{item_id}/send", api.owner_send)
    app.router.add_post("/_sim/mailboxes/{address}/items/{item_id}/respond", api.owner_respond)
    app.router.add_post("/_sim/mailboxes/{address}/snapshot", api.snapshot)
    app.router.add_post("/_sim/mailboxes/{address}/restore", api.restore)
    app.router.add_get("/_sim/mailboxes/{address}/access", api.access)
    app.router.add_put("/_sim/mailboxes/{address}/impersonation", api.impersonation)
    app.router.add_put("/_sim/mailboxes/{address}/move", api.move)
    app.router.add_post("/_sim/mailboxes/{address}/relocate", api.relocate)
    app.router.add_get("/_sim/counters", api.counters)
    app.router.add_get("/_sim/sent", api.sent)
    app.router.add_post("/_sim/streams/break", api.break_streams)
    app.router.add_post("/_sim/reset", api.reset)


def _problem(status: int, title: str) -> web.Response:
    body = {"type": "about:blank", "title": title, "status": status}
    return web.json_response(body, status=status, content_type="application/problem+json")


def item_json(item: StoredItem) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    for child in item.props:
        if len(child):
            fields[local(child.tag)] = etree.tostring(child, encoding="unicode")
        else:
            fields[local(child.tag)] = child.text or ""
    return {
        "id": item.id,
        "change_key": item.change_key,
        "kind": item.kind,
        "folder_id": item.folder_id,
        "fields": fields,
        "extended": {k: v[1] for k, v in item.ext.items()},
        "modified_occurrences": sorted(item.exceptions),
        "deleted_occurrences": sorted(item.deleted_occurrences),
    }


class _Admin:
    def __init__(self, sim: SimState) -> None:
        self.sim = sim

    def _box(self, request: web.Request) -> Mailbox:
        box = self.sim.mailboxes.get(request.match_info["address"].lower())
        if box is None:
            raise web.HTTPNotFound(text="no such mailbox")
        return box

    async def create_mailboxes(self, request: web.Request) -> web.Response:
        body = await request.json()
        per_folder = int(body.get("items_per_folder", 0))
        made = [self.sim.add_mailbox(a).address for a in body.get("addresses", [])]
        for address in made:
            self.sim.seed(self.sim.mailboxes[address], per_folder)
        if "count" in body:
            first = int(body.get("first", len(self.sim.mailboxes) + 1))
            made += self.sim.add_numbered(int(body["count"]), per_folder, first)
        return web.json_response({"created": made})

    async def list_items(self, request: web.Request) -> web.Response:
        box = self._box(request)
        folders = {f.id: f.name for f in box.folders.values()}
        items = [dict(item_json(i), folder=folders[i.folder_id]) for i in box.items.values()]
        configs = [{"folder": folders[k[0]], "name": k[1]} for k in box.configs]
        return web.json_response({"items": items, "configurations": configs})

    async def owner_create(self, request: web.Request) -> web.Response:
        box = self._box(request)
        body = await request.json()
        # A default folder by name, or any folder by id (one the user made).
        wanted = str(body.get("folder", "contacts"))
        folder = box.folders.get(wanted) or box.folder(wanted)
        kind = FOLDER_ITEM_KIND[folder.folder_class]
        try:
            props = simple_props(kind, body.get("fields", {}))
        except WriteError as exc:
            return _problem(400, str(exc))
        item = box.add(folder, kind, props)
        return web.json_response(item_json(item), status=201)

    async def owner_update(self, request: web.Request) -> web.Response:
        box = self._box(request)
        item = box.items.get(request.match_info["item_id"])
        if item is None:
            return _problem(404, "no such item")
        body = await request.json()
        try:
            changed = simple_props(item.kind, body.get("fields", {}))
        except WriteError as exc:
            return _problem(400, str(exc))
        for child in list(changed):
            insert_ordered(item.props, child, ITEM_TYPES[item.kind])
        for name in body.get("delete", []):
            node = item.props.find(t(name))
            if node is not None:
                item.props.remove(node)
        box.touch(item)
        return web.json_response(item_json(item))

    async def owner_delete(self, request: web.Request) -> web.Response:
        box = self._box(request)
        item = box.items.get(request.match_info["item_id"])
        if item is None:
            return _problem(404, "no such item")
        box.remove(item)
        return web.json_response({"deleted": item.id})

    async def owner_send(self, request: web.Request) -> web.Response:
        """The owner sends a meeting (or its update) from Outlook, optionally to new attendee
        lists {"required": [...], "optional": [...]}: copies reach this simulator's attendees."""
        box, item = self._box(request), self._item(request)
        if item is None or item.kind != "CalendarItem":
            return _problem(404, "no such calendar item")
        body = await request.json() if request.can_read_body else {}
        if "required" in body or "optional" in body:
            meetings.set_attendees(item, body.get("required", []), body.get("optional", []))
            box.touch(item)
        meetings.ensure_uid(item)
        meetings.send_as_owner(self.sim.quota, box, item)
        return web.json_response(item_json(item))

    async def owner_respond(self, request: web.Request) -> web.Response:
        """The owner answers a meeting copy in Outlook: {"response": "Accept" | "Tentative" |
        "Decline", "send": true} (sent: the organizer's item records it)."""
        box, item = self._box(request), self._item(request)
        if item is None:
            return _problem(404, "no such item")
        body = await request.json()
        try:
            meetings.respond(self.sim.quota, box, item, str(body.get("response")),
                             bool(body.get("send", True)))  # fmt: skip
        except meetings.MeetingError as exc:
            return _problem(400, str(exc))
        return web.json_response(item_json(item))

    def _item(self, request: web.Request) -> StoredItem | None:
        return self._box(request).items.get(request.match_info["item_id"])

    async def snapshot(self, request: web.Request) -> web.Response:
        box = self._box(request)
        name = (await request.json()).get("name", "default")
        self.sim.snapshots.setdefault(box.address, {})[name] = box.snapshot()
        return web.json_response({"snapshot": name, "items": len(box.items)})

    async def restore(self, request: web.Request) -> web.Response:
        box = self._box(request)
        name = (await request.json()).get("name", "default")
        snap = self.sim.snapshots.get(box.address, {}).get(name)
        if snap is None:
            return _problem(404, "no such snapshot")
        box.restore(snap)
        return web.json_response({"restored": name, "items": len(box.items), "epoch": box.epoch})

    def _access_json(self, box: Mailbox) -> web.Response:
        access = self.sim.access
        refused = access.impersonation_refused(box.address, self.sim.config.impersonable)
        return web.json_response(
            {
                "address": box.address,
                "impersonation": "refused" if refused else "allowed",
                "move": access.move_state(box.address).value,
            }
        )

    async def access(self, request: web.Request) -> web.Response:
        """What EWS does with this mailbox: impersonation allowed or refused, move state."""
        return self._access_json(self._box(request))

    async def impersonation(self, request: web.Request) -> web.Response:
        """`{"refused": true}`: EWS refuses the service account's impersonation of it."""
        box = self._box(request)
        refused = (await request.json()).get("refused")
        if not isinstance(refused, bool):
            return _problem(400, "'refused' must be true or false")
        self.sim.access.refuse(box.address, refused)
        return self._access_json(box)

    async def move(self, request: web.Request) -> web.Response:
        """`{"state": "in_progress" | "moved" | "none"}`: the mailbox's move, as EWS shows it."""
        box = self._box(request)
        state = (await request.json()).get("state")
        choices = [s.value for s in MoveState]
        if state not in choices:
            return _problem(400, f"'state' must be one of {', '.join(choices)}")
        self.sim.access.set_move(box.address, MoveState(state))
        return self._access_json(box)

    async def relocate(self, request: web.Request) -> web.Response:
        """`{"to": "graph" | "ews"}`: move the mailbox to that persona, every item re-keyed."""
        box = self._box(request)
        to = (await request.json()).get("to")
        choices = [p.value for p in moves.Persona]
        if to not in choices:
            return _problem(400, f"'to' must be one of {', '.join(choices)}")
        rekeyed = moves.move(box, self.sim.access, moves.Persona(to))
        return web.json_response({"address": box.address, "persona": to, "rekeyed": rekeyed})

    async def counters(self, request: web.Request) -> web.Response:
        return web.json_response(self.sim.counters())

    async def sent(self, request: web.Request) -> web.Response:
        """What a real server would have mailed: counts per mailbox and each message."""
        outbox = self.sim.outbox
        return web.json_response({**outbox.counters(), "messages": outbox.listing()})

    async def break_streams(self, request: web.Request) -> web.Response:
        body = await request.json() if request.can_read_body else {}
        self.sim.hub.break_all(bool(body.get("forget", False)))
        return web.json_response({"broken": True})

    async def reset(self, request: web.Request) -> web.Response:
        self.sim.reset()
        return web.json_response({"reset": True})
