/*-------------------------------------------------------------------------
 * src/monitor/baseline.c
 *		The baseline of a model: statistics of the raw training values of
 *		each input column, computed from the rows ml.train has already
 *		read (no second pass over the source), stored in
 *		ml.models.baseline and compared with live data by ml.monitor.
 *
 * A column's values are those of the DataSet: numbers (dates and times as
 * their numeric value, booleans as 0 and 1) or text.  The quantile edges
 * come from an even-stride sample of at most MONITOR_QUANTILE_SAMPLE
 * values; the bin fractions count every value.  A value v falls in the
 * first bin whose upper edge is >= v (MonitorBin), the same rule the
 * monitor applies.
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"

#include "monitor/monitor.h"

static int
cmp_double(const void *a, const void *b)
{
	double		x = *(const double *) a;
	double		y = *(const double *) b;

	return (x > y) - (x < y);
}

int
MonitorBin(const double *edges, int nedges, double v)
{
	int			bin = 0;

	/*
	 * The first edge >= v is the count of edges below v (they ascend).
	 * Counting has no branch to mispredict, and a binary search over nine
	 * edges saves nothing.
	 */
	for (int i = 0; i < nedges; i++)
		bin += edges[i] < v;
	return bin;
}

/* The q-quantile of n sorted values, interpolated between neighbours. */
static double
quantile(const double *sorted, int64 n, double q)
{
	double		pos = q * (double) (n - 1);
	int64		i = (int64) floor(pos);
	double		frac = pos - (double) i;

	if (i + 1 >= n)
		return sorted[n - 1];
	return sorted[i] + frac * (sorted[i + 1] - sorted[i]);
}

static void
numeric_baseline(JsonbParseState **st, const DataColumn *col, int64 nrows)
{
	int64		n = 0;
	double		mean = 0;
	double		m2 = 0;
	double		min = INFINITY;
	double		max = -INFINITY;
	int64		stride;
	int64		nsample = 0;
	double	   *sample;
	double		edges[MONITOR_BINS - 1];
	int64		counts[MONITOR_BINS] = {0};

	for (int64 r = 0; r < nrows; r++)
	{
		double		v = col->values[r];
		double		d;

		if (isnan(v))
			continue;
		n++;
		d = v - mean;
		mean += d / n;
		m2 += d * (v - mean);
		min = Min(min, v);
		max = Max(max, v);
	}

	JbKey(st, "kind");
	JbString(st, "numeric");
	JbKey(st, "count");
	JbInt(st, n);
	JbKey(st, "null_fraction");
	JbFloat(st, nrows > 0 ? (double) (nrows - n) / nrows : 0);
	if (n == 0)
		return;
	JbKey(st, "mean");
	JbFloat(st, mean);
	JbKey(st, "std");
	JbFloat(st, n > 1 ? sqrt(m2 / (n - 1)) : 0);
	JbKey(st, "min");
	JbFloat(st, min);
	JbKey(st, "max");
	JbFloat(st, max);

	stride = Max(1, (n + MONITOR_QUANTILE_SAMPLE - 1) / MONITOR_QUANTILE_SAMPLE);
	sample = palloc(sizeof(double) * Min(n, (int64) MONITOR_QUANTILE_SAMPLE + 1));
	for (int64 r = 0, seen = 0; r < nrows; r++)
	{
		double		v = col->values[r];

		if (isnan(v))
			continue;
		if (seen++ % stride == 0)
			sample[nsample++] = v;
	}
	qsort(sample, nsample, sizeof(double), cmp_double);
	for (int b = 0; b < MONITOR_BINS - 1; b++)
		edges[b] = quantile(sample, nsample, (double) (b + 1) / MONITOR_BINS);
	pfree(sample);

	for (int64 r = 0; r < nrows; r++)
	{
		double		v = col->values[r];

		if (!isnan(v))
			counts[MonitorBin(edges, MONITOR_BINS - 1, v)]++;
	}
	JbKey(st, "edges");
	JbBeginArray(st);
	for (int b = 0; b < MONITOR_BINS - 1; b++)
		JbFloat(st, edges[b]);
	JbEndArray(st);
	JbKey(st, "fractions");
	JbBeginArray(st);
	for (int b = 0; b < MONITOR_BINS; b++)
		JbFloat(st, (double) counts[b] / n);
	JbEndArray(st);
}

typedef struct CategoryCount
{
	int32		code;
	int64		count;
} CategoryCount;

/* Most frequent first; ties by value, so that the baseline is stable. */
static const DataColumn *sort_column;

static int
cmp_category(const void *a, const void *b)
{
	const CategoryCount *x = a;
	const CategoryCount *y = b;

	if (x->count != y->count)
		return (x->count < y->count) ? 1 : -1;
	return strcmp(sort_column->dict[x->code], sort_column->dict[y->code]);
}

static void
categorical_baseline(JsonbParseState **st, const DataColumn *col, int64 nrows)
{
	CategoryCount *cc = palloc0(sizeof(CategoryCount) * Max(col->ndict, 1));
	int64		n = 0;
	int			distinct = 0;
	int			kept;
	int64		kept_count = 0;

	for (int c = 0; c < col->ndict; c++)
		cc[c].code = c;
	for (int64 r = 0; r < nrows; r++)
	{
		int32		code = col->codes[r];

		if (code < 0)
			continue;
		cc[code].count++;
		n++;
	}
	for (int c = 0; c < col->ndict; c++)
		distinct += cc[c].count > 0;
	sort_column = col;
	qsort(cc, col->ndict, sizeof(CategoryCount), cmp_category);
	kept = Min(distinct, MONITOR_TOP_CATEGORIES);

	JbKey(st, "kind");
	JbString(st, "categorical");
	JbKey(st, "count");
	JbInt(st, n);
	JbKey(st, "null_fraction");
	JbFloat(st, nrows > 0 ? (double) (nrows - n) / nrows : 0);
	JbKey(st, "distinct");
	JbInt(st, distinct);
	JbKey(st, "categories");
	JbBeginObject(st);
	for (int c = 0; c < kept; c++)
	{
		JbKey(st, col->dict[cc[c].code]);
		JbFloat(st, n > 0 ? (double) cc[c].count / n : 0);
		kept_count += cc[c].count;
	}
	JbEndObject(st);
	JbKey(st, "other");
	JbFloat(st, n > 0 ? (double) (n - kept_count) / n : 0);
	pfree(cc);
}

Jsonb *
MonitorBaseline(const DataSet *ds, const Pipeline *pl, bool sampled)
{
	JsonbParseState *st = NULL;
	bool	   *used = palloc0(sizeof(bool) * Max(ds->ncols, 1));

	for (int i = 0; i < pl->ncolumns; i++)
	{
		int			c = DataSetFindColumn(ds, pl->columns[i].input);

		if (c >= 0)
			used[c] = true;
	}

	JbBeginObject(&st);
	JbKey(&st, "rows");
	JbInt(&st, ds->nrows);
	JbKey(&st, "sampled");
	JbBool(&st, sampled);
	JbKey(&st, "columns");
	JbBeginObject(&st);
	for (int c = 0; c < ds->ncols; c++)
	{
		const DataColumn *col = &ds->cols[c];

		if (!used[c])
			continue;
		JbKey(&st, col->name);
		JbBeginObject(&st);
		JbKey(&st, "source");
		JbString(&st, col->source);
		JbKey(&st, "element");
		JbInt(&st, col->element);
		JbKey(&st, "type");
		JbString(&st, format_type_be(col->typid));
		if (col->categorical)
			categorical_baseline(&st, col, ds->nrows);
		else
			numeric_baseline(&st, col, ds->nrows);
		JbEndObject(&st);
		CHECK_FOR_INTERRUPTS();
	}
	JbEndObject(&st);
	return JbFinishObject(&st);
}
