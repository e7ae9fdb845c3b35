-- Millisecond order of events. 18.16 has no DateTime64, so the millisecond within `timestamp`'s second is a
-- column of its own (0..999); the event's instant in ms is toUInt32(timestamp) * 1000 + msec. Rows written
-- before this migration keep msec = 0. 18.16 has no ADD COLUMN IF NOT EXISTS: the skip-if guard makes the
-- statement idempotent.
-- skip-if: SELECT count() FROM system.columns WHERE database = '${DATABASE}' AND table = 'events' AND name = 'msec'
ALTER TABLE ${DATABASE}.events ADD COLUMN msec UInt16 DEFAULT 0 AFTER timestamp
;
