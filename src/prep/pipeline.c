/*-------------------------------------------------------------------------
 * src/prep/pipeline.c
 *		The feature pipeline: parse the preprocess options, fit on the
 *		training rows, transform blocks of rows or single inputs, and
 *		(de)serialise.
 *
 * Design: a pipeline has one PipelineColumn per input column (an array
 * column contributes one per element).  Numeric columns are imputed, then
 * scaled (statistics of the imputed training values, as a scikit-learn
 * imputer followed by a scaler would compute them).  Categorical columns
 * are one-hot encoded over their most frequent categories in the training
 * rows, then an "other" slot (present when some training row falls outside
 * the kept categories) and a NULL slot (present when the training rows
 * have NULLs).  A value that has no slot of its own encodes as all zeros.
 * Nothing here ever looks at test rows.
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
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"

typedef struct CategoryEntry
{
	char	   *key;			/* must be first */
	int			index;
} CategoryEntry;

static const char *const impute_names[] = {
	[IMPUTE_MEAN] = "mean",
	[IMPUTE_MEDIAN] = "median",
	[IMPUTE_MOST_FREQUENT] = "most_frequent",
	[IMPUTE_CONSTANT] = "constant",
	[IMPUTE_ERROR] = "error",
	[IMPUTE_CATEGORY] = "category",
	[IMPUTE_NONE] = "none",
};

static const char *const scale_names[] = {
	[SCALE_NONE] = "none",
	[SCALE_STANDARD] = "standard",
	[SCALE_MINMAX] = "minmax",
	[SCALE_ROBUST] = "robust",
	[SCALE_DEFAULT] = "default",
};

const char *
ImputeName(ImputeKind k)
{
	return impute_names[k];
}

const char *
ScaleName(ScaleKind k)
{
	return scale_names[k];
}

/* ---------- options ---------- */

static void
options_error(const char *column, const char *msg)
{
	if (column)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid preprocess option for column \"%s\": %s", column, msg)));
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("invalid preprocess option: %s", msg)));
}

static char *
option_string(ColumnOptions *co, const char *key, JsonbValue *v)
{
	if (v->type != jbvString)
		options_error(co->column, psprintf("\"%s\" must be a string, not %s", key,
											JsonbValueTypeName(v)));
	return pnstrdup(v->val.string.val, v->val.string.len);
}

/* Applies one option key to a column's (or the default) options. */
static void
option_apply(ColumnOptions *co, const char *key, JsonbValue *v)
{
	if (strcmp(key, "impute") == 0)
	{
		char	   *s = option_string(co, key, v);
		int			i;

		for (i = 0; i <= IMPUTE_ERROR; i++)
			if (strcmp(s, impute_names[i]) == 0)
				break;
		if (i > IMPUTE_ERROR)
			options_error(co->column,
						  psprintf("impute must be mean, median, most_frequent, constant or error, not \"%s\"", s));
		co->impute = (ImputeKind) i;
		co->impute_set = true;
	}
	else if (strcmp(key, "value") == 0)
	{
		if (v->type == jbvNumeric)
		{
			JsonbValueToDouble(v, &co->fill);
			co->fill_text = JsonbValueToCString(v);
			co->fill_is_text = false;
		}
		else if (v->type == jbvString)
		{
			co->fill_text = JsonbValueToCString(v);
			co->fill_is_text = true;
		}
		else
			options_error(co->column, psprintf("\"value\" must be a number or a string, not %s",
											   JsonbValueTypeName(v)));
	}
	else if (strcmp(key, "scale") == 0)
	{
		char	   *s = option_string(co, key, v);
		int			i;

		for (i = 0; i < SCALE_DEFAULT; i++)
			if (strcmp(s, scale_names[i]) == 0)
				break;
		if (i == SCALE_DEFAULT)
			options_error(co->column,
						  psprintf("scale must be standard, minmax, robust or none, not \"%s\"", s));
		co->scale = (ScaleKind) i;
	}
	else if (strcmp(key, "encode") == 0)
	{
		char	   *s = option_string(co, key, v);

		if (strcmp(s, "one_hot") != 0)
			options_error(co->column, psprintf("encode must be one_hot, not \"%s\"", s));
	}
	else if (strcmp(key, "max_categories") == 0)
	{
		double		d;

		if (!JsonbValueToDouble(v, &d) || d != floor(d) || d < 1 || d > 100000)
			options_error(co->column, "max_categories must be an integer from 1 to 100000");
		co->max_categories = (int) d;
	}
	else if (strcmp(key, "exclude") == 0 && co->column != NULL)
	{
		if (v->type != jbvBool)
			options_error(co->column, psprintf("\"exclude\" must be a boolean, not %s",
											   JsonbValueTypeName(v)));
		co->exclude = v->val.boolean;
	}
	else
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("unknown preprocess option \"%s\"%s%s%s", key,
						co->column ? " for column \"" : "",
						co->column ? co->column : "",
						co->column ? "\"" : ""),
				 errhint("Valid options are impute, value, scale, encode, max_categories%s.",
						 co->column ? " and exclude" : "; per-column options go in an object keyed by the column's name")));
}

/* "impute": "constant" and "value" go together. */
static void
check_constant(const ColumnOptions *co)
{
	if (co->impute_set && co->impute == IMPUTE_CONSTANT && co->fill_text == NULL)
		options_error(co->column, "impute constant needs a \"value\"");
	if (co->fill_text != NULL && !(co->impute_set && co->impute == IMPUTE_CONSTANT))
		options_error(co->column, "\"value\" applies only with \"impute\": \"constant\"");
}

static void
visit_column_option(const char *key, JsonbValue *v, void *arg)
{
	option_apply((ColumnOptions *) arg, key, v);
}

static void
visit_top_option(const char *key, JsonbValue *v, void *arg)
{
	PipelineOptions *opts = arg;

	if (v->type == jbvBinary && !JsonContainerIsArray(v->val.binary.data))
	{
		ColumnOptions *co = palloc0(sizeof(ColumnOptions));
		Jsonb	   *inner = JsonbValueToJsonb(v);

		co->column = pstrdup(key);
		co->scale = SCALE_DEFAULT;
		JsonbForEachKey(inner, "a column's preprocess options", visit_column_option, co);
		check_constant(co);
		opts->columns = lappend(opts->columns, co);
		if (co->exclude)
			opts->exclude = lappend(opts->exclude, makeString(co->column));
	}
	else
		option_apply(&opts->defaults, key, v);
}

/*
 * PipelineParseOptions validates the preprocess argument: per-column
 * objects keyed by column name, and scalar defaults for every column.
 */
PipelineOptions *
PipelineParseOptions(Jsonb *preprocess)
{
	PipelineOptions *opts = palloc0(sizeof(PipelineOptions));

	opts->defaults.scale = SCALE_DEFAULT;
	JsonbForEachKey(preprocess, "preprocess", visit_top_option, opts);
	check_constant(&opts->defaults);
	return opts;
}

static const ColumnOptions *
options_for(const PipelineOptions *opts, const char *source)
{
	ListCell   *lc;

	foreach(lc, opts->columns)
	{
		ColumnOptions *co = lfirst(lc);

		if (strcmp(co->column, source) == 0)
			return co;
	}
	return NULL;
}

/* Can a default impute option apply to a column of this kind? */
static bool
default_impute_applies(const ColumnOptions *def, bool categorical)
{
	switch (def->impute)
	{
		case IMPUTE_MEAN:
		case IMPUTE_MEDIAN:
			return !categorical;
		case IMPUTE_CONSTANT:
			return def->fill_is_text == categorical;
		default:
			return true;
	}
}

/*
 * The options in force for one column: its own where it sets them, else
 * the top-level defaults where they apply to its kind, else the built-in
 * defaults (impute mean or a NULL category; the algorithm's scaling; 32
 * categories).
 */
static ColumnOptions
effective_options(const PipelineOptions *opts, const DataColumn *col,
				  ScaleKind default_scale)
{
	const ColumnOptions *co = options_for(opts, col->source);
	const ColumnOptions *def = &opts->defaults;
	ColumnOptions eff;

	memset(&eff, 0, sizeof(eff));
	eff.column = col->source;
	if (co && co->impute_set)
		eff = *co;
	else if (def->impute_set && default_impute_applies(def, col->categorical))
		eff = *def;
	eff.column = col->source;
	eff.scale = co && co->scale != SCALE_DEFAULT ? co->scale :
		def->scale != SCALE_DEFAULT ? def->scale :
		default_scale != SCALE_DEFAULT ? default_scale : SCALE_NONE;
	eff.max_categories = co && co->max_categories ? co->max_categories :
		def->max_categories ? def->max_categories : PIPELINE_DEFAULT_MAX_CATEGORIES;
	return eff;
}

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
fit_numeric(PipelineColumn *pc, const DataColumn *col, const int64 *rows,
			int64 n, const ColumnOptions *co, bool keep_missing)
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
		double		v = col->values[rows[i]];

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
		double		v = col->values[rows[i]];

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
				if (!isnan(col->values[rows[i]]))
					vals[k++] = col->values[rows[i]];
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

static void
fit_categorical(PipelineColumn *pc, const DataColumn *col, const int64 *rows,
				int64 n, const ColumnOptions *co)
{
	int			max_categories = co->max_categories;
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
						impute_names[pc->impute], pc->name),
				 errhint("Categorical columns take impute most_frequent, constant or error; by default NULL is a category of its own.")));
	if (pc->impute == IMPUTE_ERROR && nnull > 0)
		PipelineNullNotAllowed(pc->name);

	pc->ncategories = Min(nseen, max_categories);
	pc->categories = palloc(sizeof(char *) * Max(pc->ncategories, 1));
	for (int i = 0; i < pc->ncategories; i++)
	{
		pc->categories[i] = pstrdup(counts[i].value);
		kept += counts[i].count;
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
	pfree(counts);
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

		pc->first_feature = nf;
		pc->inv_scale = 1.0 / pc->scale_by;
		pc->nfeatures = pc->categorical ?
			pc->ncategories + (pc->has_other ? 1 : 0) + (pc->has_null ? 1 : 0) : 1;
		nf += pc->nfeatures;
	}
	pl->nfeatures = nf;
	pl->feature_names = palloc(sizeof(char *) * Max(nf, 1));
	for (int i = 0; i < pl->ncolumns; i++)
	{
		PipelineColumn *pc = &pl->columns[i];

		if (!pc->categorical)
		{
			pl->feature_names[k++] = pc->name;
			continue;
		}
		for (int c = 0; c < pc->ncategories; c++)
			pl->feature_names[k++] = psprintf("%s=%s", pc->name, pc->categories[c]);
		if (pc->has_other)
			pl->feature_names[k++] = psprintf("%s=<other>", pc->name);
		if (pc->has_null)
			pl->feature_names[k++] = psprintf("%s=<null>", pc->name);
	}
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

/*
 * PipelineFit fits the pipeline on the given (training) rows of a DataSet.
 * default_scale is the algorithm's preference, used where the options do
 * not say; keep_missing (for algorithms that handle missing values) makes
 * numeric NULLs stay NaN unless the options ask for an imputation.
 */
Pipeline *
PipelineFit(const DataSet *ds, const int64 *rows, int64 nrows,
			const PipelineOptions *opts, ScaleKind default_scale, bool keep_missing)
{
	Pipeline   *pl = palloc0(sizeof(Pipeline));
	ListCell   *lc;

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

	pl->ncolumns = ds->ncols;
	pl->columns = palloc0(sizeof(PipelineColumn) * Max(ds->ncols, 1));
	for (int i = 0; i < ds->ncols; i++)
	{
		const DataColumn *col = &ds->cols[i];
		PipelineColumn *pc = &pl->columns[i];
		ColumnOptions co = effective_options(opts, col, default_scale);

		pc->name = pstrdup(col->name);
		pc->source = pstrdup(col->source);
		pc->element = col->element;
		pc->categorical = col->categorical;
		pc->value_type = col->categorical ? TEXTOID : getBaseType(col->typid);
		if (col->categorical)
			fit_categorical(pc, col, rows, nrows, &co);
		else
			fit_numeric(pc, col, rows, nrows, &co, keep_missing);
		CHECK_FOR_INTERRUPTS();
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
 * Returns the feature offset (within the column's features) of a category
 * value, or -1 when it encodes as all zeros.  The lookup table is built on
 * first use, in the memory context that holds the pipeline.
 */
static int
category_slot(const PipelineColumn *pc_const, const char *value)
{
	PipelineColumn *pc = (PipelineColumn *) pc_const;
	CategoryEntry *entry;

	if (value == NULL)
	{
		if (pc->fill_category >= 0)
			return pc->fill_category;
		if (pc->impute == IMPUTE_ERROR)
			PipelineNullNotAllowed(pc->name);
		if (pc->impute == IMPUTE_CONSTANT)
			return pc->has_other ? pc->ncategories : -1;
		return pc->has_null ? pc->ncategories + (pc->has_other ? 1 : 0) : -1;
	}

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
	return pc->has_other ? pc->ncategories : -1;
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
		int			c = DataSetFindColumn(ds, pc->name);
		const DataColumn *col;

		if (c < 0)
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_COLUMN),
					 errmsg("feature column \"%s\" is missing from the source", pc->name)));
		col = &ds->cols[c];
		if (col->categorical != pc->categorical)
			ereport(ERROR,
					(errcode(ERRCODE_DATATYPE_MISMATCH),
					 errmsg("column \"%s\" is %s in the source but the model expects %s",
							pc->name, col->categorical ? "categorical" : "numeric",
							pc->categorical ? "a category" : "a number")));
		b->colmap[i] = c;
		if (pc->categorical)
		{
			b->code_slot[i] = palloc(sizeof(int32) * Max(col->ndict, 1));
			for (int d = 0; d < col->ndict; d++)
				b->code_slot[i][d] = category_slot(pc, col->dict[d]);
		}
	}
	return b;
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
			if (pc->center == 0.0 && pc->inv_scale == 1.0 && pc->impute != IMPUTE_ERROR)
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
		for (int f = 0; f < pc->nfeatures; f++)
			memset(dst + (Size) f * ld, 0, sizeof(double) * n);
		for (int i = 0; i < n; i++)
		{
			int32		code = col->codes[rows[i]];
			int			slot = code < 0 ? category_slot(pc, NULL) : b->code_slot[j][code];

			if (slot >= 0)
				dst[(Size) slot * ld + i] = 1.0;
		}
	}
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
		for (int f = 0; f < pc->nfeatures; f++)
			dst[f] = 0.0;
		{
			int			slot = category_slot(pc, vals[j].isnull ? NULL : vals[j].str);

			if (slot >= 0)
				dst[slot] = 1.0;
		}
	}
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
	}
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
		if (pc->categorical &&
			(pc->fill_category < -1 || pc->fill_category >= pc->ncategories))
			BlobCorrupt(r, "A fill category is out of range.");
		if (!pc->categorical && (!isfinite(pc->scale_by) || pc->scale_by == 0.0))
			BlobCorrupt(r, "A scale factor is not a finite non-zero number.");
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
			JbString(&st, impute_names[pc->impute]);
			if (pc->categorical)
			{
				JbKey(&st, "category");
				if (f < pc->ncategories)
					JbString(&st, pc->categories[f]);
				else if (pc->has_other && f == pc->ncategories)
					JbString(&st, "<other>");
				else
					JbString(&st, "<null>");
			}
			else
			{
				JbKey(&st, "fill");
				JbFloat(&st, pc->fill);
				JbKey(&st, "scale");
				JbString(&st, scale_names[pc->scale]);
				JbKey(&st, "center");
				JbFloat(&st, pc->center);
				JbKey(&st, "scale_by");
				JbFloat(&st, pc->scale_by);
			}
			JbEndObject(&st);
		}
	}
	return JbFinishArray(&st);
}

/*
 * PipelineBaseline returns the raw statistics of the training values of
 * every input column (stored in ml.models.baseline for drift monitoring).
 */
Jsonb *
PipelineBaseline(const Pipeline *pl)
{
	JsonbParseState *st = NULL;

	JbBeginObject(&st);
	for (int i = 0; i < pl->ncolumns; i++)
	{
		const PipelineColumn *pc = &pl->columns[i];

		JbKey(&st, pc->name);
		JbBeginObject(&st);
		JbKey(&st, "null_fraction");
		JbFloat(&st, pc->null_fraction);
		if (pc->categorical)
		{
			JbKey(&st, "categories");
			JbBeginArray(&st);
			for (int c = 0; c < pc->ncategories; c++)
				JbString(&st, pc->categories[c]);
			JbEndArray(&st);
		}
		else
		{
			JbKey(&st, "mean");
			JbFloat(&st, pc->raw_mean);
			JbKey(&st, "std");
			JbFloat(&st, pc->raw_std);
		}
		JbEndObject(&st);
	}
	return JbFinishObject(&st);
}
