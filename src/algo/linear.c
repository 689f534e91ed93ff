/*-------------------------------------------------------------------------
 * src/algo/linear.c
 *		Ordinary least squares (linear) and ridge regression.
 *
 * Both solve the normal equations of the centred data,
 *		(Xc'Xc + alpha I) w = Xc'yc,	intercept = mean(y) - mean(X)'w,
 * where Xc'Xc is accumulated block by block with dsyrk, so the training
 * matrix is never copied.  The system is solved through an eigen-
 * decomposition (LAPACK dsyevd): for ordinary least squares, eigenvalues
 * below max(n, p) * eps * the largest are treated as zero, which gives
 * the minimum-norm solution when columns are collinear or constant,
 * instead of NaN.  For ridge, alpha has scikit-learn's meaning; with
 * preprocess scale "none" the coefficients equal scikit-learn's Ridge.
 *-------------------------------------------------------------------------
 */
#include "algo/algo.h"

#include <float.h>
#include <math.h>
#include <cblas.h>
#include <lapacke.h>

#include "libpq/pqformat.h"
#include "model/model.h"


typedef struct LinearState
{
	double		intercept;
	double	   *coef;			/* p */
	int			rank;			/* numerical rank used (p for ridge) */
} LinearState;

static const HyperparamSpec linear_params[] = {
	{"fit_intercept", HP_BOOL, "true", 0, 0, NULL, false},
};

static const HyperparamSpec ridge_params[] = {
	{"alpha", HP_FLOAT, "1.0", 0, 1e300, NULL, false},
	{"fit_intercept", HP_BOOL, "true", 0, 0, NULL, false},
};

/*
 * AlgoSolveSymmetric solves (A + alpha I) w = b through A's
 * eigendecomposition; A (p x p, upper triangle, column-major) is
 * destroyed.  Without alpha, directions whose eigenvalue is below
 * max(n, p) * eps of the largest are dropped (the minimum-norm solution of
 * a rank-deficient system).  Returns the rank used.
 */
int
AlgoSolveSymmetric(double *A, const double *b, double alpha, int p, int64 n,
				   double *w)
{
	double	   *lambda = palloc(sizeof(double) * p);
	double	   *vtb = palloc(sizeof(double) * p);
	double		cutoff;
	int			rank = 0;
	lapack_int	info;

	MLApplyThreadLimit(4.0 * p * p * p);
	info = LAPACKE_dsyevd(LAPACK_COL_MAJOR, 'V', 'U', p, A, p, lambda);
	if (info != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("could not solve the least-squares system"),
				 errdetail("LAPACK dsyevd returned %d.", (int) info)));

	/* lambda is ascending; the largest is last */
	cutoff = alpha > 0 ? 0.0 : Max(lambda[p - 1], 0.0) * (double) Max(n, p) * DBL_EPSILON;

	/* w = V diag(1 / (lambda + alpha)) V' b, dropping null directions */
	cblas_dgemv(CblasColMajor, CblasTrans, p, p, 1.0, A, p, b, 1, 0.0, vtb, 1);
	for (int i = 0; i < p; i++)
	{
		double		d = lambda[i] + alpha;

		if (d > cutoff && d > 0)
		{
			vtb[i] /= d;
			rank++;
		}
		else
			vtb[i] = 0.0;
	}
	cblas_dgemv(CblasColMajor, CblasNoTrans, p, p, 1.0, A, p, vtb, 1, 0.0, w, 1);
	pfree(lambda);
	pfree(vtb);
	return rank;
}

static void
least_squares_fit(AlgoModel *m, TrainSet *ts, double alpha, bool fit_intercept)
{
	int			p = ts->p;
	LinearState *st;
	double	   *xmean;
	double	   *A;
	double	   *b;
	double		ymean;
	CrossProducts cp;

	/*
	 * The p x p system is solved by LAPACK, which cannot be cancelled: keep
	 * it within the memory limit, and so within a bounded time.
	 */
	if ((double) p * p * sizeof(double) * 2 > (double) ml_max_train_memory * 1024.0 ||
		p > LINEAR_MAX_FEATURES)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("%d features are too many for %s", p, m->spec->name),
				 errdetail("Its %d x %d system must fit in ml.max_train_memory, and at most %d features are allowed.",
						   p, p, LINEAR_MAX_FEATURES),
				 errhint("Lower max_categories, encode wide categorical columns with \"hash\" or \"target\", or exclude columns.")));
	st = palloc0(sizeof(LinearState));
	st->coef = palloc0(sizeof(double) * Max(p, 1));
	TrainSetCrossProducts(ts, fit_intercept, true, &cp);
	xmean = cp.xmean;
	A = cp.XtX;
	b = cp.Xty;
	ymean = cp.ymean;

	st->rank = AlgoSolveSymmetric(A, b, alpha, p, ts->n, st->coef);
	st->intercept = ymean;
	for (int j = 0; j < p; j++)
		st->intercept -= xmean[j] * st->coef[j];

	m->state = st;
	pfree(xmean);
	pfree(A);
	pfree(b);
}

/*
 * LinearFitMoments fits linear or ridge (m->spec, with hp) from the
 * co-moments s of the raw features and the pipeline's affine transform of
 * each, z = (x - center) * inv_scale: the system least_squares_fit builds
 * from the transformed rows, without the rows.  The co-moments of z are
 * those of x scaled, Czz = D Cxx D and Czy = D Cxy with D = diag(inv_scale);
 * without an intercept the system is the uncentred one, Z'Z = Czz + n mz mz'.
 */
void
LinearFitMoments(AlgoModel *m, const Hyperparams *hp, const LinFitState *s,
				 const double *center, const double *inv_scale)
{
	int			p = s->p;
	bool		fit_intercept = HpBool(hp, "fit_intercept");
	double		alpha = m->spec == &ridge_algo ? HpFloat(hp, "alpha") : 0.0;
	LinearState *st = palloc0(sizeof(LinearState));
	double	   *mz = palloc(sizeof(double) * p);
	double	   *A = palloc0(sizeof(double) * p * p);
	double	   *b = palloc(sizeof(double) * p);
	double		n = (double) s->n;

	Assert(m->p == p);
	for (int j = 0; j < p; j++)
		mz[j] = (LF_MEAN_X(s)[j] - center[j]) * inv_scale[j];
	for (int j = 0, k = 0; j < p; j++)
	{
		for (int i = 0; i <= j; i++, k++)
		{
			A[(Size) j * p + i] = LF_CXX(s)[k] * inv_scale[i] * inv_scale[j];
			if (!fit_intercept)
				A[(Size) j * p + i] += n * mz[i] * mz[j];
		}
		b[j] = LF_CXY(s)[j] * inv_scale[j];
		if (!fit_intercept)
			b[j] += n * mz[j] * s->mean_y;
	}
	st->coef = palloc0(sizeof(double) * p);
	st->rank = AlgoSolveSymmetric(A, b, alpha, p, s->n, st->coef);
	st->intercept = 0.0;
	if (fit_intercept)
	{
		st->intercept = s->mean_y;
		for (int j = 0; j < p; j++)
			st->intercept -= mz[j] * st->coef[j];
	}
	m->state = st;
	pfree(mz);
	pfree(A);
	pfree(b);
}

static void
linear_fit(AlgoModel *m, TrainSet *ts, const Hyperparams *hp)
{
	least_squares_fit(m, ts, 0.0, HpBool(hp, "fit_intercept"));
}

static void
ridge_fit(AlgoModel *m, TrainSet *ts, const Hyperparams *hp)
{
	least_squares_fit(m, ts, HpFloat(hp, "alpha"), HpBool(hp, "fit_intercept"));
}

static void
linear_predict(const AlgoModel *m, const double *X, int n, int ld, double *out)
{
	const LinearState *st = m->state;

	AlgoLinearPredict(st->intercept, st->coef, m->p, X, n, ld, out);
}

/*
 * AlgoLinearPredict writes intercept + X coef for n rows (column-major,
 * leading dimension ld): a plain loop for one row, BLAS for a block.
 */
void
AlgoLinearPredict(double intercept, const double *coef, int p, const double *X,
				  int n, int ld, double *out)
{
	if (n == 1)
	{
		double		s = intercept;

		for (int j = 0; j < p; j++)
			s += X[(Size) j * ld] * coef[j];
		out[0] = s;
		return;
	}
	for (int i = 0; i < n; i++)
		out[i] = intercept;
	cblas_dgemv(CblasColMajor, CblasNoTrans, n, p, 1.0, X, ld, coef, 1, 1.0, out, 1);
}

static void
linear_serialize(const AlgoModel *m, StringInfo buf)
{
	const LinearState *st = m->state;

	pq_sendfloat8(buf, st->intercept);
	pq_sendint32(buf, st->rank);
	BlobPutFloat8Array(buf, st->coef, m->p);
}

static void
linear_deserialize(AlgoModel *m, BlobReader *r)
{
	LinearState *st = palloc0(sizeof(LinearState));

	st->intercept = BlobGetFloat8(r);
	st->rank = BlobGetInt32(r);
	st->coef = palloc(sizeof(double) * Max(m->p, 1));
	BlobGetFloat8Array(r, st->coef, m->p);
	m->state = st;
}

static void
linear_describe(const AlgoModel *m, char **feature_names, char **labels,
				JsonbParseState **js)
{
	const LinearState *st = m->state;

	JbKey(js, "intercept");
	JbFloat(js, st->intercept);
	JbKey(js, "coefficients");
	JbBeginObject(js);
	for (int j = 0; j < m->p; j++)
	{
		JbKey(js, feature_names[j]);
		JbFloat(js, st->coef[j]);
	}
	JbEndObject(js);
	JbKey(js, "rank");
	JbInt(js, st->rank);
}

static double
linear_explain(const AlgoModel *m, const double *x, int cls, double *contrib)
{
	const LinearState *st = m->state;

	for (int j = 0; j < m->p; j++)
		contrib[j] = st->coef[j] * x[j];
	return st->intercept;
}

const AlgoSpec linear_algo = {
	.name = "linear",
	.tasks = ML_TASK_BIT(ML_TASK_REGRESSION),
	.default_scale = SCALE_NONE,
	.params = linear_params,
	.nparams = lengthof(linear_params),
	.fit = linear_fit,
	.predict = linear_predict,
	.serialize = linear_serialize,
	.deserialize = linear_deserialize,
	.describe = linear_describe,
	.explain = linear_explain,
};

const AlgoSpec ridge_algo = {
	.name = "ridge",
	.tasks = ML_TASK_BIT(ML_TASK_REGRESSION),
	.default_scale = SCALE_STANDARD,
	.params = ridge_params,
	.nparams = lengthof(ridge_params),
	.fit = ridge_fit,
	.predict = linear_predict,
	.serialize = linear_serialize,
	.deserialize = linear_deserialize,
	.describe = linear_describe,
	.explain = linear_explain,
};
