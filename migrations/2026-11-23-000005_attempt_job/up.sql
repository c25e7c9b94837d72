-- The job each attempt came from: a job delivered twice (a lost ack, a republished claim) is
-- recognised and not attempted or recorded again.
ALTER TABLE attempts ADD COLUMN job_id bigint;
CREATE UNIQUE INDEX attempts_job ON attempts (job_id) WHERE job_id IS NOT NULL;
