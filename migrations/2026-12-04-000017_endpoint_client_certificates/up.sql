-- Mutual TLS: a client certificate chain (PEM) that deliveries to the endpoint present, and its
-- private key sealed like the signing secrets (bound to the endpoint). Both or neither.
ALTER TABLE endpoints
    ADD COLUMN client_certificate text,
    ADD COLUMN client_key text,
    ADD CONSTRAINT endpoints_client_identity_whole
        CHECK ((client_certificate IS NULL) = (client_key IS NULL));
