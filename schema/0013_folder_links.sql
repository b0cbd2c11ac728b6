-- Folder links: the Exchange folder an operator links a mailbox's entity to, instead of the
-- entity's default folder. sync.folder_links keeps, per mailbox and entity, the choice (by
-- folder id, well-known name or display path; NULL: the default folder), whether missing
-- folders are made, the folder it resolved to (folder_id, resolved once and kept: a folder
-- renamed or moved in Outlook keeps its id) with its display path, and why the link cannot be
-- served (the folder was deleted, no folder of that path): that entity is then left out of
-- every pass until the link is set again or cleared.
ALTER TABLE sync.folder_links
    ADD COLUMN choice_by text CHECK (choice_by IN ('id', 'well_known', 'path')),
    ADD COLUMN choice_value text,
    ADD COLUMN create_missing boolean NOT NULL DEFAULT false,
    ADD COLUMN folder_path text,
    ADD COLUMN folder_error text,
    ADD COLUMN folder_error_at timestamptz,
    -- Set when the link changes: the next pass lists the new folder in full and matches it
    -- to the CRM afresh (the old folder's links are dropped first, so that no item missing
    -- from the new folder is taken for a deletion); cleared by that pass.
    ADD COLUMN rematch boolean NOT NULL DEFAULT false,
    -- Counts the link's changes: a pass settles only the link it read.
    ADD COLUMN link_generation integer NOT NULL DEFAULT 0,
    ADD CONSTRAINT folder_links_choice CHECK ((choice_by IS NULL) = (choice_value IS NULL));

CREATE INDEX folder_links_error_idx ON sync.folder_links (mailbox_id)
    WHERE folder_error IS NOT NULL;
