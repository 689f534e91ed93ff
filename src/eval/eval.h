/*-------------------------------------------------------------------------
 * src/eval/eval.h
 *		Metrics of a task on labelled rows, and the promotion gate.
 *-------------------------------------------------------------------------
 */
#ifndef PGMAKER_EVAL_H
#define PGMAKER_EVAL_H

#include "pgmaker.h"

#include "lib/stringinfo.h"
#include "utils/jsonb.h"

typedef struct Metrics
{
	MLTask		task;
	int64		n;
	int			nclasses;
	bool		on_train;		/* computed on the training rows */
	const char *evaluated_on;	/* overrides "train"/"test" when set */
	int64		sampled_from;	/* n is a sample of this many rows, or 0 */
	/* regression */
	double		r2;
	double		rmse;
	double		mae;
	/* classification (binary: positive class 1; multiclass: macro) */
	double		accuracy;
	double		precision;
	double		recall;
	double		f1;
	double		roc_auc;		/* binary only; NaN otherwise */
	double		log_loss;
	int64	   *confusion;		/* nclasses x nclasses, [actual][predicted] */
	/* clustering */
	double		inertia;		/* sum of squared distances to the nearest centre */
	double		silhouette;		/* mean silhouette of a sample of rows */
	/* decomposition */
	double		explained_variance; /* share of the variance the components keep */
	/* detailed (ml.evaluate): per-class figures and residual quantiles */
	bool		detailed;
	double		residual_q[5];	/* regression: p05, p25, p50, p75, p95 of y - prediction */
} Metrics;

#define SILHOUETTE_MAX_ROWS 10000

extern int	MetricsDecide(const double *outputs, int nclasses, double threshold);
extern void MetricsCompute(Metrics *m, MLTask task, const double *y,
						   const double *outputs, int64 n, int nclasses,
						   bool probabilities, double threshold, bool detailed);
extern double MetricsTuneThreshold(const double *y, const double *outputs, int64 n,
								   const char *metric, double neutral,
								   double *best_score);
extern bool MetricsGet(const Metrics *m, const char *name, double *value);
extern double MetricsSilhouette(const double *X, const int *labels, int n, int p);

/* curves.c: ROC and precision-recall points, or actual against predicted */
extern Jsonb *CurvesCompute(MLTask task, const double *y, const double *outputs, int64 n,
							int nclasses);
extern Jsonb *MetricsToJsonb(const Metrics *m, char **labels);
extern const char *MetricKeyName(MLTask task);
extern bool MetricHigherIsBetter(const char *name);

/*
 * The promotion gate: lower and upper bounds on metrics ("min", "max"), and
 * the margins by which a new model must beat the live one ("beat_by").
 */
typedef struct Gate
{
	int			nbounds;
	char	  **names;
	double	   *limits;
	bool	   *is_min;
	int			nmargins;
	char	  **margin_names;
	double	   *margins;
	double		significance;	/* 0: no paired test */
} Gate;

extern Gate *GateParse(Jsonb *gate, MLTask task, int nclasses);
extern bool GatePasses(const Gate *gate, const Metrics *m, StringInfo reason);
extern bool GateBeatsBy(const Gate *gate, const Metrics *m, const Metrics *live,
						StringInfo reason);
extern double GatePairedTest(MLTask task, const double *y, const double *challenger,
							 double challenger_threshold, const double *champion,
							 double champion_threshold, int64 n, int nclasses,
							 StringInfo how);

#endif							/* PGMAKER_EVAL_H */
