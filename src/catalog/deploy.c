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
project_for_change(FunctionCallInfo fcinfo, ProjectInfo *project)
{
	char	   *name = text_to_cstring(PG_GETARG_TEXT_PP(0));

	CatalogCheckProjectName(name);
	CatalogRequireProject(name, project);
	CatalogCheckOwner(project);
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

	project_for_change(fcinfo, &project);
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

	project_for_change(fcinfo, &project);
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

	project_for_change(fcinfo, &project);
	CatalogDeleteProject(project.id);
	CacheInvalidate();
	PG_RETURN_BOOL(true);
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
