-- A user's latest Seq and unread count are its latest change's (issue 15):
-- every change is a row, in notifications (ADDED) or inbox_changes (the
-- others), which keeps the unread count right after it, and rows are never
-- deleted. Bumping a row of inbox_state wrote one more page per action
-- (about one in 13 of a reaction's), where reading the latest change is
-- two index lookups in pages the action writes anyway.
DROP TRIGGER users_inbox_state;
DROP TABLE inbox_state;
