/*-------------------------------------------------------------------------
 * src/algo/aggregates.c
 *		Least squares as SQL aggregates: ml.linear_fit(y, x) and
 *		ml.ridge_fit(y, x, alpha), one model per group.
 *
 * The state is a bytea of co-moments: the row count, the means of y and of
 * each x, and the sums of centred cross products (x x', x y, y y).  A row
 * updates them with Welford's rank-one step; two states merge exactly
 * (Chan et al.'s pairwise formula), so the aggregates have a combine
 * function and run as partial aggregates in parallel workers, or on the
 * shards of a distributed table, with the final solve on the leader.
 * Centred sums keep the solve accurate when the means are large next to
 * the spread, where raw sums of squares would cancel.
 *
 * The state is an ordinary bytea (not "internal"), so it needs no
 * serialisation between processes; the transition and combine functions
 * update it in place, which an aggregate context allows.
 *-------------------------------------------------------------------------
 */
#include "algo/algo.h"

#include <math.h>

#include "catalog/pg_type.h"
#include "fmgr.h"
#include "funcapi.h"
#include "utils/array.h"
#include "utils/builtins.h"

PG_FUNCTION_INFO_V1(ml_linear_fit_trans);
PG_FUNCTION_INFO_V1(ml_linear_fit_combine);
PG_FUNCTION_INFO_V1(ml_linear_fit_final);

/*
 * LinFitAdd adds one row (y, x[p]) to a state.  Welford: with d = x - mean
 * before the row, the co-moments grow by (n - 1) / n * d d', and the means
 * by d / n.
 */
static void
LinFitAdd(LinFitState *s, double y, const double *x)
{
	int			p = s->p;
	double	   *mean_x = LF_MEAN_X(s);
	double	   *cxy = LF_CXY(s);
	double	   *cxx = LF_CXX(s);
	double		dbuf[64];		/* d for up to 64 elements, without a palloc */
	double	   *d = p <= lengthof(dbuf) ? dbuf : palloc(sizeof(double) * p);
	double		r;
	double		dy;

	s->n++;
	r = (double) (s->n - 1) / (double) s->n;
	for (int j = 0; j < p; j++)
		d[j] = x[j] - mean_x[j];
	dy = y - s->mean_y;
	for (int j = 0, k = 0; j < p; j++)
	{
		double		rdj = r * d[j];

		for (int i = 0; i <= j; i++)
			cxx[k++] += rdj * d[i];
		cxy[j] += rdj * dy;
		mean_x[j] += d[j] / (double) s->n;
	}
	s->cyy += r * dy * dy;
	s->mean_y += dy / (double) s->n;
	if (d != dbuf)
		pfree(d);
}

/*
 * LinFitMerge adds state b to state a (of the same p): the co-moments add,
 * plus the outer product of the difference of the means weighted by
 * na nb / n.
 */
void
LinFitMerge(LinFitState *a, const LinFitState *b)
{
	int			p = a->p;
	double		w;
	double		fb;
	double		dy;
	double	   *d;

	Assert(a->p == b->p);
	if (b->n == 0)
		return;
	w = (double) a->n * (double) b->n / (double) (a->n + b->n);
	fb = (double) b->n / (double) (a->n + b->n);
	d = palloc(sizeof(double) * p);
	for (int j = 0; j < p; j++)
		d[j] = LF_MEAN_X(b)[j] - LF_MEAN_X(a)[j];
	dy = b->mean_y - a->mean_y;
	for (int j = 0, k = 0; j < p; j++)
	{
		for (int i = 0; i <= j; i++, k++)
			LF_CXX(a)[k] += LF_CXX(b)[k] + w * d[j] * d[i];
		LF_CXY(a)[j] += LF_CXY(b)[j] + w * d[j] * dy;
		LF_MEAN_X(a)[j] += fb * d[j];
	}
	a->cyy += b->cyy + w * dy * dy;
	a->mean_y += fb * dy;
	a->n += b->n;
	pfree(d);
}

/*
 * A new state, in the current (per-call) context: nodeAgg copies a new
 * transition value into its aggregate context itself.
 */
LinFitState *
LinFitNew(int p, double alpha)
{
	LinFitState *s = palloc0(LF_SIZE(p));

	SET_VARSIZE(s, LF_SIZE(p));
	s->p = p;
	s->alpha = alpha;
	return s;
}

/* A state argument, detoasted and aligned (MLAlignedBytea). */
static LinFitState *
state_arg(FunctionCallInfo fcinfo, int argno)
{
	return (LinFitState *) MLAlignedBytea(PG_GETARG_BYTEA_P(argno));
}

static void
state_check(const LinFitState *s)
{
	if (VARSIZE(s) < offsetof(LinFitState, data) || s->p < 1 || s->p > LINEAR_MAX_FEATURES ||
		VARSIZE(s) != LF_SIZE(s->p) || s->n < 0 || !(s->alpha >= 0) || isinf(s->alpha))
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("not a state of ml.linear_fit or ml.ridge_fit")));
}

/*
 * AggFeatureArray checks the x argument of the fit aggregate name (a
 * one-dimensional float8 array of at least one element, none NULL) and
 * returns its elements, their number in *p.
 */
const double *
AggFeatureArray(ArrayType *xa, const char *name, int *p)
{
	if (ARR_NDIM(xa) > 1)
		ereport(ERROR,
				(errcode(ERRCODE_ARRAY_SUBSCRIPT_ERROR),
				 errmsg("x of %s must be a one-dimensional array", name)));
	*p = ARR_NDIM(xa) == 0 ? 0 : ARR_DIMS(xa)[0];
	if (*p < 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("x of %s must have at least one element", name)));
	if (ARR_HASNULL(xa) && array_contains_nulls(xa))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("x of %s has a NULL element", name),
				 errhint("Impute it (coalesce) or filter the row out.")));
	return (const double *) ARR_DATA_PTR(xa);
}

/* AggCheckFinite: every element of x (p of them) of name is a finite number. */
void
AggCheckFinite(const double *x, int p, const char *name)
{
	for (int j = 0; j < p; j++)
		if (!isfinite(x[j]))
			ereport(ERROR,
					(errcode(ERRCODE_DATA_EXCEPTION),
					 errmsg("x[%d] of %s is %g, which is not a finite number", j + 1, name, x[j])));
}

/* Rows (or states) of p elements and penalty alpha can join state s. */
static void
states_match(const char *name, int p, double alpha, const LinFitState *s)
{
	if (s->p != p)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("x of %s has %d elements in one row and %d in another", name, p, s->p)));
	if (s->alpha != alpha)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("alpha of ml.ridge_fit must be the same on every row of a group")));
}

static const char *
fit_name(const LinFitState *s)
{
	return s->alpha > 0 || s->alpha < 0 ? "ml.ridge_fit" : "ml.linear_fit";
}

/*
 * ml_linear_fit_trans adds one row: y, x (and for ridge_fit, alpha, which
 * must be the same on every row).  A NULL y or x skips the row, as other
 * aggregates skip NULLs; a NULL element or a value that is not finite is
 * an error.
 */
Datum
ml_linear_fit_trans(PG_FUNCTION_ARGS)
{
	MemoryContext aggcxt;
	LinFitState *s = PG_ARGISNULL(0) ? NULL : state_arg(fcinfo, 0);
	bool		ridge = PG_NARGS() > 3;
	double		alpha = 0.0;
	double		y;
	ArrayType  *xa;
	const double *x;
	int			p;
	const char *name = ridge ? "ml.ridge_fit" : "ml.linear_fit";

	if (!AggCheckCallContext(fcinfo, &aggcxt))
		MLNotInAggregate(ridge ? "ml._ridge_fit_trans" : "ml._linear_fit_trans");
	if (ridge)
	{
		if (PG_ARGISNULL(3))
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("alpha of ml.ridge_fit must not be NULL")));
		alpha = PG_GETARG_FLOAT8(3);
		if (!(alpha > 0) || isinf(alpha))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("alpha of ml.ridge_fit must be a finite number above 0, not %g", alpha),
					 errhint("Use ml.linear_fit for no penalty.")));
	}
	if (PG_ARGISNULL(1) || PG_ARGISNULL(2))
	{
		if (s == NULL)
			PG_RETURN_NULL();
		PG_RETURN_POINTER(s);
	}
	y = PG_GETARG_FLOAT8(1);
	xa = PG_GETARG_ARRAYTYPE_P(2);
	x = AggFeatureArray(xa, name, &p);

	if (s == NULL)
	{
		/* the state, and the p x p system the final function solves */
		if (p > LINEAR_MAX_FEATURES ||
			(double) LF_SIZE(p) + (double) p * p * sizeof(double) * 2 >
			(double) ml_max_train_memory * 1024.0)
			ereport(ERROR,
					(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
					 errmsg("x of %s has %d elements, too many to fit", name, p),
					 errdetail("The state and the %d x %d system must fit in ml.max_train_memory, and at most %d elements are allowed.",
							   p, p, LINEAR_MAX_FEATURES)));
		s = LinFitNew(p, alpha);
	}
	else
	{
		/* a state from elsewhere (another aggregate's INITCOND) is checked */
		state_check(s);
		states_match(name, p, alpha, s);
	}

	if (!isfinite(y))
		ereport(ERROR,
				(errcode(ERRCODE_DATA_EXCEPTION),
				 errmsg("y of %s is %g, which is not a finite number", name, y)));
	AggCheckFinite(x, p, name);

	LinFitAdd(s, y, x);
	PG_RETURN_POINTER(s);
}

/*
 * ml_linear_fit_combine merges two partial states: the co-moments add,
 * plus the outer product of the difference of the means weighted by
 * na nb / n.
 */
Datum
ml_linear_fit_combine(PG_FUNCTION_ARGS)
{
	MemoryContext aggcxt;
	LinFitState *a = PG_ARGISNULL(0) ? NULL : state_arg(fcinfo, 0);
	LinFitState *b = PG_ARGISNULL(1) ? NULL : state_arg(fcinfo, 1);

	if (!AggCheckCallContext(fcinfo, &aggcxt))
		MLNotInAggregate("ml._linear_fit_combine");
	if (b == NULL)
	{
		if (a == NULL)
			PG_RETURN_NULL();
		PG_RETURN_POINTER(a);
	}
	state_check(b);
	if (a == NULL)
	{
		/* nodeAgg copies the new transition value into its context */
		a = palloc(VARSIZE(b));
		memcpy(a, b, VARSIZE(b));
		PG_RETURN_POINTER(a);
	}
	state_check(a);
	states_match(fit_name(a), a->p, a->alpha, b);
	LinFitMerge(a, b);
	PG_RETURN_POINTER(a);
}

/*
 * ml_linear_fit_final solves the normal equations of the centred data,
 * (Cxx + alpha I) beta = Cxy, and returns (intercept, coefficients, n,
 * rank, r2, rmse) on the rows it saw; NULL for no rows.
 */
Datum
ml_linear_fit_final(PG_FUNCTION_ARGS)
{
	LinFitState *s;
	int			p;
	double	   *A;
	double	   *beta;
	double		intercept;
	double		sse;
	int			rank;
	TupleDesc	tupdesc;
	Datum		values[6];
	bool		nulls[6] = {false, false, false, false, false, false};
	Datum	   *coef;

	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	s = state_arg(fcinfo, 0);
	state_check(s);
	if (s->n == 0)
		PG_RETURN_NULL();
	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "ml.linear_fit must return a composite type");
	p = s->p;

	/* the packed upper triangle, unpacked column-major for LAPACK */
	A = palloc0(sizeof(double) * p * p);
	for (int j = 0, k = 0; j < p; j++)
		for (int i = 0; i <= j; i++)
			A[(Size) j * p + i] = LF_CXX(s)[k++];
	beta = palloc(sizeof(double) * p);
	rank = AlgoSolveSymmetric(A, LF_CXY(s), s->alpha, p, s->n, beta);

	intercept = s->mean_y;
	for (int j = 0; j < p; j++)
		intercept -= LF_MEAN_X(s)[j] * beta[j];

	/* SSE = Cyy - 2 beta'Cxy + beta'Cxx beta, from the packed triangle */
	sse = s->cyy;
	for (int j = 0, k = 0; j < p; j++)
	{
		sse -= 2.0 * beta[j] * LF_CXY(s)[j];
		for (int i = 0; i <= j; i++, k++)
			sse += (i == j ? 1.0 : 2.0) * beta[i] * LF_CXX(s)[k] * beta[j];
	}
	sse = Max(sse, 0.0);

	coef = palloc(sizeof(Datum) * p);
	for (int j = 0; j < p; j++)
		coef[j] = Float8GetDatum(beta[j]);
	values[0] = Float8GetDatum(intercept);
	values[1] = PointerGetDatum(construct_array(coef, p, FLOAT8OID, sizeof(float8),
												FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
	values[2] = Int64GetDatum(s->n);
	values[3] = Int32GetDatum(rank);
	values[4] = Float8GetDatum(s->cyy > 0 ? 1.0 - sse / s->cyy : 0.0);
	nulls[4] = !(s->cyy > 0);
	values[5] = Float8GetDatum(sqrt(sse / (double) s->n));
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(BlessTupleDesc(tupdesc), values, nulls)));
}
