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

/*
 * Puts the values of v[lo..hi] that belong at the positions pos[0..npos-1]
 * (ascending, within lo..hi) there, as a full sort would: quickselect that
 * follows only the partitions holding a wanted position.  The quantile
 * edges need about twenty order statistics of a sample of up to
 * MONITOR_QUANTILE_SAMPLE values; sorting it all cost several times more.
 */
static void
select_positions(double *v, int64 lo, int64 hi, const int64 *pos, int npos)
{
	while (npos > 0)
	{
		double		a,
					b,
					c,
					pivot;
		int64		i = lo;
		int64		j = hi;
		int			left;
		int			right;

		if (hi - lo < 16)
		{
			/* insertion sort of a short range */
			for (int64 k = lo + 1; k <= hi; k++)
			{
				double		x = v[k];
				int64		m = k - 1;

				while (m >= lo && v[m] > x)
				{
					v[m + 1] = v[m];
					m--;
				}
				v[m + 1] = x;
			}
			return;
		}
		/* median of three: an element of the range, so both scans stop */
		a = v[lo];
		b = v[lo + (hi - lo) / 2];
		c = v[hi];
		pivot = a < b ? (b < c ? b : (a < c ? c : a)) : (a < c ? a : (b < c ? c : b));
		while (i <= j)
		{
			while (v[i] < pivot)
				i++;
			while (v[j] > pivot)
				j--;
			if (i <= j)
			{
				double		t = v[i];

				v[i] = v[j];
				v[j] = t;
				i++;
				j--;
			}
		}
		/* v[lo..j] <= pivot, v[j+1..i-1] == pivot, v[i..hi] >= pivot */
		for (left = 0; left < npos && pos[left] <= j; left++)
			;
		for (right = left; right < npos && pos[right] < i; right++)
			;
		/*
		 * Recurse into the shorter side and go on with the longer, so that
		 * the depth stays logarithmic whatever the values.
		 */
		if (j - lo < hi - i)
		{
			if (left > 0)
				select_positions(v, lo, j, pos, left);
			pos += right;
			npos -= right;
			lo = i;
		}
		else
		{
			if (npos > right)
				select_positions(v, i, hi, pos + right, npos - right);
			npos = left;
			hi = j;
		}
		CHECK_FOR_INTERRUPTS();
	}
}

/*
 * The first edge >= v is the count of edges below v (they ascend).
 * Counting has no branch to mispredict, and a binary search over nine
 * edges saves nothing.
 */
static inline int
bin_of(const double *edges, int nedges, double v)
{
	int			bin = 0;

	for (int i = 0; i < nedges; i++)
		bin += edges[i] < v;
	return bin;
}

int
MonitorBin(const double *edges, int nedges, double v)
{
	return bin_of(edges, nedges, v);
}

/*
 * The q-quantile of n values, interpolated between neighbours: sorted, or
 * at least with the two positions it reads in place (select_positions).
 */
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

/*
 * The sum of (v - mean)^2 over the values that are not NaN, in two
 * accumulators that do not wait on each other.  A function of its own, so
 * that they stay in registers.
 */
static pg_noinline double
sum_squared_deviations(const double *values, int64 nrows, double mean)
{
	double		acc[2] = {0, 0};

	for (int64 r = 0; r < nrows; r++)
	{
		double		d = values[r] - mean;

		if (!isnan(d))
			acc[r & 1] += d * d;
	}
	return acc[0] + acc[1];
}

static void
numeric_baseline(JsonbParseState **st, const DataColumn *col, int64 nrows)
{
	int64		n = 0;
	double		sum = 0;
	double		mean = 0;
	double		m2 = 0;
	double		min = INFINITY;
	double		max = -INFINITY;
	int64		stride;
	int64		nsample = 0;
	double	   *sample;
	double		edges[MONITOR_BINS - 1];
	int64		positions[2 * (MONITOR_BINS - 1)];
	int			npos = 0;
	int64		counts[MONITOR_BINS] = {0};

	/*
	 * Two passes, the mean and then the squared deviations from it: as
	 * accurate as Welford's update, without its division per value.
	 */
	for (int64 r = 0; r < nrows; r++)
	{
		double		v = col->values[r];

		if (isnan(v))
			continue;
		n++;
		sum += v;
		min = Min(min, v);
		max = Max(max, v);
	}
	if (n > 0)
	{
		mean = sum / n;
		m2 = sum_squared_deviations(col->values, nrows, mean);
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
	if (n == nrows)
	{
		/* no NULLs: every stride-th row */
		for (int64 r = 0; r < nrows; r += stride)
			sample[nsample++] = col->values[r];
	}
	else
	{
		for (int64 r = 0, skip = 0; r < nrows; r++)
		{
			double		v = col->values[r];

			if (isnan(v))
				continue;
			/* every stride-th value, counted down rather than by a division */
			if (skip-- == 0)
			{
				sample[nsample++] = v;
				skip = stride - 1;
			}
		}
	}
	/* the two order statistics each edge interpolates between */
	for (int b = 0; b < MONITOR_BINS - 1; b++)
	{
		int64		i = (int64) floor((double) (b + 1) / MONITOR_BINS * (double) (nsample - 1));

		for (int64 k = i; k <= Min(i + 1, nsample - 1); k++)
			if (npos == 0 || positions[npos - 1] < k)
				positions[npos++] = k;
	}
	select_positions(sample, 0, nsample - 1, positions, npos);
	for (int b = 0; b < MONITOR_BINS - 1; b++)
		edges[b] = quantile(sample, nsample, (double) (b + 1) / MONITOR_BINS);
	pfree(sample);

	/* bin_of inlined with a constant count of edges: unrolled, no branch */
	for (int64 r = 0; r < nrows; r++)
	{
		double		v = col->values[r];

		if (!isnan(v))
			counts[bin_of(edges, MONITOR_BINS - 1, v)]++;
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
