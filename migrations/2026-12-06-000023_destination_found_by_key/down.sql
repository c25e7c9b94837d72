DROP FUNCTION octohooks_still_pending(text);
