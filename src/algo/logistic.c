/*-------------------------------------------------------------------------
 * src/algo/logistic.c
 *		Logistic regression: binary, and multinomial (softmax) for more
 *		than two classes, with scikit-learn's parameters and meanings.
 *
 * Minimises, by L-BFGS,
 *		(1/S) sum_i s_i loss_i + 1/(2 C S) ||W||^2	(penalty "l2")
 * where s_i are the class weights (1, or n / (k n_c) for "balanced") and
 * S their sum; the intercepts are not penalised.  This is scikit-learn's
 * lbfgs objective, so C, tol and max_iter mean the same.  The multinomial
 * model keeps one coefficient vector per class, as scikit-learn does.
 *-------------------------------------------------------------------------
 */
#include "algo/algo.h"

#include <math.h>
#include <cblas.h>

#include "libpq/pqformat.h"
#include "model/model.h"

typedef struct LogisticState
{
	int			ncoef;			/* coefficient vectors: 1 (binary) or k */
	double	   *coef;			/* p x ncoef, column-major */
	double	   *intercept;		/* ncoef */
	int			iterations;
	bool		converged;
} LogisticState;

static const HyperparamSpec logistic_params[] = {
	{"C", HP_FLOAT, "1.0", 1e-300, 1e300, NULL, false},
	{"class_weight", HP_STRING, NULL, 0, 0, "balanced", true},
	{"max_iter", HP_INT, "100", 1, 1000000, NULL, false},
	{"penalty", HP_STRING, "l2", 0, 0, "l2|none", false},
	{"tol", HP_FLOAT, "0.0001", 0, 1e300, NULL, false},
};

typedef struct LogisticProblem
{
	TrainSet   *ts;
	int			p;
	int			ncoef;
	const double *weight;		/* per class */
	double		wsum;			/* S */
	double		l2;				/* 1 / (C S), or 0 */
	double	   *z;				/* block scores: TRAIN_BLOCK_ROWS x ncoef */
} LogisticProblem;

/* log(1 + exp(z)) without overflow. */
static inline double
log1pexp(double z)
{
	return z > 0 ? z + log1p(exp(-z)) : log1p(exp(z));
}

static inline double
sigmoid(double z)
{
	if (z >= 0)
		return 1.0 / (1.0 + exp(-z));
	else
	{
		double		e = exp(z);

		return e / (1.0 + e);
	}
}

/* The objective and its gradient at theta = [coef, intercept]. */
static double
logistic_eval(void *arg, const double *theta, double *grad)
{
	LogisticProblem *lp = arg;
	TrainSet   *ts = lp->ts;
	int			p = lp->p;
	int			k = lp->ncoef;
	const double *coef = theta;
	const double *icpt = theta + (Size) p * k;
	double	   *gcoef = grad;
	double	   *gicpt = grad + (Size) p * k;
	double		f = 0.0;
	TrainBlock	blk;

	memset(grad, 0, sizeof(double) * ((Size) p * k + k));
	TrainSetBlockBegin(ts, &blk);
	while (TrainSetNextBlock(ts, &blk))
	{
		int			nb = blk.count;
		double	   *z = lp->z;

		/* z = X coef + intercept, nb x k */
		for (int c = 0; c < k; c++)
			for (int i = 0; i < nb; i++)
				z[(Size) c * nb + i] = icpt[c];
		if (p > 0)
			cblas_dgemm(CblasColMajor, CblasNoTrans, CblasNoTrans, nb, k, p,
						1.0, blk.X, blk.ld, coef, p, 1.0, z, nb);

		/* z becomes the residual s_i (prob - indicator) */
		for (int i = 0; i < nb; i++)
		{
			int			yi = (int) ts->y[blk.start + i];
			double		s = lp->weight[yi];

			if (k == 1)
			{
				double		zi = z[i];
				double		t = (double) yi;

				f += s * (log1pexp(zi) - t * zi);
				z[i] = s * (sigmoid(zi) - t);
			}
			else
			{
				double		zmax = z[i];
				double		sum = 0.0;
				double		lse;

				for (int c = 1; c < k; c++)
					zmax = Max(zmax, z[(Size) c * nb + i]);
				for (int c = 0; c < k; c++)
					sum += exp(z[(Size) c * nb + i] - zmax);
				lse = zmax + log(sum);
				f += s * (lse - z[(Size) yi * nb + i]);
				for (int c = 0; c < k; c++)
				{
					double		prob = exp(z[(Size) c * nb + i] - lse);

					z[(Size) c * nb + i] = s * (prob - (c == yi ? 1.0 : 0.0));
				}
			}
		}

		/* gradient: X' R and the column sums of R */
		if (p > 0)
			cblas_dgemm(CblasColMajor, CblasTrans, CblasNoTrans, p, k, nb,
						1.0, blk.X, blk.ld, z, nb, 1.0, gcoef, p);
		for (int c = 0; c < k; c++)
			for (int i = 0; i < nb; i++)
				gicpt[c] += z[(Size) c * nb + i];
	}
	TrainSetBlockEnd(&blk);

	f /= lp->wsum;
	cblas_dscal(p * k + k, 1.0 / lp->wsum, grad, 1);
	if (lp->l2 > 0)
	{
		for (Size j = 0; j < (Size) p * k; j++)
		{
			f += 0.5 * lp->l2 * coef[j] * coef[j];
			gcoef[j] += lp->l2 * coef[j];
		}
	}
	return f;
}

/*
 * Records an L-BFGS iteration: the objective and the gradient's norm; false
 * when a debugger rule stops the fit.
 */
static bool
logistic_progress(void *arg, int iteration, double f, double gnorm)
{
	LogisticProblem *lp = arg;

	return TrainLogAdd(lp->ts, "gradient_norm", iteration, f, NAN, gnorm);
}

static void
logistic_fit(AlgoModel *m, TrainSet *ts, const Hyperparams *hp)
{
	LogisticState *st = palloc0(sizeof(LogisticState));
	LogisticProblem lp;
	double	   *weight = palloc(sizeof(double) * ts->nclasses);
	int64	   *count = palloc0(sizeof(int64) * ts->nclasses);
	const char *class_weight = HpString(hp, "class_weight");
	bool		penalised = strcmp(HpString(hp, "penalty"), "l2") == 0;
	int			nparam;
	double	   *theta;
	LbfgsResult res;

	for (int64 i = 0; i < ts->n; i++)
		count[(int) ts->y[i]]++;
	lp.wsum = 0.0;
	for (int c = 0; c < ts->nclasses; c++)
	{
		weight[c] = class_weight && count[c] > 0 ?
			(double) ts->n / ((double) ts->nclasses * (double) count[c]) : 1.0;
		lp.wsum += weight[c] * (double) count[c];
	}

	lp.ts = ts;
	lp.p = ts->p;
	lp.ncoef = ts->nclasses == 2 ? 1 : ts->nclasses;
	lp.weight = weight;
	lp.l2 = penalised ? 1.0 / (HpFloat(hp, "C") * lp.wsum) : 0.0;
	lp.z = palloc(sizeof(double) * TRAIN_BLOCK_ROWS * lp.ncoef);

	TrainSetMaterialize(ts);
	MLApplyThreadLimit(2.0 * TRAIN_BLOCK_ROWS * ts->p * lp.ncoef);
	nparam = ts->p * lp.ncoef + lp.ncoef;
	theta = palloc0(sizeof(double) * nparam);
	res = LbfgsMinimize(nparam, theta, logistic_eval, &lp, HpInt(hp, "max_iter"),
						HpFloat(hp, "tol"), logistic_progress);
	if (res.stopped)
		;						/* a debugger rule ended it; ml.debug says why */
	else if (!res.converged && res.search_failed)
		ereport(NOTICE,
				(errmsg("logistic regression stopped after %d iterations: the line search found no decrease",
						res.iterations),
				 errdetail("The largest gradient component is %g; tol is %g.", res.gnorm, HpFloat(hp, "tol")),
				 errhint("Scale the features, or raise tol.")));
	else if (!res.converged)
		ereport(NOTICE,
				(errmsg("logistic regression did not converge in %d iterations", res.iterations),
				 errhint("Raise max_iter, or scale the features.")));

	st->ncoef = lp.ncoef;
	st->coef = theta;
	st->intercept = theta + (Size) ts->p * lp.ncoef;
	st->iterations = res.iterations;
	st->converged = res.converged;
	m->state = st;
	pfree(lp.z);
	pfree(weight);
	pfree(count);
}

/*
 * LogisticSetBinary makes m a binary logistic model with coefficients coef
 * (m->p of them) and intercept, fitted elsewhere (ml.train's aggregate
 * path, by Newton steps over scans of the source).
 */
void
LogisticSetBinary(AlgoModel *m, const double *coef, double intercept, int iterations,
				  bool converged)
{
	LogisticState *st = palloc0(sizeof(LogisticState));

	st->ncoef = 1;
	st->coef = palloc(sizeof(double) * (m->p + 1));
	memcpy(st->coef, coef, sizeof(double) * m->p);
	st->intercept = st->coef + m->p;
	st->intercept[0] = intercept;
	st->iterations = iterations;
	st->converged = converged;
	m->state = st;
}

static void
logistic_predict(const AlgoModel *m, const double *X, int n, int ld, double *out)
{
	const LogisticState *st = m->state;
	int			k = m->nclasses;

	for (int i = 0; i < n; i++)
	{
		double	   *o = out + (Size) i * k;

		if (st->ncoef == 1)
		{
			double		z = st->intercept[0];

			for (int j = 0; j < m->p; j++)
				z += X[(Size) j * ld + i] * st->coef[j];
			/* each side from its own sigmoid: no cancellation near 0 or 1 */
			o[1] = sigmoid(z);
			o[0] = sigmoid(-z);
		}
		else
		{
			double		zmax = -INFINITY;
			double		sum = 0.0;

			for (int c = 0; c < k; c++)
			{
				double		z = st->intercept[c];
				const double *w = st->coef + (Size) c * m->p;

				for (int j = 0; j < m->p; j++)
					z += X[(Size) j * ld + i] * w[j];
				o[c] = z;
				zmax = Max(zmax, z);
			}
			for (int c = 0; c < k; c++)
			{
				o[c] = exp(o[c] - zmax);
				sum += o[c];
			}
			for (int c = 0; c < k; c++)
				o[c] /= sum;
		}
	}
}

static void
logistic_serialize(const AlgoModel *m, StringInfo buf)
{
	const LogisticState *st = m->state;

	pq_sendint32(buf, st->ncoef);
	pq_sendint32(buf, st->iterations);
	pq_sendbyte(buf, st->converged);
	BlobPutFloat8Array(buf, st->coef, (int64) m->p * st->ncoef);
	BlobPutFloat8Array(buf, st->intercept, st->ncoef);
}

static void
logistic_deserialize(AlgoModel *m, BlobReader *r)
{
	LogisticState *st = palloc0(sizeof(LogisticState));

	st->ncoef = BlobGetInt32(r);
	if (st->ncoef != (m->nclasses == 2 ? 1 : m->nclasses))
		BlobCorrupt(r, "The logistic coefficient count does not match the classes.");
	st->iterations = BlobGetInt32(r);
	st->converged = BlobGetBool(r);
	if ((int64) m->p * st->ncoef * 8 > (int64) (r->buf.len - r->buf.cursor))
		BlobCorrupt(r, "The blob ends before its coefficients.");
	st->coef = palloc(sizeof(double) * Max((Size) m->p * st->ncoef, 1));
	BlobGetFloat8Array(r, st->coef, (int64) m->p * st->ncoef);
	st->intercept = palloc(sizeof(double) * st->ncoef);
	BlobGetFloat8Array(r, st->intercept, st->ncoef);
	m->state = st;
}

static void
logistic_describe(const AlgoModel *m, char **feature_names, char **labels,
				  JsonbParseState **js)
{
	const LogisticState *st = m->state;

	JbKey(js, "iterations");
	JbInt(js, st->iterations);
	JbKey(js, "converged");
	JbBool(js, st->converged);
	if (st->ncoef == 1)
	{
		JbKey(js, "positive_class");
		JbString(js, labels[1]);
	}
	JbKey(js, "intercept");
	JbBeginObject(js);
	for (int c = 0; c < st->ncoef; c++)
	{
		JbKey(js, labels[st->ncoef == 1 ? 1 : c]);
		JbFloat(js, st->intercept[c]);
	}
	JbEndObject(js);
	JbKey(js, "coefficients");
	JbBeginObject(js);
	for (int c = 0; c < st->ncoef; c++)
	{
		JbKey(js, labels[st->ncoef == 1 ? 1 : c]);
		JbBeginObject(js);
		for (int j = 0; j < m->p; j++)
		{
			JbKey(js, feature_names[j]);
			JbFloat(js, st->coef[(Size) c * m->p + j]);
		}
		JbEndObject(js);
	}
	JbEndObject(js);
}

/* The margin is the positive class's (binary) or class cls's logit. */
static double
logistic_explain(const AlgoModel *m, const double *x, int cls, double *contrib)
{
	const LogisticState *st = m->state;
	int			c = st->ncoef == 1 ? 0 : cls;
	const double *w = st->coef + (Size) c * m->p;

	for (int j = 0; j < m->p; j++)
		contrib[j] = w[j] * x[j];
	return st->intercept[c];
}

const AlgoSpec logistic_algo = {
	.name = "logistic",
	.tasks = ML_TASK_BIT(ML_TASK_CLASSIFICATION),
	.default_scale = SCALE_STANDARD,
	.params = logistic_params,
	.nparams = lengthof(logistic_params),
	.fit = logistic_fit,
	.predict = logistic_predict,
	.serialize = logistic_serialize,
	.deserialize = logistic_deserialize,
	.describe = logistic_describe,
	.explain = logistic_explain,
};
