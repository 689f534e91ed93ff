/*-------------------------------------------------------------------------
 * src/prep/profile.c
 *		ml.profile: one row of statistics per column of a table or query,
 *		computed in a single scan of the source.
 *
 * Design: the source is opened as a read-only SPI cursor and fetched ten
 * thousand rows at a time (fewer for a wide source) into a receiver of our
 * own: the source is read once and no tuple is copied.  Values of by-value types (integers,
 * floats, bool, dates, timestamps) are buffered per column and processed
 * column by column after each batch, in tight loops; other values are
 * processed as they arrive.  Per column the state holds
 *
 *	- exact counts (values, NULLs, zeros, negatives, NaN, infinities) and
 *	  the minimum and maximum in the type's own order;
 *	- for numeric and datetime columns, the mean and the second and third
 *	  central moments of the finite values, by Welford's one-pass update
 *	  (no cancellation, unlike raw power sums);
 *	- a reservoir sample of at most PROFILE_SAMPLE finite values (algorithm
 *	  R, seeded per column, so the same rows in the same order give the
 *	  same sample): quantiles, outliers and the histogram come from it, and
 *	  are exact when the column has no more finite values than that;
 *	- a hash table (simplehash) from each distinct value to its count: the
 *	  exact distinct count and the most frequent values.  By-value types
 *	  are keyed by a 64-bit image, inserted a batch at a time with the
 *	  buckets prefetched; other types by a copy of the value, with the hash
 *	  and equality of their default hash operator class, or by their text
 *	  form when they have none.  A table starts with room for the distinct
 *	  values the planner's statistics expect, when it knows them, since
 *	  doubling a large table moves and zeroes twice the memory it ends with.
 *
 * The tables of all columns share ml.max_train_memory, checked before a
 * table grows, so that they never hold more.  A table that would pass it
 * stops taking new values: the values it holds keep exact counts, values
 * it does not hold go to a HyperLogLog sketch, distinct becomes the held
 * count plus the sketch's estimate, and the column gets the warning
 * distinct_estimated.  The samples are not counted: at most 800 kB a
 * column.  profile_report.c turns each column's state into its row.
 *-------------------------------------------------------------------------
 */
#include "prep/profile.h"

#include <math.h>

#include "access/htup_details.h"
#include "catalog/pg_class.h"
#include "catalog/pg_statistic.h"
#include "catalog/pg_type.h"
#include "common/hashfn.h"
#include "data/data.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "nodes/pg_list.h"
#include "nodes/plannodes.h"
#include "port/pg_bitutils.h"
#include "tcop/pquery.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/date.h"
#include "utils/float.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/numeric.h"
#include "utils/plancache.h"
#include "utils/portal.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"
#include "utils/typcache.h"

PG_FUNCTION_INFO_V1(ml_profile);

#define PROFILE_BATCH_ROWS 10000	/* rows a fetch, at most */
#define PROFILE_BATCH_VALUES (1 << 19)	/* buffered values, about */
#define PROFILE_SAMPLE_INITIAL 1024
#define PROFILE_HLL_BITS 14		/* 2^14 registers: about 0.8% error */
#define PROFILE_SEED 42
#define PROFILE_TABLE_INITIAL 256
#define PROFILE_PREFETCH 16		/* insertions a prefetch runs ahead */

#if defined(__GNUC__) || defined(__clang__)
#define profile_prefetch(addr) __builtin_prefetch(addr)
#else
#define profile_prefetch(addr) ((void) 0)
#endif
#define UNIX_EPOCH_DAYS ((double) (POSTGRES_EPOCH_JDATE - UNIX_EPOCH_JDATE))

/* MurmurHash3's 64-bit finaliser: every key bit reaches the low 32. */
static inline uint32
profile_hash64(uint64 k)
{
	k ^= k >> 33;
	k *= UINT64CONST(0xff51afd7ed558ccd);
	k ^= k >> 33;
	k *= UINT64CONST(0xc4ceb9fe1a85ec53);
	k ^= k >> 33;
	return (uint32) k;
}

#define SH_PREFIX profile_scalartab
#define SH_ELEMENT_TYPE ScalarEntry
#define SH_FILLFACTOR 0.5
#define SH_KEY_TYPE uint64
#define SH_KEY key
#define SH_HASH_KEY(tb, k) profile_hash64(k)
#define SH_EQUAL(tb, a, b) ((a) == (b))
#define SH_SCOPE extern
#define SH_DEFINE
#include "lib/simplehash.h"

static uint32 datum_key_hash(const ProfileColumn *c, Datum key);
static bool datum_key_equal(const ProfileColumn *c, Datum a, Datum b);

#define SH_PREFIX profile_datumtab
#define SH_ELEMENT_TYPE DatumEntry
#define SH_KEY_TYPE Datum
#define SH_KEY key
#define SH_HASH_KEY(tb, k) datum_key_hash((tb)->private_data, k)
#define SH_EQUAL(tb, a, b) datum_key_equal((tb)->private_data, a, b)
#define SH_STORE_HASH
#define SH_GET_HASH(tb, a) ((a)->hash)
#define SH_SCOPE extern
#define SH_DEFINE
#include "lib/simplehash.h"

typedef struct ProfileReceiver
{
	DestReceiver pub;
	Profile    *profile;
	MemoryContext batch_cxt;
} ProfileReceiver;

/* ---------------------------------------------------------------- sample */

/*
 * Offers a value to the sample: the first PROFILE_SAMPLE values are kept,
 * then the i-th replaces a random one with probability PROFILE_SAMPLE / i.
 * One random number a value costs less than algorithm L's logarithms for
 * each of the PROFILE_SAMPLE ln(n / PROFILE_SAMPLE) replacements until a
 * column has about a hundred times more values than the sample.
 */
static inline void
reservoir_add(MemoryContext cxt, Reservoir *r, double x)
{
	uint64		j;

	r->seen++;
	if (r->size < PROFILE_SAMPLE)
	{
		if (r->size == r->cap)
		{
			r->cap = r->cap == 0 ? PROFILE_SAMPLE_INITIAL : Min(r->cap * 2, PROFILE_SAMPLE);
			r->values = r->values == NULL ?
				MemoryContextAlloc(cxt, sizeof(double) * r->cap) :
				repalloc(r->values, sizeof(double) * r->cap);
		}
		r->values[r->size++] = x;
		return;
	}
	j = (uint64) ((double) (pg_prng_uint64(&r->rng) >> 11) * (1.0 / (UINT64CONST(1) << 53)) *
				  (double) r->seen);
	if (j < PROFILE_SAMPLE)
		r->values[j] = x;
}

/* ---------------------------------------------------------------- distinct values */

static uint32
datum_key_hash(const ProfileColumn *c, Datum key)
{
	if (c->key_by_text)
		return hash_bytes((const unsigned char *) VARDATA_ANY(DatumGetPointer(key)),
						  VARSIZE_ANY_EXHDR(DatumGetPointer(key)));
	return DatumGetUInt32(FunctionCall1Coll((FmgrInfo *) &c->hashfn, c->collation, key));
}

static bool
datum_key_equal(const ProfileColumn *c, Datum a, Datum b)
{
	if (c->key_by_text)
	{
		Size		la = VARSIZE_ANY_EXHDR(DatumGetPointer(a));

		return la == VARSIZE_ANY_EXHDR(DatumGetPointer(b)) &&
			memcmp(VARDATA_ANY(DatumGetPointer(a)), VARDATA_ANY(DatumGetPointer(b)), la) == 0;
	}
	return DatumGetBool(FunctionCall2Coll((FmgrInfo *) &c->eqfn, c->collation, a, b));
}

/*
 * Stops a column's table from taking new values: from now on, values it
 * does not hold are counted by a HyperLogLog sketch.
 */
static void
profile_freeze(Profile *p, ProfileColumn *c)
{
	MemoryContext old = MemoryContextSwitchTo(p->cxt);

	initHyperLogLog(&c->hll, PROFILE_HLL_BITS);
	MemoryContextSwitchTo(old);
	c->frozen = true;
}

/*
 * May a table of size slots (entries of entry_size bytes) take one more
 * value of extra bytes?  When it is full it doubles, and the old and the
 * new array are held together while it does.
 */
static inline bool
profile_fits(Profile *p, uint32 members, uint32 grow_threshold, uint64 slots,
			 Size entry_size, Size extra)
{
	Size		need = extra;

	if (members >= grow_threshold)
		need += (Size) slots * 2 * entry_size;
	return p->used + need <= p->budget;
}

/* Accounts for a table that has grown (simplehash may grow on its own). */
static inline void
profile_account_table(Profile *p, ProfileColumn *c, uint64 slots, Size entry_size)
{
	if (unlikely(slots != c->slots))
	{
		p->used += (Size) (slots - c->slots) * entry_size;
		c->slots = slots;
	}
}

/* Counts a value the fast path could not: a full table, or a frozen one. */
static void
profile_count_scalar_slow(Profile *p, ProfileColumn *c, uint64 key, uint32 hash)
{
	profile_scalartab_hash *tb = c->scalars;
	ScalarEntry *e = profile_scalartab_lookup_hash(tb, key, hash);
	bool		found;

	if (e != NULL)
	{
		ENTRY_COUNT_ADD(e);
		return;
	}
	if (!c->frozen &&
		profile_fits(p, tb->members, tb->grow_threshold, tb->size, sizeof(ScalarEntry), 0))
	{
		e = profile_scalartab_insert_hash(tb, key, hash, &found);
		e->count_low = 1;
		e->count_high = 0;
		profile_account_table(p, c, tb->size, sizeof(ScalarEntry));
		return;
	}
	if (!c->frozen)
		profile_freeze(p, c);
	addHyperLogLog(&c->hll, hash);
}

/*
 * Counts a batch of 64-bit keys.  A table larger than the caches makes
 * every insertion a cache miss, so the bucket of the key PROFILE_PREFETCH
 * places ahead is fetched while this one is inserted.
 */
static void
profile_count_scalars(Profile *p, ProfileColumn *c, const uint64 *keys, int n)
{
	profile_scalartab_hash *tb = c->scalars;
	uint32	   *hashes = p->hashes;

	for (int i = 0; i < n; i++)
		hashes[i] = profile_hash64(keys[i]);
	for (int i = 0; i < n; i++)
	{
		ScalarEntry *e;
		bool		found;

		if (i + PROFILE_PREFETCH < n)
			profile_prefetch(&tb->data[hashes[i + PROFILE_PREFETCH] & tb->sizemask]);
		if (unlikely(tb->members >= tb->grow_threshold) || c->frozen)
		{
			profile_count_scalar_slow(p, c, keys[i], hashes[i]);
			continue;
		}
		e = profile_scalartab_insert_hash(tb, keys[i], hashes[i], &found);
		if (!found)
		{
			e->count_low = 0;
			e->count_high = 0;
		}
		ENTRY_COUNT_ADD(e);
		profile_account_table(p, c, tb->size, sizeof(ScalarEntry));
	}
}

/* Counts one value of a column keyed by datum (already detoasted). */
static void
profile_count_datum(Profile *p, ProfileColumn *c, Datum value)
{
	profile_datumtab_hash *tb = c->datums;
	Datum		key = value;
	int16		keylen = c->typlen;
	bool		keybyval = c->typbyval;
	Size		keybytes;
	uint32		hash;
	DatumEntry *e;
	bool		found;

	if (c->key_by_text)
	{
		key = PointerGetDatum(cstring_to_text(OutputFunctionCall(&c->outfunc, value)));
		keylen = -1;
		keybyval = false;
	}
	hash = datum_key_hash(c, key);
	keybytes = keybyval ? 0 : datumGetSize(key, keybyval, keylen) + 2 * sizeof(void *);

	if (!c->frozen &&
		profile_fits(p, tb->members, tb->grow_threshold, tb->size, sizeof(DatumEntry), keybytes))
	{
		e = profile_datumtab_insert_hash(tb, key, hash, &found);
		profile_account_table(p, c, tb->size, sizeof(DatumEntry));
		if (!found)
		{
			MemoryContext old = MemoryContextSwitchTo(p->cxt);

			e->key = datumCopy(key, keybyval, keylen);
			MemoryContextSwitchTo(old);
			e->count_low = 0;
			e->count_high = 0;
			p->used += keybytes;
		}
		ENTRY_COUNT_ADD(e);
		return;
	}
	e = profile_datumtab_lookup_hash(tb, key, hash);
	if (e != NULL)
	{
		ENTRY_COUNT_ADD(e);
		return;
	}
	if (!c->frozen)
		profile_freeze(p, c);
	addHyperLogLog(&c->hll, hash);
}

/* ---------------------------------------------------------------- values */

/* Adds a finite value to the moments, the range and the sample. */
static inline void
profile_finite(Profile *p, ProfileColumn *c, double x)
{
	ProfileMomentsAdd(&c->n, &c->mean, &c->m2, &c->m3, x);
	if (x < c->fmin)
		c->fmin = x;
	if (x > c->fmax)
		c->fmax = x;
	reservoir_add(p->cxt, &c->sample, x);
}

/* One value of a float4 or float8 column; returns its key. */
static inline uint64
profile_float(Profile *p, ProfileColumn *c, double x)
{
	uint64		key;

	c->count++;
	if (unlikely(isnan(x)))
	{
		c->nans++;
		x = get_float8_nan();	/* one key for every NaN */
	}
	else
	{
		if (x == 0.0)
		{
			c->zeros++;
			x = 0.0;			/* -0 equals 0 */
		}
		else if (x < 0.0)
			c->negatives++;
		if (x < c->dmin)
			c->dmin = x;
		if (x > c->dmax)
			c->dmax = x;
		if (unlikely(isinf(x)))
			c->infs++;
		else
			profile_finite(p, c, x);
	}
	memcpy(&key, &x, sizeof(key));
	return key;
}

/*
 * One value of an integer, date, timestamp or bool column: i orders and
 * keys it, x is its numeric value (days since 1970-01-01 for datetimes).
 * Returns its key.
 */
static inline uint64
profile_integer(Profile *p, ProfileColumn *c, int64 i, double x)
{
	c->count++;
	if (i < c->imin)
		c->imin = i;
	if (i > c->imax)
		c->imax = i;
	if (c->kind == KIND_NUMERIC)
	{
		if (i == 0)
			c->zeros++;
		else if (i < 0)
			c->negatives++;
		profile_finite(p, c, x);
	}
	else if (c->kind == KIND_DATETIME)
	{
		if (isinf(x))
			c->infs++;
		else
			profile_finite(p, c, x);
	}
	return (uint64) i;
}

/* Keeps a copy of value as a new minimum or maximum. */
static void
profile_keep(Profile *p, ProfileColumn *c, Datum *slot, Datum value, bool replace)
{
	MemoryContext old = MemoryContextSwitchTo(p->cxt);

	if (replace && !c->typbyval)
		pfree(DatumGetPointer(*slot));
	*slot = datumCopy(value, c->typbyval, c->typlen);
	MemoryContextSwitchTo(old);
}

/* One value of a numeric column. */
static void
profile_numeric(Profile *p, ProfileColumn *c, Numeric num)
{
	double		x;

	if (numeric_is_nan(num))
	{
		c->nans++;
		return;
	}
	x = DatumGetFloat8(DirectFunctionCall1(numeric_float8_no_overflow, NumericGetDatum(num)));
	if (x < 0.0)
		c->negatives++;
	if (numeric_is_inf(num))
	{
		c->infs++;
		return;
	}
	if (isinf(x))
		ereport(ERROR,
				(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
				 errmsg("column \"%s\" has a value beyond the range of double precision", c->name),
				 errhint("Profile a scaled copy of the column, for example %s / 1e100.",
						 quote_identifier(c->name))));
	if (x == 0.0)
		c->zeros++;
	profile_finite(p, c, x);
}

/* One value of a column keyed by datum: numeric, text, arrays, others. */
static void
profile_datum(Profile *p, ProfileColumn *c, Datum value)
{
	if (c->basetype == NUMERICOID)
	{
		Numeric		num = DatumGetNumeric(value);

		value = NumericGetDatum(num);
		profile_numeric(p, c, num);
	}
	else if (c->typlen == -1)
		value = PointerGetDatum(PG_DETOAST_DATUM_PACKED(value));

	c->count++;
	if (c->has_cmp)
	{
		if (c->count == 1)
		{
			profile_keep(p, c, &c->min, value, false);
			profile_keep(p, c, &c->max, value, false);
		}
		else if (DatumGetInt32(FunctionCall2Coll(&c->cmpfn, c->collation, value, c->min)) < 0)
			profile_keep(p, c, &c->min, value, true);
		else if (DatumGetInt32(FunctionCall2Coll(&c->cmpfn, c->collation, value, c->max)) > 0)
			profile_keep(p, c, &c->max, value, true);
	}
	profile_count_datum(p, c, value);
}

/*
 * A value of a by-value column decoded from its Datum, buffered until the
 * batch ends (int8, float8 and timestamps are passed by reference on some
 * platforms, so the Datum itself would not outlive its row).
 */
static inline ScalarValue
scalar_decode(ScalarType type, Datum v)
{
	ScalarValue s;

	switch (type)
	{
		case SCALAR_FLOAT8:
			s.d = DatumGetFloat8(v);
			break;
		case SCALAR_FLOAT4:
			s.d = DatumGetFloat4(v);
			break;
		case SCALAR_INT2:
			s.i = DatumGetInt16(v);
			break;
		case SCALAR_INT4:
			s.i = DatumGetInt32(v);
			break;
		case SCALAR_DATE:
			s.i = DatumGetDateADT(v);
			break;
		case SCALAR_BOOL:
			s.i = DatumGetBool(v) ? 1 : 0;
			break;
		default:				/* int8, timestamp, timestamptz */
			s.i = DatumGetInt64(v);
			break;
	}
	return s;
}

/* One value of a column keyed by a 64-bit image; returns the key. */
static inline uint64
profile_scalar(Profile *p, ProfileColumn *c, ScalarValue v)
{
	switch (c->scalar)
	{
		case SCALAR_FLOAT8:
		case SCALAR_FLOAT4:
			return profile_float(p, c, v.d);
		case SCALAR_DATE:
			return profile_integer(p, c, v.i,
								   DATE_NOT_FINITE(v.i) ? (DATE_IS_NOBEGIN(v.i) ? -INFINITY : INFINITY) :
								   (double) v.i + UNIX_EPOCH_DAYS);
		case SCALAR_TIMESTAMP:
			return profile_integer(p, c, v.i,
								   TIMESTAMP_NOT_FINITE(v.i) ? (TIMESTAMP_IS_NOBEGIN(v.i) ? -INFINITY : INFINITY) :
								   (double) v.i / (double) USECS_PER_DAY + UNIX_EPOCH_DAYS);
		default:				/* integers and bool */
			return profile_integer(p, c, v.i, (double) v.i);
	}
}

/*
 * Processes the values of by-value columns buffered during a batch, one
 * column at a time: the per-value work stays in a tight loop and the
 * hash table insertions can be prefetched.
 */
static void
profile_flush(Profile *p)
{
	for (int i = 0; i < p->ncolumns; i++)
	{
		ProfileColumn *c = &p->columns[i];

		if (c->nbatch == 0)
			continue;
		for (int j = 0; j < c->nbatch; j++)
			p->keys[j] = profile_scalar(p, c, c->batch[j]);
		profile_count_scalars(p, c, p->keys, c->nbatch);
		c->nbatch = 0;
	}
}

/* ---------------------------------------------------------------- columns */

/* The built-in types whose kind or keying is known without the catalog. */
static const struct
{
	Oid			type;
	ProfileKind kind;
	ScalarType	scalar;
}			builtin_types[] = {
	{INT2OID, KIND_NUMERIC, SCALAR_INT2},
	{INT4OID, KIND_NUMERIC, SCALAR_INT4},
	{INT8OID, KIND_NUMERIC, SCALAR_INT8},
	{FLOAT4OID, KIND_NUMERIC, SCALAR_FLOAT4},
	{FLOAT8OID, KIND_NUMERIC, SCALAR_FLOAT8},
	{NUMERICOID, KIND_NUMERIC, SCALAR_NONE},
	{DATEOID, KIND_DATETIME, SCALAR_DATE},
	{TIMESTAMPOID, KIND_DATETIME, SCALAR_TIMESTAMP},
	{TIMESTAMPTZOID, KIND_DATETIME, SCALAR_TIMESTAMP},
	{BOOLOID, KIND_CATEGORICAL, SCALAR_BOOL},
	{TEXTOID, KIND_CATEGORICAL, SCALAR_NONE},
	{VARCHAROID, KIND_CATEGORICAL, SCALAR_NONE},
	{BPCHAROID, KIND_CATEGORICAL, SCALAR_NONE},
	{NAMEOID, KIND_CATEGORICAL, SCALAR_NONE},
};

/* Sets a column's kind and keying from its base type. */
static void
profile_classify(ProfileColumn *c)
{
	for (int i = 0; i < lengthof(builtin_types); i++)
	{
		if (builtin_types[i].type == c->basetype)
		{
			c->kind = builtin_types[i].kind;
			c->scalar = builtin_types[i].scalar;
			return;
		}
	}
	c->scalar = SCALAR_NONE;
	if (type_is_enum(c->basetype))
		c->kind = KIND_CATEGORICAL;
	else if (OidIsValid(get_element_type(c->basetype)))
		c->kind = KIND_ARRAY;
	else
		c->kind = KIND_OTHER;
}

/*
 * The number of distinct values the planner's statistics expect in a
 * column of the source: known when the column comes straight from a table
 * that has been analyzed (pg_statistic.stadistinct), at most the rows the
 * planner expects from the source; 0 when unknown.  Reading statistics
 * needs no privilege beyond the one the source's scan has checked.
 */
static double
profile_expected_distinct(const TargetEntry *tle, double rows)
{
	HeapTuple	tup;
	double		ndistinct;

	if (tle == NULL || !OidIsValid(tle->resorigtbl) || tle->resorigcol <= 0)
		return 0.0;
	/* an inheritance parent's scan includes its children */
	tup = SearchSysCache3(STATRELATTINH, ObjectIdGetDatum(tle->resorigtbl),
						  Int16GetDatum(tle->resorigcol), BoolGetDatum(true));
	if (!HeapTupleIsValid(tup))
		tup = SearchSysCache3(STATRELATTINH, ObjectIdGetDatum(tle->resorigtbl),
							  Int16GetDatum(tle->resorigcol), BoolGetDatum(false));
	if (!HeapTupleIsValid(tup))
		return 0.0;
	ndistinct = ((Form_pg_statistic) GETSTRUCT(tup))->stadistinct;
	ReleaseSysCache(tup);
	if (ndistinct < 0.0)
	{
		/* a fraction of the table's rows */
		double		reltuples = 0.0;

		tup = SearchSysCache1(RELOID, ObjectIdGetDatum(tle->resorigtbl));
		if (HeapTupleIsValid(tup))
		{
			reltuples = ((Form_pg_class) GETSTRUCT(tup))->reltuples;
			ReleaseSysCache(tup);
		}
		ndistinct = reltuples > 0.0 ? -ndistinct * reltuples : 0.0;
	}
	return Min(ndistinct, rows);
}

/*
 * The entries a column's table starts with: room for the distinct values
 * the statistics expect (a table that doubles its way to a million entries
 * moves and zeroes twice the memory it ends with), unless that would take
 * more than the column's share of ml.max_train_memory.
 */
static uint32
profile_initial_entries(Profile *p, double expected, Size entry_size, double fill)
{
	double		entries = expected;
	double		share = (double) p->budget / Max(p->ncolumns_expected, 1);

	if (entries <= PROFILE_TABLE_INITIAL ||
		pg_nextpower2_64((uint64) (entries / fill)) * (double) entry_size > share)
		return PROFILE_TABLE_INITIAL;
	return (uint32) entries;
}

/*
 * Resolves how a column of the source is profiled: its kind, how its
 * values are keyed, and the functions that hash, compare and print them.
 */
static void
profile_setup_column(Profile *p, ProfileColumn *c, Form_pg_attribute att, int index,
					 double expected)
{
	Oid			outfunc;
	bool		isvarlena;

	c->attnum = att->attnum;
	c->name = pstrdup(NameStr(att->attname));
	c->typid = att->atttypid;
	c->typmod = att->atttypmod;
	c->basetype = getBaseType(att->atttypid);
	c->collation = att->attcollation;
	profile_classify(c);
	c->moments = (c->kind == KIND_NUMERIC || c->kind == KIND_DATETIME);
	get_typlenbyval(c->basetype, &c->typlen, &c->typbyval);
	getTypeOutputInfo(c->typid, &outfunc, &isvarlena);
	fmgr_info_cxt(outfunc, &c->outfunc, p->cxt);

	c->imin = PG_INT64_MAX;
	c->imax = PG_INT64_MIN;
	c->dmin = INFINITY;
	c->dmax = -INFINITY;
	c->fmin = INFINITY;
	c->fmax = -INFINITY;
	pg_prng_seed(&c->sample.rng, PROFILE_SEED + (uint64) index);

	if (c->scalar != SCALAR_NONE)
	{
		c->batch = palloc(sizeof(ScalarValue) * p->batch_rows);
		c->scalars = profile_scalartab_create(p->cxt,
									  profile_initial_entries(p, expected, sizeof(ScalarEntry), 0.5),
									  c);
		c->slots = c->scalars->size;
		p->used += (Size) c->slots * sizeof(ScalarEntry);
	}
	else
	{
		TypeCacheEntry *tce = lookup_type_cache(c->basetype, TYPECACHE_EQ_OPR |
												TYPECACHE_HASH_PROC | TYPECACHE_CMP_PROC);
		Oid			elem = get_element_type(c->basetype);

		/*
		 * The type cache checks that an array's elements and a named row
		 * type's fields can be hashed and compared; an anonymous record's
		 * fields are known only row by row, so it is keyed by its text.
		 */
		if (c->basetype == RECORDOID || elem == RECORDOID ||
			!OidIsValid(tce->eq_opr) || !OidIsValid(tce->hash_proc))
			c->key_by_text = true;
		else
		{
			fmgr_info_cxt(tce->hash_proc, &c->hashfn, p->cxt);
			fmgr_info_cxt(get_opcode(tce->eq_opr), &c->eqfn, p->cxt);
		}
		if (OidIsValid(tce->cmp_proc) && c->basetype != RECORDOID && elem != RECORDOID)
		{
			c->has_cmp = true;
			fmgr_info_cxt(tce->cmp_proc, &c->cmpfn, p->cxt);
		}
		c->datums = profile_datumtab_create(p->cxt,
									profile_initial_entries(p, expected, sizeof(DatumEntry), 0.9),
									c);
		c->slots = c->datums->size;
		p->used += (Size) c->slots * sizeof(DatumEntry);
	}
}

/* ---------------------------------------------------------------- the scan */

static bool
profile_receive(TupleTableSlot *slot, DestReceiver *self)
{
	ProfileReceiver *pr = (ProfileReceiver *) self;
	Profile    *p = pr->profile;
	MemoryContext old = MemoryContextSwitchTo(pr->batch_cxt);

	slot_getallattrs(slot);
	p->rows++;
	for (int i = 0; i < p->ncolumns; i++)
	{
		ProfileColumn *c = &p->columns[i];
		int			a = c->attnum - 1;

		if (slot->tts_isnull[a])
			c->nulls++;
		else if (c->batch != NULL)
			c->batch[c->nbatch++] = scalar_decode(c->scalar, slot->tts_values[a]);
		else
			profile_datum(p, c, slot->tts_values[a]);
	}
	MemoryContextSwitchTo(old);
	return true;
}

static void
profile_startup(DestReceiver *self, int operation, TupleDesc typeinfo)
{
}

static void
profile_receiver_noop(DestReceiver *self)
{
}

/*
 * Opens the source as a read-only cursor (see SourcePrepare), and returns
 * its analysed query.
 */
static Portal
profile_open_cursor(const char *query, Query **analyzed)
{
	SPIPlanPtr	plan;
	CachedPlanSource *ps = SourcePrepare(query, &plan);

	*analyzed = llast_node(Query, ps->query_list);
	return SPI_cursor_open(NULL, plan, NULL, NULL, true);
}

/* Reads the source once, updating every column's state. */
static void
profile_scan(Profile *p, const char *query)
{
	ProfileReceiver pr;
	Portal		portal;
	Query	   *analyzed = NULL;
	TupleDesc	tupdesc;
	PlannedStmt *stmt;
	double		rows;
	ListCell   *tlc;
	MemoryContext old;

	memset(&pr, 0, sizeof(pr));
	pr.pub.receiveSlot = profile_receive;
	pr.pub.rStartup = profile_startup;
	pr.pub.rShutdown = profile_receiver_noop;
	pr.pub.rDestroy = profile_receiver_noop;
	pr.pub.mydest = DestNone;
	pr.profile = p;
	pr.batch_cxt = AllocSetContextCreate(p->cxt, "pgmaker profile batch",
										 ALLOCSET_DEFAULT_SIZES);

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	portal = profile_open_cursor(query, &analyzed);
	stmt = linitial_node(PlannedStmt, portal->stmts);
	rows = stmt->planTree ? stmt->planTree->plan_rows : 0.0;

	old = MemoryContextSwitchTo(p->cxt);
	tupdesc = portal->tupDesc;
	p->ncolumns_expected = tupdesc->natts;
	tlc = analyzed ? list_head(analyzed->targetList) : NULL;
	/* a wide source is fetched in fewer rows, to bound the buffers */
	p->batch_rows = Max(Min(PROFILE_BATCH_ROWS, PROFILE_BATCH_VALUES / Max(tupdesc->natts, 1)), 1);
	p->columns = palloc0(sizeof(ProfileColumn) * Max(tupdesc->natts, 1));
	p->keys = palloc(sizeof(uint64) * p->batch_rows);
	p->hashes = palloc(sizeof(uint32) * p->batch_rows);
	for (int i = 0; i < tupdesc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(tupdesc, i);
		TargetEntry *tle = NULL;

		/* the query's visible target entries are the cursor's columns */
		while (tlc != NULL && lfirst_node(TargetEntry, tlc)->resjunk)
			tlc = lnext(analyzed->targetList, tlc);
		if (tlc != NULL)
		{
			tle = lfirst_node(TargetEntry, tlc);
			tlc = lnext(analyzed->targetList, tlc);
		}
		if (!att->attisdropped)
			profile_setup_column(p, &p->columns[p->ncolumns++], att, i,
								 profile_expected_distinct(tle, rows));
	}
	MemoryContextSwitchTo(old);

	for (;;)
	{
		uint64		fetched = PortalRunFetch(portal, FETCH_FORWARD,
											 p->batch_rows, (DestReceiver *) &pr);

		profile_flush(p);
		MemoryContextReset(pr.batch_cxt);
		CHECK_FOR_INTERRUPTS();
		if (fetched < p->batch_rows)
			break;
	}
	SPI_cursor_close(portal);
	SPI_finish();
	MemoryContextDelete(pr.batch_cxt);
}

/*
 * ml_profile returns one row of statistics per column of a table, view or
 * query, read once with the caller's rights.
 */
Datum
ml_profile(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	char	   *query = ReaderSourceQuery(text_to_cstring(PG_GETARG_TEXT_PP(0)));
	Profile		p;
	MemoryContext row_cxt;
	MemoryContext old;

	InitMaterializedSRF(fcinfo, 0);

	memset(&p, 0, sizeof(p));
	p.cxt = AllocSetContextCreate(CurrentMemoryContext, "pgmaker profile",
								  ALLOCSET_DEFAULT_SIZES);
	p.budget = (Size) ml_max_train_memory * 1024;
	profile_scan(&p, query);

	/* what a row needs (texts of every distinct value, say) goes with it */
	row_cxt = AllocSetContextCreate(p.cxt, "pgmaker profile row", ALLOCSET_DEFAULT_SIZES);
	old = MemoryContextSwitchTo(row_cxt);
	for (int i = 0; i < p.ncolumns; i++)
	{
		ProfileReportColumn(&p, &p.columns[i], rsinfo);
		MemoryContextReset(row_cxt);
		CHECK_FOR_INTERRUPTS();
	}
	MemoryContextSwitchTo(old);
	MemoryContextDelete(p.cxt);
	PG_RETURN_VOID();
}
