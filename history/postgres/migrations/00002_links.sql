-- The numbers agents linked to customers: an unknown caller the agent
-- found in the directory's search. One customer per number; a new link
-- replaces the old. The number is kept as the calls keep it (E.164), so
-- that an erasure by number or customer finds it.

-- +goose Up
CREATE TABLE history_links (
    phone       text PRIMARY KEY,             -- E.164
    customer_id text NOT NULL,
    agent       text NOT NULL,                -- who linked it
    agent_name  text,
    call_id     text,                         -- during which call
    linked_at   timestamptz NOT NULL,
    daemon      text NOT NULL
);
CREATE INDEX history_links_customer ON history_links (customer_id);

-- +goose Down
DROP TABLE history_links;
