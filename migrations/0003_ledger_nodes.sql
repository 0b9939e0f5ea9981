-- The ledger sequencer's own storage beside 0001's leaves (DESIGN section 5).
--
-- event_json: the event object each leaf hashes, as its RFC 8785 canonical JSON text, so a
-- receipt shows exactly the bytes the leaf hash commits to, however the library's stored event
-- bytes or our event-to-object mapping change later. Nullable only because ALTER TABLE cannot
-- add a NOT NULL column without a default; the sequencer always writes it, and `ainfera verify`
-- reports a row without it.
ALTER TABLE ledger_entries ADD COLUMN event_json TEXT;

-- Roots of complete, aligned power-of-two subtrees of the Merkle tree at level >= 8 (the
-- subtree over leaves [node_index << level, (node_index + 1) << level)), hex like the leaf
-- hashes. They never change once their last leaf exists, so a proof or tree head in a
-- million-leaf tree reads about 20 of them plus at most a few hundred leaf hashes. Written by
-- the sequencer in the same transaction as the leaf that completes them.
CREATE TABLE ledger_nodes (
    level      INTEGER NOT NULL,
    node_index BIGINT NOT NULL,
    hash       TEXT NOT NULL,
    PRIMARY KEY (level, node_index)
);
