/*-------------------------------------------------------------------------
 * src/eval/gate.c
 *		The promotion gate: {"min": {"f1": 0.8}, "max": {"rmse": 12.5},
 *		"beat_by": {"f1": 0.01}, "significance": 0.05}, and the paired tests
 *		behind "significance".
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

	if (strcmp(key, "significance") == 0)
	{
		double		alpha;

		if (st->task != ML_TASK_REGRESSION && st->task != ML_TASK_CLASSIFICATION)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("gate significance applies to regression and classification, not %s",
							MLTaskName(st->task))));
		if (!JsonbValueToDouble(v, &alpha) || !(alpha > 0 && alpha < 1))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("gate significance must be a number between 0 and 1, exclusive"),
					 errhint("For example {\"significance\": 0.05}.")));
		st->gate->significance = alpha;
		return;
	}
	if (strcmp(key, "min") != 0 && strcmp(key, "max") != 0 && strcmp(key, "beat_by") != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("unknown gate key \"%s\"", key),
				 errhint("A gate looks like {\"min\": {\"f1\": 0.8}, \"max\": {\"rmse\": 12.5}, \"beat_by\": {\"f1\": 0.01}, \"significance\": 0.05}.")));
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

/*
 * The regularised incomplete beta function I_x(a, b), by its continued
 * fraction evaluated with the modified Lentz method; the symmetry
 * I_x(a, b) = 1 - I_{1-x}(b, a) keeps the fraction where it converges fast.
 */
static double
incomplete_beta(double x, double a, double b)
{
	const double tiny = 1e-300;
	double		front;
	double		c;
	double		d;
	double		h;

	if (x <= 0)
		return 0.0;
	if (x >= 1)
		return 1.0;
	if (x > (a + 1) / (a + b + 2))
		return 1.0 - incomplete_beta(1 - x, b, a);
	front = exp(lgamma(a + b) - lgamma(a) - lgamma(b) + a * log(x) + b * log1p(-x)) / a;
	c = 1.0;
	d = 1.0 - (a + b) * x / (a + 1);
	d = 1.0 / (fabs(d) < tiny ? tiny : d);
	h = d;
	for (int m = 1; m <= 1000; m++)
	{
		double		num;
		double		delta;

		/* even step */
		num = m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m));
		d = 1.0 + num * d;
		d = 1.0 / (fabs(d) < tiny ? tiny : d);
		c = 1.0 + num / c;
		c = fabs(c) < tiny ? tiny : c;
		h *= d * c;
		/* odd step */
		num = -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1));
		d = 1.0 + num * d;
		d = 1.0 / (fabs(d) < tiny ? tiny : d);
		c = 1.0 + num / c;
		c = fabs(c) < tiny ? tiny : c;
		delta = d * c;
		h *= delta;
		if (fabs(delta - 1.0) < 1e-15)
			break;
	}
	return front * h;
}

/* P(T >= t) for Student's t with df degrees of freedom. */
static double
student_t_upper(double t, double df)
{
	double		tail = 0.5 * incomplete_beta(df / (df + t * t), df / 2, 0.5);

	return t >= 0 ? tail : 1.0 - tail;
}

/* P(X >= k) for X ~ Binomial(n, 1/2). */
static double
binomial_half_upper(int64 k, int64 n)
{
	double		p = 0.0;

	if (k <= 0)
		return 1.0;
	for (int64 j = k; j <= n; j++)
		p += exp(lgamma((double) n + 1) - lgamma((double) j + 1) -
				 lgamma((double) (n - j) + 1) - (double) n * M_LN2);
	return Min(p, 1.0);
}

/*
 * GatePairedTest is the one-sided p-value of "the challenger is better
 * than the champion" on the same n rows, from the two models' outputs
 * (as ModelScoreRows gives them, with each one's decision threshold, NaN
 * for none) and the actual values y:
 *   - classification: McNemar's exact test.  Of the rows exactly one model
 *     classifies correctly, the challenger's share is tested against 1/2
 *     with the binomial distribution;
 *   - regression: a paired t-test on the differences of squared errors
 *     (champion's minus challenger's), n - 1 degrees of freedom.
 * how receives the test and its figures, for the deployment's reason.
 */
double
GatePairedTest(MLTask task, const double *y, const double *challenger,
			   double challenger_threshold, const double *champion,
			   double champion_threshold, int64 n, int nclasses, StringInfo how)
{
	if (task == ML_TASK_CLASSIFICATION)
	{
		int64		only_challenger = 0;
		int64		only_champion = 0;
		double		p;

		for (int64 i = 0; i < n; i++)
		{
			int			pa = MetricsDecide(challenger + i * nclasses, nclasses,
										   challenger_threshold);
			int			pb = MetricsDecide(champion + i * nclasses, nclasses,
										   champion_threshold);
			int			actual = (int) y[i];

			if (pa == actual && pb != actual)
				only_challenger++;
			else if (pb == actual && pa != actual)
				only_champion++;
		}
		p = binomial_half_upper(only_challenger, only_challenger + only_champion);
		appendStringInfo(how, "McNemar's exact test: %lld rows right only with the new model, %lld only with the live one",
						 (long long) only_challenger, (long long) only_champion);
		return p;
	}
	else
	{
		double		mean = 0.0;
		double		m2 = 0.0;
		double		sd;
		double		p;

		/* Welford's running mean and sum of squared deviations */
		for (int64 i = 0; i < n; i++)
		{
			double		ea = y[i] - challenger[i];
			double		eb = y[i] - champion[i];
			double		d = eb * eb - ea * ea;
			double		delta = d - mean;

			mean += delta / (double) (i + 1);
			m2 += delta * (d - mean);
		}
		sd = n > 1 ? sqrt(m2 / (double) (n - 1)) : 0.0;
		if (n < 2)
			p = 1.0;
		else if (sd == 0)
			p = mean > 0 ? 0.0 : 1.0;
		else
			p = student_t_upper(mean / (sd / sqrt((double) n)), (double) (n - 1));
		appendStringInfo(how, "paired t-test on squared errors: mean reduction %.6g over %lld rows",
						 mean, (long long) n);
		return p;
	}
}
