/*-------------------------------------------------------------------------
 * src/train/stream.c
 *		ml.train's aggregate path: linear and ridge fitted from one scan of
 *		the source by a parallel-safe aggregate, instead of reading the
 *		source into memory.
 *
 * The aggregate ml._train_moments(y, x, seed, test_size, sample) reads
 * each row once and keeps, for the training rows and for the hold-out
 * rows apart, the co-moments of a least-squares fit (LinFitState) and a
 * sample of at most `sample` rows.  A row's side is decided by a hash of
 * its values and the seed, so that the decision needs no row order and
 * parallel workers (or the shards of a distributed table) can each take a
 * share of the rows: a row is held out when its hash falls below
 * test_size of the hash range, which holds out about test_size of the
 * rows, and always the same ones for the same values and seed.  Each
 * sample is the rows of the smallest hashes on its side (a "bottom-k"
 * sample), which two partial states merge exactly.
 *
 * ml.train fits the pipeline's structure on the training sample, sets its
 * statistics (means, standard deviations) from the co-moments of every
 * training row, solves the least-squares system from the same co-moments
 * (LinearFitMoments), and measures the model on the samples: the same
 * model as the in-memory path fitted on the same training rows.
 *
 * The path is taken only when it gives that model: linear or ridge, every
 * feature a number, default imputation and a standard or no scaling, no
 * cross-validation or search, and a source estimated at no fewer than
 * ml.aggregate_train_min_rows rows.  Rows the aggregate cannot use (a
 * NULL feature, to be imputed; NaN or Infinity, an error with its own
 * message) send ml.train back to the in-memory path, which reads the
 * source again and handles them.
 *-------------------------------------------------------------------------
 */
#include "train/train.h"

#include <ctype.h>
#include <math.h>
#include <cblas.h>

#include "algo/algo.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "nodes/plannodes.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/plancache.h"

PG_FUNCTION_INFO_V1(ml_train_moments_trans);
PG_FUNCTION_INFO_V1(ml_train_moments_trans_any);
PG_FUNCTION_INFO_V1(ml_train_moments_combine);
PG_FUNCTION_INFO_V1(ml_train_moments_serialize);
PG_FUNCTION_INFO_V1(ml_train_moments_deserialize);
PG_FUNCTION_INFO_V1(ml_logistic_step_trans_any);

#define MOMENTS_MAGIC 0x4d4c4d32	/* "MLM2" */

/*
 * The rows of the smallest hashes seen on one side, at most limit of them
 * once compacted.  Rows whose hash is below tau are appended; when the
 * buffer (twice the limit) is full, it keeps its limit smallest and tau
 * drops to the largest of them, so a row is copied at most once on
 * arrival and the buffer is selected from in linear time.
 */
typedef struct RowSample
{
	int			width;			/* doubles per row: y, then x */
	int			limit;
	int			count;
	int			cap;
	uint64		tau;			/* rows with a hash at or above are not kept */
	uint64	   *hash;
	double	   *data;			/* cap x width, row i at data + i * width */
} RowSample;

/*
 * Features the variadic form of ml._train_moments takes as arguments of
 * their own: a function has at most FUNC_MAX_ARGS, of which the
 * transition function's state and five more are not features.
 */
#define MOMENTS_MAX_ARGS (FUNC_MAX_ARGS - 6)

/* Rows a side buffers before adding them to its co-moments in one block. */
#define MOMENTS_BLOCK_ROWS 128

/* The state of ml._train_moments. */
typedef struct TrainMoments
{
	int			p;
	int			limit;			/* sample rows per side */
	int64		seed;
	double		test_size;
	uint64		cut;			/* a row is held out when its hash is below */
	int64		null_target;	/* rows skipped: NULL target */
	int64		unusable;		/* rows with a NULL feature, NaN or Infinity */
	int			ntargets;		/* distinct targets of the rows used, to 3 */
	double		targets[2];		/* the first two */
	LinFitState *moments[2];	/* training rows, hold-out rows */
	RowSample	sample[2];
	/* rows not yet in moments: MOMENTS_BLOCK_ROWS x (p + 1), column-major */
	double	   *block[2];
	int			nblock[2];
	LinFitState *scratch;		/* the co-moments of one block */
	double	   *syrk;			/* (p + 1) x (p + 1) */
} TrainMoments;

/* ---------- the row hash ---------- */

static inline uint64
value_bits(double v)
{
	uint64		bits;

	if (v == 0.0)
		v = 0.0;				/* -0 hashes as 0 */
	memcpy(&bits, &v, sizeof(bits));
	return bits;
}

static inline uint64
mix_value(uint64 h, double v)
{
	h ^= value_bits(v);
	h *= UINT64CONST(0xFF51AFD7ED558CCD);
	return h ^ (h >> 32);
}

/*
 * The hash of a row's values and the seed: the same values give the same
 * hash wherever and in whatever order the row is read.  Four lanes take
 * every fourth value each, so that their multiplications overlap instead
 * of waiting on one another; SplitHash mixes the lanes and the seed.
 */
static uint64
row_hash(double y, const double *x, int p, int64 seed)
{
	uint64		lane[4] = {
		UINT64CONST(0x6A09E667F3BCC909), UINT64CONST(0xBB67AE8584CAA73B),
		UINT64CONST(0x3C6EF372FE94F82B), UINT64CONST(0xA54FF53A5F1D36F1)
	};
	int			j = 0;

	lane[0] = mix_value(lane[0], y);
	for (; j + 4 <= p; j += 4)
	{
		lane[0] = mix_value(lane[0], x[j]);
		lane[1] = mix_value(lane[1], x[j + 1]);
		lane[2] = mix_value(lane[2], x[j + 2]);
		lane[3] = mix_value(lane[3], x[j + 3]);
	}
	for (; j < p; j++)
		lane[j & 3] = mix_value(lane[j & 3], x[j]);
	return SplitHash((int64) (lane[0] ^ (lane[1] * UINT64CONST(0x9E3779B97F4A7C15)) ^
							  (lane[2] * UINT64CONST(0xC2B2AE3D27D4EB4F)) ^
							  (lane[3] * UINT64CONST(0x165667B19E3779F9))),
					 seed);
}

/* ---------- the bottom-k sample ---------- */

static void
sample_init(RowSample *s, int width, int limit)
{
	memset(s, 0, sizeof(*s));
	s->width = width;
	s->limit = limit;
	s->tau = PG_UINT64_MAX;
}

/*
 * Keeps the limit rows of the smallest hashes (ties broken by arrival) and
 * lowers tau to the largest kept.
 */
static void
sample_compact(RowSample *s)
{
	uint64	   *tmp;
	uint64		kth;
	int			below = 0;
	int			keep = 0;

	if (s->count <= s->limit)
		return;
	tmp = palloc(sizeof(uint64) * s->count);
	memcpy(tmp, s->hash, sizeof(uint64) * s->count);
	kth = SplitSelectKth(tmp, s->count, s->limit - 1);
	pfree(tmp);
	for (int i = 0; i < s->count; i++)
		below += s->hash[i] < kth;
	for (int i = 0; i < s->count; i++)
	{
		if (s->hash[i] < kth || (s->hash[i] == kth && below < s->limit))
		{
			if (s->hash[i] == kth)
				below++;
			if (keep != i)
			{
				s->hash[keep] = s->hash[i];
				memcpy(s->data + (Size) keep * s->width, s->data + (Size) i * s->width,
					   sizeof(double) * s->width);
			}
			keep++;
		}
	}
	s->count = keep;
	/* every row kept has a hash at most kth; a later row must be below */
	s->tau = kth;
}

/*
 * Offers a row (its hash and width doubles) to the sample; its arrays are
 * allocated in cxt and grow to twice the limit.
 */
static inline void
sample_offer(RowSample *s, MemoryContext cxt, uint64 h, const double *row)
{
	if (h >= s->tau || s->limit == 0)
		return;
	if (s->count == s->cap)
	{
		if (s->cap == 2 * s->limit)
		{
			sample_compact(s);
			if (h >= s->tau)
				return;
		}
		else
		{
			int			cap = Min(2 * s->limit, Max(1024, s->cap * 2));

			if (s->cap == 0)
			{
				s->hash = MemoryContextAlloc(cxt, sizeof(uint64) * cap);
				s->data = MemoryContextAllocHuge(cxt, sizeof(double) * s->width * (Size) cap);
			}
			else
			{
				s->hash = repalloc(s->hash, sizeof(uint64) * cap);
				s->data = repalloc_huge(s->data, sizeof(double) * s->width * (Size) cap);
			}
			s->cap = cap;
		}
	}
	s->hash[s->count] = h;
	memcpy(s->data + (Size) s->count * s->width, row, sizeof(double) * s->width);
	s->count++;
}

/* ---------- the aggregate ---------- */

static TrainMoments *
moments_new(MemoryContext cxt, int p, int limit, int64 seed, double test_size,
			double expected)
{
	MemoryContext old = MemoryContextSwitchTo(cxt);
	TrainMoments *st = palloc0(sizeof(TrainMoments));

	st->p = p;
	st->limit = limit;
	st->seed = seed;
	st->test_size = test_size;
	st->cut = test_size > 0 ? (uint64) ldexp(test_size, 64) : 0;
	for (int side = 0; side < 2; side++)
	{
		st->moments[side] = LinFitNew(p, 0.0);
		sample_init(&st->sample[side], p + 1, limit);
		st->block[side] = palloc(sizeof(double) * MOMENTS_BLOCK_ROWS * (p + 1));
	}
	/*
	 * With the number of rows to expect, each side keeps from the start only
	 * the rows of the lowest hashes that should make up a quarter more than
	 * the limit, rather than up to twice the limit in every parallel worker.
	 */
	if (expected > 0 && limit > 0)
	{
		double		share[2] = {1.0 - test_size, test_size};
		double		base[2] = {ldexp(test_size, 64), 0.0};

		for (int side = 0; side < 2; side++)
		{
			double		f = share[side] > 0 ? 1.25 * limit / (expected * share[side]) : 1.0;

			double		tau = base[side] + f * share[side] * ldexp(1.0, 64);

			if (f < 1.0 && tau < ldexp(1.0, 64))
				st->sample[side].tau = (uint64) tau;
		}
	}
	st->scratch = LinFitNew(p, 0.0);
	st->syrk = palloc(sizeof(double) * (p + 1) * (p + 1));
	MemoryContextSwitchTo(old);
	/* the blocks are small: one thread (nothing else runs BLAS meanwhile) */
	MLApplyThreadLimit(0.0);
	return st;
}

/*
 * Adds a side's buffered rows to its co-moments: their own means and
 * centred cross products (one dsyrk over y and x together), merged by
 * LinFitMerge.  Rank-one updates row by row would cost several times more.
 */
static void
moments_flush(TrainMoments *st, int side)
{
	int			n = st->nblock[side];
	int			w = st->p + 1;
	double	   *z = st->block[side];
	LinFitState *b = st->scratch;
	double	   *c = st->syrk;

	if (n == 0)
		return;
	/* centre each column (x1..xp, then y) on its block mean */
	for (int j = 0; j < w; j++)
	{
		double	   *col = z + (Size) j * MOMENTS_BLOCK_ROWS;
		double		mean = 0.0;

		for (int i = 0; i < n; i++)
			mean += col[i];
		mean /= n;
		for (int i = 0; i < n; i++)
			col[i] -= mean;
		if (j < st->p)
			LF_MEAN_X(b)[j] = mean;
		else
			b->mean_y = mean;
	}
	cblas_dsyrk(CblasColMajor, CblasUpper, CblasTrans, w, n, 1.0, z, MOMENTS_BLOCK_ROWS,
				0.0, c, w);
	for (int j = 0, k = 0; j < st->p; j++)
	{
		for (int i = 0; i <= j; i++)
			LF_CXX(b)[k++] = c[(Size) j * w + i];
		LF_CXY(b)[j] = c[(Size) st->p * w + j];
	}
	b->cyy = c[(Size) st->p * w + st->p];
	b->n = n;
	LinFitMerge(st->moments[side], b);
	st->nblock[side] = 0;
}

static void
moments_check_args(int p, int limit, double test_size)
{
	if (p < 1 || p > LINEAR_MAX_FEATURES || limit < 0 || limit > 10 * TRAIN_STREAM_SAMPLE_ROWS ||
		!(test_size >= 0.0 && test_size < 1.0))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid arguments to ml._train_moments")));
}

/*
 * Notes a row's target among the distinct targets: the first two are
 * kept, and a third only counted (a classifier's path needs exactly two).
 */
static inline void
moments_note_target(TrainMoments *st, double y)
{
	if (st->ntargets > 2 ||
		(st->ntargets > 0 && y == st->targets[0]) ||
		(st->ntargets > 1 && y == st->targets[1]))
		return;
	if (st->ntargets < 2)
		st->targets[st->ntargets] = y;
	st->ntargets++;
}

/*
 * moments_add adds a row with a target: to its side's block of co-moments
 * and, when its hash is low enough, to its side's sample.  A row with NaN
 * or Infinity is only counted (ml.train then reads the source itself).
 */
static void
moments_add(TrainMoments *st, MemoryContext aggcxt, double y, const double *x)
{
	int			p = st->p;
	double		rowbuf[65];
	double	   *row;
	uint64		h;
	int			side;
	double	   *blk;

	for (int j = 0; j < p; j++)
		if (!isfinite(x[j]))
		{
			st->unusable++;
			return;
		}

	moments_note_target(st, y);
	h = row_hash(y, x, p, st->seed);
	side = h < st->cut ? 1 : 0;

	/* the block is column-major: x1..xp, then y */
	blk = st->block[side] + st->nblock[side];
	for (int j = 0; j < p; j++)
		blk[(Size) j * MOMENTS_BLOCK_ROWS] = x[j];
	blk[(Size) p * MOMENTS_BLOCK_ROWS] = y;
	if (++st->nblock[side] == MOMENTS_BLOCK_ROWS)
		moments_flush(st, side);

	if (h < st->sample[side].tau && st->sample[side].limit > 0)
	{
		row = p < lengthof(rowbuf) ? rowbuf : palloc(sizeof(double) * (p + 1));
		row[0] = y;
		memcpy(row + 1, x, sizeof(double) * p);
		sample_offer(&st->sample[side], aggcxt, h, row);
		if (row != rowbuf)
			pfree(row);
	}
}

/*
 * ml_train_moments_trans adds one row: y, x, seed, test_size, sample.  A
 * NULL y is counted and skipped, as ml.train skips it; a NULL element of
 * x, NaN or Infinity is counted (ml.train then reads the source itself).
 */
Datum
ml_train_moments_trans(PG_FUNCTION_ARGS)
{
	MemoryContext aggcxt;
	TrainMoments *st = PG_ARGISNULL(0) ? NULL : (TrainMoments *) PG_GETARG_POINTER(0);
	ArrayType  *xa;
	const double *x;
	double		y;
	int			p;

	if (!AggCheckCallContext(fcinfo, &aggcxt))
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("ml._train_moments_trans can only be called by an aggregate")));
	if (PG_ARGISNULL(2) || PG_ARGISNULL(3) || PG_ARGISNULL(4) || PG_ARGISNULL(5))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("x, seed, test_size and sample of ml._train_moments must not be NULL")));
	xa = PG_GETARG_ARRAYTYPE_P(2);
	if (ARR_NDIM(xa) != 1)
		ereport(ERROR,
				(errcode(ERRCODE_ARRAY_SUBSCRIPT_ERROR),
				 errmsg("x of ml._train_moments must be a one-dimensional array")));
	p = ARR_DIMS(xa)[0];
	if (st == NULL)
	{
		moments_check_args(p, PG_GETARG_INT32(5), PG_GETARG_FLOAT8(4));
		st = moments_new(aggcxt, p, PG_GETARG_INT32(5), PG_GETARG_INT64(3),
						 PG_GETARG_FLOAT8(4), PG_ARGISNULL(6) ? 0.0 : PG_GETARG_FLOAT8(6));
	}
	else if (p != st->p)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("x of ml._train_moments has %d elements in one row and %d in another",
						p, st->p)));

	if (PG_ARGISNULL(1))
	{
		st->null_target++;
		PG_RETURN_POINTER(st);
	}
	y = PG_GETARG_FLOAT8(1);
	if ((ARR_HASNULL(xa) && array_contains_nulls(xa)) || !isfinite(y))
	{
		st->unusable++;
		PG_RETURN_POINTER(st);
	}
	x = (const double *) ARR_DATA_PTR(xa);
	moments_add(st, aggcxt, y, x);
	PG_RETURN_POINTER(st);
}

/*
 * The arguments from first on of a variadic "any" transition function
 * (what: their names) must be float8 values of their own, not an array.
 */
static void
check_float8_args(FunctionCallInfo fcinfo, int first, const char *what)
{
	for (int i = first; i < PG_NARGS(); i++)
		if (get_fn_expr_argtype(fcinfo->flinfo, i) != FLOAT8OID ||
			get_fn_expr_variadic(fcinfo->flinfo))
			ereport(ERROR,
					(errcode(ERRCODE_DATATYPE_MISMATCH),
					 errmsg("%s must be float8 arguments", what)));
}

/*
 * ml_train_moments_trans_any is the same for the arguments seed,
 * test_size, sample, expected, y and then x1..xp as float8 arguments of
 * their own (VARIADIC "any"): what ml.train calls for up to
 * MOMENTS_MAX_ARGS features, which saves building an array for each row.
 */
Datum
ml_train_moments_trans_any(PG_FUNCTION_ARGS)
{
	MemoryContext aggcxt;
	TrainMoments *st = PG_ARGISNULL(0) ? NULL : (TrainMoments *) PG_GETARG_POINTER(0);
	int			p = PG_NARGS() - 6;
	double		x[FUNC_MAX_ARGS];
	double		y;

	if (!AggCheckCallContext(fcinfo, &aggcxt))
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("ml._train_moments_trans can only be called by an aggregate")));
	if (st == NULL)
	{
		if (PG_ARGISNULL(1) || PG_ARGISNULL(2) || PG_ARGISNULL(3))
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("seed, test_size and sample of ml._train_moments must not be NULL")));
		/* the variadic arguments must be float8 values, not an array */
		check_float8_args(fcinfo, 4, "expected, y and x of ml._train_moments");
		moments_check_args(p, PG_GETARG_INT32(3), PG_GETARG_FLOAT8(2));
		st = moments_new(aggcxt, p, PG_GETARG_INT32(3), PG_GETARG_INT64(1),
						 PG_GETARG_FLOAT8(2), PG_ARGISNULL(4) ? 0.0 : PG_GETARG_FLOAT8(4));
	}
	else if (p != st->p)
		elog(ERROR, "ml._train_moments called with %d and %d features", p, st->p);

	if (PG_ARGISNULL(5))
	{
		st->null_target++;
		PG_RETURN_POINTER(st);
	}
	y = PG_GETARG_FLOAT8(5);
	if (!isfinite(y))
	{
		st->unusable++;
		PG_RETURN_POINTER(st);
	}
	for (int j = 0; j < p; j++)
	{
		if (PG_ARGISNULL(6 + j))
		{
			st->unusable++;
			PG_RETURN_POINTER(st);
		}
		x[j] = PG_GETARG_FLOAT8(6 + j);
	}
	moments_add(st, aggcxt, y, x);
	PG_RETURN_POINTER(st);
}

/* Adds state b to state a (same arguments), a's memory in cxt. */
static void
moments_merge(TrainMoments *a, TrainMoments *b, MemoryContext cxt)
{
	if (a->p != b->p || a->limit != b->limit || a->seed != b->seed ||
		a->test_size != b->test_size)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("partial states of ml._train_moments differ in their arguments")));
	a->null_target += b->null_target;
	a->unusable += b->unusable;
	for (int i = 0; i < Min(b->ntargets, 2); i++)
		moments_note_target(a, b->targets[i]);
	if (b->ntargets > 2)
		a->ntargets = 3;
	for (int side = 0; side < 2; side++)
	{
		const RowSample *s = &b->sample[side];

		moments_flush(b, side);
		LinFitMerge(a->moments[side], b->moments[side]);
		for (int i = 0; i < s->count; i++)
			sample_offer(&a->sample[side], cxt, s->hash[i], s->data + (Size) i * s->width);
		/* b left out nothing below its tau that could be among the smallest */
		a->sample[side].tau = Min(a->sample[side].tau, s->tau);
	}
}

Datum
ml_train_moments_combine(PG_FUNCTION_ARGS)
{
	MemoryContext aggcxt;
	TrainMoments *a = PG_ARGISNULL(0) ? NULL : (TrainMoments *) PG_GETARG_POINTER(0);
	TrainMoments *b = PG_ARGISNULL(1) ? NULL : (TrainMoments *) PG_GETARG_POINTER(1);

	if (!AggCheckCallContext(fcinfo, &aggcxt))
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("ml._train_moments_combine can only be called by an aggregate")));
	if (b == NULL)
	{
		if (a == NULL)
			PG_RETURN_NULL();
		PG_RETURN_POINTER(a);
	}
	/* the result lives in the aggregate context; b may not */
	if (a == NULL)
		a = moments_new(aggcxt, b->p, b->limit, b->seed, b->test_size, 0.0);
	moments_merge(a, b, aggcxt);
	PG_RETURN_POINTER(a);
}

/*
 * The serialised state: a fixed header, the two LinFitStates, then each
 * sample's count, hashes and rows.  Native byte order: it only travels
 * between the processes of one server.
 */
typedef struct MomentsHeader
{
	int32		magic;
	int32		p;
	int32		limit;
	int32		count[2];
	int32		ntargets;
	uint64		tau[2];
	int64		seed;
	double		test_size;
	int64		null_target;
	int64		unusable;
	double		targets[2];
} MomentsHeader;

static bytea *
moments_serialize(TrainMoments *st)
{
	MomentsHeader hd;
	Size		lf = LF_SIZE(st->p);
	Size		len = VARHDRSZ + sizeof(hd) + 2 * lf;
	bytea	   *out;
	char	   *w;

	/* what is buffered joins the co-moments; each sample to its limit */
	for (int side = 0; side < 2; side++)
	{
		moments_flush(st, side);
		sample_compact(&st->sample[side]);
	}
	for (int side = 0; side < 2; side++)
		len += (Size) st->sample[side].count * (sizeof(uint64) + sizeof(double) * (st->p + 1));
	if (!AllocSizeIsValid(len))
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("the state of ml._train_moments is too large to pass between processes")));
	memset(&hd, 0, sizeof(hd));
	hd.magic = MOMENTS_MAGIC;
	hd.p = st->p;
	hd.limit = st->limit;
	hd.count[0] = st->sample[0].count;
	hd.count[1] = st->sample[1].count;
	hd.tau[0] = st->sample[0].tau;
	hd.tau[1] = st->sample[1].tau;
	hd.seed = st->seed;
	hd.test_size = st->test_size;
	hd.null_target = st->null_target;
	hd.unusable = st->unusable;
	hd.ntargets = st->ntargets;
	hd.targets[0] = st->targets[0];
	hd.targets[1] = st->targets[1];

	out = palloc(len);
	SET_VARSIZE(out, len);
	w = VARDATA(out);
	memcpy(w, &hd, sizeof(hd));
	w += sizeof(hd);
	for (int side = 0; side < 2; side++)
	{
		memcpy(w, st->moments[side], lf);
		w += lf;
	}
	for (int side = 0; side < 2; side++)
	{
		const RowSample *s = &st->sample[side];

		for (int i = 0; i < s->count; i++)
		{
			memcpy(w, &s->hash[i], sizeof(uint64));
			w += sizeof(uint64);
			memcpy(w, s->data + (Size) i * s->width, sizeof(double) * s->width);
			w += sizeof(double) * s->width;
		}
	}
	Assert(w == (char *) out + len);
	return out;
}

static void
moments_corrupt(void)
{
	ereport(ERROR,
			(errcode(ERRCODE_DATA_CORRUPTED),
			 errmsg("not a state of ml._train_moments")));
}

/*
 * Reads a serialised state into cxt.  The heap order of each sample is
 * kept as it was written, so no sifting is needed.
 */
static TrainMoments *
moments_deserialize(const bytea *in, MemoryContext cxt)
{
	MomentsHeader hd;
	const char *r = VARDATA_ANY(in);
	Size		len = VARSIZE_ANY_EXHDR(in);
	TrainMoments *st;
	Size		lf;
	Size		need;

	if (len < sizeof(hd))
		moments_corrupt();
	memcpy(&hd, r, sizeof(hd));
	if (hd.magic != MOMENTS_MAGIC || hd.p < 1 || hd.p > LINEAR_MAX_FEATURES || hd.limit < 0 ||
		hd.count[0] < 0 || hd.count[1] < 0 || hd.count[0] > hd.limit || hd.count[1] > hd.limit ||
		!(hd.test_size >= 0.0 && hd.test_size < 1.0) || hd.ntargets < 0 || hd.ntargets > 3)
		moments_corrupt();
	lf = LF_SIZE(hd.p);
	need = sizeof(hd) + 2 * lf +
		((Size) hd.count[0] + hd.count[1]) * (sizeof(uint64) + sizeof(double) * (hd.p + 1));
	if (len != need)
		moments_corrupt();
	r += sizeof(hd);

	st = moments_new(cxt, hd.p, hd.limit, hd.seed, hd.test_size, 0.0);
	st->null_target = hd.null_target;
	st->unusable = hd.unusable;
	st->ntargets = hd.ntargets;
	st->targets[0] = hd.targets[0];
	st->targets[1] = hd.targets[1];
	for (int side = 0; side < 2; side++)
	{
		memcpy(st->moments[side], r, lf);
		if (VARSIZE(st->moments[side]) != lf || st->moments[side]->p != hd.p ||
			st->moments[side]->n < 0)
			moments_corrupt();
		r += lf;
	}
	for (int side = 0; side < 2; side++)
	{
		RowSample  *s = &st->sample[side];
		int			n = hd.count[side];

		s->tau = hd.tau[side];
		if (n == 0)
			continue;
		s->hash = MemoryContextAlloc(cxt, sizeof(uint64) * n);
		s->data = MemoryContextAllocHuge(cxt, sizeof(double) * s->width * (Size) n);
		s->cap = s->count = n;
		for (int i = 0; i < n; i++)
		{
			memcpy(&s->hash[i], r, sizeof(uint64));
			r += sizeof(uint64);
			memcpy(s->data + (Size) i * s->width, r, sizeof(double) * s->width);
			r += sizeof(double) * s->width;
		}
	}
	return st;
}

Datum
ml_train_moments_serialize(PG_FUNCTION_ARGS)
{
	if (!AggCheckCallContext(fcinfo, NULL))
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("ml._train_moments_serialize can only be called by an aggregate")));
	PG_RETURN_BYTEA_P(moments_serialize((TrainMoments *) PG_GETARG_POINTER(0)));
}

Datum
ml_train_moments_deserialize(PG_FUNCTION_ARGS)
{
	if (!AggCheckCallContext(fcinfo, NULL))
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("ml._train_moments_deserialize can only be called by an aggregate")));
	PG_RETURN_POINTER(moments_deserialize(PG_GETARG_BYTEA_PP(0), CurrentMemoryContext));
}

/* ---------- a Newton step of logistic regression ---------- */

/* The settings of ml._logistic_step, parsed once per query. */
typedef struct StepSettings
{
	int			p;
	int64		seed;
	uint64		cut;			/* rows hashed below are held out */
	double		positive;		/* the target of class 1 */
	double		weight[2];		/* per class */
	double		l2;
	double	   *point;			/* theta[p + 1], center[p], inv_scale[p] */
} StepSettings;

#define STEP_FIXED_SETTINGS 5	/* test_size, positive, weight[2], l2 */

static StepSettings *
step_settings(FunctionCallInfo fcinfo, int p)
{
	StepSettings *ss = fcinfo->flinfo->fn_extra;
	ArrayType  *a;
	const double *v;
	int			len;

	if (ss != NULL && ss->p == p)
		return ss;
	if (PG_ARGISNULL(1) || PG_ARGISNULL(2))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("seed and settings of ml._logistic_step must not be NULL")));
	check_float8_args(fcinfo, 3, "y and x of ml._logistic_step");
	a = PG_GETARG_ARRAYTYPE_P(2);
	len = ARR_NDIM(a) == 1 ? ARR_DIMS(a)[0] : 0;
	if (p < 1 || p > MOMENTS_MAX_ARGS || len != STEP_FIXED_SETTINGS + 3 * p + 1 ||
		(ARR_HASNULL(a) && array_contains_nulls(a)))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid arguments to ml._logistic_step")));
	v = (const double *) ARR_DATA_PTR(a);
	for (int i = 0; i < len; i++)
		if (!isfinite(v[i]))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("invalid arguments to ml._logistic_step")));
	if (!(v[0] >= 0.0 && v[0] < 1.0) || !(v[2] > 0) || !(v[3] > 0) || !(v[4] >= 0))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid arguments to ml._logistic_step")));
	ss = MemoryContextAlloc(fcinfo->flinfo->fn_mcxt, sizeof(StepSettings));
	ss->p = p;
	ss->seed = PG_GETARG_INT64(1);
	ss->cut = v[0] > 0 ? (uint64) ldexp(v[0], 64) : 0;
	ss->positive = v[1];
	ss->weight[0] = v[2];
	ss->weight[1] = v[3];
	ss->l2 = v[4];
	ss->point = MemoryContextAlloc(fcinfo->flinfo->fn_mcxt, sizeof(double) * (3 * p + 1));
	memcpy(ss->point, v + STEP_FIXED_SETTINGS, sizeof(double) * (3 * p + 1));
	fcinfo->flinfo->fn_extra = ss;
	return ss;
}

/*
 * ml_logistic_step_trans_any adds a row to a Newton step of ml.train's
 * aggregate path: seed, settings (see aggregates.sql), then y and the
 * features as float8 arguments.  It takes the rows ml._train_moments took
 * as training rows: a row with a NULL target is skipped, a hold-out row
 * (by the same hash) too.  The moments scan, in the same snapshot, saw no
 * NULL feature, NaN or Infinity and two targets only, so any is an error.
 */
Datum
ml_logistic_step_trans_any(PG_FUNCTION_ARGS)
{
	MemoryContext aggcxt;
	LogStepState *s = PG_ARGISNULL(0) ? NULL : LogStepFromBytea(PG_GETARG_BYTEA_P(0));
	int			p = PG_NARGS() - 4;
	StepSettings *ss;
	double		x[FUNC_MAX_ARGS];
	double		y;
	bool		positive;

	if (!AggCheckCallContext(fcinfo, &aggcxt))
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("ml._logistic_step_trans can only be called by an aggregate")));
	ss = step_settings(fcinfo, p);
	if (s == NULL)
		s = LogStepNew(p, ss->l2, ss->point, ss->point + p + 1, ss->point + 2 * p + 1);
	else if (s->p != p)
		elog(ERROR, "ml._logistic_step called with %d and %d features", p, s->p);
	if (PG_ARGISNULL(3))
		PG_RETURN_POINTER(s);
	y = PG_GETARG_FLOAT8(3);
	for (int j = 0; j < p; j++)
	{
		if (PG_ARGISNULL(4 + j))
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("a feature of the source became NULL while ml.train read it")));
		x[j] = PG_GETARG_FLOAT8(4 + j);
		if (!isfinite(x[j]))
			ereport(ERROR,
					(errcode(ERRCODE_DATA_EXCEPTION),
					 errmsg("a feature of the source became %g while ml.train read it", x[j])));
	}
	if (row_hash(y, x, p, ss->seed) < ss->cut)
		PG_RETURN_POINTER(s);
	positive = y == ss->positive;
	LogStepAdd(s, positive ? 1.0 : 0.0, ss->weight[positive], x);
	PG_RETURN_POINTER(s);
}

/* ---------- ml.train's side ---------- */

static bool
numeric_type(Oid typid)
{
	switch (getBaseType(typid))
	{
		case INT2OID:
		case INT4OID:
		case INT8OID:
		case FLOAT4OID:
		case FLOAT8OID:
		case NUMERICOID:
			return true;
		default:
			return false;
	}
}

/* Do the options leave every column to defaults the moments determine? */
static bool
options_allow(const PipelineOptions *opts)
{
	const ColumnOptions *d = &opts->defaults;
	ListCell   *lc;

	if (opts->interactions != NIL)
		return false;
	/* per-column options: only exclusions, which the scan leaves out */
	foreach(lc, opts->columns)
		if (!((const ColumnOptions *) lfirst(lc))->exclude)
			return false;
	if (d->log1p || d->clip_set || d->bins > 0 || d->parts != NIL)
		return false;
	if (d->impute_set && d->impute != IMPUTE_MEAN && d->impute != IMPUTE_ERROR)
		return false;
	return d->scale == SCALE_DEFAULT || d->scale == SCALE_NONE || d->scale == SCALE_STANDARD;
}

/* The planner's estimate of the rows of a prepared source. */
static double
estimated_rows(SPIPlanPtr plan)
{
	CachedPlan *cp = SPI_plan_get_cached_plan(plan);
	double		rows = 0.0;

	if (cp == NULL)
		return 0.0;
	if (list_length(cp->stmt_list) == 1 && IsA(linitial(cp->stmt_list), PlannedStmt))
		rows = ((PlannedStmt *) linitial(cp->stmt_list))->planTree->plan_rows;
	/* an unsaved plan's cached plan belongs to no resource owner */
#if PG_VERSION_NUM >= 140000
	ReleaseCachedPlan(cp, NULL);
#else
	ReleaseCachedPlan(cp, false);
#endif
	return rows;
}

/* Sorts a side's sample entries by hash, for a deterministic row order. */
static int
sample_order_cmp(const void *a, const void *b, void *arg)
{
	const RowSample *s = arg;
	uint64		ha = s->hash[*(const int *) a];
	uint64		hb = s->hash[*(const int *) b];

	if (ha != hb)
		return ha < hb ? -1 : 1;
	/* equal hashes: compare the rows themselves */
	return memcmp(s->data + (Size) (*(const int *) a) * s->width,
				  s->data + (Size) (*(const int *) b) * s->width,
				  sizeof(double) * s->width);
}

/*
 * TrainStreamRead reads source for a linear or ridge fit (spec, hp) by the
 * aggregate, when the path applies (see the file comment) and the source
 * is estimated at ml.aggregate_train_min_rows rows or more.  On success it
 * fills out, in the current memory context, and returns true; it returns
 * false when the in-memory path must read the source instead.
 */
bool
TrainStreamRead(const char *source, const char *target, const PipelineOptions *opts,
				const AlgoSpec *spec, const Hyperparams *hp, double test_size,
				StreamData *out)
{
	MemoryContext caller = CurrentMemoryContext;
	char	   *query;
	SPIPlanPtr	plan;
	CachedPlanSource *ps;
	TupleDesc	desc;
	int		   *attnums;
	int			p = 0;
	int			target_att = -1;
	int			limit;
	double		row_bytes;
	double		expected;
	StringInfoData sql;
	size_t		qlen;
	bool		ok = false;
	bool		classifier = spec == &logistic_algo;
	const char *target_cast = "::float8";
	ListCell   *lc;

	if (ml_aggregate_train_min_rows < 0 || target == NULL ||
		(spec != &linear_algo && spec != &ridge_algo && !classifier) || !options_allow(opts))
		return false;
	/* debugger rules watch L-BFGS's iterations, which this path has not */
	if (classifier && hp->rules)
		return false;

	query = ReaderSourceQuery(source);
	qlen = strlen(query);
	while (qlen > 0 && isspace((unsigned char) query[qlen - 1]))
		qlen--;
	if (qlen == 0 || query[qlen - 1] == ';')
		return false;

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	ps = SourcePrepare(query, &plan);
	desc = ps->resultDesc;
	attnums = palloc(sizeof(int) * Max(desc->natts, 1));
	for (int i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, i);
		const char *name = NameStr(att->attname);

		if (strcmp(name, target) == 0)
		{
			/* a classifier's target may also be a bool, read as 0 or 1 */
			if (classifier && getBaseType(att->atttypid) == BOOLOID)
				target_cast = "::int4::float8";
			else if (!numeric_type(att->atttypid))
				goto done;
			target_att = i;
		}
		else if (!list_member(opts->exclude, makeString((char *) name)))
		{
			if (!numeric_type(att->atttypid))
				goto done;
			attnums[p++] = i;
		}
	}
	/* the in-memory path reports a missing target, excluded names, ... */
	if (target_att < 0 || p < 1 || p > LINEAR_MAX_FEATURES)
		goto done;
	/* a Newton step takes the features as arguments of their own */
	if (classifier && p > MOMENTS_MAX_ARGS)
		goto done;
	foreach(lc, opts->exclude)
	{
		bool		found = false;

		for (int i = 0; i < desc->natts && !found; i++)
			found = strcmp(NameStr(TupleDescAttr(desc, i)->attname), strVal(lfirst(lc))) == 0;
		if (!found)
			goto done;
	}
	/*
	 * Large sources only: below 100,000 rows (the default) reading into
	 * memory is about as fast, and it splits by row order and measures
	 * every hold-out row; a source too large to read into memory (more
	 * than half of ml.max_train_memory) always qualifies.
	 */
	expected = estimated_rows(plan);
	if (expected < (double) ml_aggregate_train_min_rows &&
		expected * (p + 1) * sizeof(double) <= (double) ml_max_train_memory * 1024.0 / 2.0)
		goto done;

	/*
	 * The two samples and the system must fit in ml.max_train_memory; the
	 * samples get what the system leaves, up to TRAIN_STREAM_SAMPLE_ROWS
	 * rows each.
	 */
	row_bytes = (double) (p + 1) * sizeof(double) + sizeof(uint64) + sizeof(int32);
	{
		double		budget = (double) ml_max_train_memory * 1024.0 / 2.0 -
			4.0 * (double) LF_SIZE(p) - 2.0 * (double) p * p * sizeof(double);

		limit = (int) Min((double) TRAIN_STREAM_SAMPLE_ROWS, budget / (2.0 * row_bytes));
		if (limit < 1000)
			goto done;
	}

	initStringInfo(&sql);
	if (p <= MOMENTS_MAX_ARGS)
	{
		/* each feature an argument of its own: no array to build per row */
		appendStringInfo(&sql, "SELECT ml._train_moments(" INT64_FORMAT "::int8, %.17g::float8, %d, %.0f::float8, s.%s%s",
						 hp->seed, test_size, limit, expected,
						 quote_identifier(NameStr(TupleDescAttr(desc, target_att)->attname)),
						 target_cast);
		for (int j = 0; j < p; j++)
			appendStringInfo(&sql, ", s.%s::float8",
							 quote_identifier(NameStr(TupleDescAttr(desc, attnums[j])->attname)));
		appendStringInfo(&sql, ") FROM (\n%.*s\n) s", (int) qlen, query);
	}
	else
	{
		appendStringInfo(&sql, "SELECT ml._train_moments(s.%s::float8, ARRAY[",
						 quote_identifier(NameStr(TupleDescAttr(desc, target_att)->attname)));
		for (int j = 0; j < p; j++)
			appendStringInfo(&sql, "%ss.%s::float8", j ? ", " : "",
							 quote_identifier(NameStr(TupleDescAttr(desc, attnums[j])->attname)));
		appendStringInfo(&sql, "]::float8[], " INT64_FORMAT "::int8, %.17g::float8, %d, %.0f::float8) FROM (\n%.*s\n) s",
						 hp->seed, test_size, limit, expected, (int) qlen, query);
	}
	out->query = MemoryContextStrdup(caller, sql.data);
	out->test_size = test_size;
	if (classifier)
	{
		StringInfoData step;

		/* each Newton step's scan: the point is its parameter $1 */
		initStringInfo(&step);
		appendStringInfo(&step, "SELECT ml._logistic_step(" INT64_FORMAT "::int8, $1, s.%s%s",
						 hp->seed, quote_identifier(NameStr(TupleDescAttr(desc, target_att)->attname)),
						 target_cast);
		for (int j = 0; j < p; j++)
			appendStringInfo(&step, ", s.%s::float8",
							 quote_identifier(NameStr(TupleDescAttr(desc, attnums[j])->attname)));
		appendStringInfo(&step, ") FROM (\n%.*s\n) s", (int) qlen, query);
		out->step_query = MemoryContextStrdup(caller, step.data);
	}
	/* no row limit: the executor runs a limited plan without workers */
	if (SPI_execute(sql.data, true, 0) != SPI_OK_SELECT || SPI_processed != 1)
		elog(ERROR, "the aggregate scan of the source failed");
	{
		bool		isnull;
		Datum		d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
		TrainMoments *st;
		int64		ntrain;
		int64		ntest;
		int			ns[2];
		int		  **order;
		DataSet    *ds;
		int64		nrows;

		if (isnull)
			goto done;			/* no rows: the in-memory path says so */
		st = moments_deserialize(DatumGetByteaPP(d), caller);
		ntrain = st->moments[0]->n;
		ntest = st->moments[1]->n;
		if (st->unusable > 0 || ntrain < p || (test_size > 0 && ntest == 0))
		{
			elog(DEBUG1, "ml.train reads the source into memory: %lld rows need imputation or an error",
				 (long long) st->unusable);
			goto done;
		}
		/* a binary classifier: two targets, else the in-memory path */
		if (classifier && st->ntargets != 2)
			goto done;

		/* the sample rows as a DataSet: training rows first */
		MemoryContextSwitchTo(caller);
		ns[0] = st->sample[0].count;
		ns[1] = st->sample[1].count;
		nrows = ns[0] + ns[1];
		ds = palloc0(sizeof(DataSet));
		ds->nrows = nrows;
		ds->ncols = p;
		ds->cols = palloc0(sizeof(DataColumn) * p);
		ds->target = palloc0(sizeof(DataColumn));
		ds->null_targets = st->null_target;
		for (int j = 0; j <= p; j++)
		{
			DataColumn *col = j < p ? &ds->cols[j] : ds->target;
			Form_pg_attribute att = TupleDescAttr(desc, j < p ? attnums[j] : target_att);

			col->name = pstrdup(NameStr(att->attname));
			col->source = col->name;
			col->typid = att->atttypid;
			col->values = palloc_extended(sizeof(double) * Max(nrows, 1), MCXT_ALLOC_HUGE);
		}
		order = palloc(sizeof(int *) * 2);
		for (int side = 0, row = 0; side < 2; side++)
		{
			RowSample  *s = &st->sample[side];

			order[side] = palloc(sizeof(int) * Max(ns[side], 1));
			for (int i = 0; i < ns[side]; i++)
				order[side][i] = i;
			qsort_arg(order[side], ns[side], sizeof(int), sample_order_cmp, s);
			for (int i = 0; i < ns[side]; i++, row++)
			{
				const double *v = s->data + (Size) order[side][i] * s->width;

				ds->target->values[row] = v[0];
				for (int j = 0; j < p; j++)
					ds->cols[j].values[row] = v[j + 1];
			}
		}
		ds->bytes = sizeof(double) * (p + 1) * (Size) nrows;

		/* both classes among the training sample's rows, as encoded */
		if (classifier)
		{
			bool		seen[2] = {false, false};

			for (int i = 0; i < ns[0]; i++)
				seen[ds->target->values[i] == Max(st->targets[0], st->targets[1])] = true;
			if (!seen[0] || !seen[1])
				goto done;
		}

		out->ds = ds;
		out->ntrain_sample = ns[0];
		out->ntest_sample = ns[1];
		out->train_rows = palloc(sizeof(int64) * Max(ns[0], 1));
		out->test_rows = palloc(sizeof(int64) * Max(ns[1], 1));
		for (int64 i = 0; i < ns[0]; i++)
			out->train_rows[i] = i;
		for (int64 i = 0; i < ns[1]; i++)
			out->test_rows[i] = ns[0] + i;
		out->ntrain = ntrain;
		out->ntest = ntest;
		out->moments = st->moments[0];
		ok = true;
	}

done:
	MemoryContextSwitchTo(caller);
	SPI_finish();
	MemoryContextSwitchTo(caller);
	return ok;
}

/*
 * Where a Newton step of logistic regression sums: the training sample in
 * memory, or (full) every training row of the source, by a scan with
 * ml._logistic_step.
 */
typedef struct StepSource
{
	const StreamData *sd;
	const Target *t;
	int			p;
	double		test_size;
	double		positive;		/* the target of class 1 */
	double		weight[2];		/* per class */
	double		l2;
	const double *center;
	const double *inv_scale;
	bool		full;
} StepSource;

/* The sums of a Newton step at theta (w, then b), in the current context. */
static LogStepState *
step_eval(const StepSource *src, const double *theta)
{
	int			p = src->p;
	LogStepState *s;

	if (!src->full)
	{
		const DataSet *ds = src->sd->ds;
		double	   *x = palloc(sizeof(double) * p);

		s = LogStepNew(p, src->l2, theta, src->center, src->inv_scale);
		for (int64 k = 0; k < src->sd->ntrain_sample; k++)
		{
			int64		i = src->sd->train_rows[k];
			int			c = (int) src->t->y[i];

			for (int j = 0; j < p; j++)
				x[j] = ds->cols[j].values[i];
			LogStepAdd(s, (double) c, src->weight[c], x);
		}
		pfree(x);
	}
	else
	{
		int			len = STEP_FIXED_SETTINGS + 3 * p + 1;
		Datum	   *v = palloc(sizeof(Datum) * len);
		Oid			argtype = FLOAT8ARRAYOID;
		Datum		arg;
		Datum		d;
		bool		isnull;
		bytea	   *b;
		bytea	   *copy;

		v[0] = Float8GetDatum(src->test_size);
		v[1] = Float8GetDatum(src->positive);
		v[2] = Float8GetDatum(src->weight[0]);
		v[3] = Float8GetDatum(src->weight[1]);
		v[4] = Float8GetDatum(src->l2);
		for (int j = 0; j <= p; j++)
			v[STEP_FIXED_SETTINGS + j] = Float8GetDatum(theta[j]);
		for (int j = 0; j < p; j++)
		{
			v[STEP_FIXED_SETTINGS + p + 1 + j] = Float8GetDatum(src->center[j]);
			v[STEP_FIXED_SETTINGS + 2 * p + 1 + j] = Float8GetDatum(src->inv_scale[j]);
		}
		arg = PointerGetDatum(construct_array(v, len, FLOAT8OID, sizeof(float8),
											  FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
		/* no row limit: the executor runs a limited plan without workers */
		if (SPI_execute_with_args(src->sd->step_query, 1, &argtype, &arg, NULL, true, 0) !=
			SPI_OK_SELECT || SPI_processed != 1)
			elog(ERROR, "the aggregate scan of a Newton step failed");
		d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
		if (isnull)
			ereport(ERROR,
					(errcode(ERRCODE_DATA_EXCEPTION),
					 errmsg("the source lost its training rows while ml.train read it")));
		b = DatumGetByteaP(d);
		copy = palloc_extended(VARSIZE(b), MCXT_ALLOC_HUGE);
		memcpy(copy, b, VARSIZE(b));
		SPI_freetuptable(SPI_tuptable);
		s = LogStepFromBytea(copy);
		if (s->n != src->sd->ntrain)
			ereport(ERROR,
					(errcode(ERRCODE_DATA_EXCEPTION),
					 errmsg("a Newton step counted %lld training rows, not %lld",
							(long long) s->n, (long long) src->sd->ntrain)));
		pfree(v);
	}
	return s;
}

/*
 * Newton's method from theta (updated in place) over src, at most
 * max_iter evaluations, until the gradient's largest component is at most
 * tol, or a step lowers the objective by no more than 1e-14 of it (or of
 * 1), as logistic.c's L-BFGS counts a stall; the step from that point is
 * taken too (a Newton step near the optimum only gains precision).  A
 * step that raises the objective is halved (and evaluated again) until it
 * does not.
 */
static void
step_newton(const StepSource *src, double *theta, int max_iter, double tol,
			int *evaluations, bool *converged)
{
	int			w = src->p + 1;
	double	   *best = palloc(sizeof(double) * w);
	double	   *next = palloc(sizeof(double) * w);
	double		fbest = INFINITY;
	int			halvings = 0;

	*evaluations = 0;
	*converged = false;
	while (*evaluations < max_iter)
	{
		LogStepState *s;
		double		f;
		double		gmax;

		CHECK_FOR_INTERRUPTS();
		s = step_eval(src, theta);
		(*evaluations)++;
		LogStepSolve(s, next, &f, &gmax);
		pfree(s);
		if (gmax <= tol)
		{
			memcpy(theta, next, sizeof(double) * w);
			*converged = true;
			break;
		}
		/* worse than the best point (beyond rounding): halve the step */
		if (f > fbest + 1e-13 * fabs(fbest))
		{
			if (++halvings > 30)
				break;
			for (int j = 0; j < w; j++)
				theta[j] = best[j] + 0.5 * (theta[j] - best[j]);
			continue;
		}
		halvings = 0;
		/* stalled, as L-BFGS counts it: the last step gained nothing */
		if (isfinite(fbest) && fbest - f <= 1e-14 * Max(fabs(f), 1.0))
		{
			memcpy(theta, next, sizeof(double) * w);
			*converged = true;
			break;
		}
		fbest = f;
		memcpy(best, theta, sizeof(double) * w);
		memcpy(theta, next, sizeof(double) * w);
	}
	if (!*converged && isfinite(fbest))
		memcpy(theta, best, sizeof(double) * w);
	pfree(best);
	pfree(next);
}

/*
 * Fits binary logistic regression on every training row of the source by
 * Newton steps, each one scan with ml._logistic_step (in parallel workers
 * when the planner gives some): the objective and class weights of
 * logistic.c, on the features as the pipeline standardises them.  The
 * start is the fit on the training sample, so that one or two scans
 * usually reach the tolerance.
 */
static void
logistic_stream_fit(const StreamData *sd, const Target *t, const Hyperparams *hp,
					const double *center, const double *inv_scale, AlgoModel *fitted)
{
	const LinFitState *m = sd->moments;
	int			p = m->p;
	StepSource	src;
	double	   *theta = palloc0(sizeof(double) * (p + 1));
	double		v0 = t->label_values[0];
	double		v1 = t->label_values[1];
	int64		n1 = (int64) llround((double) m->n * (m->mean_y - v0) / (v1 - v0));
	int64		count[2];
	double		tol = HpFloat(hp, "tol");
	int			max_iter = HpInt(hp, "max_iter");
	int			warm_iter;
	int			iterations;
	bool		warm_converged;
	bool		converged;

	count[1] = Min(Max(n1, 1), m->n - 1);
	count[0] = m->n - count[1];
	memset(&src, 0, sizeof(src));
	src.sd = sd;
	src.t = t;
	src.p = p;
	src.test_size = sd->test_size;
	src.positive = v1;
	for (int c = 0; c < 2; c++)
		src.weight[c] = HpString(hp, "class_weight") ?
			(double) m->n / (2.0 * (double) count[c]) : 1.0;
	src.l2 = strcmp(HpString(hp, "penalty"), "l2") == 0 ?
		1.0 / (HpFloat(hp, "C") * (src.weight[0] * count[0] + src.weight[1] * count[1])) : 0.0;
	src.center = center;
	src.inv_scale = inv_scale;

	/* the start: the same objective on the training sample, in memory */
	src.full = false;
	step_newton(&src, theta, 50, tol * 1e-3, &warm_iter, &warm_converged);
	if (!warm_converged)
		memset(theta, 0, sizeof(double) * (p + 1));

	src.full = true;
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	step_newton(&src, theta, max_iter, tol, &iterations, &converged);
	SPI_finish();
	if (!converged)
		ereport(NOTICE,
				(errmsg("logistic regression did not converge in %d Newton steps", iterations),
				 errhint("Raise max_iter, or scale the features.")));
	LogisticSetBinary(fitted, theta, theta[p], iterations, converged);
	pfree(theta);
}

/*
 * TrainStreamFit fits the model of an aggregate read: the pipeline's
 * structure on the training sample, its statistics and the least-squares
 * system from the co-moments of every training row.
 */
void
TrainStreamFit(const StreamData *sd, const Target *t, const PipelineOptions *opts,
			   const AlgoSpec *spec, const Hyperparams *hp, AlgoModel *fitted,
			   Model *model)
{
	const LinFitState *m = sd->moments;
	int			p = m->p;
	MLTask		task = spec == &logistic_algo ? ML_TASK_CLASSIFICATION : ML_TASK_REGRESSION;
	PipelineTarget ptarget = {task, t->y, task == ML_TASK_CLASSIFICATION ? t->nclasses : 0};
	Pipeline   *pl = PipelineFit(sd->ds, sd->train_rows, sd->ntrain_sample, opts,
								 spec->default_scale, spec->keeps_missing, &ptarget);
	double	   *center = palloc(sizeof(double) * p);
	double	   *inv_scale = palloc(sizeof(double) * p);

	if (pl->ncolumns != p || pl->nfeatures != p)
		elog(ERROR, "the pipeline of an aggregate fit has %d columns and %d features, not %d",
			 pl->ncolumns, pl->nfeatures, p);
	for (int j = 0; j < p; j++)
	{
		/* the diagonal of the packed upper triangle: (j, j) */
		double		m2 = LF_CXX(m)[(Size) j * (j + 1) / 2 + j];

		PipelineSetMoments(pl, j, m->n, LF_MEAN_X(m)[j], m2);
		center[j] = pl->columns[j].center;
		inv_scale[j] = pl->columns[j].inv_scale;
	}

	memset(fitted, 0, sizeof(*fitted));
	fitted->spec = spec;
	fitted->task = task;
	fitted->p = p;
	if (task == ML_TASK_CLASSIFICATION)
	{
		fitted->nclasses = t->nclasses;
		logistic_stream_fit(sd, t, hp, center, inv_scale, fitted);
	}
	else
		LinearFitMoments(fitted, hp, m, center, inv_scale);

	memset(model, 0, sizeof(*model));
	model->task = task;
	model->pipeline = pl;
	model->fitted = fitted;
	model->nclasses = t->nclasses;
	model->labels = t->labels;
	model->label_values = t->label_values;
	model->labels_numeric = t->labels_numeric;
}
