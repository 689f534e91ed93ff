-- src/http/alerts.sql
-- Alerts: raised by the extension (a failed job; monitoring later), sent
-- with NOTIFY on the channel ml_alerts at once, and posted as JSON to the
-- alert channels (webhooks) by a background worker after the raising
-- transaction commits, with retries and backoff.

-- A channel's headers may hold tokens: each row is visible only to the
-- members of its owner role and to superusers.
CREATE TABLE ml.alert_channels (
    name       text PRIMARY KEY CHECK (name <> ''),
    url        text NOT NULL,
    headers    jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(headers) = 'object'),
    owner      regrole NOT NULL DEFAULT current_user::regrole,
    enabled    boolean NOT NULL DEFAULT true,
    created_at timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE ml.alert_channels IS 'Webhooks that receive alerts: every alert of a project or job whose owner role the channel''s owner is a member of is posted to url as JSON.';
ALTER TABLE ml.alert_channels ENABLE ROW LEVEL SECURITY;
CREATE POLICY alert_channels_of_owner ON ml.alert_channels
    USING (pg_catalog.pg_has_role(owner, 'USAGE'))
    WITH CHECK (owner = current_user::regrole);
-- the policy keeps every row to its owner; the URL is checked against the
-- owner's network rights again at each delivery
GRANT SELECT, INSERT, UPDATE (url, headers, enabled), DELETE ON ml.alert_channels TO PUBLIC;
SELECT pg_catalog.pg_extension_config_dump('ml.alert_channels', '');

CREATE TABLE ml.alerts (
    id         bigserial PRIMARY KEY,
    raised_at  timestamptz NOT NULL DEFAULT now(),
    kind       text NOT NULL,
    severity   text NOT NULL CHECK (severity IN ('info', 'warning', 'error')),
    project_id bigint REFERENCES ml.projects (id) ON DELETE SET NULL,
    owner      regrole NOT NULL,
    message    text NOT NULL,
    details    jsonb NOT NULL DEFAULT '{}'
);
COMMENT ON TABLE ml.alerts IS 'Every alert raised: its kind (job_failed, test, ...), severity, project, message and details; visible to the members of its owner role.';
ALTER TABLE ml.alerts ENABLE ROW LEVEL SECURITY;
CREATE POLICY alerts_of_owner ON ml.alerts USING (pg_catalog.pg_has_role(owner, 'USAGE'));
GRANT SELECT ON ml.alerts TO PUBLIC;

CREATE TABLE ml.alert_deliveries (
    alert_id        bigint NOT NULL REFERENCES ml.alerts (id) ON DELETE CASCADE,
    channel         text NOT NULL REFERENCES ml.alert_channels (name) ON DELETE CASCADE ON UPDATE CASCADE,
    status          text NOT NULL DEFAULT 'pending'
                    CHECK (status IN ('pending', 'delivered', 'failed')),
    attempts        int NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    last_attempt_at timestamptz,
    http_status     int,
    last_error      text,
    delivered_at    timestamptz,
    PRIMARY KEY (alert_id, channel)
);
CREATE INDEX ON ml.alert_deliveries (next_attempt_at) WHERE status = 'pending';
COMMENT ON TABLE ml.alert_deliveries IS 'One row per alert and channel: pending until the webhook answers 2xx (delivered) or the last of 5 attempts fails (failed); attempts are spaced 2, 4, 8 and 16 seconds apart.';
ALTER TABLE ml.alert_deliveries ENABLE ROW LEVEL SECURITY;
CREATE POLICY alert_deliveries_of_owner ON ml.alert_deliveries
    USING (EXISTS (SELECT 1 FROM ml.alerts a WHERE a.id = alert_id AND pg_catalog.pg_has_role(a.owner, 'USAGE')));
GRANT SELECT ON ml.alert_deliveries TO PUBLIC;

CREATE VIEW ml.alert_status AS
SELECT a.id, a.raised_at, a.kind, a.severity, p.name AS project, a.message, a.details,
       d.channel, d.status AS delivery, d.attempts, d.http_status, d.last_error,
       d.delivered_at, d.next_attempt_at
  FROM ml.alerts a
  LEFT JOIN ml.projects p ON p.id = a.project_id
  LEFT JOIN ml.alert_deliveries d ON d.alert_id = a.id;
ALTER VIEW ml.alert_status SET (security_invoker = true);
COMMENT ON VIEW ml.alert_status IS 'Alerts with the delivery status of each channel (NULL channel: no channel received it).';
GRANT SELECT ON ml.alert_status TO PUBLIC;

CREATE FUNCTION ml._check_url(url text) RETURNS void
AS 'MODULE_PATHNAME', 'ml_check_url'
LANGUAGE C STRICT VOLATILE;
COMMENT ON FUNCTION ml._check_url(text) IS 'Raises an error unless the current role may reach url under ml.http_allow (internal).';

CREATE FUNCTION ml._wake_launcher_at_commit() RETURNS void
AS 'MODULE_PATHNAME', 'ml_wake_launcher_at_commit'
LANGUAGE C STRICT VOLATILE;
COMMENT ON FUNCTION ml._wake_launcher_at_commit() IS 'Wakes pgmaker''s launcher when the transaction commits (internal).';

-- Checks a channel's headers: names and values without line breaks.
CREATE FUNCTION ml._check_headers(headers jsonb) RETURNS void
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    k text;
    v jsonb;
BEGIN
    IF headers IS NULL OR jsonb_typeof(headers) <> 'object' THEN
        RAISE EXCEPTION 'headers must be a JSON object' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    FOR k, v IN SELECT * FROM jsonb_each(headers) LOOP
        IF jsonb_typeof(v) <> 'string' THEN
            RAISE EXCEPTION 'header "%" must be a string', k USING ERRCODE = 'invalid_parameter_value';
        END IF;
        IF k !~ '^[A-Za-z0-9!#$%&''*+.^_`|~-]+$' THEN
            RAISE EXCEPTION 'invalid header name "%"', k USING ERRCODE = 'invalid_parameter_value';
        END IF;
        IF v #>> '{}' ~ '[\r\n]' THEN
            RAISE EXCEPTION 'header "%" must not contain a line break', k USING ERRCODE = 'invalid_parameter_value';
        END IF;
    END LOOP;
END
$$;

CREATE FUNCTION ml.create_alert_channel(name text, url text, headers jsonb DEFAULT '{}')
RETURNS void
LANGUAGE plpgsql VOLATILE CALLED ON NULL INPUT PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF name IS NULL OR name = '' THEN
        RAISE EXCEPTION 'alert channel name must not be NULL or empty' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF url IS NULL OR url !~* '^https?://' THEN
        RAISE EXCEPTION 'alert channel URL must be an http:// or https:// URL'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    PERFORM ml._check_url(url);
    PERFORM ml._check_headers(headers);
    INSERT INTO ml.alert_channels (name, url, headers, owner)
    VALUES (create_alert_channel.name, create_alert_channel.url, create_alert_channel.headers,
            current_user::regrole);
EXCEPTION WHEN unique_violation THEN
    RAISE EXCEPTION 'alert channel "%" already exists', name USING ERRCODE = 'duplicate_object';
END
$$;
COMMENT ON FUNCTION ml.create_alert_channel(text, text, jsonb) IS
'Creates a webhook that receives, as JSON, the alerts of the projects and jobs of every role the current role is a member of; the URL must be allowed by ml.http_allow.';

CREATE FUNCTION ml.drop_alert_channel(name text)
RETURNS boolean
LANGUAGE plpgsql VOLATILE STRICT PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    n bigint;
BEGIN
    DELETE FROM ml.alert_channels c WHERE c.name = drop_alert_channel.name;
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n > 0;
END
$$;
COMMENT ON FUNCTION ml.drop_alert_channel(text) IS
'Removes an alert channel of a role the current role is a member of, with its pending deliveries; returns whether it existed.';

-- Records an alert, queues its deliveries to the channels of the members
-- of owner (or to only_channel), and sends it with NOTIFY on ml_alerts.
-- The NOTIFY payload leaves out the details past 7000 bytes, and then
-- shortens the message.
CREATE FUNCTION ml._raise_alert(kind text, severity text, project_id bigint, owner regrole,
                                message text, details jsonb DEFAULT '{}',
                                only_channel text DEFAULT NULL)
RETURNS bigint
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    aid bigint;
    payload jsonb;
    n bigint;
BEGIN
    INSERT INTO ml.alerts (kind, severity, project_id, owner, message, details)
    VALUES (kind, severity, project_id, owner, message, coalesce(details, '{}'))
    RETURNING id INTO aid;
    INSERT INTO ml.alert_deliveries (alert_id, channel)
    SELECT aid, c.name FROM ml.alert_channels c
     WHERE c.enabled AND (only_channel IS NULL OR c.name = only_channel)
       AND pg_has_role(c.owner, _raise_alert.owner, 'USAGE');
    GET DIAGNOSTICS n = ROW_COUNT;
    payload := ml._alert_payload(aid);
    -- NOTIFY takes at most 8000 bytes: the details go first, then the message's end
    IF octet_length(payload::text) > 7000 THEN
        payload := payload - 'details' || jsonb_build_object('details_truncated', true);
    END IF;
    IF octet_length(payload::text) > 7000 THEN
        payload := jsonb_set(payload, '{message}', to_jsonb(left(payload ->> 'message', 1000) || '...'));
    END IF;
    PERFORM pg_notify('ml_alerts', payload::text);
    IF n > 0 THEN
        PERFORM ml._wake_launcher_at_commit();
    END IF;
    RETURN aid;
END
$$;

-- The JSON document of an alert, as posted and notified.
CREATE FUNCTION ml._alert_payload(alert bigint) RETURNS jsonb
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
SELECT jsonb_build_object('id', a.id, 'kind', a.kind, 'severity', a.severity,
                          'project', p.name, 'message', a.message, 'details', a.details,
                          'raised_at', a.raised_at, 'database', current_database())
  FROM ml.alerts a LEFT JOIN ml.projects p ON p.id = a.project_id
 WHERE a.id = alert
$$;

CREATE FUNCTION ml.test_alert_channel(name text)
RETURNS bigint
AS 'MODULE_PATHNAME', 'ml_test_alert_channel'
LANGUAGE C STRICT VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION ml.test_alert_channel(text) IS
'Raises an alert of kind test that only the named channel receives, and returns its id.';

COMMENT ON FUNCTION ml._raise_alert(text, text, bigint, regrole, text, jsonb, text) IS 'Records an alert, queues its deliveries and notifies ml_alerts (internal).';
COMMENT ON FUNCTION ml._alert_payload(bigint) IS 'The JSON document of an alert (internal).';
COMMENT ON FUNCTION ml._check_headers(jsonb) IS 'Checks the headers of an alert channel (internal).';
REVOKE EXECUTE ON FUNCTION ml._raise_alert(text, text, bigint, regrole, text, jsonb, text),
                           ml._alert_payload(bigint), ml._wake_launcher_at_commit() FROM PUBLIC;
