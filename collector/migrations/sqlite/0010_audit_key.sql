-- Every audit record from now on also carries `mac` = HMAC-SHA256(audit key, hash), the key
-- kept beside the database (`<database>.audit-key`), so a record appended or rewritten by
-- someone with the database but without the key fails `audit verify`. Records written before
-- this migration have none and are reported as unkeyed; after the first keyed record every
-- record must be keyed.
ALTER TABLE audit ADD COLUMN mac TEXT;
