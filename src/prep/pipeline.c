/*-------------------------------------------------------------------------
 * src/prep/pipeline.c
 *		The feature pipeline: fit on the training rows (options come from
 *		options.c), transform blocks of rows or single inputs, and
 *		(de)serialise.
 *
 * Design: a pipeline has one PipelineColumn per input column (an array
 * column contributes one per element, a date column one per part asked
 * for), then the interactions.  A numeric value goes through its date
 * part, clip, log1p and quantile bin, then imputation and scaling, whose
 * statistics are those of the transformed, imputed training values (as a
 * scikit-learn pipeline would compute them).  Categorical columns are
 * one-hot encoded over their most frequent training categories, then an
 * "other" slot (present when some training row falls outside them) and a
 * NULL slot (present when the training rows have NULLs) -- or encoded as
 * an ordinal, a smoothed target mean, or hash buckets.  A value with no
 * slot of its own encodes as all zeros.  Nothing here ever looks at test
 * rows.
 *-------------------------------------------------------------------------
 */
#include "prep/prep.h"

#include <math.h>

#include "common/hashfn.h"
#include "libpq/pqformat.h"
#include "miscadmin.h"
#include "model/model.h"
#include "nodes/value.h"
#include "catalog/pg_type.h"
#include "datatype/timestamp.h"
#include "utils/builtins.h"
#include "utils/datetime.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"

typedef struct CategoryEntry
{
	char	   *key;			/* must be first */
	int			index;
} CategoryEntry;

/* ---------- fitting ---------- */

static int
double_cmp(const void *a, const void *b)
{
	double		x = *(const double *) a;
	double		y = *(const double *) b;

	return x < y ? -1 : (x > y);
}

/* Quantile of sorted values, linear interpolation (numpy's default). */
static double
sorted_quantile(const double *v, int64 n, double q)
{
	double		pos = q * (double) (n - 1);
	int64		lo = (int64) floor(pos);
	int64		hi = Min(lo + 1, n - 1);

	return v[lo] + (v[hi] - v[lo]) * (pos - (double) lo);
}

/* Most frequent value of sorted values; ties go to the smallest. */
static double
sorted_mode(const double *v, int64 n)
{
	double		best = v[0];
	int64		best_run = 0;

	for (int64 i = 0; i < n;)
	{
		int64		j = i;

		while (j < n && v[j] == v[i])
			j++;
		if (j - i > best_run)
		{
			best_run = j - i;
			best = v[i];
		}
		i = j;
	}
	return best;
}

/*
 * PipelineNullNotAllowed raises the error for a NULL in a column whose
 * impute option is "error".
 */
void
PipelineNullNotAllowed(const char *column)
{
	ereport(ERROR,
			(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
			 errmsg("column \"%s\" contains NULL", column),
			 errdetail("Its preprocess option is impute \"error\"."),
			 errhint("Choose another impute option or remove the rows with NULL.")));
}

static void
fit_numeric(PipelineColumn *pc, const double *x, const int64 *rows, int64 n,
			const ColumnOptions *co, bool keep_missing)
{
	ScaleKind	scale = co->scale;
	double	   *vals = NULL;
	int64		nvalid = 0;
	double		sum = 0.0;
	double		mean = 0.0;
	double		m2 = 0.0;
	double		lo = INFINITY;
	double		hi = -INFINITY;

	/* two passes: the mean, then the squared deviations from it */
	for (int64 i = 0; i < n; i++)
	{
		double		v = x[rows ? rows[i] : i];

		if (!isnan(v))
		{
			nvalid++;
			sum += v;
			lo = Min(lo, v);
			hi = Max(hi, v);
		}
	}
	if (nvalid > 0)
		mean = sum / (double) nvalid;
	for (int64 i = 0; i < n; i++)
	{
		double		v = x[rows ? rows[i] : i];

		if (!isnan(v))
			m2 += (v - mean) * (v - mean);
	}
	pc->raw_mean = nvalid ? mean : NAN;
	pc->raw_std = nvalid ? sqrt(m2 / (double) nvalid) : NAN;
	pc->null_fraction = n ? (double) (n - nvalid) / (double) n : 0.0;

	pc->fill_category = -1;
	pc->impute = co->impute_set ? co->impute : keep_missing ? IMPUTE_NONE : IMPUTE_MEAN;
	if (pc->impute == IMPUTE_ERROR && nvalid < n)
		PipelineNullNotAllowed(pc->name);
	if (pc->impute == IMPUTE_CONSTANT && co->fill_is_text)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("impute constant for numeric column \"%s\" needs a numeric value", pc->name)));

	if (pc->impute == IMPUTE_NONE)
		pc->fill = NAN;
	else if (nvalid == 0)
		pc->fill = pc->impute == IMPUTE_CONSTANT ? co->fill : 0.0;
	else
	{
		bool		need_sorted = pc->impute == IMPUTE_MEDIAN ||
			pc->impute == IMPUTE_MOST_FREQUENT || scale == SCALE_ROBUST;

		if (need_sorted)
		{
			int64		k = 0;

			vals = palloc_extended(sizeof(double) * Max(n, 1), MCXT_ALLOC_HUGE);
			for (int64 i = 0; i < n; i++)
				if (!isnan(x[rows ? rows[i] : i]))
					vals[k++] = x[rows ? rows[i] : i];
			qsort(vals, nvalid, sizeof(double), double_cmp);
		}
		switch (pc->impute)
		{
			case IMPUTE_MEAN:
			case IMPUTE_ERROR:
			case IMPUTE_CATEGORY:
				pc->fill = mean;
				break;
			case IMPUTE_NONE:
				break;
			case IMPUTE_MEDIAN:
				pc->fill = sorted_quantile(vals, nvalid, 0.5);
				break;
			case IMPUTE_MOST_FREQUENT:
				pc->fill = sorted_mode(vals, nvalid);
				break;
			case IMPUTE_CONSTANT:
				pc->fill = co->fill;
				break;
		}
	}

	/*
	 * Scaling statistics are those of the imputed training values (of the
	 * valid ones alone when NULLs stay missing).
	 */
	if (pc->impute == IMPUTE_NONE)
		n = nvalid;
	pc->scale = scale;
	pc->center = 0.0;
	pc->scale_by = 1.0;
	if (scale == SCALE_STANDARD && n > 0)
	{
		int64		nnull = n - nvalid;
		double		imean = (sum + (nnull ? pc->fill * nnull : 0.0)) / (double) n;

		/* sum over valid v of (v - imean)^2 = m2 + nvalid (mean - imean)^2 */
		double		ss = m2 + (double) nvalid * (mean - imean) * (mean - imean) +
			(nnull ? (double) nnull * (pc->fill - imean) * (pc->fill - imean) : 0.0);

		pc->center = imean;
		pc->scale_by = sqrt(ss / (double) n);
	}
	else if (scale == SCALE_MINMAX)
	{
		if (nvalid < n)
		{
			lo = Min(lo, pc->fill);
			hi = Max(hi, pc->fill);
		}
		pc->center = lo;
		pc->scale_by = hi - lo;
	}
	else if (scale == SCALE_MAXABS)
	{
		pc->center = 0.0;
		pc->scale_by = Max(fabs(lo), fabs(hi));
		if (nvalid < n && isfinite(pc->fill))
			pc->scale_by = Max(pc->scale_by, fabs(pc->fill));
	}
	else if (scale == SCALE_ROBUST && n > 0)
	{
		double	   *all;

		if (vals == NULL)		/* no valid value: every value is the fill */
			vals = palloc_extended(sizeof(double) * n, MCXT_ALLOC_HUGE);
		all = vals;
		/* add the imputed values and sort again */
		if (nvalid < n)
		{
			for (int64 i = nvalid; i < n; i++)
				all[i] = pc->fill;
			qsort(all, n, sizeof(double), double_cmp);
		}
		pc->center = sorted_quantile(all, n, 0.5);
		pc->scale_by = sorted_quantile(all, n, 0.75) - sorted_quantile(all, n, 0.25);
	}
	/* a constant column is left unscaled, as scikit-learn does */
	if (!(pc->scale_by > 1e-300) || !isfinite(pc->scale_by))
		pc->scale_by = 1.0;
	if (!isfinite(pc->center))
		pc->center = 0.0;
	if (vals)
		pfree(vals);
}

typedef struct CategoryCount
{
	int32		code;
	int64		count;
	const char *value;
} CategoryCount;

static int
category_count_cmp(const void *a, const void *b)
{
	const CategoryCount *x = a;
	const CategoryCount *y = b;

	if (x->count != y->count)
		return x->count > y->count ? -1 : 1;
	return strcmp(x->value, y->value);
}

/*
 * Target encoding: each category becomes the mean of the target over its
 * training rows (for classification, the share of each class; binary: of
 * the positive class), shrunk towards the overall mean by smoothing:
 * (sum + m * prior) / (count + m).  Unseen values and NULL get the prior.
 */
static void
fit_target_encoding(PipelineColumn *pc, const DataColumn *col, const int64 *rows,
					int64 n, double smoothing, const PipelineTarget *target)
{
	int			width;
	double	   *sums;
	double	   *counts;
	double	   *prior;
	int32	   *code_index;

	if (target == NULL || target->y == NULL ||
		(target->task != ML_TASK_REGRESSION && target->task != ML_TASK_CLASSIFICATION))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("encode \"target\" for column \"%s\" needs a regression or classification target",
						pc->name)));
	width = target->task == ML_TASK_CLASSIFICATION && target->nclasses > 2 ? target->nclasses : 1;
	pc->target_width = width;
	sums = palloc0(sizeof(double) * Max((Size) pc->ncategories * width, 1));
	counts = palloc0(sizeof(double) * Max(pc->ncategories, 1));
	prior = palloc0(sizeof(double) * width);

	/* dictionary code -> category index */
	code_index = palloc(sizeof(int32) * Max(col->ndict, 1));
	for (int d = 0; d < col->ndict; d++)
	{
		code_index[d] = -1;
		for (int c = 0; c < pc->ncategories; c++)
			if (strcmp(col->dict[d], pc->categories[c]) == 0)
			{
				code_index[d] = c;
				break;
			}
	}

	for (int64 i = 0; i < n; i++)
	{
		int32		code = col->codes[rows[i]];
		double		y = target->y[i];
		int			c = code >= 0 ? code_index[code] : -1;

		for (int w = 0; w < width; w++)
		{
			double		v = width == 1 ? y : (double) ((int) y == w);

			prior[w] += v;
			if (c >= 0)
				sums[(Size) c * width + w] += v;
		}
		if (c >= 0)
			counts[c] += 1.0;
	}
	for (int w = 0; w < width; w++)
		prior[w] /= (double) Max(n, 1);
	pc->target_values = palloc(sizeof(double) * Max((Size) pc->ncategories * width, 1));
	for (int c = 0; c < pc->ncategories; c++)
		for (int w = 0; w < width; w++)
			pc->target_values[(Size) c * width + w] =
				(sums[(Size) c * width + w] + smoothing * prior[w]) / (counts[c] + smoothing);
	pc->target_default = prior;
	pfree(sums);
	pfree(counts);
	pfree(code_index);
}

static void
fit_categorical(PipelineColumn *pc, const DataColumn *col, const int64 *rows,
				int64 n, const ColumnOptions *co, const PipelineTarget *target)
{
	int			max_categories = co->encode == ENCODE_TARGET ? PIPELINE_MAX_BUCKETS :
		co->max_categories;
	CategoryCount *counts = palloc_extended(sizeof(CategoryCount) * Max(col->ndict, 1),
											MCXT_ALLOC_HUGE);
	int64		nnull = 0;
	int			nseen = 0;
	int64		kept = 0;

	for (int i = 0; i < col->ndict; i++)
	{
		counts[i].code = i;
		counts[i].count = 0;
		counts[i].value = col->dict[i];
	}
	for (int64 i = 0; i < n; i++)
	{
		int32		c = col->codes[rows[i]];

		if (c < 0)
			nnull++;
		else
			counts[c].count++;
	}
	qsort(counts, col->ndict, sizeof(CategoryCount), category_count_cmp);
	while (nseen < col->ndict && counts[nseen].count > 0)
		nseen++;

	pc->impute = co->impute_set ? co->impute : IMPUTE_CATEGORY;
	if (pc->impute == IMPUTE_MEAN || pc->impute == IMPUTE_MEDIAN)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("impute %s cannot apply to categorical column \"%s\"",
						ImputeName(pc->impute), pc->name),
				 errhint("Categorical columns take impute most_frequent, constant or error; by default NULL is a category of its own.")));
	if (pc->impute == IMPUTE_ERROR && nnull > 0)
		PipelineNullNotAllowed(pc->name);

	pc->encode = co->encode;
	if (co->encode == ENCODE_ORDINAL && co->order != NIL)
	{
		/* the user's order; training values outside it are unknown */
		ListCell   *lc;
		int			k = 0;

		pc->ncategories = list_length(co->order);
		pc->categories = palloc(sizeof(char *) * pc->ncategories);
		foreach(lc, co->order)
		{
			for (int j = 0; j < k; j++)
				if (strcmp(pc->categories[j], strVal(lfirst(lc))) == 0)
					PipelineOptionError(co->column, psprintf("\"order\" lists \"%s\" twice",
													   strVal(lfirst(lc))));
			pc->categories[k++] = pstrdup(strVal(lfirst(lc)));
		}
		for (int i = 0; i < nseen; i++)
			for (int j = 0; j < k; j++)
				if (strcmp(counts[i].value, pc->categories[j]) == 0)
					kept += counts[i].count;
	}
	else if (co->encode == ENCODE_HASH)
	{
		pc->ncategories = 0;
		pc->categories = palloc(sizeof(char *));
		pc->nbuckets = co->buckets;
		kept = n - nnull;
	}
	else
	{
		pc->ncategories = Min(nseen, max_categories);
		pc->categories = palloc(sizeof(char *) * Max(pc->ncategories, 1));
		for (int i = 0; i < pc->ncategories; i++)
		{
			pc->categories[i] = pstrdup(counts[i].value);
			kept += counts[i].count;
		}
	}
	pc->has_other = (n - nnull - kept) > 0;
	pc->has_null = nnull > 0 && pc->impute == IMPUTE_CATEGORY;
	pc->null_fraction = n ? (double) nnull / (double) n : 0.0;
	pc->raw_mean = NAN;
	pc->raw_std = NAN;
	pc->fill_category = -1;
	if (pc->impute == IMPUTE_MOST_FREQUENT && pc->ncategories > 0)
		pc->fill_category = 0;
	else if (pc->impute == IMPUTE_CONSTANT)
	{
		for (int i = 0; i < pc->ncategories; i++)
			if (strcmp(pc->categories[i], co->fill_text) == 0)
				pc->fill_category = i;
	}
	if (pc->encode == ENCODE_TARGET)
		fit_target_encoding(pc, col, rows, n, co->smoothing, target);
	pfree(counts);
}

/* The number of features a column produces. */
static int
column_width(const PipelineColumn *pc)
{
	if (!pc->categorical)
		return 1;
	switch (pc->encode)
	{
		case ENCODE_ORDINAL:
			return 1;
		case ENCODE_TARGET:
			return pc->target_width;
		case ENCODE_HASH:
			return pc->nbuckets;
		default:
			return pc->ncategories + (pc->has_other ? 1 : 0) + (pc->has_null ? 1 : 0);
	}
}

/* Assigns output slots and feature names. */
static void
pipeline_layout(Pipeline *pl)
{
	int			nf = 0;
	int			k = 0;

	for (int i = 0; i < pl->ncolumns; i++)
	{
		PipelineColumn *pc = &pl->columns[i];

		if (pc->input == NULL)
			pc->input = pc->name;
		pc->first_feature = nf;
		pc->inv_scale = 1.0 / pc->scale_by;
		pc->nfeatures = column_width(pc);
		nf += pc->nfeatures;
	}
	pl->nfeatures = nf + pl->ninteractions;
	pl->feature_names = palloc(sizeof(char *) * Max(pl->nfeatures, 1));
	for (int i = 0; i < pl->ncolumns; i++)
	{
		PipelineColumn *pc = &pl->columns[i];

		if (!pc->categorical || pc->encode == ENCODE_ORDINAL ||
			(pc->encode == ENCODE_TARGET && pc->target_width == 1))
		{
			pl->feature_names[k++] = pc->name;
			continue;
		}
		if (pc->encode == ENCODE_TARGET)
		{
			for (int w = 0; w < pc->target_width; w++)
				pl->feature_names[k++] = psprintf("%s:%d", pc->name, w);
			continue;
		}
		if (pc->encode == ENCODE_HASH)
		{
			for (int b = 0; b < pc->nbuckets; b++)
				pl->feature_names[k++] = psprintf("%s#%d", pc->name, b);
			continue;
		}
		for (int c = 0; c < pc->ncategories; c++)
			pl->feature_names[k++] = psprintf("%s=%s", pc->name, pc->categories[c]);
		if (pc->has_other)
			pl->feature_names[k++] = psprintf("%s=<other>", pc->name);
		if (pc->has_null)
			pl->feature_names[k++] = psprintf("%s=<null>", pc->name);
	}
	for (int t = 0; t < pl->ninteractions; t++)
		pl->feature_names[k++] = psprintf("%s*%s",
										  pl->columns[pl->interactions[2 * t]].name,
										  pl->columns[pl->interactions[2 * t + 1]].name);
}

/*
 * PipelineLayout assigns the output features of a pipeline whose columns
 * are set, as fitting and deserialising do; for pipelines built by hand.
 */
void
PipelineLayout(Pipeline *pl)
{
	pipeline_layout(pl);
}

/* A part of a date given as days since 1970-01-01 (fractional: a time). */
static double
derive_part(DerivePart part, double days)
{
	double		whole = floor(days);
	int			year;
	int			month;
	int			day;
	int			jd;

	if (part == DERIVE_EPOCH)
		return days * 86400.0;
	if (part == DERIVE_HOUR)
		return floor((days - whole) * 24.0);
	if (fabs(whole) > 1e8)
		return NAN;				/* far outside the calendar */
	jd = (int) whole + UNIX_EPOCH_JDATE;
	if (part == DERIVE_DOW)
		return (double) j2day(jd);
	j2date(jd, &year, &month, &day);
	return part == DERIVE_YEAR ? year : part == DERIVE_MONTH ? month : day;
}

/* The bin of a value: how many inner edges it reaches. */
static double
bin_index(const PipelineColumn *pc, double v)
{
	int			lo = 0;
	int			hi = pc->nbins - 1;

	while (lo < hi)
	{
		int			mid = (lo + hi) / 2;

		if (v >= pc->bin_edges[mid])
			lo = mid + 1;
		else
			hi = mid;
	}
	return (double) lo;
}

/*
 * PipelineDerivedValue is a column's input value as the column sees it
 * before any other transform: its date part, or the value itself.
 */
double
PipelineDerivedValue(const PipelineColumn *pc, double v)
{
	return pc->derive != DERIVE_NONE && !isnan(v) ? derive_part(pc->derive, v) : v;
}

/*
 * PipelinePreTransform applies a numeric column's transforms to a
 * non-NULL value, in order: date part, clip, log1p, bin.
 */
double
PipelinePreTransform(const PipelineColumn *pc, double v)
{
	if (pc->derive != DERIVE_NONE)
		v = derive_part(pc->derive, v);
	if (pc->clip_set)
		v = Min(Max(v, pc->clip_lo), pc->clip_hi);
	if (pc->log1p)
	{
		if (v <= -1.0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("column \"%s\" has the value %g, which log1p cannot take", pc->name, v),
					 errhint("log1p needs values above -1; clip the column first, e.g. \"clip\": [0, null].")));
		v = log1p(v);
	}
	if (pc->nbins > 0)
		v = bin_index(pc, v);
	return v;
}

/*
 * Fits one numeric pipeline column (the whole column, or one date part of
 * it): its transforms first, then imputation and scaling on the
 * transformed training values.
 */
static void
fit_numeric_column(PipelineColumn *pc, const DataColumn *col, const int64 *rows,
				   int64 n, const ColumnOptions *co, bool keep_missing)
{
	double	   *x;

	pc->clip_set = co->clip_set;
	pc->clip_lo = co->clip_lo;
	pc->clip_hi = co->clip_hi;
	pc->log1p = co->log1p;
	pc->nbins = 0;				/* edges come from the transformed values */
	if (!PipelineHasPre(pc) && co->bins == 0)
	{
		/* nothing to transform: fit on the column as it is */
		fit_numeric(pc, col->values, rows, n, co, keep_missing);
		return;
	}
	x = palloc_extended(sizeof(double) * Max(n, 1), MCXT_ALLOC_HUGE);
	for (int64 i = 0; i < n; i++)
	{
		double		v = col->values[rows[i]];

		x[i] = isnan(v) ? NAN : PipelineHasPre(pc) ? PipelinePreTransform(pc, v) : v;
	}
	if (co->bins > 0)
	{
		double	   *sorted = palloc_extended(sizeof(double) * Max(n, 1), MCXT_ALLOC_HUGE);
		int64		k = 0;

		for (int64 i = 0; i < n; i++)
			if (!isnan(x[i]))
				sorted[k++] = x[i];
		pc->nbins = co->bins;
		pc->bin_edges = palloc(sizeof(double) * (pc->nbins - 1));
		if (k > 0)
		{
			qsort(sorted, k, sizeof(double), double_cmp);
			for (int b = 1; b < pc->nbins; b++)
				pc->bin_edges[b - 1] = sorted_quantile(sorted, k, (double) b / pc->nbins);
		}
		else
			for (int b = 1; b < pc->nbins; b++)
				pc->bin_edges[b - 1] = 0.0;
		for (int64 i = 0; i < n; i++)
			if (!isnan(x[i]))
				x[i] = bin_index(pc, x[i]);
		pfree(sorted);
	}
	fit_numeric(pc, x, NULL, n, co, keep_missing);
	pfree(x);
}

/*
 * PipelineSetMoments refits numeric column i of a pipeline from the count,
 * mean and sum of squared deviations of its training values, none NULL:
 * what fit_numeric computes from the rows, for a pipeline whose structure
 * was fitted on a sample (ml.train's aggregate path).  Only the imputations
 * and scalings that these moments determine are allowed.
 */
void
PipelineSetMoments(Pipeline *pl, int i, int64 n, double mean, double m2)
{
	PipelineColumn *pc = &pl->columns[i];
	double		std = n > 0 ? sqrt(Max(m2, 0.0) / (double) n) : NAN;

	if (pc->categorical || PipelineHasPre(pc) ||
		!(pc->scale == SCALE_NONE || pc->scale == SCALE_STANDARD) ||
		!(pc->impute == IMPUTE_MEAN || pc->impute == IMPUTE_ERROR || pc->impute == IMPUTE_NONE))
		elog(ERROR, "pipeline column \"%s\" cannot be fitted from moments", pc->name);
	pc->raw_mean = n > 0 ? mean : NAN;
	pc->raw_std = std;
	pc->null_fraction = 0.0;
	pc->fill = pc->impute == IMPUTE_NONE ? NAN : n > 0 ? mean : 0.0;
	pc->center = 0.0;
	pc->scale_by = 1.0;
	if (pc->scale == SCALE_STANDARD && n > 0)
	{
		pc->center = mean;
		pc->scale_by = std;
	}
	/* as fit_numeric: a constant column is left unscaled */
	if (!(pc->scale_by > 1e-300) || !isfinite(pc->scale_by))
		pc->scale_by = 1.0;
	if (!isfinite(pc->center))
		pc->center = 0.0;
	pc->inv_scale = 1.0 / pc->scale_by;
}

/*
 * PipelineFit fits the pipeline on the given (training) rows of a DataSet.
 * default_scale is the algorithm's preference, used where the options do
 * not say; keep_missing (for algorithms that handle missing values) makes
 * numeric NULLs stay NaN unless the options ask for an imputation; target
 * (may be NULL) gives target encoding the training rows' outcomes.
 */
Pipeline *
PipelineFit(const DataSet *ds, const int64 *rows, int64 nrows,
			const PipelineOptions *opts, ScaleKind default_scale, bool keep_missing,
			const PipelineTarget *target)
{
	Pipeline   *pl = palloc0(sizeof(Pipeline));
	ListCell   *lc;
	int			cap = Max(ds->ncols, 1);

	/* every column named in the options must exist */
	foreach(lc, opts->columns)
	{
		ColumnOptions *co = lfirst(lc);
		bool		found = co->exclude;

		for (int i = 0; i < ds->ncols && !found; i++)
			found = strcmp(ds->cols[i].source, co->column) == 0;
		if (!found)
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_COLUMN),
					 errmsg("preprocess names column \"%s\", which is not a feature of the source",
							co->column)));
	}

	pl->columns = palloc0(sizeof(PipelineColumn) * cap);
	for (int i = 0; i < ds->ncols; i++)
	{
		const DataColumn *col = &ds->cols[i];
		ColumnOptions co = PipelineColumnOptions(opts, col, default_scale);
		int			nparts = Max(list_length(co.parts), 1);

		for (int part = 0; part < nparts; part++)
		{
			PipelineColumn *pc;

			if (pl->ncolumns == cap)
			{
				cap *= 2;
				pl->columns = repalloc(pl->columns, sizeof(PipelineColumn) * cap);
			}
			pc = &pl->columns[pl->ncolumns++];
			memset(pc, 0, sizeof(*pc));
			pc->input = pstrdup(col->name);
			pc->source = pstrdup(col->source);
			pc->element = col->element;
			pc->categorical = col->categorical;
			pc->value_type = col->categorical ? TEXTOID : getBaseType(col->typid);
			pc->derive = co.parts ? (DerivePart) list_nth_int(co.parts, part) : DERIVE_NONE;
			pc->name = pc->derive == DERIVE_NONE ? pstrdup(col->name) :
				psprintf("%s.%s", col->name, DeriveName(pc->derive));
			if (col->categorical)
				fit_categorical(pc, col, rows, nrows, &co, target);
			else
				fit_numeric_column(pc, col, rows, nrows, &co, keep_missing);
			CHECK_FOR_INTERRUPTS();
		}
	}

	/* interactions: products of two numeric columns' transformed values */
	pl->interactions = palloc(sizeof(int) * 2 * Max(list_length(opts->interactions), 1));
	foreach(lc, opts->interactions)
	{
		List	   *pair = lfirst(lc);
		int			idx[2];

		for (int k = 0; k < 2; k++)
		{
			const char *name = strVal(list_nth(pair, k));

			idx[k] = PipelineFindColumn(pl, name);
			if (idx[k] < 0)
				ereport(ERROR,
						(errcode(ERRCODE_UNDEFINED_COLUMN),
						 errmsg("interaction names column \"%s\", which is not a feature of the source",
								name)));
			if (pl->columns[idx[k]].categorical)
				PipelineOptionError(name, "interactions take numeric columns");
		}
		pl->interactions[2 * pl->ninteractions] = idx[0];
		pl->interactions[2 * pl->ninteractions + 1] = idx[1];
		pl->ninteractions++;
	}
	pipeline_layout(pl);
	return pl;
}

/* ---------- transforming ---------- */

static uint32
category_hash_fn(const void *key, Size keysize)
{
	const char *s = *(const char *const *) key;

	return hash_bytes((const unsigned char *) s, strlen(s));
}

static int
category_match_fn(const void *key1, const void *key2, Size keysize)
{
	return strcmp(*(const char *const *) key1, *(const char *const *) key2);
}

/*
 * Returns the key of a category value (NULL for NULL): for one-hot its
 * feature offset within the column's features, -1 when it encodes as all
 * zeros; for ordinal and target its category index, -1 when unknown; for
 * hash its bucket.  The lookup table is built on
 * first use, in the memory context that holds the pipeline.
 */
static int
category_key(const PipelineColumn *pc_const, const char *value)
{
	PipelineColumn *pc = (PipelineColumn *) pc_const;
	CategoryEntry *entry;

	if (value == NULL)
	{
		if (pc->fill_category >= 0)
			return pc->fill_category;
		if (pc->impute == IMPUTE_ERROR)
			PipelineNullNotAllowed(pc->name);
		if (pc->encode != ENCODE_ONE_HOT)
			return -1;
		if (pc->impute == IMPUTE_CONSTANT)
			return pc->has_other ? pc->ncategories : -1;
		return pc->has_null ? pc->ncategories + (pc->has_other ? 1 : 0) : -1;
	}
	if (pc->encode == ENCODE_HASH)
		return (int) (hash_bytes((const unsigned char *) value, strlen(value)) %
					  (uint32) pc->nbuckets);

	if (pc->lookup == NULL)
	{
		HASHCTL		ctl;

		ctl.keysize = sizeof(char *);
		ctl.entrysize = sizeof(CategoryEntry);
		ctl.hash = category_hash_fn;
		ctl.match = category_match_fn;
		ctl.hcxt = GetMemoryChunkContext(pc->categories);
		pc->lookup = hash_create("pgmaker categories", Max(pc->ncategories, 8), &ctl,
								 HASH_ELEM | HASH_FUNCTION | HASH_COMPARE | HASH_CONTEXT);
		for (int i = 0; i < pc->ncategories; i++)
		{
			entry = hash_search(pc->lookup, &pc->categories[i], HASH_ENTER, NULL);
			entry->index = i;
		}
	}
	entry = hash_search(pc->lookup, &value, HASH_FIND, NULL);
	if (entry)
		return entry->index;
	if (pc->encode != ENCODE_ONE_HOT)
		return -1;
	return pc->has_other ? pc->ncategories : -1;
}

/*
 * Writes a categorical column's features for a value's key (from
 * category_key), stride apart: one-hot and hash set one slot; ordinal
 * writes the category's position (-1 for unknown or NULL); target writes
 * the category's encoding (the prior for unknown or NULL).
 */
static inline void
write_categorical(const PipelineColumn *pc, int key, double *dst, Size stride)
{
	switch (pc->encode)
	{
		case ENCODE_ORDINAL:
			dst[0] = (double) key;
			break;
		case ENCODE_TARGET:
			for (int w = 0; w < pc->target_width; w++)
				dst[w * stride] = key >= 0 ?
					pc->target_values[(Size) key * pc->target_width + w] :
					pc->target_default[w];
			break;
		default:
			for (int f = 0; f < pc->nfeatures; f++)
				dst[f * stride] = 0.0;
			if (key >= 0)
				dst[key * stride] = 1.0;
			break;
	}
}

/*
 * PipelineFindColumn returns the index of the input column with this name,
 * or -1.
 */
int
PipelineFindColumn(const Pipeline *pl, const char *name)
{
	for (int i = 0; i < pl->ncolumns; i++)
		if (strcmp(pl->columns[i].name, name) == 0)
			return i;
	return -1;
}

/*
 * PipelineBind locates every input column of the pipeline in a DataSet and
 * maps its dictionary codes to feature slots.
 */
PipelineBinding *
PipelineBind(const Pipeline *pl, const DataSet *ds)
{
	PipelineBinding *b = palloc0(sizeof(PipelineBinding));

	b->pipeline = pl;
	b->ds = ds;
	b->colmap = palloc(sizeof(int) * Max(pl->ncolumns, 1));
	b->code_slot = palloc0(sizeof(int32 *) * Max(pl->ncolumns, 1));
	for (int i = 0; i < pl->ncolumns; i++)
	{
		const PipelineColumn *pc = &pl->columns[i];
		int			c = DataSetFindColumn(ds, pc->input);
		const DataColumn *col;

		if (c < 0)
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_COLUMN),
					 errmsg("feature column \"%s\" is missing from the source", pc->input)));
		col = &ds->cols[c];
		if (col->categorical != pc->categorical)
			ereport(ERROR,
					(errcode(ERRCODE_DATATYPE_MISMATCH),
					 errmsg("column \"%s\" is %s in the source but the model expects %s",
							pc->input, col->categorical ? "categorical" : "numeric",
							pc->categorical ? "a category" : "a number")));
		b->colmap[i] = c;
		if (pc->categorical)
		{
			b->code_slot[i] = palloc(sizeof(int32) * Max(col->ndict, 1));
			for (int d = 0; d < col->ndict; d++)
				b->code_slot[i][d] = category_key(pc, col->dict[d]);
		}
	}
	return b;
}

/*
 * PipelineTransformInteractions fills the interaction features, products
 * of two columns' transformed values, once those are in out (n rows,
 * column-major, leading dimension ld).
 */
void
PipelineTransformInteractions(const Pipeline *pl, double *out, int n, int ld)
{
	int			base = pl->nfeatures - pl->ninteractions;

	for (int t = 0; t < pl->ninteractions; t++)
	{
		const double *a = out + (Size) pl->columns[pl->interactions[2 * t]].first_feature * ld;
		const double *b = out + (Size) pl->columns[pl->interactions[2 * t + 1]].first_feature * ld;
		double	   *dst = out + (Size) (base + t) * ld;

		for (int i = 0; i < n; i++)
			dst[i] = a[i] * b[i];
	}
}

/*
 * PipelineTransformBlock writes the features of n DataSet rows into out,
 * column-major with leading dimension ld (>= n).
 */
void
PipelineTransformBlock(const PipelineBinding *b, const int64 *rows, int n,
					   double *out, int ld)
{
	const Pipeline *pl = b->pipeline;

	for (int j = 0; j < pl->ncolumns; j++)
	{
		const PipelineColumn *pc = &pl->columns[j];
		const DataColumn *col = &b->ds->cols[b->colmap[j]];
		double	   *dst = out + (Size) pc->first_feature * ld;

		if (!pc->categorical)
		{
			if (pc->center == 0.0 && pc->inv_scale == 1.0 && pc->impute != IMPUTE_ERROR &&
				!PipelineHasPre(pc))
			{
				/* unscaled: only NULLs change, as PipelineTransformNumber would */
				for (int i = 0; i < n; i++)
				{
					double		v = col->values[rows[i]];

					dst[i] = isnan(v) ? pc->fill : v;
				}
			}
			else
				for (int i = 0; i < n; i++)
					dst[i] = PipelineTransformNumber(pc, col->values[rows[i]]);
			continue;
		}
		for (int i = 0; i < n; i++)
		{
			int32		code = col->codes[rows[i]];

			write_categorical(pc, code < 0 ? category_key(pc, NULL) : b->code_slot[j][code],
							  dst + i, ld);
		}
	}
	PipelineTransformInteractions(pl, out, n, ld);
}

/*
 * PipelineTransformValues transforms one input, given as one value per
 * pipeline column, into out[nfeatures].
 */
void
PipelineTransformValues(const Pipeline *pl, const PipelineValue *vals, double *out)
{
	for (int j = 0; j < pl->ncolumns; j++)
	{
		const PipelineColumn *pc = &pl->columns[j];
		double	   *dst = out + pc->first_feature;

		if (!pc->categorical)
		{
			dst[0] = PipelineTransformNumber(pc, vals[j].isnull ? NAN : vals[j].num);
			continue;
		}
		write_categorical(pc, category_key(pc, vals[j].isnull ? NULL : vals[j].str), dst, 1);
	}
	PipelineTransformInteractions(pl, out, 1, 1);
}

/* ---------- serialisation and description ---------- */

/*
 * PipelineSerialize appends the fitted pipeline to a blob.
 */
void
PipelineSerialize(const Pipeline *pl, StringInfo buf)
{
	pq_sendint32(buf, pl->ncolumns);
	for (int i = 0; i < pl->ncolumns; i++)
	{
		const PipelineColumn *pc = &pl->columns[i];

		BlobPutString(buf, pc->name);
		BlobPutString(buf, pc->source);
		pq_sendint32(buf, pc->element);
		pq_sendbyte(buf, pc->categorical);
		pq_sendint32(buf, pc->value_type);
		pq_sendint32(buf, pc->impute);
		pq_sendfloat8(buf, pc->fill);
		pq_sendint32(buf, pc->scale);
		pq_sendfloat8(buf, pc->center);
		pq_sendfloat8(buf, pc->scale_by);
		pq_sendfloat8(buf, pc->raw_mean);
		pq_sendfloat8(buf, pc->raw_std);
		pq_sendfloat8(buf, pc->null_fraction);
		pq_sendint32(buf, pc->ncategories);
		for (int c = 0; c < pc->ncategories; c++)
			BlobPutString(buf, pc->categories[c]);
		pq_sendbyte(buf, pc->has_other);
		pq_sendbyte(buf, pc->has_null);
		pq_sendint32(buf, pc->fill_category);
		BlobPutString(buf, pc->input);
		pq_sendint32(buf, pc->derive);
		pq_sendbyte(buf, pc->clip_set);
		pq_sendfloat8(buf, pc->clip_lo);
		pq_sendfloat8(buf, pc->clip_hi);
		pq_sendbyte(buf, pc->log1p);
		pq_sendint32(buf, pc->nbins);
		BlobPutFloat8Array(buf, pc->bin_edges, pc->nbins > 0 ? pc->nbins - 1 : 0);
		pq_sendint32(buf, pc->encode);
		pq_sendint32(buf, pc->nbuckets);
		pq_sendint32(buf, pc->target_width);
		if (pc->encode == ENCODE_TARGET)
		{
			BlobPutFloat8Array(buf, pc->target_values, (int64) pc->ncategories * pc->target_width);
			BlobPutFloat8Array(buf, pc->target_default, pc->target_width);
		}
	}
	pq_sendint32(buf, pl->ninteractions);
	for (int t = 0; t < 2 * pl->ninteractions; t++)
		pq_sendint32(buf, pl->interactions[t]);
}

/*
 * PipelineDeserialize reads a pipeline written by PipelineSerialize.
 */
Pipeline *
PipelineDeserialize(BlobReader *r)
{
	Pipeline   *pl = palloc0(sizeof(Pipeline));

	pl->ncolumns = BlobGetCount(r, 10000000, 60, "pipeline columns");
	pl->columns = palloc0(sizeof(PipelineColumn) * Max(pl->ncolumns, 1));
	for (int i = 0; i < pl->ncolumns; i++)
	{
		PipelineColumn *pc = &pl->columns[i];
		int32		impute;
		int32		scale;

		pc->name = BlobGetString(r);
		pc->source = BlobGetString(r);
		pc->element = BlobGetInt32(r);
		pc->categorical = BlobGetBool(r);
		pc->value_type = (Oid) BlobGetInt32(r);
		if (!pc->categorical && ValueTypeKind(pc->value_type) != VALUE_NUMERIC)
			BlobCorrupt(r, "A numeric column has a type that is not a number.");
		impute = BlobGetInt32(r);
		if (impute < 0 || impute > IMPUTE_NONE)
			BlobCorrupt(r, "An impute kind is out of range.");
		pc->impute = (ImputeKind) impute;
		pc->fill = BlobGetFloat8(r);
		scale = BlobGetInt32(r);
		if (scale < 0 || scale >= SCALE_DEFAULT)
			BlobCorrupt(r, "A scale kind is out of range.");
		pc->scale = (ScaleKind) scale;
		pc->center = BlobGetFloat8(r);
		pc->scale_by = BlobGetFloat8(r);
		pc->raw_mean = BlobGetFloat8(r);
		pc->raw_std = BlobGetFloat8(r);
		pc->null_fraction = BlobGetFloat8(r);
		pc->ncategories = BlobGetCount(r, 10000000, 4, "categories");
		pc->categories = palloc(sizeof(char *) * Max(pc->ncategories, 1));
		for (int c = 0; c < pc->ncategories; c++)
			pc->categories[c] = BlobGetString(r);
		pc->has_other = BlobGetBool(r);
		pc->has_null = BlobGetBool(r);
		pc->fill_category = BlobGetInt32(r);
		pc->input = BlobGetString(r);
		pc->derive = (DerivePart) BlobGetInt32(r);
		if ((int) pc->derive < 0 || pc->derive >= DERIVE_PARTS ||
			(pc->derive != DERIVE_NONE && pc->categorical))
			BlobCorrupt(r, "A date part is out of range.");
		pc->clip_set = BlobGetBool(r);
		pc->clip_lo = BlobGetFloat8(r);
		pc->clip_hi = BlobGetFloat8(r);
		pc->log1p = BlobGetBool(r);
		pc->nbins = BlobGetCount(r, 1000, 0, "bins");
		if (pc->nbins == 1 || (pc->nbins > 0 && pc->categorical))
			BlobCorrupt(r, "A bin count is out of range.");
		pc->bin_edges = palloc(sizeof(double) * Max(pc->nbins, 1));
		BlobGetFloat8Array(r, pc->bin_edges, pc->nbins > 0 ? pc->nbins - 1 : 0);
		pc->encode = (EncodeKind) BlobGetInt32(r);
		if ((int) pc->encode < 0 || pc->encode >= ENCODE_DEFAULT)
			BlobCorrupt(r, "An encoding is out of range.");
		pc->nbuckets = BlobGetInt32(r);
		pc->target_width = BlobGetInt32(r);
		if (pc->categorical && pc->encode == ENCODE_HASH &&
			(pc->nbuckets < 1 || pc->nbuckets > PIPELINE_MAX_BUCKETS))
			BlobCorrupt(r, "A hash bucket count is out of range.");
		if (pc->categorical && pc->encode == ENCODE_TARGET)
		{
			if (pc->target_width < 1 || pc->target_width > 1000000 ||
				(int64) pc->ncategories * pc->target_width * 8 > r->buf.len - r->buf.cursor)
				BlobCorrupt(r, "A target encoding's size is out of range.");
			pc->target_values = palloc(sizeof(double) * Max((Size) pc->ncategories * pc->target_width, 1));
			BlobGetFloat8Array(r, pc->target_values, (int64) pc->ncategories * pc->target_width);
			pc->target_default = palloc(sizeof(double) * pc->target_width);
			BlobGetFloat8Array(r, pc->target_default, pc->target_width);
		}
		if (!pc->categorical)
		{
			pc->encode = ENCODE_ONE_HOT;
			pc->nbuckets = 0;
			pc->target_width = 0;
		}
		if (pc->categorical &&
			(pc->fill_category < -1 || pc->fill_category >= pc->ncategories))
			BlobCorrupt(r, "A fill category is out of range.");
		if (!pc->categorical && (!isfinite(pc->scale_by) || pc->scale_by == 0.0))
			BlobCorrupt(r, "A scale factor is not a finite non-zero number.");
	}
	pl->ninteractions = BlobGetCount(r, 100000, 8, "interactions");
	pl->interactions = palloc(sizeof(int) * 2 * Max(pl->ninteractions, 1));
	for (int t = 0; t < 2 * pl->ninteractions; t++)
	{
		pl->interactions[t] = BlobGetInt32(r);
		if (pl->interactions[t] < 0 || pl->interactions[t] >= pl->ncolumns ||
			pl->columns[pl->interactions[t]].categorical)
			BlobCorrupt(r, "An interaction names a column out of range.");
	}
	pipeline_layout(pl);
	return pl;
}

/*
 * PipelineDescribe returns the fitted pipeline as a jsonb array, one object
 * per output feature in model order (stored in ml.models.features).
 */
Jsonb *
PipelineDescribe(const Pipeline *pl)
{
	JsonbParseState *st = NULL;

	JbBeginArray(&st);
	for (int i = 0; i < pl->ncolumns; i++)
	{
		const PipelineColumn *pc = &pl->columns[i];

		for (int f = 0; f < pc->nfeatures; f++)
		{
			JbBeginObject(&st);
			JbKey(&st, "feature");
			JbString(&st, pl->feature_names[pc->first_feature + f]);
			JbKey(&st, "column");
			JbString(&st, pc->name);
			JbKey(&st, "kind");
			JbString(&st, pc->categorical ? "categorical" : "numeric");
			JbKey(&st, "impute");
			JbString(&st, ImputeName(pc->impute));
			if (pc->categorical)
			{
				JbKey(&st, "encode");
				JbString(&st, EncodeName(pc->encode));
				if (pc->encode == ENCODE_ONE_HOT)
				{
					JbKey(&st, "category");
					if (f < pc->ncategories)
						JbString(&st, pc->categories[f]);
					else if (pc->has_other && f == pc->ncategories)
						JbString(&st, "<other>");
					else
						JbString(&st, "<null>");
				}
				else if (pc->encode == ENCODE_ORDINAL)
				{
					JbKey(&st, "categories");
					JbBeginArray(&st);
					for (int c = 0; c < pc->ncategories; c++)
						JbString(&st, pc->categories[c]);
					JbEndArray(&st);
				}
				else if (pc->encode == ENCODE_TARGET)
				{
					JbKey(&st, "prior");
					JbFloat(&st, pc->target_default[f]);
				}
			}
			else
			{
				StringInfoData tr;

				initStringInfo(&tr);
				if (pc->derive != DERIVE_NONE)
					appendStringInfo(&tr, "%s", DeriveName(pc->derive));
				if (pc->clip_set)
					appendStringInfo(&tr, "%sclip(%g, %g)", tr.len ? ", " : "",
									 pc->clip_lo, pc->clip_hi);
				if (pc->log1p)
					appendStringInfo(&tr, "%slog1p", tr.len ? ", " : "");
				if (pc->nbins > 0)
					appendStringInfo(&tr, "%sbins(%d)", tr.len ? ", " : "", pc->nbins);
				if (tr.len)
				{
					JbKey(&st, "transform");
					JbString(&st, tr.data);
				}
				JbKey(&st, "fill");
				JbFloat(&st, pc->fill);
				JbKey(&st, "scale");
				JbString(&st, ScaleName(pc->scale));
				JbKey(&st, "center");
				JbFloat(&st, pc->center);
				JbKey(&st, "scale_by");
				JbFloat(&st, pc->scale_by);
			}
			JbEndObject(&st);
		}
	}
	for (int t = 0; t < pl->ninteractions; t++)
	{
		JbBeginObject(&st);
		JbKey(&st, "feature");
		JbString(&st, pl->feature_names[pl->nfeatures - pl->ninteractions + t]);
		JbKey(&st, "column");
		JbString(&st, pl->feature_names[pl->nfeatures - pl->ninteractions + t]);
		JbKey(&st, "kind");
		JbString(&st, "interaction");
		JbEndObject(&st);
	}
	return JbFinishArray(&st);
}
