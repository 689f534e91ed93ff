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
