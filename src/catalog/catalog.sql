-- src/catalog/catalog.sql
-- The catalog: projects, their models and the deployment history, with
-- the views that summarise them.  Every table is dumped by pg_dump.

\echo Use "CREATE EXTENSION pgmaker" to load this file. \quit

CREATE TABLE ml.projects (
    id          bigserial PRIMARY KEY,
    name        text NOT NULL UNIQUE CHECK (octet_length(name) BETWEEN 1 AND 63),
    task        text NOT NULL CHECK (task IN ('regression', 'classification', 'clustering', 'decomposition')),
    target      text,
    owner       regrole NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    capture_rate float8 NOT NULL DEFAULT 0 CHECK (capture_rate BETWEEN 0 AND 1)
);
COMMENT ON TABLE ml.projects IS 'One row per project: a name, a task fixed at its first model, a target column and an owning role.';

CREATE TABLE ml.runs (
    id              bigserial PRIMARY KEY,
    project_id      bigint NOT NULL REFERENCES ml.projects (id) ON DELETE CASCADE,
    kind            text NOT NULL CHECK (kind IN ('search', 'autopilot')),
    strategy        text NOT NULL CHECK (strategy IN ('grid', 'random', 'auto')),
    metric          text NOT NULL,
    folds           int NOT NULL,
    max_seconds     float8,
    trials_planned  int NOT NULL,
    trials_run      int NOT NULL,
    stopped_by_time boolean NOT NULL,
    model_id        bigint,
    report          jsonb,
    started_at      timestamptz NOT NULL DEFAULT now(),
    seconds         float8
);
CREATE INDEX runs_project_id_idx ON ml.runs (project_id);
COMMENT ON TABLE ml.runs IS 'Every hyperparameter search and autopilot run: its strategy, metric, folds, budget, how many trials it planned and ran, the model it chose and why.';

CREATE TABLE ml.models (
    id            bigserial PRIMARY KEY,
    project_id    bigint NOT NULL REFERENCES ml.projects (id) ON DELETE CASCADE,
    run_id        bigint REFERENCES ml.runs (id) ON DELETE SET NULL,
    algorithm     text NOT NULL,
    hyperparams   jsonb NOT NULL,
    preprocess    jsonb NOT NULL,
    features      jsonb NOT NULL,
    metrics       jsonb NOT NULL,
    train_metrics jsonb,
    baseline      jsonb,
    curves        jsonb,
    n_train       bigint NOT NULL,
    n_test        bigint NOT NULL,
    fit_seconds   float8 NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    model         bytea NOT NULL
);
CREATE INDEX models_project_id_idx ON ml.models (project_id);
CREATE INDEX models_run_id_idx ON ml.models (run_id) WHERE run_id IS NOT NULL;
COMMENT ON TABLE ml.models IS 'Every trained model: its hyperparameters, fitted pipeline, hold-out and training metrics, the model blob, and the search or autopilot run that produced it.';
-- ml.runs.model_id has no foreign key: with ml.models.run_id it would make
-- a cycle, which pg_dump cannot order when it restores the catalog's rows.

CREATE TABLE ml.trials (
    id           bigserial PRIMARY KEY,
    run_id       bigint NOT NULL REFERENCES ml.runs (id) ON DELETE CASCADE,
    model_id     bigint REFERENCES ml.models (id) ON DELETE SET NULL,
    trial        int NOT NULL,
    algorithm    text NOT NULL,
    params       jsonb NOT NULL,
    metric       text NOT NULL,
    fold_scores  float8[] NOT NULL,
    mean         float8,
    std          float8,
    best         boolean NOT NULL,
    seconds      float8 NOT NULL
);
CREATE INDEX trials_run_id_idx ON ml.trials (run_id, trial);
COMMENT ON TABLE ml.trials IS 'Every finished trial of a search or autopilot run: the hyperparameters, the cross-validated metric per fold with its mean and standard deviation, and the seconds it took; model_id is the model refit with the trial''s algorithm.';

CREATE TABLE ml.deployments (
    id           bigserial PRIMARY KEY,
    project_id   bigint NOT NULL REFERENCES ml.projects (id) ON DELETE CASCADE,
    model_id     bigint NOT NULL REFERENCES ml.models (id) ON DELETE CASCADE,
    strategy     text NOT NULL,
    reason       text,
    deployed_at  timestamptz NOT NULL DEFAULT now(),
    deployed_by  regrole NOT NULL
);
CREATE INDEX deployments_project_id_idx ON ml.deployments (project_id, id DESC);
COMMENT ON TABLE ml.deployments IS 'Append-only deployment history; the newest row of a project names its live model.';

CREATE TABLE ml.promotions (
    id             bigserial PRIMARY KEY,
    project_id     bigint NOT NULL REFERENCES ml.projects (id) ON DELETE CASCADE,
    model_id       bigint NOT NULL REFERENCES ml.models (id) ON DELETE CASCADE,
    live_model_id  bigint,
    mode           text NOT NULL CHECK (mode IN ('auto', 'always', 'never')),
    promoted       boolean NOT NULL,
    metric         text,
    score          float8,
    live_score     float8,
    p_value        float8,
    reason         text NOT NULL,
    decided_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX promotions_project_id_idx ON ml.promotions (project_id, id DESC);
COMMENT ON TABLE ml.promotions IS 'Every promotion decision of ml.train, deployed or not: the new and the live model''s key metric on the same rows, the paired test''s p-value and the reason.';

CREATE TABLE ml.training_log (
    model_id   bigint NOT NULL REFERENCES ml.models (id) ON DELETE CASCADE,
    iteration  int NOT NULL,
    metrics    jsonb NOT NULL,
    PRIMARY KEY (model_id, iteration)
);
COMMENT ON TABLE ml.training_log IS 'Per-iteration telemetry of iterative algorithms: training and validation loss, gradient norm or step change, elapsed seconds.';

-- Who else may use a project: one level per role, given by ml.grant.
-- owner repeats the project's owner, so that the policy below needs no
-- other table (the projects' policy reads this one).
CREATE TABLE ml.project_grants (
    project_id  bigint NOT NULL REFERENCES ml.projects (id) ON DELETE CASCADE,
    grantee     regrole NOT NULL,
    privilege   text NOT NULL CHECK (privilege IN ('predict', 'train', 'deploy')),
    owner       regrole NOT NULL,
    granted_by  regrole NOT NULL,
    granted_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (project_id, grantee)
);
COMMENT ON TABLE ml.project_grants IS 'Access to a project given to a role and its members by ml.grant: predict, train (includes predict) or deploy (includes both); visible to the grantee''s and the owner''s members.';

-- Row-level security: a role sees the projects whose owner role it is a
-- member of, the ones granted to a role it is a member of, and all of
-- them as a member of ml_admin; the rows of the other catalog tables
-- follow their project.  Catalog writes run as the tables' owner, who is
-- not subject to these policies; the C functions check access themselves.
ALTER TABLE ml.project_grants ENABLE ROW LEVEL SECURITY;
CREATE POLICY project_grants_visible ON ml.project_grants FOR SELECT
    USING (pg_catalog.pg_has_role(grantee, 'USAGE') OR pg_catalog.pg_has_role(owner, 'USAGE')
           OR pg_catalog.pg_has_role('ml_admin', 'USAGE'));
ALTER TABLE ml.projects ENABLE ROW LEVEL SECURITY;
CREATE POLICY projects_visible ON ml.projects FOR SELECT
    USING (pg_catalog.pg_has_role(owner, 'USAGE') OR pg_catalog.pg_has_role('ml_admin', 'USAGE')
           OR EXISTS (SELECT 1 FROM ml.project_grants g
                       WHERE g.project_id = projects.id AND pg_catalog.pg_has_role(g.grantee, 'USAGE')));
ALTER TABLE ml.models ENABLE ROW LEVEL SECURITY;
CREATE POLICY models_visible ON ml.models FOR SELECT
    USING (project_id IN (SELECT p.id FROM ml.projects p));
ALTER TABLE ml.deployments ENABLE ROW LEVEL SECURITY;
CREATE POLICY deployments_visible ON ml.deployments FOR SELECT
    USING (project_id IN (SELECT p.id FROM ml.projects p));
ALTER TABLE ml.promotions ENABLE ROW LEVEL SECURITY;
CREATE POLICY promotions_visible ON ml.promotions FOR SELECT
    USING (project_id IN (SELECT p.id FROM ml.projects p));
ALTER TABLE ml.runs ENABLE ROW LEVEL SECURITY;
CREATE POLICY runs_visible ON ml.runs FOR SELECT
    USING (project_id IN (SELECT p.id FROM ml.projects p));
ALTER TABLE ml.trials ENABLE ROW LEVEL SECURITY;
CREATE POLICY trials_visible ON ml.trials FOR SELECT
    USING (run_id IN (SELECT r.id FROM ml.runs r));
ALTER TABLE ml.training_log ENABLE ROW LEVEL SECURITY;
CREATE POLICY training_log_visible ON ml.training_log FOR SELECT
    USING (model_id IN (SELECT m.id FROM ml.models m));

SELECT pg_catalog.pg_extension_config_dump('ml.projects', '');
SELECT pg_catalog.pg_extension_config_dump('ml.project_grants', '');
SELECT pg_catalog.pg_extension_config_dump('ml.training_log', '');
SELECT pg_catalog.pg_extension_config_dump('ml.projects_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('ml.models', '');
SELECT pg_catalog.pg_extension_config_dump('ml.models_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('ml.deployments', '');
SELECT pg_catalog.pg_extension_config_dump('ml.deployments_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('ml.promotions', '');
SELECT pg_catalog.pg_extension_config_dump('ml.promotions_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('ml.runs', '');
SELECT pg_catalog.pg_extension_config_dump('ml.runs_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('ml.trials', '');
SELECT pg_catalog.pg_extension_config_dump('ml.trials_id_seq', '');

-- Any change to the catalog drops every backend's cached models at its
-- next statement (through a relcache invalidation).
CREATE FUNCTION ml._invalidate_cache() RETURNS trigger
    AS 'MODULE_PATHNAME', 'ml_invalidate_cache' LANGUAGE C;
COMMENT ON FUNCTION ml._invalidate_cache() IS 'Trigger: makes every backend reload deployed models after a catalog change.';

CREATE TRIGGER invalidate_cache AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON ml.projects
    FOR EACH STATEMENT EXECUTE FUNCTION ml._invalidate_cache();
CREATE TRIGGER invalidate_cache AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON ml.models
    FOR EACH STATEMENT EXECUTE FUNCTION ml._invalidate_cache();
CREATE TRIGGER invalidate_cache AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON ml.deployments
    FOR EACH STATEMENT EXECUTE FUNCTION ml._invalidate_cache();
CREATE TRIGGER invalidate_cache AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON ml.project_grants
    FOR EACH STATEMENT EXECUTE FUNCTION ml._invalidate_cache();

CREATE FUNCTION ml.key_metric(task text) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT
    AS $$
    SELECT CASE task
        WHEN 'regression' THEN 'r2'
        WHEN 'classification' THEN 'f1'
        WHEN 'clustering' THEN 'silhouette'
        WHEN 'decomposition' THEN 'explained_variance'
    END
    $$;
COMMENT ON FUNCTION ml.key_metric(text) IS 'The metric that ranks models of a task (higher is better).';

CREATE VIEW ml.overview AS
SELECT p.name AS project,
       p.task,
       p.target,
       d.model_id AS live_model,
       m.algorithm,
       ml.key_metric(p.task) AS key_metric,
       (m.metrics ->> ml.key_metric(p.task))::float8 AS score,
       (SELECT count(*) FROM ml.models mm WHERE mm.project_id = p.id) AS models,
       d.deployed_at,
       pr.model_id AS last_decision_model,
       pr.promoted AS last_decision_promoted,
       pr.p_value AS last_decision_p_value
  FROM ml.projects p
  LEFT JOIN LATERAL (SELECT dd.model_id, dd.deployed_at
                       FROM ml.deployments dd
                      WHERE dd.project_id = p.id
                      ORDER BY dd.id DESC
                      LIMIT 1) d ON true
  LEFT JOIN LATERAL (SELECT pp.model_id, pp.promoted, pp.p_value
                       FROM ml.promotions pp
                      WHERE pp.project_id = p.id
                      ORDER BY pp.id DESC
                      LIMIT 1) pr ON true
  LEFT JOIN ml.models m ON m.id = d.model_id
 ORDER BY p.name;
ALTER VIEW ml.overview SET (security_invoker = true);
COMMENT ON VIEW ml.overview IS 'One row per project: task, live model, its algorithm and key metric, and when it was deployed.';

CREATE VIEW ml.leaderboard AS
SELECT p.name AS project,
       m.id AS model_id,
       m.run_id,
       m.algorithm,
       ml.key_metric(p.task) AS key_metric,
       (m.metrics ->> ml.key_metric(p.task))::float8 AS score,
       m.metrics ->> 'evaluated_on' AS evaluated_on,
       rank() OVER (PARTITION BY p.id
                    ORDER BY (m.metrics ->> 'evaluated_on' = 'test') IS TRUE DESC,
                             (m.metrics ->> ml.key_metric(p.task))::float8 DESC NULLS LAST) AS rank,
       m.id = live.model_id AS live,
       m.hyperparams,
       m.n_train,
       m.n_test,
       m.fit_seconds,
       m.created_at
  FROM ml.models m
  JOIN ml.projects p ON p.id = m.project_id
  LEFT JOIN LATERAL (SELECT dd.model_id
                       FROM ml.deployments dd
                      WHERE dd.project_id = p.id
                      ORDER BY dd.id DESC
                      LIMIT 1) live ON true
 ORDER BY p.name, rank, m.id;
ALTER VIEW ml.leaderboard SET (security_invoker = true);
COMMENT ON VIEW ml.leaderboard IS 'Models of every project ranked by the key metric on their hold-out rows (models measured on training rows rank after them).';

GRANT USAGE ON SCHEMA ml TO PUBLIC;
GRANT SELECT ON ml.projects, ml.project_grants, ml.deployments, ml.promotions, ml.runs, ml.trials, ml.training_log,
    ml.overview, ml.leaderboard TO PUBLIC;
-- the blobs are read through ml.export_model, which needs the train level
GRANT SELECT (id, project_id, run_id, algorithm, hyperparams, preprocess, features, metrics, train_metrics,
              baseline, curves, n_train, n_test, fit_seconds, created_at) ON ml.models TO PUBLIC;

CREATE FUNCTION ml.training_info(model_id bigint)
RETURNS TABLE (iteration int, train_loss float8, validation_loss float8,
               gradient_norm float8, change float8, elapsed_seconds float8)
LANGUAGE plpgsql STABLE STRICT PARALLEL SAFE
AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM ml.models m WHERE m.id = training_info.model_id) THEN
        RAISE EXCEPTION 'model % does not exist', training_info.model_id
            USING ERRCODE = 'undefined_object';
    END IF;
    RETURN QUERY
    SELECT l.iteration, (l.metrics ->> 'train_loss')::float8, (l.metrics ->> 'validation_loss')::float8,
           (l.metrics ->> 'gradient_norm')::float8, (l.metrics ->> 'change')::float8,
           (l.metrics ->> 'elapsed_seconds')::float8
      FROM ml.training_log l
     WHERE l.model_id = training_info.model_id
     ORDER BY l.iteration;
END
$$;
COMMENT ON FUNCTION ml.training_info(bigint) IS 'The per-iteration telemetry of a model''s training, in iteration order (no rows for algorithms that do not iterate).';
