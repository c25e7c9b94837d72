-- Messages made by send-example belong to the one endpoint they were sent to: replay-missing must
-- not send them to the application's other endpoints. (A constant default: no table rewrite.)
ALTER TABLE messages ADD COLUMN example boolean NOT NULL DEFAULT false;
