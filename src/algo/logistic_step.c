/*-------------------------------------------------------------------------
 * src/algo/logistic_step.c
 *		Logistic regression as a parallel-safe aggregate: one Newton step
 *		per scan of the rows.
 *
 * At given coefficients theta = (w, b) the aggregate sums, over the rows,
 * the weighted log-loss and its first and second derivatives:
 *
 *		loss = sum s_i (log(1 + exp(z_i)) - y_i z_i),	z_i = w'x_i + b
 *		g	 = sum s_i (p_i - y_i) (x_i, 1)
 *		H	 = sum s_i p_i (1 - p_i) (x_i, 1) (x_i, 1)'
 *
 * with y_i in {0, 1}, p_i = 1 / (1 + exp(-z_i)) and row weights s_i (1,
 * or a class weight).  These are plain sums, so the partial states of
 * parallel workers, or of the shards of a distributed table, add up
 * exactly.  LogStepSolve takes the Newton step of the objective
 *
 *		F(theta) = loss / S + l2 / 2 ||w||^2,	S = sum s_i
 *
 * (the intercept is not penalised; with l2 = 1 / (C S) this is
 * scikit-learn's objective for C): theta - (H / S + l2 I_w)^-1 (g / S +
 * l2 w).  Newton's method converges quadratically, so a few steps, each
 * one scan, fit the model.
 *
 * A row adds to g at once; for H it is scaled by sqrt(s_i p_i (1 - p_i))
 * into a block of LS_BLOCK_ROWS rows, which joins H by one dsyrk.  The
 * state is a bytea (LogStepState): a transition function updates it in
 * place, and it crosses processes and servers as it is.
 *
 * Users: the SQL aggregates ml.logistic_step, ml.logistic_step_state and
 * ml.logistic_step_merge below (a step per group; the loop is the
 * caller's), and ml.train's aggregate path (stream.c), which standardises
 * the features on the way in and counts only its training rows.
 *-------------------------------------------------------------------------
 */
#include "algo/algo.h"

#include <math.h>
#include <cblas.h>

#include "catalog/pg_type.h"
#include "fmgr.h"
#include "funcapi.h"
#include "utils/array.h"
#include "utils/builtins.h"

PG_FUNCTION_INFO_V1(ml_logistic_step_trans);
PG_FUNCTION_INFO_V1(ml_logistic_step_combine);
PG_FUNCTION_INFO_V1(ml_logistic_step_final);

/*
 * A new state for p features at theta (p + 1 values: w, then b; NULL for
 * zeros), with penalty l2, in the current memory context.  center and
 * inv_scale (p each, or NULL) standardise each feature as it is added.
 */
LogStepState *
LogStepNew(int p, double l2, const double *theta, const double *center,
		   const double *inv_scale)
{
	Size		size = LS_SIZE(p);
	LogStepState *s = palloc_extended(size, MCXT_ALLOC_HUGE | MCXT_ALLOC_ZERO);

	SET_VARSIZE(s, size);
	s->magic = LS_MAGIC;
	s->p = p;
	s->l2 = l2;
	if (theta)
		memcpy(LS_THETA(s), theta, sizeof(double) * (p + 1));
	if (center && inv_scale)
	{
		s->standardize = true;
		memcpy(LS_CENTER(s), center, sizeof(double) * p);
		memcpy(LS_SCALE(s), inv_scale, sizeof(double) * p);
	}
	else
		for (int j = 0; j < p; j++)
			LS_SCALE(s)[j] = 1.0;
	return s;
}

/* Adds the buffered rows to H, which holds its upper triangle. */
static void
logstep_flush(LogStepState *s)
{
	int			w = s->p + 1;

	if (s->nblock == 0)
		return;
	cblas_dsyrk(CblasColMajor, CblasUpper, CblasTrans, w, s->nblock, 1.0, LS_BLOCK(s),
				LS_BLOCK_ROWS, 1.0, LS_HESS(s), w);
	s->nblock = 0;
}

/*
 * LogStepAdd adds a row: y (0 or 1), its weight sw and its p features
 * (finite; standardised here when the state says so).
 */
void
LogStepAdd(LogStepState *s, double y, double sw, const double *x)
{
	int			p = s->p;
	const double *theta = LS_THETA(s);
	double	   *g = LS_GRAD(s);
	double	   *blk = LS_BLOCK(s) + s->nblock;
	double		z = theta[p];
	double		e;
	double		d;
	double		prob;
	double		r;
	double		root;

	/* the block is column-major: x1..xp, then the intercept's 1 */
	if (s->standardize)
	{
		const double *c = LS_CENTER(s);
		const double *is = LS_SCALE(s);

		for (int j = 0; j < p; j++)
		{
			double		v = (x[j] - c[j]) * is[j];

			blk[(Size) j * LS_BLOCK_ROWS] = v;
			z += theta[j] * v;
		}
	}
	else
		for (int j = 0; j < p; j++)
		{
			blk[(Size) j * LS_BLOCK_ROWS] = x[j];
			z += theta[j] * x[j];
		}
	blk[(Size) p * LS_BLOCK_ROWS] = 1.0;

	/*
	 * With e = exp(-|z|): p = 1 / (1 + e) or e / (1 + e), p (1 - p) = e /
	 * (1 + e)^2 and log(1 + exp(z)) = max(z, 0) + log1p(e), all without
	 * overflow or cancellation.
	 */
	e = exp(-fabs(z));
	d = 1.0 + e;
	prob = z >= 0 ? 1.0 / d : e / d;
	s->loss += sw * ((z > 0 ? z : 0.0) + log1p(e) - y * z);
	r = sw * (prob - y);
	for (int j = 0; j <= p; j++)
		g[j] += r * blk[(Size) j * LS_BLOCK_ROWS];
	root = sqrt(sw * e) / d;
	for (int j = 0; j <= p; j++)
		blk[(Size) j * LS_BLOCK_ROWS] *= root;
	s->n++;
	s->wsum += sw;
	if (++s->nblock == LS_BLOCK_ROWS)
		logstep_flush(s);
}

/* Do states a and b sum over the same function at the same point? */
static bool
logstep_same_point(const LogStepState *a, const LogStepState *b)
{
	int			p = a->p;

	return a->p == b->p && a->l2 == b->l2 && a->standardize == b->standardize &&
		memcmp(LS_THETA(a), LS_THETA(b), sizeof(double) * (3 * (Size) p + 1)) == 0;
}

/* LogStepMerge adds state b to state a (at the same point: checked). */
void
LogStepMerge(LogStepState *a, const LogStepState *b)
{
	int			w = a->p + 1;

	if (!logstep_same_point(a, b))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("partial states of ml.logistic_step differ in their coefficients, penalty or number of features")));
	logstep_flush(a);
	a->n += b->n;
	a->wsum += b->wsum;
	a->loss += b->loss;
	for (int j = 0; j < w; j++)
		LS_GRAD(a)[j] += LS_GRAD(b)[j];
	for (int j = 0; j < w; j++)
		for (int i = 0; i <= j; i++)
			LS_HESS(a)[(Size) j * w + i] += LS_HESS(b)[(Size) j * w + i];
	/* b's buffered rows, scaled already, go to a's H directly */
	if (b->nblock > 0)
		cblas_dsyrk(CblasColMajor, CblasUpper, CblasTrans, w, b->nblock, 1.0, LS_BLOCK(b),
					LS_BLOCK_ROWS, 1.0, LS_HESS(a), w);
}

/*
 * LogStepSolve takes the Newton step from the state's point: next (p + 1
 * values) gets the new coefficients, *objective F at the state's point,
 * *gmax the largest absolute component of its gradient.  Directions the
 * rows do not determine (collinear features without a penalty) are left
 * where they are.  The state is not changed.
 */
void
LogStepSolve(const LogStepState *s, double *next, double *objective, double *gmax)
{
	int			p = s->p;
	int			w = p + 1;
	const double *theta = LS_THETA(s);
	double	   *H = palloc_extended(sizeof(double) * (Size) w * w, MCXT_ALLOC_HUGE);
	double	   *G = palloc(sizeof(double) * w);
	double	   *delta = palloc(sizeof(double) * w);
	double		S = s->wsum;
	double		f = s->loss / S;
	double		big = 0.0;

	Assert(s->n > 0 && S > 0);
	memcpy(H, LS_HESS(s), sizeof(double) * (Size) w * w);
	if (s->nblock > 0)
		cblas_dsyrk(CblasColMajor, CblasUpper, CblasTrans, w, s->nblock, 1.0, LS_BLOCK(s),
					LS_BLOCK_ROWS, 1.0, H, w);
	for (int j = 0; j < w; j++)
	{
		for (int i = 0; i <= j; i++)
			H[(Size) j * w + i] /= S;
		G[j] = LS_GRAD(s)[j] / S;
		if (j < p)
		{
			H[(Size) j * w + j] += s->l2;
			G[j] += s->l2 * theta[j];
			f += 0.5 * s->l2 * theta[j] * theta[j];
		}
		big = Max(big, fabs(G[j]));
	}
	/* a state from elsewhere may hold anything: LAPACK needs numbers */
	for (Size k = 0; k < (Size) w * w; k++)
		if (isnan(H[k]) || isinf(H[k]))
			big = NAN;
	if (!isfinite(big) || !isfinite(f))
		ereport(ERROR,
				(errcode(ERRCODE_DATA_EXCEPTION),
				 errmsg("the sums of a Newton step of logistic regression are not finite"),
				 errhint("Standardise the features, or start from smaller coefficients.")));
	AlgoSolveSymmetric(H, G, 0.0, w, s->n, delta);
	for (int j = 0; j < w; j++)
		next[j] = theta[j] - delta[j];
	*objective = f;
	*gmax = big;
	pfree(H);
	pfree(G);
	pfree(delta);
}

/*
 * A state from a bytea: checked, and copied when it is toasted or not
 * aligned for its int64 and double fields (a bytea in a tuple is only
 * 4-byte aligned).
 */
LogStepState *
LogStepFromBytea(bytea *b)
{
	LogStepState *s;

	s = (LogStepState *) MLAlignedBytea(b);
	if (VARSIZE(s) < offsetof(LogStepState, data) || s->magic != LS_MAGIC || s->p < 1 ||
		s->p > LINEAR_MAX_FEATURES || VARSIZE(s) != LS_SIZE(s->p) || s->n < 0 ||
		s->nblock < 0 || s->nblock >= LS_BLOCK_ROWS || !(s->l2 >= 0) || isinf(s->l2) ||
		!(s->wsum >= 0) || (s->n > 0 && !(s->wsum > 0)))
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("not a state of ml.logistic_step")));
	return s;
}

static LogStepState *
state_arg(FunctionCallInfo fcinfo, int argno)
{
	return LogStepFromBytea(PG_GETARG_BYTEA_P(argno));
}

/*
 * ml_logistic_step_trans adds a row: y (0 or 1), x, and the point of the
 * step: intercept, coefficients (NULL for zeros) and l2, which must be the
 * same on every row of a group.  A NULL y or x skips the row; a NULL
 * element or a value that is not finite is an error.
 */
Datum
ml_logistic_step_trans(PG_FUNCTION_ARGS)
{
	MemoryContext aggcxt;
	LogStepState *s = PG_ARGISNULL(0) ? NULL : state_arg(fcinfo, 0);
	double		y;
	double		l2;
	double		intercept;
	ArrayType  *xa;
	const double *x;
	int			p;

	if (!AggCheckCallContext(fcinfo, &aggcxt))
		MLNotInAggregate("ml._logistic_step_trans");
	if (PG_ARGISNULL(5))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("l2 of ml.logistic_step must not be NULL"),
				 errhint("Pass 0 for no penalty.")));
	l2 = PG_GETARG_FLOAT8(5);
	if (!(l2 >= 0) || isinf(l2))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("l2 of ml.logistic_step must be a finite number of at least 0, not %g", l2)));
	if (PG_ARGISNULL(1) || PG_ARGISNULL(2))
	{
		if (s == NULL)
			PG_RETURN_NULL();
		PG_RETURN_POINTER(s);
	}
	y = PG_GETARG_FLOAT8(1);
	xa = PG_GETARG_ARRAYTYPE_P(2);
	x = AggFeatureArray(xa, "ml.logistic_step", &p);
	if (y != 0.0 && y != 1.0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("y of ml.logistic_step must be 0 or 1, not %g", y),
				 errhint("Pass the positive class as 1, e.g. (label = 'yes')::int.")));
	AggCheckFinite(x, p, "ml.logistic_step");

	/* the point of the step */
	intercept = PG_ARGISNULL(3) ? 0.0 : PG_GETARG_FLOAT8(3);
	if (!isfinite(intercept))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("intercept of ml.logistic_step must be a finite number, not %g", intercept)));
	if (s == NULL)
	{
		double	   *theta;

		if (p > LINEAR_MAX_FEATURES ||
			(double) LS_SIZE(p) + (double) (p + 1) * (p + 1) * sizeof(double) * 2 >
			(double) ml_max_train_memory * 1024.0)
			ereport(ERROR,
					(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
					 errmsg("x of ml.logistic_step has %d elements, too many to fit", p),
					 errdetail("The state and the %d x %d system must fit in ml.max_train_memory, and at most %d elements are allowed.",
							   p + 1, p + 1, LINEAR_MAX_FEATURES)));
		theta = palloc0(sizeof(double) * (p + 1));
		if (!PG_ARGISNULL(4))
		{
			ArrayType  *ca = PG_GETARG_ARRAYTYPE_P(4);

			if (ARR_NDIM(ca) != 1 || ARR_DIMS(ca)[0] != p)
				ereport(ERROR,
						(errcode(ERRCODE_ARRAY_SUBSCRIPT_ERROR),
						 errmsg("coefficients of ml.logistic_step must have one element per element of x (%d)", p)));
			if (ARR_HASNULL(ca) && array_contains_nulls(ca))
				ereport(ERROR,
						(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
						 errmsg("coefficients of ml.logistic_step has a NULL element")));
			memcpy(theta, ARR_DATA_PTR(ca), sizeof(double) * p);
			for (int j = 0; j < p; j++)
				if (!isfinite(theta[j]))
					ereport(ERROR,
							(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
							 errmsg("coefficients[%d] of ml.logistic_step is %g, which is not a finite number",
									j + 1, theta[j])));
		}
		theta[p] = intercept;
		/* nodeAgg copies a new transition value into its context */
		s = LogStepNew(p, l2, theta, NULL, NULL);
	}
	else
	{
		const double *theta = LS_THETA(s);
		bool		same = s->p == p && s->l2 == l2 && !s->standardize && theta[p] == intercept;

		if (same && PG_ARGISNULL(4))
			for (int j = 0; j < p && same; j++)
				same = theta[j] == 0.0;
		else if (same)
		{
			ArrayType  *ca = PG_GETARG_ARRAYTYPE_P(4);

			same = ARR_NDIM(ca) == 1 && ARR_DIMS(ca)[0] == p &&
				!(ARR_HASNULL(ca) && array_contains_nulls(ca)) &&
				memcmp(ARR_DATA_PTR(ca), theta, sizeof(double) * p) == 0;
		}
		if (!same)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("intercept, coefficients, l2 and the length of x of ml.logistic_step must be the same on every row of a group")));
	}
	LogStepAdd(s, y, 1.0, x);
	PG_RETURN_POINTER(s);
}

/* ml_logistic_step_combine adds two partial states at the same point. */
Datum
ml_logistic_step_combine(PG_FUNCTION_ARGS)
{
	MemoryContext aggcxt;
	LogStepState *a = PG_ARGISNULL(0) ? NULL : state_arg(fcinfo, 0);
	LogStepState *b = PG_ARGISNULL(1) ? NULL : state_arg(fcinfo, 1);

	if (!AggCheckCallContext(fcinfo, &aggcxt))
		MLNotInAggregate("ml._logistic_step_combine");
	if (b == NULL)
	{
		if (a == NULL)
			PG_RETURN_NULL();
		PG_RETURN_POINTER(a);
	}
	if (a == NULL)
	{
		a = palloc_extended(VARSIZE(b), MCXT_ALLOC_HUGE);
		memcpy(a, b, VARSIZE(b));
		PG_RETURN_POINTER(a);
	}
	LogStepMerge(a, b);
	PG_RETURN_POINTER(a);
}

/*
 * ml_logistic_step_final returns (intercept, coefficients, n, loss,
 * gradient): the Newton step's new point, the rows, and the objective and
 * the largest absolute gradient component at the point the step started
 * from; NULL for no rows.
 */
Datum
ml_logistic_step_final(PG_FUNCTION_ARGS)
{
	LogStepState *s;
	int			p;
	double	   *next;
	double		f;
	double		gmax;
	TupleDesc	tupdesc;
	Datum		values[5];
	bool		nulls[5] = {false, false, false, false, false};
	Datum	   *coef;

	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	s = state_arg(fcinfo, 0);
	if (s->n == 0)
		PG_RETURN_NULL();
	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "ml.logistic_step must return a composite type");
	p = s->p;
	next = palloc(sizeof(double) * (p + 1));
	LogStepSolve(s, next, &f, &gmax);
	coef = palloc(sizeof(Datum) * p);
	for (int j = 0; j < p; j++)
		coef[j] = Float8GetDatum(next[j]);
	values[0] = Float8GetDatum(next[p]);
	values[1] = PointerGetDatum(construct_array(coef, p, FLOAT8OID, sizeof(float8),
												FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
	values[2] = Int64GetDatum(s->n);
	values[3] = Float8GetDatum(f);
	values[4] = Float8GetDatum(gmax);
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(BlessTupleDesc(tupdesc), values, nulls)));
}
