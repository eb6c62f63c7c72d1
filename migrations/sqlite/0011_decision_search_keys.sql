-- The console's decision search by IP and by email domain reads indexed
-- columns instead of scanning each decision's stored JSON, so it covers any
-- time range. Same conventions as 0001.
--
-- ip_address: the IP a list of kind `ip` matches (the merchant's
-- `ip_address`, else the device's); email_domain: the request's email
-- domain, lower case. Written with the decision; filled here for the
-- decisions stored before.
ALTER TABLE decisions ADD COLUMN ip_address TEXT;
ALTER TABLE decisions ADD COLUMN email_domain TEXT;
UPDATE decisions SET
    ip_address = COALESCE(
        CASE WHEN json_type(input, '$.ip_address') = 'text'
             THEN json_extract(input, '$.ip_address') END,
        CASE WHEN json_type(input, '$.device.ip_address') = 'text'
             THEN json_extract(input, '$.device.ip_address') END),
    email_domain = CASE WHEN json_type(input, '$.email_domain') = 'text'
                        THEN json_extract(input, '$.email_domain') END
WHERE json_valid(input);
CREATE INDEX decisions_ip_time ON decisions (subscriber_id, ip_address, created_at, id)
    WHERE ip_address IS NOT NULL;
CREATE INDEX decisions_email_domain_time ON decisions (subscriber_id, email_domain, created_at, id)
    WHERE email_domain IS NOT NULL;
