"""What the operator sees of folder links: each entity's folder, its state and error (for
`mailboxes show`, `mailboxes folder-link show`, the API and status)."""

from __future__ import annotations

from typing import Any

import asyncpg

from sync_service.db.folder_links import FolderLink, FolderLinkStore

# The operator's entity names (the mode columns) and the stored ones.
ENTITY_NAMES = {"contacts": "contact", "calendar": "appointment", "tasks": "task"}
SHOWN_NAMES = {stored: name for name, stored in ENTITY_NAMES.items()}


def link_json(entity: str, link: FolderLink | None) -> dict[str, Any]:
    """One entity's folder: `default`, or the choice with its state (pending until a pass
    resolves it, resolved, or error with the reason)."""
    if link is None or not link.linked:
        return {"entity": SHOWN_NAMES[entity], "folder": "default", "state": "ok"}
    state = "error" if link.error else ("resolved" if link.folder_id else "pending")
    return {
        "entity": SHOWN_NAMES[entity],
        "folder": f"{link.choice_by}:{link.choice_value}",
        "create": link.create_missing,
        "folder_id": link.folder_id,
        "path": link.folder_path,
        "state": state,
        "error": link.error,
        "error_at": link.error_at.isoformat() if link.error_at else None,
        "rematch": link.rematch,
    }


async def folders_of(pool: asyncpg.Pool, mailbox_id: int) -> list[dict[str, Any]]:
    links = await FolderLinkStore(pool).links(mailbox_id)
    return [link_json(entity, links.get(entity)) for entity in SHOWN_NAMES]


async def error_count(pool: asyncpg.Pool) -> int:
    """Mailbox entities whose linked folder cannot be served."""
    return await FolderLinkStore(pool).error_count()


def folders_text(folders: list[dict[str, Any]]) -> list[str]:
    """`mailboxes show` lines: the linked entities only (the others sync their default)."""
    out = []
    for k in folders:
        if k["folder"] == "default":
            continue
        where = f" -> {k['path']}" if k.get("path") else ""
        error = f": {k['error']}" if k.get("error") else ""
        out.append(f"{'folder ' + k['entity'] + ':':16}{k['folder']}{where} ({k['state']}){error}")
    return out
