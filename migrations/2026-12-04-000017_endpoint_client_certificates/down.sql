ALTER TABLE endpoints
    DROP CONSTRAINT endpoints_client_identity_whole,
    DROP COLUMN client_key,
    DROP COLUMN client_certificate;
