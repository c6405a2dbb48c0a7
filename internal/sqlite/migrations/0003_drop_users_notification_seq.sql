-- A recipient's next Seq is one more than its latest, which the
-- (recipient_id, seq) index gives in one lookup; under the single write
-- lock it cannot change before the transaction commits. Keeping a copy in
-- the user row cost an UPDATE of every recipient's row per notification.
ALTER TABLE users DROP COLUMN notification_seq;
