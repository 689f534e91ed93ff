/*-------------------------------------------------------------------------
 * src/algo/elastic.c
 *		Lasso and elastic net regression by cyclic coordinate descent,
 *		with scikit-learn's parameters and meanings.
 *
 * Both minimise
 *		(1/(2n)) ||y - Xw - b||^2 + alpha l1_ratio ||w||_1
 *			+ (alpha (1 - l1_ratio) / 2) ||w||^2
 * where lasso is l1_ratio = 1.  The intercept b is not penalised: with
 * fit_intercept the problem is solved on centred X and y, and b is
 * recovered from the means.
 *
 * One pass over the training rows accumulates the Gram matrix
 * Q = Xc'Xc and q = Xc'yc block by block (as linear.c does), so the
 * training matrix is never copied; coordinate descent then works on Q
 * and q alone, keeping H = Q w up to date, so that a sweep over the p
 * coordinates costs O(p^2) whatever the number of rows.  This is
 * scikit-learn's precomputed-Gram solver (enet_coordinate_descent_gram),
 * on the problem multiplied by n: the same updates in the same order and
 * the same stopping rule, hence the same coefficients and iteration
 * count as its Lasso and ElasticNet.
 *
 * Stopping rule: after a sweep in which the largest coefficient change
 * is below tol times the largest coefficient (or every coefficient is
 * zero), the duality gap is computed; the descent stops when it is below
 * tol ||yc||^2.  After max_iter sweeps it stops anyway, with a NOTICE.
 *-------------------------------------------------------------------------
 */
#include "algo/algo.h"

#include <math.h>
#include <cblas.h>

#include "libpq/pqformat.h"
#include "miscadmin.h"
#include "model/model.h"

typedef struct ElasticState
{
	double		intercept;
	double	   *coef;			/* p */
	int			iterations;		/* coordinate descent sweeps */
	bool		converged;
} ElasticState;

static const HyperparamSpec lasso_params[] = {
	{"alpha", HP_FLOAT, "1.0", 0, 1e300, NULL, false},
	{"fit_intercept", HP_BOOL, "true", 0, 0, NULL, false},
	{"max_iter", HP_INT, "1000", 1, 1000000, NULL, false},
	{"tol", HP_FLOAT, "0.0001", 0, 1e300, NULL, false},
};

static const HyperparamSpec elastic_net_params[] = {
	{"alpha", HP_FLOAT, "1.0", 0, 1e300, NULL, false},
	{"fit_intercept", HP_BOOL, "true", 0, 0, NULL, false},
	{"l1_ratio", HP_FLOAT, "0.5", 0, 1, NULL, false},
	{"max_iter", HP_INT, "1000", 1, 1000000, NULL, false},
	{"tol", HP_FLOAT, "0.0001", 0, 1e300, NULL, false},
};

/* The least-squares problem in Gram form. */
typedef struct GramProblem
{
	int			p;
	double	   *Q;				/* p x p, symmetric, both triangles */
	double	   *q;				/* p */
	double		yy;				/* ||yc||^2 */
	double	   *xmean;			/* p; zeros without an intercept */
	double		ymean;
} GramProblem;

/* The result of a coordinate descent. */
typedef struct DescentResult
{
	int			iterations;
	double		gap;			/* last duality gap computed */
	double		gap_tol;		/* tol ||yc||^2 */
	bool		converged;
} DescentResult;

/*
 * Fills g from one pass over the training rows.  Xc'Xc and Xc'yc
 * accumulate on data shifted by the first block's means (close to the
 * final means, so the correction loses no precision), then are corrected
 * to the true means.  Without an intercept nothing is shifted.
 */
static void
gram_accumulate(TrainSet *ts, bool fit_intercept, GramProblem *g)
{
	int			p = ts->p;
	CrossProducts cp;

	TrainSetCrossProducts(ts, fit_intercept, true, &cp);
	g->p = p;
	g->Q = cp.XtX;
	g->q = cp.Xty;
	g->yy = cp.yty;
	g->xmean = cp.xmean;
	g->ymean = cp.ymean;

	/* mirror the upper triangle, so that column j of Q is contiguous */
	for (int j = 0; j < p; j++)
		for (int i = j + 1; i < p; i++)
			g->Q[(Size) j * p + i] = g->Q[(Size) i * p + j];
}

/*
 * The duality gap of
 *		(1/2) ||yc - Xc w||^2 + l1 ||w||_1 + (l2 / 2) ||w||^2
 * at w, from the Gram form, with H = Q w.
 */
static double
duality_gap(const GramProblem *g, const double *w, const double *H,
			double l1, double l2)
{
	int			p = g->p;
	double		q_dot_w = 0.0;
	double		w_dot_h = 0.0;
	double		w_norm2 = 0.0;
	double		w_norm1 = 0.0;
	double		dual_norm = 0.0;
	double		r_norm2;
	double		scale;
	double		gap;

	for (int j = 0; j < p; j++)
	{
		double		xta = g->q[j] - H[j] - l2 * w[j];

		dual_norm = Max(dual_norm, fabs(xta));
		q_dot_w += g->q[j] * w[j];
		w_dot_h += w[j] * H[j];
		w_norm2 += w[j] * w[j];
		w_norm1 += fabs(w[j]);
	}
	r_norm2 = g->yy + w_dot_h - 2.0 * q_dot_w;

	/* scale the residual into the dual feasible set */
	if (dual_norm > l1)
	{
		scale = l1 / dual_norm;
		gap = 0.5 * r_norm2 * (1.0 + scale * scale);
	}
	else
	{
		scale = 1.0;
		gap = r_norm2;
	}
	gap += l1 * w_norm1 - scale * (g->yy - q_dot_w)
		+ 0.5 * l2 * (1.0 + scale * scale) * w_norm2;
	return gap;
}

/*
 * Minimises (1/2) w'Qw - q'w + l1 ||w||_1 + (l2 / 2) ||w||^2 from w = 0
 * by cyclic coordinate descent; w (p) receives the solution.
 */
static DescentResult
coordinate_descent(const GramProblem *g, double l1, double l2, int max_iter,
				   double tol, double *w, TrainSet *ts)
{
	int			p = g->p;
	double	   *H = palloc0(sizeof(double) * Max(p, 1));
	DescentResult res;

	memset(w, 0, sizeof(double) * p);
	res.gap_tol = tol * g->yy;
	res.gap = res.gap_tol + 1.0;
	res.converged = false;
	res.iterations = max_iter;

	for (int iter = 0; iter < max_iter; iter++)
	{
		double		w_max = 0.0;
		double		dw_max = 0.0;

		CHECK_FOR_INTERRUPTS();
		for (int j = 0; j < p; j++)
		{
			const double *Qj = g->Q + (Size) j * p;
			double		old = w[j];
			double		t;
			double		shrunk;

			if (Qj[j] == 0.0)
				continue;		/* a constant column stays at zero */

			/* H without coordinate j's part */
			if (old != 0.0)
				cblas_daxpy(p, -old, Qj, 1, H, 1);
			t = g->q[j] - H[j];
			shrunk = fabs(t) - l1;
			w[j] = shrunk > 0.0 ? copysign(shrunk, t) / (Qj[j] + l2) : 0.0;
			if (w[j] != 0.0)
				cblas_daxpy(p, w[j], Qj, 1, H, 1);

			dw_max = Max(dw_max, fabs(w[j] - old));
			w_max = Max(w_max, fabs(w[j]));
		}

		/* telemetry: the objective, in scikit-learn's units, and the change */
		if (ts->log)
		{
			double		wqw = cblas_ddot(p, w, 1, H, 1);
			double		rss = g->yy - 2.0 * cblas_ddot(p, g->q, 1, w, 1) + wqw;
			double		l1norm = 0.0;
			double		l2norm = cblas_ddot(p, w, 1, w, 1);

			for (int j = 0; j < p; j++)
				l1norm += fabs(w[j]);
			/* a debugger rule may end the descent here */
			if (!TrainLogAdd(ts, "change", iter + 1,
							 (0.5 * rss + l1 * l1norm + 0.5 * l2 * l2norm) / (double) ts->n,
							 NAN, w_max > 0.0 ? dw_max / w_max : 0.0))
				break;
		}
		if (w_max == 0.0 || dw_max / w_max < tol || iter == max_iter - 1)
		{
			res.gap = duality_gap(g, w, H, l1, l2);
			if (res.gap < res.gap_tol)
			{
				res.iterations = iter + 1;
				res.converged = true;
				break;
			}
		}
	}
	pfree(H);
	return res;
}

static void
elastic_fit_common(AlgoModel *m, TrainSet *ts, const Hyperparams *hp,
				   double l1_ratio)
{
	ElasticState *st = palloc0(sizeof(ElasticState));
	bool		fit_intercept = HpBool(hp, "fit_intercept");
	double		alpha = HpFloat(hp, "alpha");
	double		n = (double) ts->n;
	GramProblem g;
	DescentResult res;

	gram_accumulate(ts, fit_intercept, &g);

	/* scikit-learn's penalties, for the objective multiplied by n */
	st->coef = palloc0(sizeof(double) * Max(ts->p, 1));
	res = coordinate_descent(&g, alpha * l1_ratio * n,
							 alpha * (1.0 - l1_ratio) * n,
							 HpInt(hp, "max_iter"), HpFloat(hp, "tol"),
							 st->coef, ts);
	if (!res.converged)
		ereport(NOTICE,
				(errmsg("%s did not converge in %d iterations",
						m->spec->name, res.iterations),
				 errdetail("The duality gap is %g; the tolerance is %g.",
						   res.gap, res.gap_tol),
				 errhint("Raise max_iter or tol, or scale the features.")));

	st->intercept = g.ymean;
	for (int j = 0; j < ts->p; j++)
		st->intercept -= g.xmean[j] * st->coef[j];
	st->iterations = res.iterations;
	st->converged = res.converged;
	m->state = st;

	pfree(g.Q);
	pfree(g.q);
	pfree(g.xmean);
}

static void
lasso_fit(AlgoModel *m, TrainSet *ts, const Hyperparams *hp)
{
	elastic_fit_common(m, ts, hp, 1.0);
}

static void
elastic_net_fit(AlgoModel *m, TrainSet *ts, const Hyperparams *hp)
{
	elastic_fit_common(m, ts, hp, HpFloat(hp, "l1_ratio"));
}

static void
elastic_predict(const AlgoModel *m, const double *X, int n, int ld, double *out)
{
	const ElasticState *st = m->state;

	AlgoLinearPredict(st->intercept, st->coef, m->p, X, n, ld, out);
}

static void
elastic_serialize(const AlgoModel *m, StringInfo buf)
{
	const ElasticState *st = m->state;

	pq_sendfloat8(buf, st->intercept);
	pq_sendint32(buf, st->iterations);
	pq_sendbyte(buf, st->converged);
	BlobPutFloat8Array(buf, st->coef, m->p);
}

static void
elastic_deserialize(AlgoModel *m, BlobReader *r)
{
	ElasticState *st = palloc0(sizeof(ElasticState));

	st->intercept = BlobGetFloat8(r);
	st->iterations = BlobGetInt32(r);
	if (st->iterations < 0)
		BlobCorrupt(r, "The coordinate descent iteration count is negative.");
	st->converged = BlobGetBool(r);
	st->coef = palloc(sizeof(double) * Max(m->p, 1));
	BlobGetFloat8Array(r, st->coef, m->p);
	m->state = st;
}

static void
elastic_describe(const AlgoModel *m, char **feature_names, char **labels,
				 JsonbParseState **js)
{
	const ElasticState *st = m->state;
	int			nonzero = 0;

	JbKey(js, "intercept");
	JbFloat(js, st->intercept);
	JbKey(js, "coefficients");
	JbBeginObject(js);
	for (int j = 0; j < m->p; j++)
	{
		JbKey(js, feature_names[j]);
		JbFloat(js, st->coef[j]);
		if (st->coef[j] != 0.0)
			nonzero++;
	}
	JbEndObject(js);
	JbKey(js, "iterations");
	JbInt(js, st->iterations);
	JbKey(js, "converged");
	JbBool(js, st->converged);
	JbKey(js, "nonzero_coefficients");
	JbInt(js, nonzero);
}

/* Contributions: coefficient x transformed value; the bias is the intercept. */
static double
elastic_explain(const AlgoModel *m, const double *x, int cls, double *contrib)
{
	const ElasticState *st = m->state;

	for (int j = 0; j < m->p; j++)
		contrib[j] = st->coef[j] * x[j];
	return st->intercept;
}

const AlgoSpec lasso_algo = {
	.name = "lasso",
	.tasks = ML_TASK_BIT(ML_TASK_REGRESSION),
	.default_scale = SCALE_STANDARD,
	.params = lasso_params,
	.nparams = lengthof(lasso_params),
	.fit = lasso_fit,
	.predict = elastic_predict,
	.serialize = elastic_serialize,
	.deserialize = elastic_deserialize,
	.describe = elastic_describe,
	.explain = elastic_explain,
};

const AlgoSpec elastic_net_algo = {
	.name = "elastic_net",
	.tasks = ML_TASK_BIT(ML_TASK_REGRESSION),
	.default_scale = SCALE_STANDARD,
	.params = elastic_net_params,
	.nparams = lengthof(elastic_net_params),
	.fit = elastic_net_fit,
	.predict = elastic_predict,
	.serialize = elastic_serialize,
	.deserialize = elastic_deserialize,
	.describe = elastic_describe,
	.explain = elastic_explain,
};
