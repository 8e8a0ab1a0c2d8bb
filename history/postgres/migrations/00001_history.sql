-- The history of calls, notes, wrap-ups and the access log.
-- Notes and wrap-ups refer to their call by id without a foreign key: an
-- agent writes while the caller is still on the line, and the call is
-- recorded when it ends (by whichever daemon, in whatever order).

-- +goose Up
CREATE TABLE history_calls (
    call_id     text PRIMARY KEY,            -- namespaced: "pbx-a/1795435000.0"
    phone       text,                        -- E.164; NULL when withheld
    withheld    boolean NOT NULL DEFAULT false,
    customer_id text,
    did         text,
    rung        text[] NOT NULL DEFAULT '{}',
    answered_by text,
    agent       text,                        -- who had the call at its end
    agent_name  text,
    transfers   jsonb NOT NULL DEFAULT '[]',
    outcome     text NOT NULL DEFAULT '',
    ring_at     timestamptz NOT NULL,
    pop_at      timestamptz,
    answer_at   timestamptz,
    end_at      timestamptz,
    source      text,
    daemons     text[] NOT NULL DEFAULT '{}',
    recorded_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX history_calls_phone ON history_calls (phone, ring_at DESC) WHERE phone IS NOT NULL;
CREATE INDEX history_calls_customer ON history_calls (customer_id, ring_at DESC) WHERE customer_id IS NOT NULL;
CREATE INDEX history_calls_agent ON history_calls (agent, end_at DESC) WHERE outcome = 'answered';
CREATE INDEX history_calls_ring_at ON history_calls (ring_at);

CREATE TABLE history_notes (
    note_id    uuid PRIMARY KEY,
    call_id    text NOT NULL,
    phone      text,                          -- the caller's, to erase notes of calls never recorded
    agent      text NOT NULL,
    agent_name text,
    created_at timestamptz NOT NULL,
    daemon     text
);
CREATE INDEX history_notes_call ON history_notes (call_id);
CREATE INDEX history_notes_phone ON history_notes (phone) WHERE phone IS NOT NULL;
CREATE INDEX history_notes_created ON history_notes (created_at);

-- Every version of a note's text; the original's version_id is the note's id.
CREATE TABLE history_note_versions (
    version_id uuid PRIMARY KEY,
    note_id    uuid NOT NULL REFERENCES history_notes ON DELETE CASCADE,
    seq        bigint GENERATED ALWAYS AS IDENTITY,
    agent      text NOT NULL,
    agent_name text,
    at         timestamptz NOT NULL,
    text       text NOT NULL
);
CREATE INDEX history_note_versions_note ON history_note_versions (note_id, seq);

CREATE TABLE history_wrapups (
    call_id text PRIMARY KEY,
    agent   text NOT NULL,
    code    text NOT NULL,
    label   text NOT NULL,                    -- as configured when chosen
    at      timestamptz NOT NULL
);
CREATE INDEX history_wrapups_at ON history_wrapups (at);

CREATE TABLE history_access_log (
    entry_id    uuid PRIMARY KEY,
    seq         bigint GENERATED ALWAYS AS IDENTITY,
    at          timestamptz NOT NULL,
    action      text NOT NULL,                -- card | erase
    agent       text NOT NULL,
    customer_id text,
    phone_hash  text,
    call_id     text,
    sections    text[] NOT NULL DEFAULT '{}',
    daemon      text NOT NULL
);
CREATE INDEX history_access_customer ON history_access_log (customer_id, at DESC) WHERE customer_id IS NOT NULL;
CREATE INDEX history_access_agent ON history_access_log (agent, at DESC);
CREATE INDEX history_access_phone ON history_access_log (phone_hash, at DESC) WHERE phone_hash IS NOT NULL;
CREATE INDEX history_access_at ON history_access_log (at);

-- +goose Down
DROP TABLE history_access_log;
DROP TABLE history_wrapups;
DROP TABLE history_note_versions;
DROP TABLE history_notes;
DROP TABLE history_calls;
