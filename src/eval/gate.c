/*-------------------------------------------------------------------------
 * src/eval/gate.c
 *		The promotion gate: {"min": {"f1": 0.8}, "max": {"rmse": 12.5},
 *		"beat_by": {"f1": 0.01}}.
 *-------------------------------------------------------------------------
 */
#include "eval/eval.h"

#include <math.h>

#include "lib/stringinfo.h"

typedef struct GateParseState
{
	Gate	   *gate;
	MLTask		task;
	int			nclasses;
	bool		is_min;
	bool		is_margin;
} GateParseState;

static const char *const task_metrics[] = {
	[ML_TASK_REGRESSION] = "r2, rmse, mae",
	[ML_TASK_CLASSIFICATION] = "accuracy, precision, recall, f1, roc_auc, log_loss",
	[ML_TASK_CLUSTERING] = "silhouette, inertia",
	[ML_TASK_DECOMPOSITION] = "explained_variance",
};

static void
gate_visit_bound(const char *key, JsonbValue *v, void *arg)
{
	GateParseState *st = arg;
	Gate	   *g = st->gate;
	Metrics		probe;
	double		dummy;
	double		limit;

	/* a metric is known when the task's Metrics has it */
	memset(&probe, 0, sizeof(probe));
	probe.task = st->task;
	if (!MetricsGet(&probe, key, &dummy))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("unknown metric \"%s\" in gate for task %s", key, MLTaskName(st->task)),
				 errhint("Metrics of this task are %s.", task_metrics[st->task])));
	if (strcmp(key, "roc_auc") == 0 && st->nclasses > 2)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("gate metric \"roc_auc\" is defined for binary classification only"),
				 errhint("This project has %d classes; gate on f1, accuracy or log_loss.", st->nclasses)));
	if (!JsonbValueToDouble(v, &limit))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("gate bound for \"%s\" must be a number, not %s", key,
						JsonbValueTypeName(v))));
	if (st->is_margin)
	{
		if (!(limit >= 0) || isinf(limit))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("gate beat_by margin for \"%s\" must be a finite number of at least 0, not %g",
							key, limit)));
		g->margin_names = repalloc(g->margin_names, sizeof(char *) * (g->nmargins + 1));
		g->margins = repalloc(g->margins, sizeof(double) * (g->nmargins + 1));
		g->margin_names[g->nmargins] = pstrdup(key);
		g->margins[g->nmargins] = limit;
		g->nmargins++;
		return;
	}
	g->names = repalloc(g->names, sizeof(char *) * (g->nbounds + 1));
	g->limits = repalloc(g->limits, sizeof(double) * (g->nbounds + 1));
	g->is_min = repalloc(g->is_min, sizeof(bool) * (g->nbounds + 1));
	g->names[g->nbounds] = pstrdup(key);
	g->limits[g->nbounds] = limit;
	g->is_min[g->nbounds] = st->is_min;
	g->nbounds++;
}

static void
gate_visit_top(const char *key, JsonbValue *v, void *arg)
{
	GateParseState *st = arg;

	if (strcmp(key, "min") != 0 && strcmp(key, "max") != 0 && strcmp(key, "beat_by") != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("unknown gate key \"%s\"", key),
				 errhint("A gate looks like {\"min\": {\"f1\": 0.8}, \"max\": {\"rmse\": 12.5}, \"beat_by\": {\"f1\": 0.01}}.")));
	if (v->type != jbvBinary || JsonContainerIsArray(v->val.binary.data))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("gate \"%s\" must be an object of metric bounds", key)));
	st->is_min = strcmp(key, "min") == 0;
	st->is_margin = strcmp(key, "beat_by") == 0;
	JsonbForEachKey(JsonbValueToJsonb(v), "gate", gate_visit_bound, st);
}

/*
 * GateParse validates a gate for a task (and, for classification, its
 * number of classes); an unknown or undefined metric is an error.
 */
Gate *
GateParse(Jsonb *json, MLTask task, int nclasses)
{
	Gate	   *g = palloc0(sizeof(Gate));
	GateParseState st = {g, task, nclasses, false, false};

	g->names = palloc(sizeof(char *));
	g->limits = palloc(sizeof(double));
	g->is_min = palloc(sizeof(bool));
	g->margin_names = palloc(sizeof(char *));
	g->margins = palloc(sizeof(double));
	JsonbForEachKey(json, "gate", gate_visit_top, &st);
	return g;
}

/*
 * GatePasses checks every bound; on failure it appends why to reason.
 */
bool
GatePasses(const Gate *gate, const Metrics *m, StringInfo reason)
{
	bool		pass = true;

	for (int i = 0; i < gate->nbounds; i++)
	{
		double		v = NAN;
		bool		ok;

		if (!MetricsGet(m, gate->names[i], &v))
			ok = false;
		else
			ok = gate->is_min[i] ? v >= gate->limits[i] : v <= gate->limits[i];
		if (!ok)
		{
			appendStringInfo(reason, "%s%s %g is %s the gate's %s %g",
							 pass ? "" : "; ", gate->names[i], v,
							 gate->is_min[i] ? "below" : "above",
							 gate->is_min[i] ? "min" : "max", gate->limits[i]);
			pass = false;
		}
	}
	return pass;
}

/*
 * GateBeatsBy checks the "beat_by" margins of a new model's metrics m over
 * the live model's metrics on the same rows: each named metric must
 * improve (up for r2, f1, ...; down for rmse, log_loss, ...) by at least
 * its margin.  A metric undefined for either model fails.  On failure it
 * appends why to reason.
 */
bool
GateBeatsBy(const Gate *gate, const Metrics *m, const Metrics *live, StringInfo reason)
{
	bool		pass = true;

	for (int i = 0; i < gate->nmargins; i++)
	{
		const char *name = gate->margin_names[i];
		double		v = NAN;
		double		lv = NAN;
		double		gain = NAN;

		if (MetricsGet(m, name, &v) && MetricsGet(live, name, &lv))
			gain = MetricHigherIsBetter(name) ? v - lv : lv - v;
		if (!(gain >= gate->margins[i]))
		{
			appendStringInfo(reason, "%s%s %.6g improves on the live model's %.6g by %.6g, less than the gate's beat_by %g",
							 pass ? "" : "; ", name, v, lv, gain, gate->margins[i]);
			pass = false;
		}
	}
	return pass;
}
