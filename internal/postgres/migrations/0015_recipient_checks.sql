-- The foreign keys from notifications and inbox_changes to users go
-- (issue 16). append_changes finds every recipient's row, and locks it,
-- before it inserts either; when one is not a user it inserts nothing. So
-- the keys checked nothing that was not checked already, and each check
-- cost a query per row inserted: two per reaction, 20,000 for a post to
-- 10,000 followers. Users are never deleted.
ALTER TABLE notifications DROP CONSTRAINT notifications_recipient_id_fkey;
ALTER TABLE inbox_changes DROP CONSTRAINT inbox_changes_recipient_id_fkey;
