/*-------------------------------------------------------------------------
 * src/prep/profile_agg.c
 *		The statistics of ml.profile as parallel-safe aggregates over bytea
 *		states, so that parallel workers, or the servers of a distributed
 *		table, each summarise their own rows and one place merges the
 *		summaries:
 *
 *		ml.numeric_stats(float8): the counts, the range, the moments (two
 *		sets merged as Chan, Golub and LeVeque do) and a uniform sample of
 *		at most PROFILE_SAMPLE finite values, for the quantiles, outliers
 *		and histogram.  Two samples merge into a uniform sample of the
 *		union: how many values come from each side is drawn as a
 *		hypergeometric variate, then that many from each at random.  Up to
 *		PROFILE_SAMPLE values, the sample is every value, and the figures
 *		are exact however the rows were split.
 *
 *		ml.approx_distinct(anyelement): a HyperLogLog sketch of 2^14
 *		one-byte registers over the values' 64-bit hashes, with the type's
 *		equality (the extended hash function of its hash operator class,
 *		else its text form).  Registers merge by their maximum.
 *
 * The functions change the state they are given in place, and make a new
 * one (for the first row, or a sample that needs room) in the current
 * memory context: the aggregate copies a state it did not have before
 * into its own context and frees the old one.
 *-------------------------------------------------------------------------
 */
#include "prep/profile.h"

#include <math.h>

#include "access/htup_details.h"
#include "access/parallel.h"
#include "catalog/pg_type.h"
#include "common/hashfn.h"
#include "port/pg_bitutils.h"
#include "utils/builtins.h"
#include "utils/float.h"
#include "utils/lsyscache.h"
#include "utils/typcache.h"

PG_FUNCTION_INFO_V1(ml_numeric_stats_trans);
PG_FUNCTION_INFO_V1(ml_numeric_stats_combine);
PG_FUNCTION_INFO_V1(ml_numeric_stats_final);
PG_FUNCTION_INFO_V1(ml_approx_distinct_trans);
PG_FUNCTION_INFO_V1(ml_approx_distinct_combine);
PG_FUNCTION_INFO_V1(ml_approx_distinct_final);

/* ---------------------------------------------------------------- common */

static bytea *
copy_state(const bytea *b)
{
	bytea	   *copy = palloc_extended(VARSIZE(b), MCXT_ALLOC_HUGE);

	memcpy(copy, b, VARSIZE(b));
	return copy;
}

/* ---------------------------------------------------------------- numeric_stats */

typedef struct NumStats
{
	int32		vl_len_;		/* varlena header */
	int32		magic;
	int32		cap;			/* sample slots */
	int32		size;			/* sample values: Min(n, PROFILE_SAMPLE) */
	int64		nulls;
	int64		count;			/* values that are not NULL */
	int64		nans;
	int64		infs;
	int64		zeros;
	int64		negatives;
	double		min;			/* over the values that are not NaN */
	double		max;
	int64		n;				/* finite values: */
	double		mean;
	double		m2;				/* sums of the 2nd and 3rd powers of the */
	double		m3;				/* deviations from the mean */
	double		fmin;
	double		fmax;
	pg_prng_state rng;
	double		sample[FLEXIBLE_ARRAY_MEMBER];
} NumStats;

#define NS_MAGIC	0x4d4c4e31	/* "MLN1" */
#define NS_SEED		UINT64CONST(0x6d6c6e756d)
#define NS_INITIAL	256			/* sample slots of a new state */
#define NS_SIZE(cap)	(offsetof(NumStats, sample) + sizeof(double) * (Size) (cap))

/*
 * A new state with room for cap sample values.  Each parallel worker seeds
 * its own generator, so that the samples of a scan's parts are drawn
 * independently.
 */
static NumStats *
ns_new(int cap)
{
	NumStats   *s = palloc0(NS_SIZE(cap));

	SET_VARSIZE(s, NS_SIZE(cap));
	s->magic = NS_MAGIC;
	s->cap = cap;
	s->min = get_float8_infinity();
	s->max = -get_float8_infinity();
	s->fmin = get_float8_infinity();
	s->fmax = -get_float8_infinity();
	pg_prng_seed(&s->rng, NS_SEED ^ ((uint64) (ParallelWorkerNumber + 1) *
									 UINT64CONST(0x9e3779b97f4a7c15)));
	return s;
}

/*
 * A copy of s with room for cap sample values, the free slots zeroed (a
 * state is a value users see).  The old state is left to the aggregate,
 * which frees it when it takes the new one.
 */
static NumStats *
ns_grow(const NumStats *s, int cap)
{
	NumStats   *g = palloc_extended(NS_SIZE(cap), MCXT_ALLOC_HUGE | MCXT_ALLOC_ZERO);

	memcpy(g, s, NS_SIZE(s->size));
	SET_VARSIZE(g, NS_SIZE(cap));
	g->cap = cap;
	return g;
}

static NumStats *
ns_arg(FunctionCallInfo fcinfo, int argno)
{
	NumStats   *s = (NumStats *) MLAlignedBytea(PG_GETARG_BYTEA_P(argno));

	if (VARSIZE(s) < offsetof(NumStats, sample) || s->magic != NS_MAGIC ||
		s->cap < 0 || s->cap > PROFILE_SAMPLE || VARSIZE(s) != NS_SIZE(s->cap) ||
		s->n < 0 || s->nans < 0 || s->infs < 0 || s->nulls < 0 ||
		s->count != s->n + s->nans + s->infs || s->zeros < 0 || s->negatives < 0 ||
		s->zeros + s->negatives > s->count - s->nans ||
		s->size != Min(s->n, PROFILE_SAMPLE) || s->size > s->cap ||
		(s->n > 0 && !(s->fmin <= s->fmax && isfinite(s->fmin) && isfinite(s->fmax))))
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("not a state of ml.numeric_stats")));
	return s;
}

/* Adds a finite value: the moments, the range, the sample. */
static NumStats *
ns_add_finite(NumStats *s, double x)
{
	ProfileMomentsAdd(&s->n, &s->mean, &s->m2, &s->m3, x);
	if (x < s->fmin)
		s->fmin = x;
	if (x > s->fmax)
		s->fmax = x;

	if (s->size < PROFILE_SAMPLE)
	{
		if (s->size == s->cap)
			s = ns_grow(s, Min(s->cap * 2, PROFILE_SAMPLE));
		s->sample[s->size++] = x;
	}
	else
	{
		/* algorithm R: the n-th value replaces one with probability K / n */
		uint64		j = pg_prng_uint64_range(&s->rng, 0, (uint64) s->n - 1);

		if (j < PROFILE_SAMPLE)
			s->sample[j] = x;
	}
	return s;
}

/*
 * ml_numeric_stats_trans adds a value: NULL, NaN, an infinity or a finite
 * number, each counted as ml.profile counts a numeric column's values.
 */
Datum
ml_numeric_stats_trans(PG_FUNCTION_ARGS)
{
	NumStats   *s;
	double		x;

	if (!AggCheckCallContext(fcinfo, NULL))
		MLNotInAggregate("ml._numeric_stats_trans");
	s = PG_ARGISNULL(0) ? ns_new(NS_INITIAL) : ns_arg(fcinfo, 0);

	if (PG_ARGISNULL(1))
	{
		s->nulls++;
		PG_RETURN_POINTER(s);
	}
	x = PG_GETARG_FLOAT8(1);
	s->count++;
	if (isnan(x))
	{
		s->nans++;
		PG_RETURN_POINTER(s);
	}
	if (x == 0.0)
	{
		s->zeros++;
		x = 0.0;				/* -0 counts as 0 */
	}
	else if (x < 0.0)
		s->negatives++;
	if (x < s->min)
		s->min = x;
	if (x > s->max)
		s->max = x;
	if (isinf(x))
	{
		s->infs++;
		PG_RETURN_POINTER(s);
	}
	PG_RETURN_POINTER(ns_add_finite(s, x));
}

/* Picks k of the n values of v at random into the front of v. */
static void
pick_front(pg_prng_state *rng, double *v, int n, int k)
{
	for (int i = 0; i < k; i++)
	{
		int			j = i + (int) pg_prng_uint64_range(rng, 0, (uint64) (n - 1 - i));
		double		t = v[i];

		v[i] = v[j];
		v[j] = t;
	}
}

/*
 * Merges b into a (which the caller owns) and returns the merged state,
 * which may be a new one when the sample needs room.
 */
static NumStats *
ns_merge(NumStats *a, const NumStats *b)
{
	int64		n = a->n + b->n;

	if (b->n > 0)
	{
		int			size = (int) Min(n, PROFILE_SAMPLE);

		if (a->cap < size)
			a = ns_grow(a, size);
		if (n <= PROFILE_SAMPLE)
			memcpy(a->sample + a->size, b->sample, sizeof(double) * b->size);
		else
		{
			/*
			 * Draw PROFILE_SAMPLE of the n values without replacement: how
			 * many from a's side follows the hypergeometric law, and a's
			 * and b's samples are uniform samples of their sides.
			 */
			double	   *bv = palloc_extended(sizeof(double) * b->size, MCXT_ALLOC_HUGE);
			int64		rest_a = a->n;
			int64		rest_b = b->n;
			int			from_a = 0;

			for (int i = 0; i < PROFILE_SAMPLE; i++)
			{
				if (pg_prng_double(&a->rng) * (double) (rest_a + rest_b) < (double) rest_a)
				{
					from_a++;
					rest_a--;
				}
				else
					rest_b--;
			}
			Assert(from_a <= a->size && PROFILE_SAMPLE - from_a <= b->size);
			memcpy(bv, b->sample, sizeof(double) * b->size);
			pick_front(&a->rng, a->sample, a->size, from_a);
			pick_front(&a->rng, bv, b->size, PROFILE_SAMPLE - from_a);
			memcpy(a->sample + from_a, bv, sizeof(double) * (PROFILE_SAMPLE - from_a));
			pfree(bv);
		}
		a->size = size;

		if (a->n == 0)
		{
			a->mean = b->mean;
			a->m2 = b->m2;
			a->m3 = b->m3;
		}
		else
		{
			double		na = (double) a->n;
			double		nb = (double) b->n;
			double		nn = na + nb;
			double		delta = b->mean - a->mean;

			a->m3 += b->m3 + delta * delta * delta * na * nb * (na - nb) / (nn * nn) +
				3.0 * delta * (na * b->m2 - nb * a->m2) / nn;
			a->m2 += b->m2 + delta * delta * na * nb / nn;
			a->mean += delta * nb / nn;
		}
		a->n = n;
		a->fmin = Min(a->fmin, b->fmin);
		a->fmax = Max(a->fmax, b->fmax);
	}
	a->nulls += b->nulls;
	a->count += b->count;
	a->nans += b->nans;
	a->infs += b->infs;
	a->zeros += b->zeros;
	a->negatives += b->negatives;
	if (b->count - b->nans > 0)
	{
		a->min = Min(a->min, b->min);
		a->max = Max(a->max, b->max);
	}
	return a;
}

/* ml_numeric_stats_combine merges two partial states. */
Datum
ml_numeric_stats_combine(PG_FUNCTION_ARGS)
{
	NumStats   *a;
	NumStats   *b;

	if (!AggCheckCallContext(fcinfo, NULL))
		MLNotInAggregate("ml._numeric_stats_combine");
	a = PG_ARGISNULL(0) ? NULL : ns_arg(fcinfo, 0);
	b = PG_ARGISNULL(1) ? NULL : ns_arg(fcinfo, 1);
	if (b == NULL)
	{
		if (a == NULL)
			PG_RETURN_NULL();
		PG_RETURN_POINTER(a);
	}
	if (a == NULL)
		PG_RETURN_POINTER(copy_state((bytea *) b));
	PG_RETURN_POINTER(ns_merge(a, b));
}

#define NS_OUTPUT_COLUMNS 19

/*
 * ml_numeric_stats_final returns the statistics as ml.profile reports them
 * for a numeric column (ml.numeric_stats_result); NULL for no rows.
 */
Datum
ml_numeric_stats_final(PG_FUNCTION_ARGS)
{
	NumStats   *s;
	TupleDesc	desc;
	Datum		values[NS_OUTPUT_COLUMNS];
	bool		nulls[NS_OUTPUT_COLUMNS];
	int64		outliers = 0;

	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	s = ns_arg(fcinfo, 0);
	if (get_call_result_type(fcinfo, NULL, &desc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	desc = BlessTupleDesc(desc);
	if (desc->natts != NS_OUTPUT_COLUMNS)
		elog(ERROR, "ml.numeric_stats_result has %d columns, not %d",
			 desc->natts, NS_OUTPUT_COLUMNS);

	memset(nulls, true, sizeof(nulls));
#define SET(i, d) (values[i] = (d), nulls[i] = false)
	SET(0, Int64GetDatum(s->count));
	SET(1, Int64GetDatum(s->nulls));
	SET(2, Int64GetDatum(s->nans));
	SET(3, Int64GetDatum(s->infs));
	SET(4, Int64GetDatum(s->zeros));
	SET(5, Int64GetDatum(s->negatives));
	if (s->count - s->nans > 0)
		SET(6, Float8GetDatum(s->min));
	else if (s->nans > 0)
		SET(6, Float8GetDatum(get_float8_nan()));
	if (s->nans > 0)
		SET(7, Float8GetDatum(get_float8_nan()));
	else if (s->count > 0)
		SET(7, Float8GetDatum(s->max));
	if (s->n > 0)
		SET(8, Float8GetDatum(s->mean));
	if (s->n > 1)
		SET(9, Float8GetDatum(sqrt(s->m2 / (double) (s->n - 1))));
	if (s->n > 2 && s->m2 > 0.0)
		SET(10, Float8GetDatum(sqrt((double) s->n) * s->m3 / pow(s->m2, 1.5)));
	if (s->size > 0)
	{
		double	   *v = palloc_extended(sizeof(double) * s->size, MCXT_ALLOC_HUGE);
		ProfileFigures f;

		/* the state is the aggregate's, and may be finished again: sort a copy */
		memcpy(v, s->sample, sizeof(double) * s->size);
		ProfileSampleFigures(v, s->size, s->n, s->fmin, s->fmax, &f);
		SET(11, Float8GetDatum(f.p01));
		SET(12, Float8GetDatum(f.p25));
		SET(13, Float8GetDatum(f.p50));
		SET(14, Float8GetDatum(f.p75));
		SET(15, Float8GetDatum(f.p99));
		outliers = f.outliers;
		if (f.histogram != NULL)
			SET(18, JsonbPGetDatum(f.histogram));
	}
	SET(16, Int64GetDatum(outliers));
	SET(17, Int64GetDatum(s->size));
#undef SET
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(desc, values, nulls)));
}

/* ---------------------------------------------------------------- approx_distinct */

#define HLL_BITS		14
#define HLL_REGISTERS	(1 << HLL_BITS)
#define HLL_MAGIC		0x4d4c4831	/* "MLH1" */

typedef struct HllState
{
	int32		vl_len_;		/* varlena header */
	int32		magic;
	uint8		reg[HLL_REGISTERS];
} HllState;

/* How the transition function hashes the values of its argument's type. */
typedef struct HllHasher
{
	bool		by_text;		/* no extended hash: hash the text form */
	FmgrInfo	fn;				/* the extended hash, or the output function */
} HllHasher;

/*
 * A sketch argument, checked: its size and mark, and with registers true
 * (when it is to be merged or estimated) that no register is beyond the
 * longest run a 64-bit hash can give.  The transition function, which
 * only raises registers, checks the size it writes into and not them all.
 */
static HllState *
hll_arg(FunctionCallInfo fcinfo, int argno, bool registers)
{
	HllState   *s = (HllState *) PG_GETARG_BYTEA_P(argno);
	bool		ok = VARSIZE(s) == sizeof(HllState) && s->magic == HLL_MAGIC;

	for (int i = 0; ok && registers && i < HLL_REGISTERS; i++)
		ok = s->reg[i] <= 64 - HLL_BITS + 1;
	if (!ok)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("not a state of ml.approx_distinct")));
	return s;
}

static HllHasher *
hll_hasher(FunctionCallInfo fcinfo)
{
	HllHasher  *h = fcinfo->flinfo->fn_extra;
	Oid			typid;

	if (h != NULL)
		return h;
	typid = get_fn_expr_argtype(fcinfo->flinfo, 1);
	if (!OidIsValid(typid))
		elog(ERROR, "could not determine the type of the value");
	h = MemoryContextAllocZero(fcinfo->flinfo->fn_mcxt, sizeof(HllHasher));
	{
		TypeCacheEntry *tc = lookup_type_cache(typid, TYPECACHE_HASH_EXTENDED_PROC);

		if (OidIsValid(tc->hash_extended_proc))
			fmgr_info_cxt(tc->hash_extended_proc, &h->fn, fcinfo->flinfo->fn_mcxt);
		else
		{
			Oid			outfunc;
			bool		varlena;

			getTypeOutputInfo(typid, &outfunc, &varlena);
			fmgr_info_cxt(outfunc, &h->fn, fcinfo->flinfo->fn_mcxt);
			h->by_text = true;
		}
	}
	fcinfo->flinfo->fn_extra = h;
	return h;
}

/* MurmurHash3's 64-bit finaliser, over hashes whose high bits are weak. */
static inline uint64
hll_mix(uint64 k)
{
	k ^= k >> 33;
	k *= UINT64CONST(0xff51afd7ed558ccd);
	k ^= k >> 33;
	k *= UINT64CONST(0xc4ceb9fe1a85ec53);
	k ^= k >> 33;
	return k;
}

/*
 * ml_approx_distinct_trans adds a value to the sketch: the register its
 * hash's top HLL_BITS bits choose keeps the longest run of leading zeros
 * seen in the other bits, plus one.  NULL values are skipped.
 */
Datum
ml_approx_distinct_trans(PG_FUNCTION_ARGS)
{
	HllState   *s;
	HllHasher  *h;
	uint64		hash;
	uint64		rest;
	int			index;
	int			rho;

	if (!AggCheckCallContext(fcinfo, NULL))
		MLNotInAggregate("ml._approx_distinct_trans");
	if (PG_ARGISNULL(0))
	{
		s = palloc0(sizeof(HllState));
		SET_VARSIZE(s, sizeof(HllState));
		s->magic = HLL_MAGIC;
	}
	else
		s = hll_arg(fcinfo, 0, false);	/* an INITCOND could be forged */
	if (PG_ARGISNULL(1))
		PG_RETURN_POINTER(s);

	h = hll_hasher(fcinfo);
	if (h->by_text)
	{
		char	   *text = OutputFunctionCall(&h->fn, PG_GETARG_DATUM(1));

		hash = hash_bytes_extended((const unsigned char *) text, strlen(text), 0);
		pfree(text);
	}
	else
		hash = DatumGetUInt64(FunctionCall2Coll(&h->fn, PG_GET_COLLATION(),
												PG_GETARG_DATUM(1), UInt64GetDatum(0)));
	hash = hll_mix(hash);
	index = (int) (hash >> (64 - HLL_BITS));
	rest = hash & ((UINT64CONST(1) << (64 - HLL_BITS)) - 1);
	rho = rest == 0 ? 64 - HLL_BITS + 1 : 64 - HLL_BITS - pg_leftmost_one_pos64(rest);
	if (rho > s->reg[index])
		s->reg[index] = (uint8) rho;
	PG_RETURN_POINTER(s);
}

/* ml_approx_distinct_combine merges two sketches: the larger register wins. */
Datum
ml_approx_distinct_combine(PG_FUNCTION_ARGS)
{
	HllState   *a;
	HllState   *b;

	if (!AggCheckCallContext(fcinfo, NULL))
		MLNotInAggregate("ml._approx_distinct_combine");
	a = PG_ARGISNULL(0) ? NULL : hll_arg(fcinfo, 0, true);
	b = PG_ARGISNULL(1) ? NULL : hll_arg(fcinfo, 1, true);
	if (b == NULL)
	{
		if (a == NULL)
			PG_RETURN_NULL();
		PG_RETURN_POINTER(a);
	}
	if (a == NULL)
		PG_RETURN_POINTER(copy_state((bytea *) b));
	for (int i = 0; i < HLL_REGISTERS; i++)
		if (b->reg[i] > a->reg[i])
			a->reg[i] = b->reg[i];
	PG_RETURN_POINTER(a);
}

/*
 * ml_approx_distinct_final estimates the distinct values: HyperLogLog's
 * harmonic mean of the registers, or linear counting of the empty
 * registers when that is below 2.5 times their number (Flajolet et al.
 * 2007).  With 64-bit hashes no large-range correction is needed.  No
 * values give 0.
 */
Datum
ml_approx_distinct_final(PG_FUNCTION_ARGS)
{
	HllState   *s;
	double		m = HLL_REGISTERS;
	double		alpha = 0.7213 / (1.0 + 1.079 / m);
	double		sum = 0.0;
	int			empty = 0;
	double		estimate;

	if (PG_ARGISNULL(0))
		PG_RETURN_INT64(0);
	s = hll_arg(fcinfo, 0, true);
	for (int i = 0; i < HLL_REGISTERS; i++)
	{
		sum += ldexp(1.0, -s->reg[i]);
		empty += (s->reg[i] == 0);
	}
	estimate = alpha * m * m / sum;
	if (estimate <= 2.5 * m && empty > 0)
		estimate = m * log(m / (double) empty);
	PG_RETURN_INT64((int64) rint(estimate));
}
