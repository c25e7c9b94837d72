-- When the current run of failed deliveries to an endpoint began; NULL while it succeeds.
ALTER TABLE endpoints ADD COLUMN failing_since timestamptz;
