/*-------------------------------------------------------------------------
 * src/prep/profile_report.c
 *		Turns the state ml.profile gathered for a column into its output
 *		row: range, moments, quantiles, outliers and histogram from the
 *		sample, the most frequent values, and the warnings.
 *-------------------------------------------------------------------------
 */
#include "prep/profile.h"

#include <math.h>

#include "catalog/pg_collation.h"
#include "catalog/pg_type.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/date.h"
#include "utils/float.h"
#include "utils/formatting.h"
#include "utils/jsonb.h"
#include "utils/timestamp.h"

#define PROFILE_OUTPUT_COLUMNS 26
#define PROFILE_WARNINGS 7

/* Thresholds of the warnings. */
#define WARN_NULL_FRACTION 0.5
#define WARN_CARDINALITY_MIN 50
#define WARN_CARDINALITY_SHARE 0.5
#define WARN_IDENTIFIER_MIN 10
#define WARN_IDENTIFIER_SHARE 0.75
#define WARN_SKEWNESS 2.0

static const char *const kind_names[] = {
	[KIND_NUMERIC] = "numeric",
	[KIND_CATEGORICAL] = "categorical",
	[KIND_DATETIME] = "datetime",
	[KIND_ARRAY] = "array",
	[KIND_OTHER] = "other",
};

#define ST_SORT sort_doubles
#define ST_ELEMENT_TYPE double
#define ST_COMPARE(a, b) ((*(a) > *(b)) - (*(a) < *(b)))
#define ST_SCOPE static
#define ST_DEFINE
#include "lib/sort_template.h"

/*
 * The quantile p of sorted values, interpolated between the two nearest
 * ranks exactly as percentile_cont does.
 */
static double
sorted_quantile(const double *v, int m, double p)
{
	double		pos = p * (m - 1);
	double		first = floor(pos);
	double		second = ceil(pos);
	double		lo = v[(int) first];
	double		hi = v[(int) second];

	if (first == second)
		return lo;
	return lo + (hi - lo) * (pos - first);
}

/* The value a 64-bit key stands for, as a Datum of the column's type. */
static Datum
scalar_datum(const ProfileColumn *c, uint64 key)
{
	double		d;

	switch (c->scalar)
	{
		case SCALAR_INT2:
			return Int16GetDatum((int16) (int64) key);
		case SCALAR_INT4:
			return Int32GetDatum((int32) (int64) key);
		case SCALAR_INT8:
			return Int64GetDatum((int64) key);
		case SCALAR_FLOAT4:
			memcpy(&d, &key, sizeof(d));
			return Float4GetDatum((float4) d);
		case SCALAR_FLOAT8:
			memcpy(&d, &key, sizeof(d));
			return Float8GetDatum(d);
		case SCALAR_DATE:
			return DateADTGetDatum((DateADT) (int64) key);
		case SCALAR_TIMESTAMP:
			return TimestampGetDatum((Timestamp) (int64) key);
		case SCALAR_BOOL:		/* key_text writes bool itself */
		case SCALAR_NONE:
			break;
	}
	elog(ERROR, "column \"%s\" has no scalar form", c->name);
	return (Datum) 0;			/* keep compiler quiet */
}

/*
 * The text form of a key: the type's output, except for bool, which reads
 * true and false as a cast to text does.
 */
static char *
key_text(const ProfileColumn *c, uint64 scalar, Datum datum)
{
	if (c->scalar == SCALAR_BOOL)
		return pstrdup(scalar ? "true" : "false");
	if (c->scalar != SCALAR_NONE)
		return OutputFunctionCall((FmgrInfo *) &c->outfunc, scalar_datum(c, scalar));
	if (c->key_by_text)
		return TextDatumGetCString(datum);
	return OutputFunctionCall((FmgrInfo *) &c->outfunc, datum);
}

/* One distinct value, for ranking the most frequent ones. */
typedef struct TopValue
{
	uint64		scalar;
	Datum		datum;
	int64		count;
} TopValue;

/* Orders two keys as the type does (NaN above every float). */
static int
key_compare(const ProfileColumn *c, const TopValue *a, const TopValue *b)
{
	switch (c->scalar)
	{
		case SCALAR_FLOAT4:
		case SCALAR_FLOAT8:
			{
				double		x;
				double		y;

				memcpy(&x, &a->scalar, sizeof(x));
				memcpy(&y, &b->scalar, sizeof(y));
				if (isnan(x) || isnan(y))
					return (isnan(x) ? 1 : 0) - (isnan(y) ? 1 : 0);
				return (x > y) - (x < y);
			}
		case SCALAR_NONE:
			break;
		default:
			return ((int64) a->scalar > (int64) b->scalar) - ((int64) a->scalar < (int64) b->scalar);
	}
	if (c->has_cmp && !c->key_by_text)
		return DatumGetInt32(FunctionCall2Coll((FmgrInfo *) &c->cmpfn, c->collation,
											   a->datum, b->datum));
	return strcmp(key_text(c, 0, a->datum), key_text(c, 0, b->datum));
}

/* Does a rank before b: more frequent, then smaller? */
static bool
top_before(const ProfileColumn *c, const TopValue *a, const TopValue *b)
{
	if (a->count != b->count)
		return a->count > b->count;
	return key_compare(c, a, b) < 0;
}

/* Offers a value to the running top list (sorted, at most TOP_VALUES). */
static void
top_offer(const ProfileColumn *c, TopValue *top, int *ntop, TopValue v)
{
	int			i;

	if (*ntop == PROFILE_TOP_VALUES && !top_before(c, &v, &top[*ntop - 1]))
		return;
	i = Min(*ntop, PROFILE_TOP_VALUES - 1);
	while (i > 0 && top_before(c, &v, &top[i - 1]))
	{
		top[i] = top[i - 1];
		i--;
	}
	top[i] = v;
	if (*ntop < PROFILE_TOP_VALUES)
		(*ntop)++;
}

/* The most frequent values with their counts, as a jsonb array. */
static Jsonb *
profile_top_values(ProfileColumn *c)
{
	TopValue	top[PROFILE_TOP_VALUES];
	int			ntop = 0;
	JsonbParseState *st = NULL;

	if (c->scalars)
	{
		profile_scalartab_iterator it;
		ScalarEntry *e;

		profile_scalartab_start_iterate(c->scalars, &it);
		while ((e = profile_scalartab_iterate(c->scalars, &it)) != NULL)
			top_offer(c, top, &ntop,
					  (TopValue) {e->key, (Datum) 0, ENTRY_COUNT(e)});
	}
	else
	{
		profile_datumtab_iterator it;
		DatumEntry *e;

		profile_datumtab_start_iterate(c->datums, &it);
		while ((e = profile_datumtab_iterate(c->datums, &it)) != NULL)
			top_offer(c, top, &ntop,
					  (TopValue) {0, e->key, ENTRY_COUNT(e)});
	}

	JbBeginArray(&st);
	for (int i = 0; i < ntop; i++)
	{
		JbBeginObject(&st);
		JbKey(&st, "value");
		JbString(&st, key_text(c, top[i].scalar, top[i].datum));
		JbKey(&st, "count");
		JbInt(&st, top[i].count);
		JbEndObject(&st);
	}
	return JbFinishArray(&st);
}

/* Lower case, no surrounding white space, inner runs of it as one space. */
static char *
normalise_category(const char *s, Oid collation)
{
	char	   *lower = str_tolower(s, strlen(s), collation);
	char	   *out = palloc(strlen(lower) + 1);
	char	   *o = out;
	bool		space = false;

	for (const char *q = lower; *q; q++)
	{
		if (isspace((unsigned char) *q))
		{
			space = (o != out);
			continue;
		}
		if (space)
			*o++ = ' ';
		space = false;
		*o++ = *q;
	}
	*o = '\0';
	return out;
}

static int
compare_cstring(const void *a, const void *b)
{
	return strcmp(*(char *const *) a, *(char *const *) b);
}

/*
 * Do two distinct values of a text-like column differ only in case or in
 * white space around or inside them (" Rain", "rain", "RAIN  ")?
 */
static bool
profile_has_variants(ProfileColumn *c)
{
	Oid			collation = OidIsValid(c->collation) ? c->collation : DEFAULT_COLLATION_OID;
	char	  **forms = palloc(sizeof(char *) * Max(c->datums->members, 1));
	int			n = 0;
	profile_datumtab_iterator it;
	DatumEntry *e;

	profile_datumtab_start_iterate(c->datums, &it);
	while ((e = profile_datumtab_iterate(c->datums, &it)) != NULL)
		forms[n++] = normalise_category(key_text(c, 0, e->key), collation);
	qsort(forms, n, sizeof(char *), compare_cstring);
	for (int i = 1; i < n; i++)
		if (strcmp(forms[i - 1], forms[i]) == 0)
			return true;
	return false;
}

/*
 * Spreads total over the bins in proportion to the sample's counts, by
 * largest remainders, so that the estimates add up to total.
 */
static void
scale_counts(const int64 *sample, int nbins, int64 m, int64 total, int64 *out)
{
	double		rem[PROFILE_BINS];
	int64		given = 0;

	for (int i = 0; i < nbins; i++)
	{
		double		share = (double) sample[i] * (double) total / (double) m;

		out[i] = (int64) floor(share);
		rem[i] = share - (double) out[i];
		given += out[i];
	}
	while (given < total)
	{
		int			best = 0;

		for (int i = 1; i < nbins; i++)
			if (rem[i] > rem[best])
				best = i;
		out[best]++;
		rem[best] = -1.0;
		given++;
	}
}

/*
 * Ten equal-width bins between lo and hi, the finite minimum and maximum,
 * from the m sorted sample values of n finite values.
 */
static Jsonb *
profile_histogram(double lo, double hi, int64 n, const double *sorted, int m)
{
	JsonbParseState *st = NULL;
	int			nbins = (hi > lo) ? PROFILE_BINS : 1;
	int64		sample_counts[PROFILE_BINS] = {0};
	int64		counts[PROFILE_BINS];

	for (int i = 0; i < m; i++)
	{
		int			bin = 0;

		if (nbins > 1)
			bin = Min((int) (PROFILE_BINS * ((sorted[i] - lo) / (hi - lo))), PROFILE_BINS - 1);
		sample_counts[bin]++;
	}
	if (m == n)
		memcpy(counts, sample_counts, sizeof(counts));
	else
		scale_counts(sample_counts, nbins, m, n, counts);

	JbBeginObject(&st);
	JbKey(&st, "bounds");
	JbBeginArray(&st);
	for (int i = 0; i <= nbins; i++)
		JbFloat(&st, i == nbins ? hi : lo + (hi - lo) * i / nbins);
	JbEndArray(&st);
	JbKey(&st, "counts");
	JbBeginArray(&st);
	for (int i = 0; i < nbins; i++)
		JbInt(&st, counts[i]);
	JbEndArray(&st);
	return JbFinishObject(&st);
}

/*
 * ProfileSampleFigures fills in the figures that come from a sample of m
 * (at least 1) of a column's n finite values, whose range is fmin to fmax:
 * the quantiles, the outliers and the histogram (NULL when the range
 * overflows).  It sorts the sample in place.
 */
void
ProfileSampleFigures(double *v, int m, int64 n, double fmin, double fmax,
					 ProfileFigures *out)
{
	double		lo;
	double		hi;
	int64		outliers = 0;

	Assert(m > 0);
	sort_doubles(v, m);
	out->p01 = sorted_quantile(v, m, 0.01);
	out->p25 = sorted_quantile(v, m, 0.25);
	out->p50 = sorted_quantile(v, m, 0.5);
	out->p75 = sorted_quantile(v, m, 0.75);
	out->p99 = sorted_quantile(v, m, 0.99);
	lo = out->p25 - 1.5 * (out->p75 - out->p25);
	hi = out->p75 + 1.5 * (out->p75 - out->p25);
	for (int i = 0; i < m; i++)
		outliers += (v[i] < lo || v[i] > hi);
	if (m < n)
		outliers = (int64) rint((double) outliers * (double) n / (double) m);
	out->outliers = outliers;
	out->histogram = isfinite(fmax - fmin) ? profile_histogram(fmin, fmax, n, v, m) : NULL;
}

/* The text form of the column's minimum or maximum; NULL if none. */
static char *
profile_extreme(ProfileColumn *c, bool want_max)
{
	switch (c->scalar)
	{
		case SCALAR_FLOAT4:
		case SCALAR_FLOAT8:
			{
				double		d;
				uint64		key;

				/* NaN sorts above every number, as in min() and max() */
				if (c->nans > 0 && (want_max || c->nans == c->count))
					d = get_float8_nan();
				else
					d = want_max ? c->dmax : c->dmin;
				memcpy(&key, &d, sizeof(key));
				return key_text(c, key, (Datum) 0);
			}
		case SCALAR_NONE:
			if (!c->has_cmp)
				return NULL;
			return OutputFunctionCall(&c->outfunc, want_max ? c->max : c->min);
		default:
			return key_text(c, (uint64) (want_max ? c->imax : c->imin), (Datum) 0);
	}
}

/* The warnings of a column, in a fixed order. */
static ArrayType *
profile_warnings(Profile *p, ProfileColumn *c, int64 distinct, double null_fraction,
				 double skewness)
{
	const char *warnings[PROFILE_WARNINGS];
	Datum		datums[PROFILE_WARNINGS];
	int			n = 0;
	bool		text_like = (c->kind == KIND_CATEGORICAL && c->scalar != SCALAR_BOOL);
	bool		integer = (c->scalar == SCALAR_INT2 || c->scalar == SCALAR_INT4 ||
						   c->scalar == SCALAR_INT8);

	if (p->rows > 0 && ((distinct == 1 && c->nulls == 0) || c->count == 0))
		warnings[n++] = "constant";
	if (null_fraction > WARN_NULL_FRACTION)
		warnings[n++] = "high_null_fraction";
	if (text_like && distinct > WARN_CARDINALITY_MIN &&
		distinct > WARN_CARDINALITY_SHARE * c->count)
		warnings[n++] = "high_cardinality";
	if (c->count > WARN_IDENTIFIER_MIN &&
		((text_like && distinct >= WARN_IDENTIFIER_SHARE * c->count) ||
		 ((integer || c->basetype == UUIDOID) && distinct == c->count)))
		warnings[n++] = "likely_identifier";
	if (c->kind == KIND_NUMERIC && fabs(skewness) > WARN_SKEWNESS)
		warnings[n++] = "skewed";
	if (text_like && profile_has_variants(c))
		warnings[n++] = "case_or_space_variants";
	if (c->frozen)
		warnings[n++] = "distinct_estimated";
	for (int i = 0; i < n; i++)
		datums[i] = CStringGetTextDatum(warnings[i]);
	return construct_array(datums, n, TEXTOID, -1, false, TYPALIGN_INT);
}

#define SET_OUT(name, datum) (values[name] = (datum), nulls[name] = false)

enum
{
	COL_NAME, COL_TYPE, COL_KIND, COL_COUNT, COL_NULLS, COL_NULL_FRACTION,
	COL_DISTINCT, COL_MIN, COL_MAX, COL_MEAN, COL_STDDEV, COL_SKEWNESS,
	COL_P01, COL_P25, COL_P50, COL_P75, COL_P99, COL_ZEROS, COL_NEGATIVES,
	COL_NAN_COUNT, COL_INF_COUNT, COL_OUTLIERS, COL_SAMPLE_SIZE,
	COL_TOP_VALUES, COL_HISTOGRAM, COL_WARNINGS
};

StaticAssertDecl(COL_WARNINGS + 1 == PROFILE_OUTPUT_COLUMNS,
				 "ml.profile output columns");

/*
 * ProfileReportColumn builds the output row of one column and stores it in
 * the function's result.
 */
void
ProfileReportColumn(Profile *p, ProfileColumn *c, ReturnSetInfo *rsinfo)
{
	Datum		values[PROFILE_OUTPUT_COLUMNS];
	bool		nulls[PROFILE_OUTPUT_COLUMNS];
	int64		distinct;
	double		null_fraction = 0.0;
	double		skewness = NAN;

	memset(nulls, true, sizeof(nulls));
	SET_OUT(COL_NAME, CStringGetTextDatum(c->name));
	SET_OUT(COL_TYPE, CStringGetTextDatum(format_type_with_typemod(c->typid, c->typmod)));
	SET_OUT(COL_KIND, CStringGetTextDatum(kind_names[c->kind]));
	SET_OUT(COL_COUNT, Int64GetDatum(c->count));
	SET_OUT(COL_NULLS, Int64GetDatum(c->nulls));
	if (p->rows > 0)
	{
		null_fraction = (double) c->nulls / (double) p->rows;
		SET_OUT(COL_NULL_FRACTION, Float8GetDatum(null_fraction));
	}

	distinct = c->scalars ? c->scalars->members : c->datums->members;
	if (c->frozen)
		distinct += (int64) rint(estimateHyperLogLog(&c->hll));
	SET_OUT(COL_DISTINCT, Int64GetDatum(distinct));

	if (c->count > 0)
	{
		char	   *min = profile_extreme(c, false);
		char	   *max = profile_extreme(c, true);

		if (min != NULL)
			SET_OUT(COL_MIN, CStringGetTextDatum(min));
		if (max != NULL)
			SET_OUT(COL_MAX, CStringGetTextDatum(max));
	}

	if (c->moments)
	{
		SET_OUT(COL_NAN_COUNT, Int64GetDatum(c->nans));
		SET_OUT(COL_INF_COUNT, Int64GetDatum(c->infs));
		if (c->kind == KIND_NUMERIC)
		{
			SET_OUT(COL_ZEROS, Int64GetDatum(c->zeros));
			SET_OUT(COL_NEGATIVES, Int64GetDatum(c->negatives));
		}
		SET_OUT(COL_SAMPLE_SIZE, Int64GetDatum(c->sample.size));
		SET_OUT(COL_OUTLIERS, Int64GetDatum(0));
		if (c->n > 0)
			SET_OUT(COL_MEAN, Float8GetDatum(c->mean));
		if (c->n > 1)
			SET_OUT(COL_STDDEV, Float8GetDatum(sqrt(c->m2 / (double) (c->n - 1))));
		if (c->n > 2 && c->m2 > 0.0)
		{
			skewness = sqrt((double) c->n) * c->m3 / pow(c->m2, 1.5);
			SET_OUT(COL_SKEWNESS, Float8GetDatum(skewness));
		}
		if (c->sample.size > 0)
		{
			ProfileFigures f;

			ProfileSampleFigures(c->sample.values, c->sample.size, c->n, c->fmin, c->fmax, &f);
			SET_OUT(COL_P01, Float8GetDatum(f.p01));
			SET_OUT(COL_P25, Float8GetDatum(f.p25));
			SET_OUT(COL_P50, Float8GetDatum(f.p50));
			SET_OUT(COL_P75, Float8GetDatum(f.p75));
			SET_OUT(COL_P99, Float8GetDatum(f.p99));
			SET_OUT(COL_OUTLIERS, Int64GetDatum(f.outliers));
			if (f.histogram != NULL)
				SET_OUT(COL_HISTOGRAM, JsonbPGetDatum(f.histogram));
		}
	}
	SET_OUT(COL_TOP_VALUES, JsonbPGetDatum(profile_top_values(c)));

	SET_OUT(COL_WARNINGS, PointerGetDatum(profile_warnings(p, c, distinct, null_fraction,
														   skewness)));

	tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
}
