/*-------------------------------------------------------------------------
 * src/algo/naive_bayes.c
 *		Gaussian naive Bayes classification, with scikit-learn's GaussianNB
 *		meanings.
 *
 * The model is, per class c, the prior n_c / n and, per feature j, the
 * mean theta_cj and the population variance var_cj of the class's rows,
 * to which var_smoothing times the largest variance of any feature over
 * all training rows is added.  A row's joint log-likelihood for class c is
 *		log prior_c - 1/2 sum_j log(2 pi var_cj)
 *					- 1/2 sum_j (x_j - theta_cj)^2 / var_cj,
 * and its class probabilities are these normalised by log-sum-exp.
 *
 * Training is one pass over the blocks of the training matrix.  Each block
 * yields exact per-class means and sums of squared deviations (two passes
 * over the block, which is in memory); they are merged into the running
 * ones with Chan, Golub and LeVeque's pairwise update, which keeps the
 * variance accurate however large the features' means are.  The variances
 * over all rows come from merging the classes' statistics the same way.
 * A class that has no training row has prior 0 and probability 0.
 *-------------------------------------------------------------------------
 */
#include "algo/algo.h"

#include <math.h>

#include "libpq/pqformat.h"
#include "model/model.h"

typedef struct NaiveBayesState
{
	int64	   *count;			/* training rows of each class */
	double	   *theta;			/* nclasses x p: class c's means at c * p */
	double	   *var;			/* nclasses x p, smoothing included */
	double		epsilon;		/* var_smoothing x the largest variance */
	/* derived from the above when fitted or read */
	double	   *prior;			/* nclasses */
	double	   *logconst;		/* log prior - 1/2 sum_j log(2 pi var) */
} NaiveBayesState;

static const HyperparamSpec naive_bayes_params[] = {
	{"var_smoothing", HP_FLOAT, "1e-09", 0, 1e300, NULL, false},
};

/*
 * Merges the statistics of nb rows (means mean_b, sums of squared
 * deviations m2_b, p features) into those of *na rows.
 */
static void
merge_moments(double *na, double *mean_a, double *m2_a,
			  double nb, const double *mean_b, const double *m2_b, int p)
{
	double		n = *na + nb;

	if (nb == 0)
		return;
	for (int j = 0; j < p; j++)
	{
		double		delta = mean_b[j] - mean_a[j];

		mean_a[j] += delta * (nb / n);
		m2_a[j] += m2_b[j] + delta * delta * (*na * nb / n);
	}
	*na = n;
}

/* Computes the priors and each class's constant term from the state. */
static void
naive_bayes_prepare(NaiveBayesState *st, int nclasses, int p)
{
	double		n = 0.0;

	for (int c = 0; c < nclasses; c++)
		n += (double) st->count[c];
	st->prior = palloc(sizeof(double) * nclasses);
	st->logconst = palloc(sizeof(double) * nclasses);
	for (int c = 0; c < nclasses; c++)
	{
		const double *var = st->var + (Size) c * p;
		double		s = 0.0;

		st->prior[c] = (double) st->count[c] / n;
		if (st->count[c] == 0)
		{
			st->logconst[c] = -INFINITY;
			continue;
		}
		for (int j = 0; j < p; j++)
			s += log(2.0 * M_PI * var[j]);
		st->logconst[c] = log(st->prior[c]) - 0.5 * s;
	}
}

static void
naive_bayes_fit(AlgoModel *m, TrainSet *ts, const Hyperparams *hp)
{
	int			p = ts->p;
	int			k = ts->nclasses;
	Size		kp = (Size) k * Max(p, 1);
	NaiveBayesState *st = palloc0(sizeof(NaiveBayesState));
	double	   *n_c = palloc0(sizeof(double) * k);
	double	   *m2 = palloc0(sizeof(double) * kp);
	double	   *bn = palloc(sizeof(double) * k);
	double	   *bmean = palloc(sizeof(double) * kp);
	double	   *bm2 = palloc(sizeof(double) * kp);
	int		   *yb = palloc(sizeof(int) * TRAIN_BLOCK_ROWS);
	double		n_all = 0.0;
	double	   *mean_all = palloc0(sizeof(double) * Max(p, 1));
	double	   *m2_all = palloc0(sizeof(double) * Max(p, 1));
	double		maxvar = 0.0;
	double		var_smoothing = HpFloat(hp, "var_smoothing");
	TrainBlock	blk;

	st->count = palloc0(sizeof(int64) * k);
	st->theta = palloc0(sizeof(double) * kp);
	st->var = palloc0(sizeof(double) * kp);

	TrainSetBlockBegin(ts, &blk);
	while (TrainSetNextBlock(ts, &blk))
	{
		memset(bn, 0, sizeof(double) * k);
		memset(bmean, 0, sizeof(double) * kp);
		memset(bm2, 0, sizeof(double) * kp);
		for (int i = 0; i < blk.count; i++)
		{
			yb[i] = (int) ts->y[blk.start + i];
			bn[yb[i]] += 1.0;
		}
		for (int j = 0; j < p; j++)
		{
			const double *x = blk.X + (Size) j * blk.ld;

			for (int i = 0; i < blk.count; i++)
				bmean[(Size) yb[i] * p + j] += x[i];
			for (int c = 0; c < k; c++)
				if (bn[c] > 0)
					bmean[(Size) c * p + j] /= bn[c];
			for (int i = 0; i < blk.count; i++)
			{
				double		d = x[i] - bmean[(Size) yb[i] * p + j];

				bm2[(Size) yb[i] * p + j] += d * d;
			}
		}
		for (int c = 0; c < k; c++)
			merge_moments(&n_c[c], st->theta + (Size) c * p, m2 + (Size) c * p,
						  bn[c], bmean + (Size) c * p, bm2 + (Size) c * p, p);
	}
	TrainSetBlockEnd(&blk);

	/* the variance of each feature over every row bounds the smoothing */
	for (int c = 0; c < k; c++)
		merge_moments(&n_all, mean_all, m2_all,
					  n_c[c], st->theta + (Size) c * p, m2 + (Size) c * p, p);
	for (int j = 0; j < p; j++)
		maxvar = Max(maxvar, m2_all[j] / n_all);
	st->epsilon = var_smoothing * maxvar;

	for (int c = 0; c < k; c++)
	{
		st->count[c] = (int64) n_c[c];
		if (st->count[c] == 0)
			continue;
		for (int j = 0; j < p; j++)
		{
			Size		cj = (Size) c * p + j;

			st->var[cj] = m2[cj] / n_c[c] + st->epsilon;
			if (!(st->var[cj] > 0) || !isfinite(st->var[cj]))
				ereport(ERROR,
						(errcode(ERRCODE_DATA_EXCEPTION),
						 errmsg("feature \"%s\" has zero variance within a class",
								ts->feature_names[j]),
						 errdetail("Gaussian naive Bayes divides by the variance of each feature within each class; var_smoothing %g adds %g.",
								   var_smoothing, st->epsilon),
						 maxvar > 0 ?
						 errhint("Set var_smoothing above 0, or exclude the feature in preprocess.") :
						 errhint("Every feature is constant in the training rows; use other features.")));
		}
	}
	naive_bayes_prepare(st, k, p);
	m->state = st;

	pfree(n_c);
	pfree(m2);
	pfree(bn);
	pfree(bmean);
	pfree(bm2);
	pfree(yb);
	pfree(mean_all);
	pfree(m2_all);
}

static void
naive_bayes_predict(const AlgoModel *m, const double *X, int n, int ld, double *out)
{
	const NaiveBayesState *st = m->state;
	int			p = m->p;
	int			k = m->nclasses;

	/* joint log-likelihoods, class by class, feature by feature */
	for (int c = 0; c < k; c++)
	{
		const double *theta = st->theta + (Size) c * p;
		const double *var = st->var + (Size) c * p;

		for (int i = 0; i < n; i++)
			out[(Size) i * k + c] = st->logconst[c];
		if (st->count[c] == 0)
			continue;
		for (int j = 0; j < p; j++)
		{
			const double *x = X + (Size) j * ld;
			double		half_inv = 0.5 / var[j];

			for (int i = 0; i < n; i++)
			{
				double		d = x[i] - theta[j];

				out[(Size) i * k + c] -= d * d * half_inv;
			}
		}
	}

	/* probabilities: exp(jll - logsumexp(jll)) */
	for (int i = 0; i < n; i++)
	{
		double	   *o = out + (Size) i * k;
		double		jmax = -INFINITY;
		double		sum = 0.0;
		double		lse;

		for (int c = 0; c < k; c++)
			if (st->count[c] > 0)
				jmax = Max(jmax, o[c]);
		for (int c = 0; c < k; c++)
			if (st->count[c] > 0)
				sum += exp(o[c] - jmax);
		lse = jmax + log(sum);
		for (int c = 0; c < k; c++)
			o[c] = st->count[c] > 0 ? exp(o[c] - lse) : 0.0;
	}
}

static void
naive_bayes_serialize(const AlgoModel *m, StringInfo buf)
{
	const NaiveBayesState *st = m->state;
	int64		kp = (int64) m->nclasses * m->p;

	pq_sendfloat8(buf, st->epsilon);
	for (int c = 0; c < m->nclasses; c++)
		pq_sendint64(buf, st->count[c]);
	BlobPutFloat8Array(buf, st->theta, kp);
	BlobPutFloat8Array(buf, st->var, kp);
}

static void
naive_bayes_deserialize(AlgoModel *m, BlobReader *r)
{
	NaiveBayesState *st = palloc0(sizeof(NaiveBayesState));
	int			k = m->nclasses;
	int64		kp = (int64) k * m->p;
	int64		total = 0;

	st->epsilon = BlobGetFloat8(r);
	st->count = palloc(sizeof(int64) * k);
	for (int c = 0; c < k; c++)
	{
		st->count[c] = BlobGetInt64(r);
		if (st->count[c] < 0)
			BlobCorrupt(r, "A naive Bayes class count is negative.");
		if (st->count[c] > PG_INT64_MAX - total)
			BlobCorrupt(r, "The naive Bayes class counts overflow.");
		total += st->count[c];
	}
	if (total <= 0)
		BlobCorrupt(r, "The naive Bayes model has no training rows.");
	st->theta = palloc(sizeof(double) * Max(kp, 1));
	BlobGetFloat8Array(r, st->theta, kp);
	st->var = palloc(sizeof(double) * Max(kp, 1));
	BlobGetFloat8Array(r, st->var, kp);
	for (int c = 0; c < k; c++)
		for (int j = 0; j < m->p; j++)
			if (st->count[c] > 0 && !(st->var[(Size) c * m->p + j] > 0))
				BlobCorrupt(r, "A naive Bayes variance is not positive.");
	naive_bayes_prepare(st, k, m->p);
	m->state = st;
}

/* Emits {label: {feature: value}} for the classes that have rows. */
static void
describe_per_class(const AlgoModel *m, const NaiveBayesState *st,
				   const double *values, char **feature_names, char **labels,
				   JsonbParseState **js)
{
	JbBeginObject(js);
	for (int c = 0; c < m->nclasses; c++)
	{
		if (st->count[c] == 0)
			continue;
		JbKey(js, labels[c]);
		JbBeginObject(js);
		for (int j = 0; j < m->p; j++)
		{
			JbKey(js, feature_names[j]);
			JbFloat(js, values[(Size) c * m->p + j]);
		}
		JbEndObject(js);
	}
	JbEndObject(js);
}

static void
naive_bayes_describe(const AlgoModel *m, char **feature_names, char **labels,
					 JsonbParseState **js)
{
	const NaiveBayesState *st = m->state;

	JbKey(js, "epsilon");
	JbFloat(js, st->epsilon);
	JbKey(js, "class_count");
	JbBeginObject(js);
	for (int c = 0; c < m->nclasses; c++)
	{
		JbKey(js, labels[c]);
		JbInt(js, st->count[c]);
	}
	JbEndObject(js);
	JbKey(js, "priors");
	JbBeginObject(js);
	for (int c = 0; c < m->nclasses; c++)
	{
		JbKey(js, labels[c]);
		JbFloat(js, st->prior[c]);
	}
	JbEndObject(js);
	JbKey(js, "means");
	describe_per_class(m, st, st->theta, feature_names, labels, js);
	JbKey(js, "variances");
	describe_per_class(m, st, st->var, feature_names, labels, js);
}

const AlgoSpec naive_bayes_algo = {
	.name = "naive_bayes",
	.tasks = ML_TASK_BIT(ML_TASK_CLASSIFICATION),
	.default_scale = SCALE_NONE,
	.params = naive_bayes_params,
	.nparams = lengthof(naive_bayes_params),
	.fit = naive_bayes_fit,
	.predict = naive_bayes_predict,
	.serialize = naive_bayes_serialize,
	.deserialize = naive_bayes_deserialize,
	.describe = naive_bayes_describe,
};
