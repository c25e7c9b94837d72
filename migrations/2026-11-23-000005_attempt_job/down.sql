DROP INDEX attempts_job;
ALTER TABLE attempts DROP COLUMN job_id;
