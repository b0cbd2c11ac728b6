-- Link rows of an interrupted write (a create intended but not confirmed, an update in
-- flight) are few; an express pass asks for them on every run to know whether it may skip
-- planning an idle folder, so they get an index of their own.
CREATE INDEX item_links_unfinished_idx ON sync.item_links (mailbox_id, entity)
    WHERE pending <> '' OR intent_hash <> '';
