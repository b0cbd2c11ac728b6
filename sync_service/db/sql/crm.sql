-- Named queries of the bundled CRM's schema, owned by db/crm_tables.py for the CRM adapter.
-- Log positions are transaction ids: a change of transaction X has position X + 1, and a
-- reader only consumes changes below crm.safe_position() (every transaction below it ended).

-- name: crm_safe_position
SELECT crm.safe_position()

-- name: crm_purge_log
-- One bounded batch of the change log: rows below position $1 (every reader is past them)
-- written before $2, at most $3. Inserts never touch these rows, so a writer waits for no lock
-- of this statement, and each batch is its own short transaction.
DELETE FROM crm.change_log WHERE seq IN (
    SELECT seq FROM crm.change_log
    WHERE xid < $1::bigint::text::xid8 AND changed_at < $2
    ORDER BY seq
    LIMIT $3
)

-- name: crm_set_origin
-- The trigger records this as origin_user_id: the change is not sent back to this mailbox.
SELECT set_config('crm.sync_origin', $1::uuid::text, true)

-- name: crm_changes_since
-- $1 user, $2 entity, positions in ($3, $5] ($5 from crm_safe_position, read in an earlier
-- statement so that this one's snapshot shows every transaction below it), $4 limit.
-- Ordered by transaction so that a page ends on a transaction boundary (crm_changes_of_xact
-- completes the last one).
SELECT c.seq, c.record_id, c.op, c.xid::text::bigint + 1 AS pos FROM crm.change_log AS c
WHERE c.xid >= $3::bigint::text::xid8
  AND c.xid < $5::bigint::text::xid8
  AND c.entity = $2
  AND c.user_ids @> ARRAY[$1::uuid]
  AND c.origin_user_id IS DISTINCT FROM $1::uuid
ORDER BY c.xid, c.seq
LIMIT $4

-- name: crm_changes_since_many
-- crm_changes_since for several entities of user $1: $2 the entities, $3 the position after
-- which each is read, $4 the limit per entity, $5 from crm_safe_position (an earlier statement).
SELECT e.entity, c.seq, c.record_id, c.op, c.pos
FROM unnest($2::text[], $3::bigint[]) AS e(entity, after_seq)
CROSS JOIN LATERAL (
    SELECT l.seq, l.record_id, l.op, l.xid::text::bigint + 1 AS pos FROM crm.change_log AS l
    WHERE l.xid >= e.after_seq::text::xid8
      AND l.xid < GREATEST(e.after_seq, $5::bigint)::text::xid8
      AND l.entity = e.entity
      AND l.user_ids @> ARRAY[$1::uuid]
      AND l.origin_user_id IS DISTINCT FROM $1::uuid
    ORDER BY l.xid, l.seq
    LIMIT $4
) AS c

-- name: crm_changes_of_xact
-- The rest of one transaction's changes for a user ($3: that transaction's position).
SELECT c.seq, c.record_id, c.op, c.xid::text::bigint + 1 AS pos FROM crm.change_log AS c
WHERE c.xid = ($3::bigint - 1)::text::xid8
  AND c.entity = $2
  AND c.user_ids @> ARRAY[$1::uuid]
  AND c.origin_user_id IS DISTINCT FROM $1::uuid
  AND c.seq > $4
ORDER BY c.seq

-- name: crm_pending_users
-- Users with changes at positions in ($1, $2], skipping each change's own origin (no echo);
-- $2 from crm_safe_position, read in an earlier statement.
SELECT u.user_id::text AS user_id, max(c.xid::text::bigint) + 1 AS max_seq,
       min(c.changed_at) AS oldest
FROM crm.change_log AS c
CROSS JOIN LATERAL unnest(c.user_ids) AS u (user_id)
WHERE c.xid >= $1::bigint::text::xid8
  AND c.xid < $2::bigint::text::xid8
  AND u.user_id IS DISTINCT FROM c.origin_user_id
GROUP BY u.user_id

-- name: crm_users_list
SELECT id::text AS id, email, display_name FROM crm.users ORDER BY email

-- name: crm_attendees_get
SELECT appointment_id, email, name, required FROM crm.appointment_attendees
WHERE appointment_id = ANY ($1::uuid[])
ORDER BY appointment_id, ord

-- name: crm_attendees_delete
DELETE FROM crm.appointment_attendees WHERE appointment_id = $1::uuid

-- name: crm_attendees_insert
INSERT INTO crm.appointment_attendees (appointment_id, ord, email, name, required)
SELECT $1::uuid, a.ord, a.email, a.name, a.required
FROM unnest($2::text[], $3::text[], $4::boolean[]) WITH ORDINALITY
    AS a (email, name, required, ord)

-- name: crm_attendees_insert_many
-- The attendees of several new appointments in one statement: $1 a JSON array of objects
-- (appointment_id, ord = 1-based place in that appointment's list, email, name, required).
-- The statement trigger then runs once, and leaves alone the appointments this transaction
-- just inserted.
INSERT INTO crm.appointment_attendees (appointment_id, ord, email, name, required)
SELECT a.appointment_id, a.ord, a.email, a.name, a.required
FROM jsonb_to_recordset($1::text::jsonb)
    AS a (appointment_id uuid, ord integer, email text, name text, required boolean)

-- name: crm_link_insert
INSERT INTO crm.record_users (entity, record_id, user_id) VALUES ($1, $2::uuid, $3::uuid)
ON CONFLICT DO NOTHING

-- name: crm_link_delete
DELETE FROM crm.record_users WHERE entity = $1 AND record_id = $2::uuid AND user_id = $3::uuid
RETURNING user_id

-- name: crm_contact_get
SELECT * FROM crm.contacts WHERE id = ANY ($1::uuid[])

-- name: crm_contact_list
-- The user's sync set: owned records plus records shared with them.
SELECT * FROM crm.contacts
WHERE owner_id = $1::uuid
   OR id IN (SELECT record_id FROM crm.record_users WHERE entity = 'contact' AND user_id = $1::uuid)
ORDER BY id

-- name: crm_contact_lock
SELECT owner_id, version FROM crm.contacts WHERE id = $1::uuid FOR UPDATE

-- name: crm_contact_delete
DELETE FROM crm.contacts WHERE id = $1::uuid

-- name: crm_contact_insert
INSERT INTO crm.contacts (
    id, owner_id,
    first_name, last_name, email, email2, email3, company,
    job_title, business_phone, mobile_phone, home_phone, street, city,
    state, postal_code, country, birthday, categories, notes
) VALUES (
    coalesce($1::uuid, gen_random_uuid()), $2::uuid,
    $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19::text[], $20
)
RETURNING *

-- name: crm_contact_insert_many
-- A batch of creates in one statement: $1 a JSON array of objects (id plus the columns of
-- crm_contact_insert, datetimes as ISO-8601), $2 the owner. One parameter rather than one
-- array per column: no per-column array codecs, and categories (lists of differing lengths)
-- need no special form. Nothing is returned: the caller knows the ids.
INSERT INTO crm.contacts (
    id, owner_id,
    first_name, last_name, email, email2, email3, company,
    job_title, business_phone, mobile_phone, home_phone, street, city,
    state, postal_code, country, birthday, categories, notes
)
SELECT
    r.id, $2::uuid,
    r.first_name, r.last_name, r.email, r.email2, r.email3, r.company,
    r.job_title, r.business_phone, r.mobile_phone, r.home_phone, r.street, r.city,
    r.state, r.postal_code, r.country, r.birthday, r.categories, r.notes
FROM jsonb_to_recordset($1::text::jsonb) AS r (
    id uuid, first_name text, last_name text, email text, email2 text, email3 text,
    company text, job_title text, business_phone text, mobile_phone text, home_phone text,
    street text, city text, state text, postal_code text, country text, birthday date,
    categories text[], notes text
)

-- name: crm_contact_update
-- Owner, version and timestamp are the CRM's: the version trigger bumps them.
UPDATE crm.contacts SET
    first_name = $2,
    last_name = $3,
    email = $4,
    email2 = $5,
    email3 = $6,
    company = $7,
    job_title = $8,
    business_phone = $9,
    mobile_phone = $10,
    home_phone = $11,
    street = $12,
    city = $13,
    state = $14,
    postal_code = $15,
    country = $16,
    birthday = $17,
    categories = $18::text[],
    notes = $19
WHERE id = $1::uuid
RETURNING *

-- name: crm_appointment_get
SELECT * FROM crm.appointments WHERE id = ANY ($1::uuid[])

-- name: crm_appointment_list
-- The user's sync set: owned records plus records shared with them.
SELECT * FROM crm.appointments
WHERE owner_id = $1::uuid
   OR id IN (SELECT record_id FROM crm.record_users WHERE entity = 'appointment' AND user_id = $1::uuid)
ORDER BY id

-- name: crm_appointment_lock
SELECT owner_id, version FROM crm.appointments WHERE id = $1::uuid FOR UPDATE

-- name: crm_appointment_delete
DELETE FROM crm.appointments WHERE id = $1::uuid

-- name: crm_appointment_insert
INSERT INTO crm.appointments (
    id, owner_id,
    subject, starts_at, ends_at, time_zone, all_day, location,
    notes, organizer_email, is_meeting, sensitivity, reminder_minutes, categories,
    recurrence, modified_occurrences, deleted_occurrences
) VALUES (
    coalesce($1::uuid, gen_random_uuid()), $2::uuid,
    $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14::text[], $15::jsonb, $16::jsonb, $17::jsonb
)
RETURNING *

-- name: crm_appointment_insert_many
-- crm_contact_insert_many for appointments; the attendees follow in
-- crm_attendees_insert_many.
INSERT INTO crm.appointments (
    id, owner_id,
    subject, starts_at, ends_at, time_zone, all_day, location,
    notes, organizer_email, is_meeting, sensitivity, reminder_minutes, categories,
    recurrence, modified_occurrences, deleted_occurrences
)
SELECT
    r.id, $2::uuid,
    r.subject, r.starts_at, r.ends_at, r.time_zone, r.all_day, r.location,
    r.notes, r.organizer_email, r.is_meeting, r.sensitivity, r.reminder_minutes, r.categories,
    r.recurrence, r.modified_occurrences, r.deleted_occurrences
FROM jsonb_to_recordset($1::text::jsonb) AS r (
    id uuid, subject text, starts_at timestamptz, ends_at timestamptz, time_zone text,
    all_day boolean, location text, notes text, organizer_email text, is_meeting boolean,
    sensitivity text, reminder_minutes integer, categories text[], recurrence jsonb,
    modified_occurrences jsonb, deleted_occurrences jsonb
)

-- name: crm_appointment_update
-- Owner, version and timestamp are the CRM's: the version trigger bumps them.
UPDATE crm.appointments SET
    subject = $2,
    starts_at = $3,
    ends_at = $4,
    time_zone = $5,
    all_day = $6,
    location = $7,
    notes = $8,
    organizer_email = $9,
    is_meeting = $10,
    sensitivity = $11,
    reminder_minutes = $12,
    categories = $13::text[],
    recurrence = $14::jsonb,
    modified_occurrences = $15::jsonb,
    deleted_occurrences = $16::jsonb
WHERE id = $1::uuid
RETURNING *

-- name: crm_task_get
SELECT * FROM crm.tasks WHERE id = ANY ($1::uuid[])

-- name: crm_task_list
-- The user's sync set: owned records plus records shared with them.
SELECT * FROM crm.tasks
WHERE owner_id = $1::uuid
   OR id IN (SELECT record_id FROM crm.record_users WHERE entity = 'task' AND user_id = $1::uuid)
ORDER BY id

-- name: crm_task_lock
SELECT owner_id, version FROM crm.tasks WHERE id = $1::uuid FOR UPDATE

-- name: crm_task_delete
DELETE FROM crm.tasks WHERE id = $1::uuid

-- name: crm_task_insert
INSERT INTO crm.tasks (
    id, owner_id,
    subject, notes, starts_at, due_at, completed_at, status,
    percent_complete, importance, reminder_at, categories
) VALUES (
    coalesce($1::uuid, gen_random_uuid()), $2::uuid,
    $3, $4, $5, $6, $7, $8, $9, $10, $11, $12::text[]
)
RETURNING *

-- name: crm_task_insert_many
-- crm_contact_insert_many for tasks.
INSERT INTO crm.tasks (
    id, owner_id,
    subject, notes, starts_at, due_at, completed_at, status,
    percent_complete, importance, reminder_at, categories
)
SELECT
    r.id, $2::uuid,
    r.subject, r.notes, r.starts_at, r.due_at, r.completed_at, r.status,
    r.percent_complete, r.importance, r.reminder_at, r.categories
FROM jsonb_to_recordset($1::text::jsonb) AS r (
    id uuid, subject text, notes text, starts_at timestamptz, due_at timestamptz,
    completed_at timestamptz, status text, percent_complete integer, importance text,
    reminder_at timestamptz, categories text[]
)

-- name: crm_task_update
-- Owner, version and timestamp are the CRM's: the version trigger bumps them.
UPDATE crm.tasks SET
    subject = $2,
    notes = $3,
    starts_at = $4,
    due_at = $5,
    completed_at = $6,
    status = $7,
    percent_complete = $8,
    importance = $9,
    reminder_at = $10,
    categories = $11::text[]
WHERE id = $1::uuid
RETURNING *
