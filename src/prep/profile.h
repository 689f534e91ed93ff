/*-------------------------------------------------------------------------
 * src/prep/profile.h
 *		The state ml.profile keeps per column of its source, shared by the
 *		scan that fills it (profile.c) and the report that turns it into
 *		rows (profile_report.c), and the figures from a sample that the
 *		aggregate ml.numeric_stats shares (profile_agg.c).  Private to
 *		those files.
 *-------------------------------------------------------------------------
 */
#ifndef PGMAKER_PROFILE_H
#define PGMAKER_PROFILE_H

#include "pgmaker.h"

#include "common/pg_prng.h"
#include "fmgr.h"
#include "funcapi.h"
#include "lib/hyperloglog.h"
#include "utils/jsonb.h"

#define PROFILE_SAMPLE 100000	/* reservoir size a column */
#define PROFILE_TOP_VALUES 10
#define PROFILE_BINS 10

typedef enum ProfileKind
{
	KIND_NUMERIC,
	KIND_CATEGORICAL,
	KIND_DATETIME,
	KIND_ARRAY,
	KIND_OTHER
} ProfileKind;

/* By-value types keyed by a 64-bit image; SCALAR_NONE keys by datum. */
typedef enum ScalarType
{
	SCALAR_NONE,
	SCALAR_INT2,
	SCALAR_INT4,
	SCALAR_INT8,
	SCALAR_FLOAT4,
	SCALAR_FLOAT8,
	SCALAR_DATE,
	SCALAR_TIMESTAMP,			/* timestamp and timestamptz */
	SCALAR_BOOL
} ScalarType;

/*
 * A hash entry's count takes 48 bits in 6 bytes (count_low, count_high),
 * so that an entry of a 64-bit key takes 16 bytes.
 */
#define ENTRY_COUNT_ADD(e) \
	do { \
		if (unlikely(++(e)->count_low == 0)) \
			(e)->count_high++; \
	} while (0)
#define ENTRY_COUNT(e) (((int64) (e)->count_high << 32) | (int64) (e)->count_low)

typedef struct ScalarEntry
{
	uint64		key;
	uint32		count_low;
	uint16		count_high;
	char		status;
} ScalarEntry;

typedef struct DatumEntry
{
	Datum		key;
	uint32		hash;
	uint32		count_low;
	uint16		count_high;
	char		status;
} DatumEntry;

/* Hash tables from distinct value to count (defined in profile.c). */
#define SH_PREFIX profile_scalartab
#define SH_ELEMENT_TYPE ScalarEntry
#define SH_KEY_TYPE uint64
#define SH_SCOPE extern
#define SH_DECLARE
#include "lib/simplehash.h"

#define SH_PREFIX profile_datumtab
#define SH_ELEMENT_TYPE DatumEntry
#define SH_KEY_TYPE Datum
#define SH_SCOPE extern
#define SH_DECLARE
#include "lib/simplehash.h"

typedef union ScalarValue
{
	int64		i;				/* integers, bool, dates, timestamps */
	double		d;				/* floats */
} ScalarValue;

/* A reservoir sample of finite values (Vitter's algorithm R). */
typedef struct Reservoir
{
	double	   *values;
	int			size;
	int			cap;
	int64		seen;			/* values offered */
	pg_prng_state rng;
} Reservoir;

typedef struct ProfileColumn
{
	int			attnum;
	char	   *name;
	Oid			typid;
	int32		typmod;
	Oid			basetype;
	Oid			collation;
	ProfileKind kind;
	ScalarType	scalar;
	bool		moments;		/* numeric or datetime: moments and sample */
	int16		typlen;
	bool		typbyval;
	FmgrInfo	outfunc;

	/* datum keys */
	bool		key_by_text;	/* no hash opclass: keyed by the text form */
	FmgrInfo	hashfn;
	FmgrInfo	eqfn;
	bool		has_cmp;
	FmgrInfo	cmpfn;

	/* exact counts */
	int64		count;			/* non-NULL values */
	int64		nulls;
	int64		zeros;
	int64		negatives;
	int64		nans;
	int64		infs;

	/* minimum and maximum in the type's order */
	int64		imin;			/* integer, date, timestamp, bool */
	int64		imax;
	double		dmin;			/* float: over non-NaN values */
	double		dmax;
	Datum		min;			/* datum keys with a comparison */
	Datum		max;

	/* finite values: moments, range, sample */
	int64		n;
	double		mean;
	double		m2;
	double		m3;
	double		fmin;
	double		fmax;
	Reservoir	sample;

	/* by-value columns: the values of the current batch */
	ScalarValue *batch;
	int			nbatch;

	/* distinct values */
	profile_scalartab_hash *scalars;
	profile_datumtab_hash *datums;
	uint64		slots;			/* table size last accounted for */
	bool		frozen;
	hyperLogLogState hll;		/* frozen: values the table does not hold */
} ProfileColumn;

typedef struct Profile
{
	MemoryContext cxt;			/* lives until the rows are returned */
	ProfileColumn *columns;
	int			ncolumns;
	int64		rows;
	Size		budget;			/* ml.max_train_memory, bytes */
	Size		used;			/* bytes held by the distinct-value tables */
	int			ncolumns_expected;	/* columns of the source */
	int			batch_rows;		/* rows a fetch */
	uint64	   *keys;			/* scratch: a batch's keys of one column */
	uint32	   *hashes;			/* scratch: their hashes */
} Profile;

/*
 * Adds x to the moments of the n values before it: their mean, and the
 * sums of the squared and cubed deviations from it (Welford's update, with
 * the third moment's term; no cancellation).
 */
static inline void
ProfileMomentsAdd(int64 *n, double *mean, double *m2, double *m3, double x)
{
	double		n1 = (double) *n;
	double		nn = n1 + 1.0;
	double		delta = x - *mean;
	double		dn = delta / nn;
	double		t1 = delta * dn * n1;

	*n += 1;
	*m3 += t1 * dn * (nn - 2.0) - 3.0 * dn * *m2;
	*m2 += t1;
	*mean += dn;
}

/* What a sample of a column's finite values tells. */
typedef struct ProfileFigures
{
	double		p01;
	double		p25;
	double		p50;
	double		p75;
	double		p99;
	int64		outliers;		/* estimated over all the finite values */
	Jsonb	   *histogram;		/* NULL when the range is not finite */
} ProfileFigures;

extern void ProfileSampleFigures(double *v, int m, int64 n, double fmin, double fmax,
								 ProfileFigures *out);
extern void ProfileReportColumn(Profile *p, ProfileColumn *c, ReturnSetInfo *rsinfo);

#endif							/* PGMAKER_PROFILE_H */
