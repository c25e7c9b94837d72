ALTER TABLE messages DROP COLUMN example;
