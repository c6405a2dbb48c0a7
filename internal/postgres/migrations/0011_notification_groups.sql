-- Grouped notifications (issue 15): every notification names its group
-- (social.GroupKey), and every change records the groups it touched, as
-- they were right after it (social.MarshalGroups). Changes recorded before
-- this migration carry no groups.
ALTER TABLE notifications ADD COLUMN group_key text NOT NULL DEFAULT '';

UPDATE notifications SET group_key = CASE action
    WHEN 'FOLLOWING' THEN 'FOLLOWING:' || to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD')
    WHEN 'POST' THEN 'POST:' || action_id
    ELSE action || ':' || affected || ':' || affected_id
END;

ALTER TABLE notifications ALTER COLUMN group_key DROP DEFAULT;

-- A group's notifications, and a user's groups by their newest one.
CREATE INDEX notifications_group ON notifications (recipient_id, group_key, id);

ALTER TABLE inbox_changes ADD COLUMN groups text;
