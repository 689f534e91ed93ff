-- src/catalog/deploy.sql
-- Deployment and removal of projects.

CREATE FUNCTION ml.deploy(project text, strategy text DEFAULT 'best_score')
RETURNS TABLE (project text, model_id bigint, algorithm text, strategy text, deployed boolean)
AS 'MODULE_PATHNAME', 'ml_deploy'
LANGUAGE C VOLATILE STRICT PARALLEL UNSAFE;
COMMENT ON FUNCTION ml.deploy(text, text) IS
'Deploys the model chosen by a strategy: best_score, most_recent or rollback.';

CREATE FUNCTION ml.deploy(project text, model_id bigint)
RETURNS TABLE (project text, model_id bigint, algorithm text, strategy text, deployed boolean)
AS 'MODULE_PATHNAME', 'ml_deploy_model'
LANGUAGE C VOLATILE STRICT PARALLEL UNSAFE;
COMMENT ON FUNCTION ml.deploy(text, bigint) IS
'Deploys one model of a project, chosen by id.';

CREATE FUNCTION ml.drop_project(project text) RETURNS boolean
AS 'MODULE_PATHNAME', 'ml_drop_project'
LANGUAGE C VOLATILE STRICT PARALLEL UNSAFE;
COMMENT ON FUNCTION ml.drop_project(text) IS
'Removes a project with all its models and deployments.';

CREATE FUNCTION ml.grant(project text, role regrole, privilege text) RETURNS void
AS 'MODULE_PATHNAME', 'ml_grant'
LANGUAGE C VOLATILE STRICT PARALLEL UNSAFE;
COMMENT ON FUNCTION ml.grant(text, regrole, text) IS
'Gives a role (and its members) access to a project: predict, train (includes predict) or deploy (includes both); replaces what the role had.  For members of the project''s owner role.';

CREATE FUNCTION ml.revoke(project text, role regrole) RETURNS boolean
AS 'MODULE_PATHNAME', 'ml_revoke'
LANGUAGE C VOLATILE STRICT PARALLEL UNSAFE;
COMMENT ON FUNCTION ml.revoke(text, regrole) IS
'Takes away what ml.grant gave a role on a project; false when it had nothing.';

CREATE FUNCTION ml._project_access(project text, privilege text, missing_ok boolean DEFAULT false)
RETURNS bigint
AS 'MODULE_PATHNAME', 'ml_project_access'
LANGUAGE C STABLE PARALLEL SAFE;
COMMENT ON FUNCTION ml._project_access(text, text, boolean) IS
'The id of a project the caller may use at a level: predict, train, deploy or own (internal).';
