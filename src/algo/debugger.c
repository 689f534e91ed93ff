/*-------------------------------------------------------------------------
 * src/algo/debugger.c
 *		Debugger rules: checks of a training run, evaluated as it runs on
 *		each iteration's telemetry (TrainLogAdd), on the training data
 *		before the fit, and on the fitted model after it.
 *
 * A rule fires once, at the first iteration that breaks it; its action
 * records it (always), raises an alert (after the model is stored), or
 * stops the training: TrainLogAdd then returns false, and the algorithm
 * ends its loop cleanly (XGBoost keeps its best validation round).  What
 * each rule found goes to ml.debug_events with the model.
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "utils/builtins.h"

#include "algo/algo.h"

typedef struct RuleSpec
{
	const char *name;
	const char *param;			/* the rule's numeric parameter, or NULL */
	double		default_value;
	double		min;
	double		max;
	const char *param2;			/* a second (integer) parameter, or NULL */
	int			default2;
} RuleSpec;

static const RuleSpec rule_specs[DBG_NRULES] = {
	[DBG_LOSS_NOT_DECREASING] = {"loss_not_decreasing", "min_relative_change", 0.001, 0, 1, "window", 10},
	[DBG_OVERFIT] = {"overfit", "ratio", 0.1, 0, 1e6, "patience", 3},
	[DBG_OVERTRAINING] = {"overtraining", NULL, 0, 0, 0, "patience", 5},
	[DBG_VANISHING_GRADIENT] = {"vanishing_gradient", "threshold", 1e-7, 0, 1e6, NULL, 0},
	[DBG_EXPLODING_TENSOR] = {"exploding_tensor", "threshold", 1e10, 0, 1e300, NULL, 0},
	[DBG_NAN_OR_INF] = {"nan_or_inf", NULL, 0, 0, 0, NULL, 0},
	[DBG_STALLED_TRAINING] = {"stalled_training", "seconds", 1800, 0.001, 1e9, NULL, 0},
	[DBG_CLASS_IMBALANCE] = {"class_imbalance", "min_fraction", 0.1, 0, 1, NULL, 0},
	[DBG_FEATURE_IMPORTANCE_OVERWEIGHT] = {"feature_importance_overweight", "max_share", 0.8, 0, 1, NULL, 0},
};

static const char *const action_names[] = {"record", "alert", "stop"};

typedef struct ParseArg
{
	DebugRules *d;
	DebugRule  *rule;
	const RuleSpec *spec;
} ParseArg;

static void
rule_option(const char *key, JsonbValue *v, void *arg)
{
	ParseArg   *pa = (ParseArg *) arg;
	double		d;

	if (strcmp(key, "action") == 0)
	{
		char	   *s = JsonbValueToCString(v);

		for (int a = 0; a < lengthof(action_names); a++)
			if (s && v->type == jbvString && strcmp(s, action_names[a]) == 0)
			{
				pa->rule->action = (DebugAction) a;
				return;
			}
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("the action of rule \"%s\" must be \"record\", \"alert\" or \"stop\"", pa->spec->name)));
	}
	if (pa->spec->param && strcmp(key, pa->spec->param) == 0)
	{
		if (!JsonbValueToDouble(v, &d) || d < pa->spec->min || d > pa->spec->max || isnan(d))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("\"%s\" of rule \"%s\" must be a number from %g to %g",
							key, pa->spec->name, pa->spec->min, pa->spec->max)));
		pa->rule->threshold = d;
		return;
	}
	if (pa->spec->param2 && strcmp(key, pa->spec->param2) == 0)
	{
		if (!JsonbValueToDouble(v, &d) || d != floor(d) || d < 1 || d > 100000)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("\"%s\" of rule \"%s\" must be an integer from 1 to 100000", key, pa->spec->name)));
		pa->rule->window = (int) d;
		return;
	}
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("rule \"%s\" has no setting \"%s\"", pa->spec->name, key),
			 errhint("Its settings are action%s%s%s%s.", pa->spec->param ? ", " : "",
					 pa->spec->param ? pa->spec->param : "", pa->spec->param2 ? ", " : "",
					 pa->spec->param2 ? pa->spec->param2 : "")));
}

static void
rules_option(const char *key, JsonbValue *v, void *arg)
{
	DebugRules *d = (DebugRules *) arg;
	ParseArg	pa;
	int			k;

	for (k = 0; k < DBG_NRULES; k++)
		if (strcmp(rule_specs[k].name, key) == 0)
			break;
	if (k == DBG_NRULES)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("unknown debugger rule \"%s\"", key),
				 errhint("The rules are loss_not_decreasing, overfit, overtraining, vanishing_gradient, exploding_tensor, nan_or_inf, stalled_training, class_imbalance and feature_importance_overweight.")));
	if (v->type != jbvBinary)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("the settings of rule \"%s\" must be a JSON object (\"{}\" for the defaults)", key)));
	pa.d = d;
	pa.rule = &d->r[k];
	pa.spec = &rule_specs[k];
	pa.rule->enabled = true;
	JsonbForEachKey(JsonbValueToJsonb(v), "rule settings", rule_option, &pa);
}

DebugRules *
DebugRulesParse(Jsonb *rules)
{
	DebugRules *d = palloc0(sizeof(DebugRules));

	for (int k = 0; k < DBG_NRULES; k++)
	{
		d->r[k].threshold = rule_specs[k].default_value;
		d->r[k].window = rule_specs[k].default2;
		d->r[k].action = DBG_RECORD;
	}
	JsonbForEachKey(rules, "rules", rules_option, d);
	return d;
}

/* Fires a rule (once), with its iteration and why. */
static void
fire(DebugRules *d, DebugRuleKind k, int iteration, const char *fmt,...) pg_attribute_printf(4, 5);

static void
fire(DebugRules *d, DebugRuleKind k, int iteration, const char *fmt,...)
{
	DebugRule  *r = &d->r[k];
	StringInfoData buf;

	if (!r->enabled || r->status != DBG_OK)
		return;
	initStringInfo(&buf);
	for (;;)
	{
		va_list		args;
		int			needed;

		va_start(args, fmt);
		needed = appendStringInfoVA(&buf, fmt, args);
		va_end(args);
		if (needed == 0)
			break;
		enlargeStringInfo(&buf, needed);
	}
	r->status = DBG_FIRED;
	r->iteration = iteration;
	r->detail = buf.data;
	if (r->action == DBG_STOP && !d->stop)
	{
		d->stop = true;
		d->stopped_at = iteration;
	}
}

static void
skip(DebugRules *d, DebugRuleKind k, const char *why)
{
	DebugRule  *r = &d->r[k];

	if (r->enabled && r->status == DBG_OK)
	{
		r->status = DBG_SKIPPED;
		r->detail = pstrdup(why);
	}
}

bool
DebugObserve(TrainLog *log)
{
	DebugRules *d = log->debug;
	const TrainLogEntry *e = &log->entries[log->n - 1];
	int			it = e->iteration;
	bool		has_valid = !isnan(e->validation_loss);

	if (d == NULL)
		return true;

	if (isnan(e->train_loss) || isinf(e->train_loss) || isinf(e->validation_loss) || isinf(e->norm))
		fire(d, DBG_NAN_OR_INF, it, "the training loss is %g, the validation loss %g, the %s %g",
			 e->train_loss, e->validation_loss, log->norm_name, e->norm);
	if (fabs(e->train_loss) > d->r[DBG_EXPLODING_TENSOR].threshold ||
		(has_valid && fabs(e->validation_loss) > d->r[DBG_EXPLODING_TENSOR].threshold) ||
		(!isnan(e->norm) && fabs(e->norm) > d->r[DBG_EXPLODING_TENSOR].threshold))
		fire(d, DBG_EXPLODING_TENSOR, it, "a loss or the %s passed %g (training loss %g, %s %g)",
			 log->norm_name, d->r[DBG_EXPLODING_TENSOR].threshold, e->train_loss, log->norm_name, e->norm);
	if (!isnan(e->norm) && fabs(e->norm) < d->r[DBG_VANISHING_GRADIENT].threshold)
		fire(d, DBG_VANISHING_GRADIENT, it, "the %s fell to %g, under %g", log->norm_name, e->norm,
			 d->r[DBG_VANISHING_GRADIENT].threshold);
	if (log->n >= 2 && e->elapsed - log->entries[log->n - 2].elapsed > d->r[DBG_STALLED_TRAINING].threshold)
		fire(d, DBG_STALLED_TRAINING, it, "%.1f seconds without a new iteration",
			 e->elapsed - log->entries[log->n - 2].elapsed);

	/* the training loss over the last window */
	{
		int			w = d->r[DBG_LOSS_NOT_DECREASING].window;

		if (log->n > w)
		{
			double		before = log->entries[log->n - 1 - w].train_loss;
			double		change = (before - e->train_loss) / Max(fabs(before), 1e-300);

			if (change < d->r[DBG_LOSS_NOT_DECREASING].threshold)
				fire(d, DBG_LOSS_NOT_DECREASING, it,
					 "the training loss went from %g to %g in %d iterations (relative change %g, under %g)",
					 before, e->train_loss, w, change, d->r[DBG_LOSS_NOT_DECREASING].threshold);
		}
	}

	/* validation against training, and validation against its best */
	if (has_valid)
	{
		DebugRule  *of = &d->r[DBG_OVERFIT];
		DebugRule  *ot = &d->r[DBG_OVERTRAINING];
		double		gap = (e->validation_loss - e->train_loss) / Max(fabs(e->train_loss), 1e-300);

		of->count = gap > of->threshold ? of->count + 1 : 0;
		if (of->count >= of->window)
			fire(d, DBG_OVERFIT, it,
				 "the validation loss %g is %.3g times above the training loss %g for %d iterations",
				 e->validation_loss, gap, e->train_loss, of->count);
		if (d->best_iteration == 0 || e->validation_loss < d->best_validation)
		{
			d->best_validation = e->validation_loss;
			d->best_iteration = it;
			ot->count = 0;
		}
		else if (++ot->count >= ot->window)
			fire(d, DBG_OVERTRAINING, it,
				 "the validation loss rose above its best (%g at iteration %d) for %d iterations",
				 d->best_validation, d->best_iteration, ot->count);
	}
	return !d->stop;
}

void
DebugFinish(DebugRules *d, const TrainLog *log)
{
	bool		any_valid = false;

	if (d == NULL)
		return;
	for (int i = 0; i < (log ? log->n : 0); i++)
		any_valid |= !isnan(log->entries[i].validation_loss);
	if (log == NULL || log->n == 0)
	{
		static const DebugRuleKind per_iteration[] = {
			DBG_LOSS_NOT_DECREASING, DBG_OVERFIT, DBG_OVERTRAINING, DBG_VANISHING_GRADIENT,
			DBG_EXPLODING_TENSOR, DBG_NAN_OR_INF, DBG_STALLED_TRAINING
		};

		for (int i = 0; i < lengthof(per_iteration); i++)
			skip(d, per_iteration[i], "the algorithm reports no iterations");
		return;
	}
	if (!any_valid)
	{
		skip(d, DBG_OVERFIT, "no validation loss: give early_stopping_rounds to hold out validation rows");
		skip(d, DBG_OVERTRAINING, "no validation loss: give early_stopping_rounds to hold out validation rows");
	}
	if (isnan(log->entries[log->n - 1].norm))
		skip(d, DBG_VANISHING_GRADIENT, "the algorithm reports no gradient or update norm");
	if (log->n <= d->r[DBG_LOSS_NOT_DECREASING].window)
		skip(d, DBG_LOSS_NOT_DECREASING, "fewer iterations than the window");
}

void
DebugCheckData(DebugRules *d, const TrainSet *ts)
{
	int64	   *counts;
	int			smallest = 0;

	if (d == NULL || !d->r[DBG_CLASS_IMBALANCE].enabled)
		return;
	if (ts->task != ML_TASK_CLASSIFICATION || ts->nclasses < 2 || ts->n == 0)
	{
		skip(d, DBG_CLASS_IMBALANCE, "not a classification");
		return;
	}
	counts = palloc0(sizeof(int64) * ts->nclasses);
	for (int64 i = 0; i < ts->n; i++)
		counts[(int) ts->y[i]]++;
	for (int c = 1; c < ts->nclasses; c++)
		if (counts[c] < counts[smallest])
			smallest = c;
	if ((double) counts[smallest] / ts->n < d->r[DBG_CLASS_IMBALANCE].threshold)
		fire(d, DBG_CLASS_IMBALANCE, 0, "class %d of %d has %lld of %lld training rows (%.3g, under %g)",
			 smallest + 1, ts->nclasses, (long long) counts[smallest], (long long) ts->n,
			 (double) counts[smallest] / ts->n, d->r[DBG_CLASS_IMBALANCE].threshold);
	pfree(counts);
}

void
DebugCheckImportance(DebugRules *d, int p, const double *importance, char **feature_names)
{
	double		total = 0;
	int			top = 0;

	if (d == NULL || !d->r[DBG_FEATURE_IMPORTANCE_OVERWEIGHT].enabled)
		return;
	if (importance == NULL || p < 2)
	{
		skip(d, DBG_FEATURE_IMPORTANCE_OVERWEIGHT,
			 importance ? "a single feature" : "the algorithm reports no feature importance");
		return;
	}
	for (int j = 0; j < p; j++)
	{
		total += importance[j];
		if (importance[j] > importance[top])
			top = j;
	}
	if (total > 0 && importance[top] / total > d->r[DBG_FEATURE_IMPORTANCE_OVERWEIGHT].threshold)
		fire(d, DBG_FEATURE_IMPORTANCE_OVERWEIGHT, 0, "feature %s holds %.3g of the total importance (over %g)",
			 feature_names[top], importance[top] / total, d->r[DBG_FEATURE_IMPORTANCE_OVERWEIGHT].threshold);
}

Jsonb *
DebugReport(const DebugRules *d)
{
	JsonbParseState *st = NULL;

	JbBeginArray(&st);
	for (int k = 0; k < DBG_NRULES; k++)
	{
		const DebugRule *r = &d->r[k];

		if (!r->enabled)
			continue;
		JbBeginObject(&st);
		JbKey(&st, "rule");
		JbString(&st, rule_specs[k].name);
		JbKey(&st, "status");
		JbString(&st, r->status == DBG_FIRED ? "fired" : r->status == DBG_SKIPPED ? "skipped" : "ok");
		JbKey(&st, "action");
		JbString(&st, action_names[r->action]);
		JbKey(&st, "iteration");
		if (r->status == DBG_FIRED && r->iteration > 0)
			JbInt(&st, r->iteration);
		else
			JbNull(&st);
		JbKey(&st, "detail");
		JbString(&st, r->detail);
		JbEndObject(&st);
	}
	return JbFinishArray(&st);
}

bool
DebugAlertDue(const DebugRules *d)
{
	for (int k = 0; d && k < DBG_NRULES; k++)
		if (d->r[k].enabled && d->r[k].status == DBG_FIRED && d->r[k].action == DBG_ALERT)
			return true;
	return false;
}
