/*-------------------------------------------------------------------------
 * src/algo/pca.c
 *		Principal component analysis, with scikit-learn's meanings.
 *
 * The rows are centred with the training mean; their covariance
 * Xc'Xc / (n - 1) is accumulated block by block with dsyrk on data shifted
 * by the first block's means (the correction to the true means then loses
 * no precision), and eigen-decomposed with LAPACK dsyevd.  The
 * n_components eigenvectors of the largest eigenvalues are the components;
 * the eigenvalues are the variances along them (explained_variance), and
 * their shares of the covariance's trace the explained_variance_ratio,
 * both as scikit-learn's PCA reports them.
 *
 * An eigenvector's sign is arbitrary.  Here the largest loading of each
 * component, by magnitude (the first of equal ones), is made positive, so
 * that a component does not flip between runs on the same data.
 * scikit-learn's svd_flip fixes the sign from the scores instead, so its
 * components may differ from these by sign.
 *
 * predict writes each row's projection on each component,
 * (x - mean) . v.  PCA centres but does not scale, as scikit-learn's does:
 * the default preprocessing scales nothing.
 *-------------------------------------------------------------------------
 */
#include "algo/algo.h"

#include <math.h>
#include <cblas.h>
#include <lapacke.h>

#include "libpq/pqformat.h"
#include "model/model.h"

typedef struct PcaState
{
	double	   *mean;			/* p */
	double	   *components;		/* k x p, row-major, orthonormal rows */
	double	   *variance;		/* k: variance along each component */
	double		total_variance; /* of the training rows, every direction */
	/* derived when fitted or read */
	double	   *components_t;	/* p x k: the components, transposed */
} PcaState;

static const HyperparamSpec pca_params[] = {
	{"n_components", HP_INT, "2", 1, 1000000, NULL, false},
};

/* Derives the transposed components that predict reads. */
static void
pca_prepare(PcaState *st, int k, int p)
{
	st->components_t = palloc(sizeof(double) * (Size) k * p);
	for (int c = 0; c < k; c++)
		for (int j = 0; j < p; j++)
			st->components_t[(Size) j * k + c] = st->components[(Size) c * p + j];
}

static void
pca_fit(AlgoModel *m, TrainSet *ts, const Hyperparams *hp)
{
	PcaState   *st = palloc0(sizeof(PcaState));
	int			k = HpInt(hp, "n_components");
	int			p = ts->p;
	double	   *A;
	double	   *lambda;
	lapack_int	info;

	if (k > p)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("n_components (%d) is greater than the number of features (%d)", k, p),
				 errhint("Lower n_components; a one-hot encoded column counts one feature per category.")));
	if (k > ts->n)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("n_components (%d) is greater than the number of training rows (%lld)",
						k, (long long) ts->n),
				 errhint("Lower n_components, or train on more rows.")));
	if (ts->n < 2)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_EXCEPTION),
				 errmsg("pca needs at least two training rows, not %lld", (long long) ts->n)));

	/* the centred rows' scatter matrix Xc'Xc (upper triangle) and the mean */
	{
		CrossProducts cp;

		TrainSetCrossProducts(ts, true, false, &cp);
		A = cp.XtX;
		st->mean = cp.xmean;
	}
	lambda = palloc(sizeof(double) * p);

	st->total_variance = 0.0;
	for (int j = 0; j < p; j++)
	{
		for (int i = 0; i <= j; i++)
			A[(Size) j * p + i] /= (double) (ts->n - 1);
		st->total_variance += A[(Size) j * p + j];
	}

	MLApplyThreadLimit(4.0 * p * p * p);
	info = LAPACKE_dsyevd(LAPACK_COL_MAJOR, 'V', 'U', p, A, p, lambda);
	if (info != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("could not decompose the covariance matrix"),
				 errdetail("LAPACK dsyevd returned %d.", (int) info)));

	/* eigenvalues ascend: the components are the last k eigenvectors */
	st->components = palloc(sizeof(double) * (Size) k * p);
	st->variance = palloc(sizeof(double) * k);
	for (int c = 0; c < k; c++)
	{
		const double *v = A + (Size) (p - 1 - c) * p;
		double	   *dst = st->components + (Size) c * p;
		int			largest = 0;

		for (int j = 1; j < p; j++)
			if (fabs(v[j]) > fabs(v[largest]))
				largest = j;
		for (int j = 0; j < p; j++)
			dst[j] = v[largest] < 0 ? -v[j] : v[j];
		st->variance[c] = Max(lambda[p - 1 - c], 0.0);
	}
	pca_prepare(st, k, p);
	m->noutputs = k;
	m->state = st;
	pfree(A);
	pfree(lambda);
}

/* Projections of n rows on the k components, n x k row-major. */
static void
pca_predict(const AlgoModel *m, const double *X, int n, int ld, double *out)
{
	const PcaState *st = m->state;
	int			k = m->noutputs;

	memset(out, 0, sizeof(double) * n * k);
	for (int j = 0; j < m->p; j++)
	{
		const double *x = X + (Size) j * ld;
		const double *vj = st->components_t + (Size) j * k;
		double		mean = st->mean[j];

		for (int i = 0; i < n; i++)
		{
			double	   *o = out + (Size) i * k;
			double		xc = x[i] - mean;

			for (int c = 0; c < k; c++)
				o[c] += xc * vj[c];
		}
	}
}

static void
pca_serialize(const AlgoModel *m, StringInfo buf)
{
	const PcaState *st = m->state;

	pq_sendfloat8(buf, st->total_variance);
	BlobPutFloat8Array(buf, st->mean, m->p);
	BlobPutFloat8Array(buf, st->variance, m->noutputs);
	BlobPutFloat8Array(buf, st->components, (int64) m->noutputs * m->p);
}

static void
pca_deserialize(AlgoModel *m, BlobReader *r)
{
	PcaState   *st = palloc0(sizeof(PcaState));
	int			k = m->noutputs;
	int64		need = (int64) m->p + k + (int64) k * m->p;

	if (k > m->p)
		BlobCorrupt(r, "The PCA model has more components than features.");
	st->total_variance = BlobGetFloat8(r);
	if (need * 8 > (int64) (r->buf.len - r->buf.cursor))
		BlobCorrupt(r, "The PCA components are longer than the blob.");
	st->mean = palloc(sizeof(double) * Max(m->p, 1));
	BlobGetFloat8Array(r, st->mean, m->p);
	st->variance = palloc(sizeof(double) * k);
	BlobGetFloat8Array(r, st->variance, k);
	st->components = palloc(sizeof(double) * (Size) k * m->p);
	BlobGetFloat8Array(r, st->components, (int64) k * m->p);
	pca_prepare(st, k, m->p);
	m->state = st;
}

static void
pca_describe(const AlgoModel *m, char **feature_names, char **labels,
			 JsonbParseState **js)
{
	const PcaState *st = m->state;

	JbKey(js, "n_components");
	JbInt(js, m->noutputs);
	JbKey(js, "components");
	JbBeginArray(js);
	for (int c = 0; c < m->noutputs; c++)
	{
		JbBeginObject(js);
		for (int j = 0; j < m->p; j++)
		{
			JbKey(js, feature_names[j]);
			JbFloat(js, st->components[(Size) c * m->p + j]);
		}
		JbEndObject(js);
	}
	JbEndArray(js);
	JbKey(js, "explained_variance");
	JbBeginArray(js);
	for (int c = 0; c < m->noutputs; c++)
		JbFloat(js, st->variance[c]);
	JbEndArray(js);
	JbKey(js, "explained_variance_ratio");
	JbBeginArray(js);
	for (int c = 0; c < m->noutputs; c++)
		JbFloat(js, st->total_variance > 0 ? st->variance[c] / st->total_variance : NAN);
	JbEndArray(js);
	JbKey(js, "mean");
	JbBeginObject(js);
	for (int j = 0; j < m->p; j++)
	{
		JbKey(js, feature_names[j]);
		JbFloat(js, st->mean[j]);
	}
	JbEndObject(js);
}

const AlgoSpec pca_algo = {
	.name = "pca",
	.tasks = ML_TASK_BIT(ML_TASK_DECOMPOSITION),
	.default_scale = SCALE_NONE,
	.params = pca_params,
	.nparams = lengthof(pca_params),
	.fit = pca_fit,
	.predict = pca_predict,
	.serialize = pca_serialize,
	.deserialize = pca_deserialize,
	.describe = pca_describe,
};
