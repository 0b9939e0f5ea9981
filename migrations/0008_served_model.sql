-- Which model served a call, beside the one the router chose (issue 12): they differ after a
-- fallback. From Completed.served_model; NULL for calls completed before the event carried it
-- (a replay of those events writes NULL too, so `ainfera verify` agrees with migrated rows).
ALTER TABLE routing_outcomes ADD COLUMN served_model TEXT;
ALTER TABLE decisions ADD COLUMN served_model TEXT;
-- What the client asked of the router (Routed.requested_preference), beside the policy in
-- force; NULL for calls routed before the event carried it.
ALTER TABLE routing_outcomes ADD COLUMN requested_preference TEXT;
ALTER TABLE decisions ADD COLUMN requested_preference TEXT;
