/*-------------------------------------------------------------------------
 * src/prep/options.c
 *		The preprocess options of ml.train: parsing and validating them, and
 *		working out which apply to each column.
 *
 * Shape: an object keyed by column name (that column's options), "*"
 * (defaults for every column they fit), scalar keys (defaults too) and
 * "interactions".  A column's own option that does not fit its kind is an
 * error; a default that does not fit a column is skipped for it.
 *-------------------------------------------------------------------------
 */
#include "prep/prep.h"

#include <math.h>

#include "catalog/pg_type.h"
#include "nodes/value.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"

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
	[SCALE_MAXABS] = "maxabs",
	[SCALE_DEFAULT] = "default",
};

static const char *const encode_names[] = {
	[ENCODE_ONE_HOT] = "one_hot",
	[ENCODE_ORDINAL] = "ordinal",
	[ENCODE_TARGET] = "target",
	[ENCODE_HASH] = "hash",
	[ENCODE_DEFAULT] = "default",
};

static const char *const derive_names[] = {
	[DERIVE_NONE] = "none",
	[DERIVE_YEAR] = "year",
	[DERIVE_MONTH] = "month",
	[DERIVE_DAY] = "day",
	[DERIVE_DOW] = "dow",
	[DERIVE_HOUR] = "hour",
	[DERIVE_EPOCH] = "epoch",
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

const char *
EncodeName(EncodeKind k)
{
	return encode_names[k];
}

const char *
DeriveName(DerivePart k)
{
	return derive_names[k];
}

void
PipelineOptionError(const char *column, const char *msg)
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
		PipelineOptionError(co->column, psprintf("\"%s\" must be a string, not %s", key,
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
			PipelineOptionError(co->column,
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
			PipelineOptionError(co->column, psprintf("\"value\" must be a number or a string, not %s",
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
			PipelineOptionError(co->column,
						  psprintf("scale must be standard, minmax, robust, maxabs or none, not \"%s\"", s));
		co->scale = (ScaleKind) i;
	}
	else if (strcmp(key, "encode") == 0)
	{
		char	   *s = option_string(co, key, v);
		int			i;

		for (i = 0; i < ENCODE_DEFAULT; i++)
			if (strcmp(s, encode_names[i]) == 0)
				break;
		if (i == ENCODE_DEFAULT)
			PipelineOptionError(co->column,
						  psprintf("encode must be one_hot, ordinal, target or hash, not \"%s\"", s));
		co->encode = (EncodeKind) i;
	}
	else if (strcmp(key, "order") == 0)
	{
		JsonbIterator *it;
		JsonbValue	e;
		JsonbIteratorToken tok;

		if (v->type != jbvBinary || !JsonContainerIsArray(v->val.binary.data))
			PipelineOptionError(co->column, "\"order\" must be an array of categories");
		it = JsonbIteratorInit(v->val.binary.data);
		while ((tok = JsonbIteratorNext(&it, &e, true)) != WJB_DONE)
		{
			if (tok != WJB_ELEM)
				continue;
			if (e.type != jbvString)
				PipelineOptionError(co->column, "\"order\" must be an array of strings");
			co->order = lappend(co->order, makeString(JsonbValueToCString(&e)));
		}
	}
	else if (strcmp(key, "smoothing") == 0)
	{
		if (!JsonbValueToDouble(v, &co->smoothing) || !(co->smoothing >= 0) || isinf(co->smoothing))
			PipelineOptionError(co->column, "smoothing must be a number of at least 0");
	}
	else if (strcmp(key, "buckets") == 0)
	{
		double		d;

		if (!JsonbValueToDouble(v, &d) || d != floor(d) || d < 1 || d > PIPELINE_MAX_BUCKETS)
			PipelineOptionError(co->column, psprintf("buckets must be an integer from 1 to %d",
											   PIPELINE_MAX_BUCKETS));
		co->buckets = (int) d;
	}
	else if (strcmp(key, "log1p") == 0)
	{
		if (v->type != jbvBool)
			PipelineOptionError(co->column, "\"log1p\" must be a boolean");
		co->log1p = v->val.boolean;
	}
	else if (strcmp(key, "clip") == 0)
	{
		JsonbIterator *it;
		JsonbValue	e;
		JsonbIteratorToken tok;
		int			k = 0;
		double		bound[2] = {-INFINITY, INFINITY};

		if (v->type != jbvBinary || !JsonContainerIsArray(v->val.binary.data))
			PipelineOptionError(co->column, "\"clip\" must be [low, high] (null for an open side)");
		it = JsonbIteratorInit(v->val.binary.data);
		while ((tok = JsonbIteratorNext(&it, &e, true)) != WJB_DONE)
		{
			if (tok != WJB_ELEM)
				continue;
			if (k >= 2 || (e.type != jbvNull && !JsonbValueToDouble(&e, &bound[k])))
				PipelineOptionError(co->column, "\"clip\" must be [low, high] (null for an open side)");
			k++;
		}
		if (k != 2 || !(bound[0] <= bound[1]))
			PipelineOptionError(co->column, "\"clip\" must be [low, high] with low <= high");
		co->clip_set = true;
		co->clip_lo = bound[0];
		co->clip_hi = bound[1];
	}
	else if (strcmp(key, "bins") == 0)
	{
		double		d;

		if (!JsonbValueToDouble(v, &d) || d != floor(d) || d < 2 || d > 1000)
			PipelineOptionError(co->column, "bins must be an integer from 2 to 1000");
		co->bins = (int) d;
	}
	else if (strcmp(key, "parts") == 0)
	{
		JsonbIterator *it;
		JsonbValue	e;
		JsonbIteratorToken tok;

		if (v->type != jbvBinary || !JsonContainerIsArray(v->val.binary.data))
			PipelineOptionError(co->column, "\"parts\" must be an array of year, month, day, dow, hour or epoch");
		it = JsonbIteratorInit(v->val.binary.data);
		while ((tok = JsonbIteratorNext(&it, &e, true)) != WJB_DONE)
		{
			char	   *s;
			int			i;

			if (tok != WJB_ELEM)
				continue;
			s = e.type == jbvString ? JsonbValueToCString(&e) : "";
			for (i = DERIVE_YEAR; i < DERIVE_PARTS; i++)
				if (strcmp(s, derive_names[i]) == 0)
					break;
			if (i == DERIVE_PARTS)
				PipelineOptionError(co->column, "\"parts\" must be an array of year, month, day, dow, hour or epoch");
			if (list_member_int(co->parts, i))
				PipelineOptionError(co->column, psprintf("date part \"%s\" is listed twice", s));
			co->parts = lappend_int(co->parts, i);
		}
		if (co->parts == NIL)
			PipelineOptionError(co->column, "\"parts\" must list at least one part");
	}
	else if (strcmp(key, "max_categories") == 0)
	{
		double		d;

		if (!JsonbValueToDouble(v, &d) || d != floor(d) || d < 1 || d > 100000)
			PipelineOptionError(co->column, "max_categories must be an integer from 1 to 100000");
		co->max_categories = (int) d;
	}
	else if (strcmp(key, "exclude") == 0 && co->column != NULL)
	{
		if (v->type != jbvBool)
			PipelineOptionError(co->column, psprintf("\"exclude\" must be a boolean, not %s",
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
				 errhint("Valid options are impute, value, scale, encode, max_categories, order, smoothing, buckets, log1p, clip, bins, parts%s.",
						 co->column ? " and exclude" : "; per-column options go in an object keyed by the column's name, defaults in \"*\"")));
}

/* "impute": "constant" and "value" go together. */
static void
check_constant(const ColumnOptions *co)
{
	if (co->impute_set && co->impute == IMPUTE_CONSTANT && co->fill_text == NULL)
		PipelineOptionError(co->column, "impute constant needs a \"value\"");
	if (co->fill_text != NULL && !(co->impute_set && co->impute == IMPUTE_CONSTANT))
		PipelineOptionError(co->column, "\"value\" applies only with \"impute\": \"constant\"");
}

static void
visit_column_option(const char *key, JsonbValue *v, void *arg)
{
	option_apply((ColumnOptions *) arg, key, v);
}

/* "interactions": [["a", "b"], ...] */
static void
parse_interactions(PipelineOptions *opts, JsonbValue *v)
{
	JsonbIterator *it;
	JsonbValue	e;
	JsonbIteratorToken tok;
	List	   *pair = NIL;
	int			depth = 0;

	if (v->type != jbvBinary || !JsonContainerIsArray(v->val.binary.data))
		PipelineOptionError(NULL, "\"interactions\" must be an array of pairs of column names");
	it = JsonbIteratorInit(v->val.binary.data);
	while ((tok = JsonbIteratorNext(&it, &e, false)) != WJB_DONE)
	{
		if (tok == WJB_BEGIN_ARRAY)
		{
			if (++depth == 2)
				pair = NIL;
			else if (depth > 2)
				PipelineOptionError(NULL, "\"interactions\" must be an array of pairs of column names");
		}
		else if (tok == WJB_END_ARRAY)
		{
			if (depth-- == 2)
			{
				if (list_length(pair) != 2)
					PipelineOptionError(NULL, "each interaction must name two columns");
				opts->interactions = lappend(opts->interactions, pair);
			}
		}
		else if (tok == WJB_ELEM && depth == 2 && e.type == jbvString)
			pair = lappend(pair, makeString(JsonbValueToCString(&e)));
		else
			PipelineOptionError(NULL, "\"interactions\" must be an array of pairs of column names");
	}
}

static void
visit_top_option(const char *key, JsonbValue *v, void *arg)
{
	PipelineOptions *opts = arg;

	if (strcmp(key, "interactions") == 0)
		parse_interactions(opts, v);
	else if (strcmp(key, "*") == 0)
	{
		if (v->type != jbvBinary || JsonContainerIsArray(v->val.binary.data))
			PipelineOptionError(NULL, "\"*\" must be an object of default options");
		JsonbForEachKey(JsonbValueToJsonb(v), "the default preprocess options",
						visit_column_option, &opts->defaults);
	}
	else if (v->type == jbvBinary && !JsonContainerIsArray(v->val.binary.data))
	{
		ColumnOptions *co = palloc0(sizeof(ColumnOptions));
		Jsonb	   *inner = JsonbValueToJsonb(v);

		co->column = pstrdup(key);
		co->scale = SCALE_DEFAULT;
		co->encode = ENCODE_DEFAULT;
		co->smoothing = -1;
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
 * objects keyed by column name, defaults for every column (in "*", or as
 * scalars at the top level), and "interactions".
 */
PipelineOptions *
PipelineParseOptions(Jsonb *preprocess)
{
	PipelineOptions *opts = palloc0(sizeof(PipelineOptions));

	opts->defaults.scale = SCALE_DEFAULT;
	opts->defaults.encode = ENCODE_DEFAULT;
	opts->defaults.smoothing = -1;
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

static bool
is_datetime_type(Oid typid)
{
	Oid			base = getBaseType(typid);

	return base == DATEOID || base == TIMESTAMPOID || base == TIMESTAMPTZOID;
}

/* Rejects a column's options that do not fit its kind. */
static void
check_option_kinds(const ColumnOptions *co, const DataColumn *col)
{
	const char *numeric_only = co->log1p ? "log1p" : co->clip_set ? "clip" :
		co->bins ? "bins" : co->parts ? "parts" : co->scale != SCALE_DEFAULT ? "scale" : NULL;
	const char *categorical_only = co->encode != ENCODE_DEFAULT ? "encode" :
		co->order ? "order" : co->smoothing >= 0 ? "smoothing" : co->buckets ? "buckets" :
		co->max_categories ? "max_categories" : NULL;

	if (col->categorical && numeric_only)
		PipelineOptionError(co->column, psprintf("\"%s\" applies to numeric columns, and this one is categorical",
										   numeric_only));
	if (!col->categorical && categorical_only)
		PipelineOptionError(co->column, psprintf("\"%s\" applies to categorical columns, and this one is numeric",
										   categorical_only));
	if (co->parts && !is_datetime_type(col->typid))
		PipelineOptionError(co->column, "\"parts\" applies to date and timestamp columns");
	if (co->order && co->encode != ENCODE_ORDINAL)
		PipelineOptionError(co->column, "\"order\" applies only with \"encode\": \"ordinal\"");
	if (co->smoothing >= 0 && co->encode != ENCODE_TARGET)
		PipelineOptionError(co->column, "\"smoothing\" applies only with \"encode\": \"target\"");
	if (co->buckets && co->encode != ENCODE_HASH)
		PipelineOptionError(co->column, "\"buckets\" applies only with \"encode\": \"hash\"");
}

/*
 * The options in force for one column: its own where it sets them, else
 * the defaults ("*" or top-level) where they apply to its kind, else the
 * built-in defaults (impute mean or a NULL category; the algorithm's
 * scaling; one-hot over 32 categories; no transforms).
 */
ColumnOptions
PipelineColumnOptions(const PipelineOptions *opts, const DataColumn *col,
				  ScaleKind default_scale)
{
	const ColumnOptions *co = options_for(opts, col->source);
	const ColumnOptions *def = &opts->defaults;
	const ColumnOptions *imp = NULL;
	ColumnOptions eff;

	if (co)
		check_option_kinds(co, col);
	memset(&eff, 0, sizeof(eff));
	eff.column = col->source;

	if (co && co->impute_set)
		imp = co;
	else if (def->impute_set && default_impute_applies(def, col->categorical))
		imp = def;
	if (imp)
	{
		eff.impute_set = true;
		eff.impute = imp->impute;
		eff.fill = imp->fill;
		eff.fill_text = imp->fill_text;
		eff.fill_is_text = imp->fill_is_text;
	}
	eff.scale = co && co->scale != SCALE_DEFAULT ? co->scale :
		def->scale != SCALE_DEFAULT ? def->scale :
		default_scale != SCALE_DEFAULT ? default_scale : SCALE_NONE;
	eff.max_categories = co && co->max_categories ? co->max_categories :
		def->max_categories ? def->max_categories : PIPELINE_DEFAULT_MAX_CATEGORIES;

	if (col->categorical)
	{
		eff.encode = co && co->encode != ENCODE_DEFAULT ? co->encode :
			def->encode != ENCODE_DEFAULT ? def->encode : ENCODE_ONE_HOT;
		eff.order = co ? co->order : NIL;
		eff.smoothing = co && co->smoothing >= 0 ? co->smoothing :
			def->smoothing >= 0 ? def->smoothing : PIPELINE_DEFAULT_SMOOTHING;
		eff.buckets = co && co->buckets ? co->buckets :
			def->buckets ? def->buckets : PIPELINE_DEFAULT_MAX_CATEGORIES;
	}
	else
	{
		const ColumnOptions *clip = co && co->clip_set ? co : def->clip_set ? def : NULL;

		eff.log1p = (co && co->log1p) || def->log1p;
		if (clip)
		{
			eff.clip_set = true;
			eff.clip_lo = clip->clip_lo;
			eff.clip_hi = clip->clip_hi;
		}
		eff.bins = co && co->bins ? co->bins : def->bins;
		eff.parts = co && co->parts ? co->parts :
			is_datetime_type(col->typid) ? def->parts : NIL;
	}
	return eff;
}
