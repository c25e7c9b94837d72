ALTER TABLE endpoints DROP COLUMN failing_since;
