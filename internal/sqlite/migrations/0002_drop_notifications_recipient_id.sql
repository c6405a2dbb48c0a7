-- A recipient's ids and seqs increase together, so the UNIQUE
-- (recipient_id, seq) index lists a user's notifications newest first as
-- well as this index did, and every notification stored paid for one more
-- index entry: a quarter of the time of a post to 10,000 followers
-- (BenchmarkAddNotifications10k). The unread-only listing keeps its partial
-- index.
DROP INDEX notifications_recipient_id;
