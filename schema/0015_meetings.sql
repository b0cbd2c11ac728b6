-- Meetings with several CRM participants (issue 16).
--
-- One CRM appointment per meeting: the meeting's global object id (EWS UID, Graph iCalUId),
-- the same on the organizer's item and on every attendee's copy, names the appointment the
-- copies of every mailbox link to. Each CRM participant's own answer to the meeting is kept
-- per user. Neither table is change-captured: a response or an identity is no content any
-- mailbox copy would be rewritten for.

CREATE TABLE crm.meetings (
    appointment_id  uuid PRIMARY KEY REFERENCES crm.appointments (id) ON DELETE CASCADE,
    uid             text NOT NULL UNIQUE CHECK (char_length(uid) BETWEEN 1 AND 2048)
);

CREATE TABLE crm.meeting_responses (
    appointment_id  uuid NOT NULL REFERENCES crm.appointments (id) ON DELETE CASCADE,
    user_id         uuid NOT NULL REFERENCES crm.users (id) ON DELETE CASCADE,
    response        text NOT NULL
        CHECK (response IN ('none', 'accepted', 'tentative', 'declined')),
    responded_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (appointment_id, user_id)
);
CREATE INDEX meeting_responses_user_idx ON crm.meeting_responses (user_id);
