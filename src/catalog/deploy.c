/*-------------------------------------------------------------------------
 * src/catalog/deploy.c
 *		ml.deploy (by strategy or by model id) and ml.drop_project.
 *
 * A deployment is one row appended to ml.deployments; the statement
 * trigger on that table makes every backend drop its cached models once
 * the transaction commits, so each switches at its next statement.
 *-------------------------------------------------------------------------
 */
#include "catalog/catalog.h"

#include "access/htup_details.h"
#include "commands/trigger.h"
#include "eval/eval.h"
#include "fmgr.h"
#include "funcapi.h"
#include "predict/predict.h"
#include "utils/builtins.h"
#include "utils/inval.h"
#include "utils/rel.h"

PG_FUNCTION_INFO_V1(ml_deploy);
PG_FUNCTION_INFO_V1(ml_deploy_model);
PG_FUNCTION_INFO_V1(ml_drop_project);
PG_FUNCTION_INFO_V1(ml_grant);
PG_FUNCTION_INFO_V1(ml_revoke);
PG_FUNCTION_INFO_V1(ml_project_access);
PG_FUNCTION_INFO_V1(ml_invalidate_cache);

/* Deploys model_id (unless it is already live) and returns the result row. */
static Datum
deploy(FunctionCallInfo fcinfo, const ProjectInfo *project, int64 model_id,
	   const char *strategy, const char *reason)
{
	int64		live = CatalogLiveModelId(project->id);
	int64		model_project;
	char	   *algorithm = CatalogModelAlgorithm(model_id, &model_project);
	TupleDesc	tupdesc;
	Datum		values[5];
	bool		nulls[5] = {false, false, false, false, false};

	if (model_project != project->id)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("model %lld does not belong to project \"%s\"",
						(long long) model_id, project->name)));
	if (live == model_id)
		ereport(NOTICE,
				(errmsg("model %lld is already the live model of project \"%s\"",
						(long long) model_id, project->name)));
	else
	{
		CatalogInsertDeployment(project->id, model_id, strategy, reason);
		CacheInvalidate();
	}

	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "ml.deploy must return a composite type");
	values[0] = CStringGetTextDatum(project->name);
	values[1] = Int64GetDatum(model_id);
	values[2] = CStringGetTextDatum(algorithm);
	values[3] = CStringGetTextDatum(strategy);
	values[4] = BoolGetDatum(live != model_id);
	return HeapTupleGetDatum(heap_form_tuple(BlessTupleDesc(tupdesc), values, nulls));
}

static void
project_for_change(FunctionCallInfo fcinfo, ProjectInfo *project, MLAccess need)
{
	char	   *name = text_to_cstring(PG_GETARG_TEXT_PP(0));

	CatalogCheckProjectName(name);
	CatalogRequireProject(name, project);
	CatalogCheckAccess(project, need);
}

/*
 * ml_deploy deploys a project's model chosen by strategy: best_score (the
 * best key metric on its hold-out rows), most_recent, or rollback (the
 * model that was live before the current one).
 */
Datum
ml_deploy(PG_FUNCTION_ARGS)
{
	char	   *strategy = text_to_cstring(PG_GETARG_TEXT_PP(1));
	ProjectInfo project;
	int64		model_id;
	char	   *reason;

	project_for_change(fcinfo, &project, ML_ACCESS_DEPLOY);
	if (strcmp(strategy, "best_score") == 0)
	{
		model_id = CatalogBestModel(&project);
		reason = psprintf("best %s among the project's models", MetricKeyName(project.task));
	}
	else if (strcmp(strategy, "most_recent") == 0)
	{
		model_id = CatalogNewestModel(project.id);
		reason = pstrdup("most recently trained model");
	}
	else if (strcmp(strategy, "rollback") == 0)
	{
		int64		live = CatalogLiveModelId(project.id);

		if (live == 0)
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("project \"%s\" has no deployed model to roll back", project.name)));
		model_id = CatalogPreviousModel(project.id, live);
		if (model_id == 0)
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("project \"%s\" has no earlier deployment to roll back to", project.name)));
		reason = psprintf("rollback from model %lld", (long long) live);
	}
	else
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("unknown deployment strategy \"%s\"", strategy),
				 errhint("Strategies are best_score, most_recent and rollback; or pass a model id.")));

	if (model_id == 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("project \"%s\" has no models", project.name)));
	PG_RETURN_DATUM(deploy(fcinfo, &project, model_id, strategy, reason));
}

/*
 * ml_deploy_model deploys one model of a project, chosen by id.
 */
Datum
ml_deploy_model(PG_FUNCTION_ARGS)
{
	int64		model_id = PG_GETARG_INT64(1);
	ProjectInfo project;

	project_for_change(fcinfo, &project, ML_ACCESS_DEPLOY);
	PG_RETURN_DATUM(deploy(fcinfo, &project, model_id, "manual",
						   psprintf("model %lld chosen by id", (long long) model_id)));
}

/*
 * ml_drop_project removes a project, its models and its deployments.
 */
Datum
ml_drop_project(PG_FUNCTION_ARGS)
{
	ProjectInfo project;

	project_for_change(fcinfo, &project, ML_ACCESS_OWN);
	CatalogDeleteProject(project.id);
	CacheInvalidate();
	PG_RETURN_BOOL(true);
}

/* The role argument of ml.grant and ml.revoke. */
static Oid
grantee_arg(FunctionCallInfo fcinfo, int argno)
{
	Oid			role = PG_GETARG_OID(argno);

	if (!OidIsValid(role))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("role must name a role, not PUBLIC"),
				 errhint("To give every ml_user access, grant it to ml_user.")));
	return role;
}

/*
 * ml_grant(project, role, privilege) gives role, and its members, one
 * level of access to a project: predict, train (which includes predict)
 * or deploy (which includes both).  It replaces what the role had.  For
 * members of the project's owner role.
 */
Datum
ml_grant(PG_FUNCTION_ARGS)
{
	ProjectInfo project;
	Oid			role = grantee_arg(fcinfo, 1);
	char	   *privilege = text_to_cstring(PG_GETARG_TEXT_PP(2));
	MLAccess	level;

	if (strcmp(privilege, "predict") == 0)
		level = ML_ACCESS_PREDICT;
	else if (strcmp(privilege, "train") == 0)
		level = ML_ACCESS_TRAIN;
	else if (strcmp(privilege, "deploy") == 0)
		level = ML_ACCESS_DEPLOY;
	else
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("unknown privilege \"%s\"", privilege),
				 errhint("Privileges are predict, train (which includes predict) and deploy (which includes both).")));
	project_for_change(fcinfo, &project, ML_ACCESS_OWN);
	CatalogSetGrant(&project, role, level);
	CacheInvalidate();
	PG_RETURN_VOID();
}

/*
 * ml_revoke(project, role) takes away what ml.grant gave role; false when
 * it had nothing.  Membership of the owner role is not a grant: revoke
 * the role itself for that.
 */
Datum
ml_revoke(PG_FUNCTION_ARGS)
{
	ProjectInfo project;
	Oid			role = grantee_arg(fcinfo, 1);
	bool		found;

	project_for_change(fcinfo, &project, ML_ACCESS_OWN);
	found = CatalogDeleteGrant(&project, role);
	if (found)
		CacheInvalidate();
	PG_RETURN_BOOL(found);
}

/*
 * ml._project_access(project, privilege, missing_ok) returns the id of a
 * project the caller may use at that level (predict, train, deploy or
 * own), for the plpgsql functions that queue jobs and schedules; NULL for
 * a project that does not exist when missing_ok.
 */
Datum
ml_project_access(PG_FUNCTION_ARGS)
{
	char	   *name;
	char	   *privilege;
	ProjectInfo project;
	MLAccess	need;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("project must not be NULL")));
	name = text_to_cstring(PG_GETARG_TEXT_PP(0));
	privilege = text_to_cstring(PG_GETARG_TEXT_PP(1));
	need = strcmp(privilege, "predict") == 0 ? ML_ACCESS_PREDICT :
		strcmp(privilege, "train") == 0 ? ML_ACCESS_TRAIN :
		strcmp(privilege, "deploy") == 0 ? ML_ACCESS_DEPLOY : ML_ACCESS_OWN;
	CatalogCheckProjectName(name);
	if (!CatalogFindProject(name, &project))
	{
		if (!PG_ARGISNULL(2) && PG_GETARG_BOOL(2))
			PG_RETURN_NULL();
		CatalogRequireProject(name, &project);
	}
	CatalogCheckAccess(&project, need);
	PG_RETURN_INT64(project.id);
}

/*
 * ml_invalidate_cache is the statement trigger on the catalog tables: it
 * queues a relcache invalidation of the changed table, which reaches every
 * backend's model cache when the transaction commits.
 */
Datum
ml_invalidate_cache(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;

	if (!CALLED_AS_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("ml._invalidate_cache() must be called as a trigger")));
	CacheInvalidateRelcacheByRelid(RelationGetRelid(trigdata->tg_relation));
	CacheInvalidate();
	return PointerGetDatum(NULL);
}
