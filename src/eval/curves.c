/*-------------------------------------------------------------------------
 * src/eval/curves.c
 *		The points of a model's evaluation plots, kept with the model
 *		(ml.models.curves) for the report: ROC and precision-recall curves
 *		of a binary classifier, actual against predicted values of a
 *		regression.  At most CURVE_POINTS points each, so that a model row
 *		stays small whatever the size of the hold-out set.
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "eval/eval.h"

#define CURVE_POINTS 101
#define SCATTER_POINTS 200

typedef struct Scored
{
	double		score;
	bool		positive;
} Scored;

static int
cmp_score_desc(const void *a, const void *b)
{
	double		x = ((const Scored *) a)->score;
	double		y = ((const Scored *) b)->score;

	return (x < y) - (x > y);
}

static void
point(JsonbParseState **st, double x, double y)
{
	JbBeginArray(st);
	JbFloat(st, x);
	JbFloat(st, y);
	JbEndArray(st);
}

/* ROC and precision-recall points, thresholds taken at distinct scores. */
static void
binary_curves(JsonbParseState **st, const double *y, const double *outputs, int64 n)
{
	Scored	   *s = palloc(sizeof(Scored) * n);
	int64		pos = 0;
	int64		neg;
	int64	   *cut;
	int64		ncut = 0;
	int64		step;

	for (int64 i = 0; i < n; i++)
	{
		s[i].score = outputs[i * 2 + 1];
		s[i].positive = y[i] == 1;
		pos += s[i].positive;
	}
	neg = n - pos;
	qsort(s, n, sizeof(Scored), cmp_score_desc);

	/* the ends of runs of equal scores: where a threshold can fall */
	cut = palloc(sizeof(int64) * (n + 1));
	for (int64 i = 1; i <= n; i++)
		if (i == n || s[i].score != s[i - 1].score)
			cut[ncut++] = i;
	step = Max(1, (ncut + CURVE_POINTS - 2) / (CURVE_POINTS - 1));

	for (int curve = 0; curve < 2; curve++)
	{
		int64		tp = 0,
					fp = 0,
					at = 0;

		JbKey(st, curve == 0 ? "roc" : "pr");
		JbBeginArray(st);
		if (curve == 0)
			point(st, 0, 0);
		for (int64 c = 0; c < ncut; c++)
		{
			for (; at < cut[c]; at++)
			{
				if (s[at].positive)
					tp++;
				else
					fp++;
			}
			if (c % step != 0 && c != ncut - 1)
				continue;
			if (curve == 0)
				point(st, neg > 0 ? (double) fp / neg : 0, pos > 0 ? (double) tp / pos : 0);
			else
				point(st, pos > 0 ? (double) tp / pos : 0, (double) tp / (tp + fp));
		}
		JbEndArray(st);
	}
	pfree(cut);
	pfree(s);
}

Jsonb *
CurvesCompute(MLTask task, const double *y, const double *outputs, int64 n, int nclasses)
{
	JsonbParseState *st = NULL;

	if (n == 0)
		return NULL;
	if (task == ML_TASK_REGRESSION)
	{
		int64		step = Max(1, (n + SCATTER_POINTS - 1) / SCATTER_POINTS);

		JbBeginObject(&st);
		JbKey(&st, "actual_vs_predicted");
		JbBeginArray(&st);
		for (int64 i = 0; i < n; i += step)
			point(&st, y[i], outputs[i]);
		JbEndArray(&st);
		return JbFinishObject(&st);
	}
	if (task == ML_TASK_CLASSIFICATION && nclasses == 2)
	{
		JbBeginObject(&st);
		binary_curves(&st, y, outputs, n);
		return JbFinishObject(&st);
	}
	return NULL;
}
