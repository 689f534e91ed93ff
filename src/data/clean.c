/*-------------------------------------------------------------------------
 * src/data/clean.c
 *		ml.clean: writes a cleaned copy of a source into a new table and
 *		reports what changed.
 *
 * Design.  ml.clean generates SQL.  One aggregate query over the source
 * computes every statistic the options need (null fractions, means,
 * medians, modes, outlier bounds); one statement then creates the table
 * and a second fills it with a data-modifying WITH whose outer query
 * counts what each step changed among the rows it writes, so the report
 * and the table come from the same scan.  The steps run in a fixed order,
 * each a subquery over the previous one (OFFSET 0 keeps the planner from
 * merging them, so each expression is evaluated once a row):
 *
 *	1. drop columns whose missing fraction exceeds the bound
 *	2. text normalisation (collapse_spaces, trim, lower)
 *	3. the map of misspellings, compared with the normalised text
 *	4. imputation (or drop_row) of missing values
 *	5. outliers (clip, null or drop)
 *	6. dedupe, on the cleaned values
 *
 * Invariants: identifiers are quoted with quote_identifier and values are
 * quoted literals; the source is checked to be one query that only reads
 * before its text is placed, between newlines, in a subquery; every
 * generated statement is prepared and must be one statement.  Everything
 * runs with the caller's rights inside the caller's transaction, so an
 * error leaves nothing behind.  NaN is missing in float and numeric
 * columns; statistics use finite values only.
 *-------------------------------------------------------------------------
 */
#include "data/data.h"

#include <math.h>

#include "catalog/pg_type.h"
#include "common/shortest_dec.h"
#include "executor/spi.h"
#include "lib/stringinfo.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/numeric.h"
#include "utils/plancache.h"
#include "utils/typcache.h"

PG_FUNCTION_INFO_V1(ml_clean);

/* White space for trim and collapse_spaces: the same in every locale. */
#define CLEAN_SPACE_CHARS " \t\n\r\v\f"

/* ----------------------------------------------------------------------
 * ml.clean: options
 * ----------------------------------------------------------------------
 */

typedef enum CleanImpute
{
	IMPUTE_NONE = 0,
	IMPUTE_MEAN,
	IMPUTE_MEDIAN,
	IMPUTE_MODE,
	IMPUTE_CONSTANT,
	IMPUTE_DROP_ROW
} CleanImpute;

static const char *const impute_names[] = {
	[IMPUTE_NONE] = "none",
	[IMPUTE_MEAN] = "mean",
	[IMPUTE_MEDIAN] = "median",
	[IMPUTE_MODE] = "mode",
	[IMPUTE_CONSTANT] = "constant",
	[IMPUTE_DROP_ROW] = "drop_row",
};

typedef enum OutlierMethod
{
	OUTLIER_IQR,
	OUTLIER_ZSCORE,
	OUTLIER_QUANTILE
} OutlierMethod;

typedef enum OutlierAction
{
	OUTLIER_CLIP,
	OUTLIER_DROP,
	OUTLIER_NULL
} OutlierAction;

typedef struct OutlierSpec
{
	OutlierMethod method;
	double		k;				/* iqr */
	double		z;				/* zscore */
	double		low;			/* quantile */
	double		high;
	OutlierAction action;
} OutlierSpec;

/* Options as written: one column's own, or the defaults in "*". */
typedef struct CleanSpec
{
	const char *column;			/* NULL for the defaults */
	bool		impute_set;
	CleanImpute impute;
	char	   *value;			/* "value" as text */
	enum jbvType value_type;
	bool		outliers_set;
	OutlierSpec outliers;
	int			trim;			/* -1 unset, else 0 or 1 */
	int			lower;
	int			collapse;
	bool		map_set;
	List	   *map_keys;		/* of char * */
	List	   *map_values;		/* of char *, NULL for null */
} CleanSpec;

typedef struct CleanOptions
{
	bool		replace;
	double		null_fraction;	/* -1 when not asked for */
	bool		dedupe;
	List	   *dedupe_keys;	/* of char *; NIL = whole rows */
	char	   *dedupe_order;
	bool		keep_last;
	CleanSpec	defaults;
	List	   *columns;		/* of CleanSpec * */
} CleanOptions;

static void clean_option_error(const char *column, const char *msg) pg_attribute_noreturn();

/* Raises a bad option value, naming the column when it has one. */
static void
clean_option_error(const char *column, const char *msg)
{
	if (column)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid clean option for column \"%s\": %s", column, msg)));
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("invalid clean option: %s", msg)));
}

static bool
json_is_object(const JsonbValue *v)
{
	return v->type == jbvBinary && JsonContainerIsObject(v->val.binary.data);
}

static bool
json_is_array(const JsonbValue *v)
{
	return v->type == jbvBinary && JsonContainerIsArray(v->val.binary.data);
}

/* Starts a column's (or the default) options with nothing set. */
static void
spec_init(CleanSpec *sp, const char *column)
{
	memset(sp, 0, sizeof(*sp));
	sp->column = column;
	sp->trim = sp->lower = sp->collapse = -1;
}

/* Collects the keys of an "outliers" object before checking them. */
typedef struct OutlierParse
{
	const char *column;
	char	   *method;
	char	   *action;
	bool		k_set,
				z_set,
				low_set,
				high_set;
	double		k,
				z,
				low,
				high;
} OutlierParse;

/* Reads a finite number of an "outliers" object. */
static void
outlier_number(OutlierParse *op, const char *key, JsonbValue *v, double *out, bool *set)
{
	if (!JsonbValueToDouble(v, out) || isnan(*out) || isinf(*out))
		clean_option_error(op->column, psprintf("outliers \"%s\" must be a number, not %s",
												key, JsonbValueTypeName(v)));
	*set = true;
}

/* Takes one key of an "outliers" object. */
static void
visit_outlier_key(const char *key, JsonbValue *v, void *arg)
{
	OutlierParse *op = arg;

	if (strcmp(key, "method") == 0 || strcmp(key, "action") == 0)
	{
		if (v->type != jbvString)
			clean_option_error(op->column, psprintf("outliers \"%s\" must be a string, not %s",
													key, JsonbValueTypeName(v)));
		if (key[0] == 'm')
			op->method = JsonbValueToCString(v);
		else
			op->action = JsonbValueToCString(v);
	}
	else if (strcmp(key, "k") == 0)
		outlier_number(op, key, v, &op->k, &op->k_set);
	else if (strcmp(key, "z") == 0)
		outlier_number(op, key, v, &op->z, &op->z_set);
	else if (strcmp(key, "low") == 0)
		outlier_number(op, key, v, &op->low, &op->low_set);
	else if (strcmp(key, "high") == 0)
		outlier_number(op, key, v, &op->high, &op->high_set);
	else
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("unknown outliers option \"%s\"%s%s%s", key,
						op->column ? " for column \"" : "",
						op->column ? op->column : "",
						op->column ? "\"" : ""),
				 errhint("Valid keys are method, k (iqr), z (zscore), low and high (quantile), and action.")));
}

/* "outliers": {"method": ..., "k" | "z" | "low"/"high": ..., "action": ...} */
static void
parse_outliers(CleanSpec *sp, JsonbValue *v)
{
	OutlierParse op;
	OutlierSpec *o = &sp->outliers;

	if (!json_is_object(v))
		clean_option_error(sp->column, "\"outliers\" must be an object such as {\"method\": \"iqr\", \"k\": 1.5}");
	memset(&op, 0, sizeof(op));
	op.column = sp->column;
	JsonbForEachKey(JsonbValueToJsonb(v), "outliers", visit_outlier_key, &op);

	if (op.method == NULL)
		clean_option_error(sp->column, "outliers needs a \"method\": iqr, zscore or quantile");
	if (strcmp(op.method, "iqr") == 0)
		o->method = OUTLIER_IQR;
	else if (strcmp(op.method, "zscore") == 0)
		o->method = OUTLIER_ZSCORE;
	else if (strcmp(op.method, "quantile") == 0)
		o->method = OUTLIER_QUANTILE;
	else
		clean_option_error(sp->column, psprintf("outliers method must be iqr, zscore or quantile, not \"%s\"",
												op.method));
	if (op.k_set && o->method != OUTLIER_IQR)
		clean_option_error(sp->column, "outliers \"k\" applies only to method iqr");
	if (op.z_set && o->method != OUTLIER_ZSCORE)
		clean_option_error(sp->column, "outliers \"z\" applies only to method zscore");
	if ((op.low_set || op.high_set) && o->method != OUTLIER_QUANTILE)
		clean_option_error(sp->column, "outliers \"low\" and \"high\" apply only to method quantile");

	o->k = op.k_set ? op.k : 1.5;
	o->z = op.z_set ? op.z : 3.0;
	o->low = op.low_set ? op.low : 0.01;
	o->high = op.high_set ? op.high : 0.99;
	if (o->k < 0)
		clean_option_error(sp->column, "outliers \"k\" must be at least 0");
	if (o->z <= 0)
		clean_option_error(sp->column, "outliers \"z\" must be greater than 0");
	if (o->low < 0 || o->high > 1 || o->low >= o->high)
		clean_option_error(sp->column, "outliers \"low\" and \"high\" must satisfy 0 <= low < high <= 1");

	if (op.action == NULL || strcmp(op.action, "clip") == 0)
		o->action = OUTLIER_CLIP;
	else if (strcmp(op.action, "drop") == 0)
		o->action = OUTLIER_DROP;
	else if (strcmp(op.action, "null") == 0)
		o->action = OUTLIER_NULL;
	else
		clean_option_error(sp->column, psprintf("outliers action must be clip, drop or null, not \"%s\"",
												op.action));
	sp->outliers_set = true;
}

/* "map": {"misspelled": "canonical" or null, ...} */
static void
parse_map(CleanSpec *sp, JsonbValue *v)
{
	JsonbIterator *it;
	JsonbValue	e;
	JsonbIteratorToken tok;

	if (!json_is_object(v))
		clean_option_error(sp->column, "\"map\" must be an object from values to their replacements");
	it = JsonbIteratorInit(v->val.binary.data);
	while ((tok = JsonbIteratorNext(&it, &e, true)) != WJB_DONE)
	{
		if (tok == WJB_KEY)
			sp->map_keys = lappend(sp->map_keys, JsonbValueToCString(&e));
		else if (tok == WJB_VALUE)
		{
			if (e.type != jbvString && e.type != jbvNull)
				clean_option_error(sp->column, psprintf("\"map\" values must be strings or null, not %s",
														JsonbValueTypeName(&e)));
			sp->map_values = lappend(sp->map_values, JsonbValueToCString(&e));
		}
	}
	sp->map_set = true;
}

/* Reads a boolean column option: 1 or 0. */
static void
spec_bool(CleanSpec *sp, const char *key, JsonbValue *v, int *out)
{
	if (v->type != jbvBool)
		clean_option_error(sp->column, psprintf("\"%s\" must be a boolean, not %s",
												key, JsonbValueTypeName(v)));
	*out = v->val.boolean ? 1 : 0;
}

/* Takes one column option (in "columns" or in "*"). */
static void
visit_spec_key(const char *key, JsonbValue *v, void *arg)
{
	CleanSpec  *sp = arg;

	if (strcmp(key, "impute") == 0)
	{
		char	   *s = v->type == jbvString ? JsonbValueToCString(v) : "";
		int			i;

		for (i = IMPUTE_MEAN; i < lengthof(impute_names); i++)
			if (strcmp(s, impute_names[i]) == 0)
				break;
		if (i == lengthof(impute_names))
			clean_option_error(sp->column, psprintf("impute must be mean, median, mode, constant or drop_row, not %s",
													v->type == jbvString ? psprintf("\"%s\"", s) :
													JsonbValueTypeName(v)));
		sp->impute_set = true;
		sp->impute = (CleanImpute) i;
	}
	else if (strcmp(key, "value") == 0)
	{
		if (v->type != jbvString && v->type != jbvNumeric && v->type != jbvBool)
			clean_option_error(sp->column, psprintf("\"value\" must be a string, a number or a boolean, not %s",
													JsonbValueTypeName(v)));
		sp->value = JsonbValueToCString(v);
		sp->value_type = v->type;
	}
	else if (strcmp(key, "outliers") == 0)
		parse_outliers(sp, v);
	else if (strcmp(key, "trim") == 0)
		spec_bool(sp, key, v, &sp->trim);
	else if (strcmp(key, "lower") == 0)
		spec_bool(sp, key, v, &sp->lower);
	else if (strcmp(key, "collapse_spaces") == 0)
		spec_bool(sp, key, v, &sp->collapse);
	else if (strcmp(key, "map") == 0)
		parse_map(sp, v);
	else
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("unknown clean option \"%s\"%s%s%s", key,
						sp->column ? " for column \"" : " in \"*\"",
						sp->column ? sp->column : "",
						sp->column ? "\"" : ""),
				 errhint("Column options are impute, value, outliers, trim, lower, collapse_spaces and map.")));
}

/* "impute": "constant" and "value" go together. */
static void
spec_check_constant(const CleanSpec *sp)
{
	if (sp->impute_set && sp->impute == IMPUTE_CONSTANT && sp->value == NULL)
		clean_option_error(sp->column, "impute constant needs a \"value\"");
	if (sp->value != NULL && !(sp->impute_set && sp->impute == IMPUTE_CONSTANT))
		clean_option_error(sp->column, "\"value\" applies only with \"impute\": \"constant\"");
}

/* Parses an object of column options. */
static void
spec_parse(CleanSpec *sp, JsonbValue *v, const char *what)
{
	if (!json_is_object(v))
		clean_option_error(sp->column, psprintf("%s must be an object of column options", what));
	JsonbForEachKey(JsonbValueToJsonb(v), what, visit_spec_key, sp);
	spec_check_constant(sp);
}

/* Takes one entry of "columns": a column and its options. */
static void
visit_column_entry(const char *key, JsonbValue *v, void *arg)
{
	CleanOptions *opts = arg;
	CleanSpec  *sp = palloc(sizeof(CleanSpec));
	ListCell   *lc;

	foreach(lc, opts->columns)
		if (strcmp(((CleanSpec *) lfirst(lc))->column, key) == 0)
			clean_option_error(key, "the column is listed twice");
	spec_init(sp, pstrdup(key));
	spec_parse(sp, v, "a column's clean options");
	opts->columns = lappend(opts->columns, sp);
}

/* "dedupe": true, or {"keys": [...], "order_by": "col", "keep": "first"|"last"} */
static void
visit_dedupe_key(const char *key, JsonbValue *v, void *arg)
{
	CleanOptions *opts = arg;

	if (strcmp(key, "keys") == 0)
	{
		JsonbIterator *it;
		JsonbValue	e;
		JsonbIteratorToken tok;

		if (!json_is_array(v))
			clean_option_error(NULL, "dedupe \"keys\" must be an array of column names");
		it = JsonbIteratorInit(v->val.binary.data);
		while ((tok = JsonbIteratorNext(&it, &e, true)) != WJB_DONE)
		{
			ListCell   *lc;
			char	   *name;

			if (tok != WJB_ELEM)
				continue;
			if (e.type != jbvString)
				clean_option_error(NULL, "dedupe \"keys\" must be an array of column names");
			name = JsonbValueToCString(&e);
			foreach(lc, opts->dedupe_keys)
				if (strcmp(lfirst(lc), name) == 0)
					clean_option_error(NULL, psprintf("dedupe key \"%s\" is listed twice", name));
			opts->dedupe_keys = lappend(opts->dedupe_keys, name);
		}
		if (opts->dedupe_keys == NIL)
			clean_option_error(NULL, "dedupe \"keys\" must name at least one column");
	}
	else if (strcmp(key, "order_by") == 0)
	{
		if (v->type != jbvString)
			clean_option_error(NULL, "dedupe \"order_by\" must be a column name");
		opts->dedupe_order = JsonbValueToCString(v);
	}
	else if (strcmp(key, "keep") == 0)
	{
		char	   *s = v->type == jbvString ? JsonbValueToCString(v) : "";

		if (strcmp(s, "first") != 0 && strcmp(s, "last") != 0)
			clean_option_error(NULL, "dedupe \"keep\" must be first or last");
		opts->keep_last = s[0] == 'l';
	}
	else
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("unknown dedupe option \"%s\"", key),
				 errhint("dedupe is true (whole rows) or an object with keys, order_by and keep.")));
}

/* Takes one top-level option. */
static void
visit_top_key(const char *key, JsonbValue *v, void *arg)
{
	CleanOptions *opts = arg;

	if (strcmp(key, "replace") == 0)
	{
		if (v->type != jbvBool)
			clean_option_error(NULL, psprintf("\"replace\" must be a boolean, not %s",
											  JsonbValueTypeName(v)));
		opts->replace = v->val.boolean;
	}
	else if (strcmp(key, "drop_columns_null_fraction") == 0)
	{
		double		d;

		if (!JsonbValueToDouble(v, &d) || !(d >= 0 && d <= 1))
			clean_option_error(NULL, "drop_columns_null_fraction must be a number from 0 to 1");
		opts->null_fraction = d;
	}
	else if (strcmp(key, "dedupe") == 0)
	{
		if (v->type == jbvBool)
			opts->dedupe = v->val.boolean;
		else if (json_is_object(v))
		{
			opts->dedupe = true;
			JsonbForEachKey(JsonbValueToJsonb(v), "dedupe", visit_dedupe_key, opts);
		}
		else
			clean_option_error(NULL, "dedupe must be true, false or an object with keys, order_by and keep");
	}
	else if (strcmp(key, "*") == 0)
		spec_parse(&opts->defaults, v, "\"*\"");
	else if (strcmp(key, "columns") == 0)
	{
		if (!json_is_object(v))
			clean_option_error(NULL, "\"columns\" must be an object keyed by column name");
		JsonbForEachKey(JsonbValueToJsonb(v), "columns", visit_column_entry, opts);
	}
	else
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("unknown clean option \"%s\"", key),
				 errhint("Top-level options are columns, \"*\", dedupe, drop_columns_null_fraction and replace; column options go in \"columns\": {\"name\": {...}}, defaults for every column in \"*\".")));
}

/* Parses and checks the options argument (NULL means none). */
static CleanOptions *
clean_parse_options(Jsonb *options)
{
	CleanOptions *opts = palloc0(sizeof(CleanOptions));

	opts->null_fraction = -1;
	spec_init(&opts->defaults, NULL);
	JsonbForEachKey(options, "options", visit_top_key, opts);
	return opts;
}

/* ----------------------------------------------------------------------
 * ml.clean: columns
 * ----------------------------------------------------------------------
 */

typedef enum CleanKind
{
	KIND_NUMERIC,				/* int2/4/8, float4/8, numeric */
	KIND_TEXT,					/* text, varchar, char, name */
	KIND_OTHER
} CleanKind;

/* The first columns of the write statement's result row (1-based). */
enum
{
	RESULT_ROWS_IN = 1,
	RESULT_DROP_ROW,
	RESULT_OUTLIERS,
	RESULT_KEPT,				/* before dedupe */
	RESULT_ROWS_OUT,
	RESULT_FIXED = RESULT_ROWS_OUT
};

/* What the report counts for each column. */
enum
{
	COUNT_IMPUTED,
	COUNT_CLIPPED,
	COUNT_NULLED,
	COUNT_NORMALISED,
	COUNT_MAPPED,
	COUNT_KINDS
};

static const char *const counter_names[COUNT_KINDS] = {
	"imputed", "clipped", "nulled", "normalised", "mapped"
};

/* One column of the source, its resolved options and what they computed. */
typedef struct CleanColumn
{
	char	   *name;
	char	   *ident;			/* quoted */
	int			index;			/* 1-based; names its stage columns b1, n1, ... */
	Oid			typid;
	Oid			basetype;
	char	   *typname;		/* for casts */
	CleanKind	kind;
	bool		has_nan;		/* float4, float8, numeric */
	bool		is_integer;

	CleanImpute impute;
	char	   *constant;		/* IMPUTE_CONSTANT, as text */
	bool		outliers;
	OutlierSpec out;
	bool		trim;
	bool		lower;
	bool		collapse;
	List	   *map_keys;
	List	   *map_values;

	/* positions in the statistics query, 0 when not asked */
	int			st_missing;
	int			st_fill;
	int			st_bound;		/* float8[2]: quantiles, or mean and stddev */

	bool		dropped;
	bool		filled;			/* has a non-NULL fill */
	char	   *fill_sql;
	char	   *fill_text;		/* for the report */
	bool		bounded;
	double		lo;
	double		hi;

	/* names of the value at each point; set while generating SQL */
	char	   *base;			/* raw value */
	char	   *text;			/* text columns with steps: normalised text */
	char	   *mapped;
	char	   *before_impute;
	char	   *before_outliers;
	char	   *final;
	int			counters[COUNT_KINDS];	/* positions in the result row, 0 = none */
} CleanColumn;

/* The kind of a base type, and whether it has NaN or is an integer. */
static CleanKind
clean_kind(Oid basetype, bool *has_nan, bool *is_integer)
{
	*has_nan = false;
	*is_integer = false;
	switch (basetype)
	{
		case INT2OID:
		case INT4OID:
		case INT8OID:
			*is_integer = true;
			return KIND_NUMERIC;
		case FLOAT4OID:
		case FLOAT8OID:
		case NUMERICOID:
			*has_nan = true;
			return KIND_NUMERIC;
		case TEXTOID:
		case VARCHAROID:
		case BPCHAROID:
		case NAMEOID:
			return KIND_TEXT;
		default:
			return KIND_OTHER;
	}
}

/* Does the column's (working) type have the ordering mode() and dedupe need? */
static bool
column_sortable(const CleanColumn *c)
{
	TypeCacheEntry *tc = lookup_type_cache(c->kind == KIND_TEXT ? TEXTOID : c->typid,
										   TYPECACHE_LT_OPR | TYPECACHE_EQ_OPR);

	return OidIsValid(tc->lt_opr) && OidIsValid(tc->eq_opr);
}

/* Does a constant's JSON type fit the column?  See CONSTANT_HINT. */
static bool
constant_fits(const CleanColumn *c, const CleanSpec *sp)
{
	switch (c->kind)
	{
		case KIND_NUMERIC:
			return sp->value_type == jbvNumeric;
		case KIND_TEXT:
			return sp->value_type == jbvString;
		default:
			/* a default string would have to parse as every other type */
			return (sp->value_type == jbvString && sp->column != NULL) ||
				(sp->value_type == jbvBool && c->basetype == BOOLOID);
	}
}

/* Does an impute method fit the column? */
static bool
impute_fits(const CleanColumn *c, const CleanSpec *sp)
{
	switch (sp->impute)
	{
		case IMPUTE_MEAN:
		case IMPUTE_MEDIAN:
			return c->kind == KIND_NUMERIC;
		case IMPUTE_MODE:
			return column_sortable(c);
		case IMPUTE_CONSTANT:
			return constant_fits(c, sp);
		default:
			return true;
	}
}

/* Raises an option that does not fit a column's type. */
static void
misfit_error(const CleanColumn *c, const char *option, const char *hint)
{
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("clean option %s does not apply to column \"%s\" of type %s",
					option, c->name, format_type_be(c->typid)),
			 errhint("%s", hint)));
}

#define TEXT_HINT "trim, lower, collapse_spaces and map apply to text columns."
#define NUMERIC_HINT "outliers and impute mean and median apply to numeric columns."
#define CONSTANT_HINT "A constant is a number for a numeric column, a string for a text column, a boolean for a boolean column, and a string in the input format of the type for other types."
#define MODE_HINT "impute mode needs a type whose values can be ordered."

/* Checks that a column's own option fits it; a default is silently skipped. */
static bool
option_fits(const CleanColumn *c, const CleanSpec *sp, const char *option)
{
	bool		fits;
	const char *hint = TEXT_HINT;
	char	   *shown = psprintf("\"%s\"", option);

	if (strcmp(option, "impute") == 0)
	{
		fits = impute_fits(c, sp);
		shown = psprintf("\"impute\": \"%s\"", impute_names[sp->impute]);
		hint = sp->impute == IMPUTE_CONSTANT ? CONSTANT_HINT :
			sp->impute == IMPUTE_MODE ? MODE_HINT : NUMERIC_HINT;
	}
	else if (strcmp(option, "outliers") == 0)
	{
		fits = c->kind == KIND_NUMERIC;
		hint = NUMERIC_HINT;
	}
	else
		fits = c->kind == KIND_TEXT;

	if (!fits && sp->column != NULL)
		misfit_error(c, shown, hint);
	return fits;
}

/* Names the option whose constant a type's input function rejects. */
static void
constant_error_context(void *arg)
{
	errcontext("clean option \"value\" for column \"%s\"", ((CleanColumn *) arg)->name);
}

/*
 * The options that set an option for a column: its own (which must fit
 * it), else the defaults when they set it and it fits, else none.
 */
static const CleanSpec *
pick_spec(const CleanColumn *c, const CleanSpec *own, bool own_set,
		  const CleanSpec *def, bool def_set, const char *option)
{
	if (own_set)
	{
		(void) option_fits(c, own, option);
		return own;
	}
	if (def_set && option_fits(c, def, option))
		return def;
	return NULL;
}

/* Resolves one column's options: its own, else the defaults that fit. */
static void
column_resolve(CleanColumn *c, const CleanSpec *own, const CleanSpec *def)
{
	const CleanSpec *sp;

	if ((sp = pick_spec(c, own, own && own->impute_set, def, def->impute_set, "impute")))
	{
		c->impute = sp->impute;
		if (c->impute == IMPUTE_CONSTANT && c->kind != KIND_TEXT)
		{
			Oid			infunc;
			Oid			ioparam;
			ErrorContextCallback context;

			/* the type's own input function says whether the value fits */
			context.callback = constant_error_context;
			context.arg = c;
			context.previous = error_context_stack;
			error_context_stack = &context;
			getTypeInputInfo(c->typid, &infunc, &ioparam);
			(void) OidInputFunctionCall(infunc, sp->value, ioparam, -1);
			error_context_stack = context.previous;
		}
		c->constant = sp->value;
	}
	if ((sp = pick_spec(c, own, own && own->outliers_set, def, def->outliers_set, "outliers")))
	{
		c->outliers = true;
		c->out = sp->outliers;
	}
	if ((sp = pick_spec(c, own, own && own->trim >= 0, def, def->trim >= 0, "trim")))
		c->trim = sp->trim;
	if ((sp = pick_spec(c, own, own && own->lower >= 0, def, def->lower >= 0, "lower")))
		c->lower = sp->lower;
	if ((sp = pick_spec(c, own, own && own->collapse >= 0, def, def->collapse >= 0,
						"collapse_spaces")))
		c->collapse = sp->collapse;
	if ((sp = pick_spec(c, own, own && own->map_set, def, def->map_set, "map")))
	{
		c->map_keys = sp->map_keys;
		c->map_values = sp->map_values;
	}
}

/* Resolves every column of the source; options for a missing column fail. */
static CleanColumn *
clean_resolve_columns(const CleanOptions *opts, TupleDesc desc)
{
	CleanColumn *cols = palloc0(sizeof(CleanColumn) * Max(desc->natts, 1));
	ListCell   *lc;

	foreach(lc, opts->columns)
		(void) SourceFindColumn(desc, ((CleanSpec *) lfirst(lc))->column, "options");

	for (int i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, i);
		CleanColumn *c = &cols[i];
		const CleanSpec *own = NULL;

		c->name = pstrdup(NameStr(att->attname));
		c->ident = (char *) quote_identifier(c->name);
		c->index = i + 1;
		c->typid = att->atttypid;
		c->basetype = getBaseType(att->atttypid);
		c->kind = clean_kind(c->basetype, &c->has_nan, &c->is_integer);
		c->typname = c->kind == KIND_TEXT ? "pg_catalog.text" : format_type_be_qualified(c->typid);
		foreach(lc, opts->columns)
			if (strcmp(((CleanSpec *) lfirst(lc))->column, c->name) == 0)
				own = lfirst(lc);
		column_resolve(c, own, &opts->defaults);
	}
	return cols;
}

/* ----------------------------------------------------------------------
 * ml.clean: SQL generation
 * ----------------------------------------------------------------------
 */

/* A float8 literal that reads back as exactly this double. */
static char *
float_literal(double d)
{
	char		buf[DOUBLE_SHORTEST_DECIMAL_LEN];

	double_to_shortest_decimal_buf(d, buf);
	return psprintf("'%s'::pg_catalog.float8", buf);
}

/* The text of a value that reads back exactly (floats at full precision). */
static char *
datum_text(Datum d, Oid typid)
{
	Oid			outfunc;
	bool		isvarlena;

	switch (getBaseType(typid))
	{
		case FLOAT8OID:
			{
				char		buf[DOUBLE_SHORTEST_DECIMAL_LEN];

				double_to_shortest_decimal_buf(DatumGetFloat8(d), buf);
				return pstrdup(buf);
			}
		case FLOAT4OID:
			{
				char		buf[FLOAT_SHORTEST_DECIMAL_LEN];

				float_to_shortest_decimal_buf(DatumGetFloat4(d), buf);
				return pstrdup(buf);
			}
		default:
			getTypeOutputInfo(typid, &outfunc, &isvarlena);
			return OidOutputFunctionCall(outfunc, d);
	}
}

/* Does a text column need its normalised text (n<i>)? */
static bool
column_has_text_steps(const CleanColumn *c)
{
	return c->kind == KIND_TEXT &&
		(c->trim || c->lower || c->collapse || c->map_keys != NIL || c->impute != IMPUTE_NONE);
}

/* "x is missing": NULL, or NaN in float and numeric columns. */
static char *
missing_sql(const CleanColumn *c, const char *x)
{
	if (c->kind == KIND_NUMERIC && c->has_nan)
		return psprintf("(%s IS NULL OR %s = 'NaN'::%s)", x, x, c->typname);
	return psprintf("%s IS NULL", x);
}

/* The value as float8 when it is finite, else NULL: what statistics see. */
static char *
finite_sql(const CleanColumn *c, const char *x)
{
	if (c->has_nan)
		return psprintf("CASE WHEN pg_catalog.abs(%s::pg_catalog.float8) < 'Infinity'::pg_catalog.float8 "
						"THEN %s::pg_catalog.float8 END", x, x);
	return psprintf("%s::pg_catalog.float8", x);
}

/* "x is an outlier": outside [lo, hi]; never NULL, never true for NaN. */
static char *
outside_sql(const CleanColumn *c, const char *x)
{
	return psprintf("(%s IS NOT NULL AND (%s::pg_catalog.float8 < %s OR %s::pg_catalog.float8 > %s)%s)",
					x, x, float_literal(c->lo), x, float_literal(c->hi),
					c->has_nan ? psprintf(" AND %s::pg_catalog.float8 <> 'NaN'::pg_catalog.float8", x) : "");
}

/*
 * Stages 1 and 2: the row's ordinal, every raw value (b<i>), the
 * normalised text of text columns with steps (n<i>) and the mapped text
 * (m<i>).  Sets each column's base, text and mapped names.
 */
static char *
sql_text_stages(CleanColumn *cols, int ncols, const char *query)
{
	StringInfoData s;
	StringInfoData maps;

	initStringInfo(&s);
	appendStringInfoString(&s, "SELECT pg_catalog.row_number() OVER () AS o");
	for (int i = 0; i < ncols; i++)
	{
		CleanColumn *c = &cols[i];

		c->base = psprintf("b%d", c->index);
		appendStringInfo(&s, ", s.%s AS %s", c->ident, c->base);
		c->before_impute = c->base;
		if (column_has_text_steps(c))
		{
			char	   *e = psprintf("s.%s::pg_catalog.text", c->ident);

			if (c->collapse)
				e = psprintf("pg_catalog.regexp_replace(%s, %s, ' ', 'g')", e,
							 quote_literal_cstr("[" CLEAN_SPACE_CHARS "]+"));
			if (c->trim)
				e = psprintf("pg_catalog.btrim(%s, %s)", e, quote_literal_cstr(CLEAN_SPACE_CHARS));
			if (c->lower)
				e = psprintf("pg_catalog.lower(%s)", e);
			c->text = psprintf("n%d", c->index);
			appendStringInfo(&s, ", %s AS %s", e, c->text);
			c->before_impute = c->text;
		}
	}
	appendStringInfo(&s, " FROM (\n%s\n) s", query);

	initStringInfo(&maps);
	for (int i = 0; i < ncols; i++)
	{
		CleanColumn *c = &cols[i];
		ListCell   *k;
		ListCell   *v;

		if (c->kind != KIND_TEXT || c->map_keys == NIL)
			continue;
		c->mapped = psprintf("m%d", c->index);
		appendStringInfo(&maps, ", CASE %s", c->text);
		forboth(k, c->map_keys, v, c->map_values)
			appendStringInfo(&maps, " WHEN %s THEN %s", quote_literal_cstr(lfirst(k)),
							 lfirst(v) ? quote_literal_cstr(lfirst(v)) : "NULL");
		appendStringInfo(&maps, " ELSE %s END AS %s", c->text, c->mapped);
		c->before_impute = c->mapped;
	}
	if (maps.len == 0)
		return s.data;
	return psprintf("SELECT t.*%s FROM (%s OFFSET 0) t", maps.data, s.data);
}

/*
 * The statistics query over the text stages: row count, then per column
 * what its options need.  Records each statistic's position.
 */
static char *
sql_statistics(CleanColumn *cols, int ncols, const char *stages, bool null_fractions)
{
	StringInfoData s;
	int			n = 1;

	initStringInfo(&s);
	appendStringInfoString(&s, "SELECT pg_catalog.count(*)");
	for (int i = 0; i < ncols; i++)
	{
		CleanColumn *c = &cols[i];
		char	   *x = c->kind == KIND_NUMERIC ? finite_sql(c, c->base) : NULL;

		if (null_fractions)
		{
			appendStringInfo(&s, ", pg_catalog.count(*) FILTER (WHERE %s)", missing_sql(c, c->base));
			c->st_missing = ++n;
		}
		switch (c->impute)
		{
			case IMPUTE_MEAN:
				appendStringInfo(&s, ", ARRAY[pg_catalog.avg(%s)]", x);
				c->st_fill = ++n;
				break;
			case IMPUTE_MEDIAN:
				appendStringInfo(&s, ", pg_catalog.percentile_cont(ARRAY['0.5'::pg_catalog.float8]) WITHIN GROUP (ORDER BY %s)", x);
				c->st_fill = ++n;
				break;
			case IMPUTE_MODE:
				appendStringInfo(&s, ", pg_catalog.mode() WITHIN GROUP (ORDER BY %s)",
								 c->kind == KIND_NUMERIC ?
								 psprintf("CASE WHEN %s THEN NULL ELSE %s END", missing_sql(c, c->base), c->base) :
								 c->before_impute);
				c->st_fill = ++n;
				break;
			default:
				break;
		}
		if (c->outliers)
		{
			switch (c->out.method)
			{
				case OUTLIER_IQR:
					appendStringInfo(&s, ", pg_catalog.percentile_cont(ARRAY['0.25'::pg_catalog.float8, '0.75'::pg_catalog.float8]) WITHIN GROUP (ORDER BY %s)", x);
					c->st_bound = ++n;
					break;
				case OUTLIER_QUANTILE:
					appendStringInfo(&s, ", pg_catalog.percentile_cont(ARRAY[%s, %s]) WITHIN GROUP (ORDER BY %s)",
									 float_literal(c->out.low), float_literal(c->out.high), x);
					c->st_bound = ++n;
					break;
				case OUTLIER_ZSCORE:
					appendStringInfo(&s, ", ARRAY[pg_catalog.avg(%s), pg_catalog.stddev_pop(%s)]", x, x);
					c->st_bound = ++n;
					break;
			}
		}
	}
	appendStringInfo(&s, " FROM (%s OFFSET 0) t", stages);
	return s.data;
}

/* Reads a float8[] statistic of n elements; false when any is NULL. */
static bool
stat_floats(HeapTuple tup, TupleDesc desc, int pos, double *out, int n)
{
	bool		isnull;
	Datum		d = SPI_getbinval(tup, desc, pos, &isnull);
	Datum	   *elems;
	bool	   *nulls;
	int			len;

	if (isnull)
		return false;
	deconstruct_array(DatumGetArrayTypeP(d), FLOAT8OID, sizeof(float8), FLOAT8PASSBYVAL,
					  TYPALIGN_DOUBLE, &elems, &nulls, &len);
	if (len != n)
		return false;
	for (int i = 0; i < n; i++)
	{
		if (nulls[i])
			return false;
		out[i] = DatumGetFloat8(elems[i]);
	}
	return true;
}

/* Turns the statistics row into drops, fill values and outlier bounds. */
static void
clean_apply_statistics(CleanColumn *cols, int ncols, const CleanOptions *opts)
{
	HeapTuple	tup = SPI_tuptable->vals[0];
	TupleDesc	desc = SPI_tuptable->tupdesc;
	bool		isnull;
	int64		rows = DatumGetInt64(SPI_getbinval(tup, desc, 1, &isnull));

	for (int i = 0; i < ncols; i++)
	{
		CleanColumn *c = &cols[i];
		double		v;
		double		ab[2];

		if (c->st_missing && rows > 0)
		{
			int64		missing = DatumGetInt64(SPI_getbinval(tup, desc, c->st_missing, &isnull));

			c->dropped = (double) missing / (double) rows > opts->null_fraction;
		}

		if ((c->impute == IMPUTE_MEAN || c->impute == IMPUTE_MEDIAN) &&
			stat_floats(tup, desc, c->st_fill, &v, 1))
		{
			c->filled = true;
			c->fill_sql = psprintf("%s::%s", float_literal(v), c->typname);
			c->fill_text = datum_text(Float8GetDatum(v), FLOAT8OID);
		}
		else if (c->impute == IMPUTE_MODE)
		{
			Datum		d = SPI_getbinval(tup, desc, c->st_fill, &isnull);

			if (!isnull)
			{
				c->filled = true;
				c->fill_text = datum_text(d, SPI_gettypeid(desc, c->st_fill));
			}
		}
		else if (c->impute == IMPUTE_CONSTANT)
		{
			c->filled = true;
			c->fill_text = c->constant;
		}
		if (c->filled && c->fill_sql == NULL)
			c->fill_sql = psprintf("%s::%s", quote_literal_cstr(c->fill_text), c->typname);

		if (!c->outliers)
			continue;
		c->bounded = stat_floats(tup, desc, c->st_bound, ab, 2);
		if (c->bounded && c->out.method == OUTLIER_IQR)
		{
			c->lo = ab[0] - c->out.k * (ab[1] - ab[0]);
			c->hi = ab[1] + c->out.k * (ab[1] - ab[0]);
		}
		else if (c->bounded && c->out.method == OUTLIER_ZSCORE)
		{
			c->lo = ab[0] - c->out.z * ab[1];
			c->hi = ab[0] + c->out.z * ab[1];
		}
		else if (c->bounded)
		{
			c->lo = ab[0];
			c->hi = ab[1];
		}
		/* integers: the integer bounds inside [lo, hi] flag the same values */
		if (c->bounded && c->is_integer && ceil(c->lo) <= floor(c->hi))
		{
			c->lo = ceil(c->lo);
			c->hi = floor(c->hi);
		}
	}
}

/*
 * Stages 3 and 4 over the text stages: imputation (p<i>) with the
 * drop_row flag dr, then outliers (f<i>) with the drop flag od.  Sets
 * each kept column's final name.
 */
static char *
sql_value_stages(CleanColumn *cols, int ncols, const char *text_stages)
{
	StringInfoData imp;
	StringInfoData out;
	StringInfoData dr;
	StringInfoData od;

	initStringInfo(&imp);
	initStringInfo(&out);
	initStringInfo(&dr);
	initStringInfo(&od);
	for (int i = 0; i < ncols; i++)
	{
		CleanColumn *c = &cols[i];
		char	   *x = c->before_impute;

		if (c->dropped)
		{
			c->final = c->base;
			continue;
		}
		if (c->filled)
		{
			char	   *p = psprintf("p%d", c->index);

			appendStringInfo(&imp, ", CASE WHEN %s THEN %s ELSE %s END AS %s",
							 missing_sql(c, x), c->fill_sql, x, p);
			x = p;
		}
		else if (c->impute == IMPUTE_DROP_ROW)
			appendStringInfo(&dr, " OR %s", missing_sql(c, x));

		c->before_outliers = x;
		if (c->bounded && c->out.action == OUTLIER_DROP)
			appendStringInfo(&od, " OR %s", outside_sql(c, x));
		else if (c->bounded)
		{
			char	   *f = psprintf("f%d", c->index);

			if (c->out.action == OUTLIER_NULL)
				appendStringInfo(&out, ", CASE WHEN %s THEN NULL ELSE %s END AS %s",
								 outside_sql(c, x), x, f);
			else
				appendStringInfo(&out, ", CASE%s WHEN %s::pg_catalog.float8 < %s THEN %s::%s"
								 " WHEN %s::pg_catalog.float8 > %s THEN %s::%s ELSE %s END AS %s",
								 c->has_nan ? psprintf(" WHEN %s::pg_catalog.float8 = 'NaN'::pg_catalog.float8 THEN %s", x, x) : "",
								 x, float_literal(c->lo), float_literal(c->lo), c->typname,
								 x, float_literal(c->hi), float_literal(c->hi), c->typname,
								 x, f);
			x = f;
		}
		c->final = x;
	}
	return psprintf("SELECT t.*%s, (false%s) AS od FROM (SELECT t.*%s, (false%s) AS dr FROM (%s OFFSET 0) t OFFSET 0) t",
					out.data, od.data, imp.data, dr.data, text_stages);
}

/* The row_number that dedupe keeps (1) or drops (> 1). */
static char *
sql_dedupe(CleanColumn *cols, int ncols, const CleanOptions *opts, TupleDesc desc)
{
	StringInfoData part;
	const char *dir = opts->keep_last ? "DESC" : "ASC";
	ListCell   *lc;

	if (!opts->dedupe)
		return "1";
	initStringInfo(&part);
	if (opts->dedupe_keys == NIL)
	{
		for (int i = 0; i < ncols; i++)
			if (!cols[i].dropped)
				appendStringInfo(&part, "%s%s", part.len ? ", " : "", cols[i].final);
	}
	else
	{
		foreach(lc, opts->dedupe_keys)
			appendStringInfo(&part, "%s%s", part.len ? ", " : "",
							 cols[SourceFindColumn(desc, lfirst(lc), "dedupe")].final);
	}
	if (opts->dedupe_order)
		return psprintf("pg_catalog.row_number() OVER (PARTITION BY %s ORDER BY %s %s NULLS LAST, o %s)",
						part.data, cols[SourceFindColumn(desc, opts->dedupe_order, "dedupe")].final,
						dir, dir);
	return psprintf("pg_catalog.row_number() OVER (PARTITION BY %s ORDER BY o %s)", part.data, dir);
}

/* Checks that every column dedupe compares can be compared. */
static void
check_dedupe_columns(CleanColumn *cols, int ncols, const CleanOptions *opts, TupleDesc desc)
{
	ListCell   *lc;

	if (!opts->dedupe)
		return;
	for (int i = 0; i < ncols; i++)
	{
		bool		used = opts->dedupe_keys == NIL && !cols[i].dropped;

		foreach(lc, opts->dedupe_keys)
			used |= strcmp(lfirst(lc), cols[i].name) == 0;
		if (opts->dedupe_order && strcmp(opts->dedupe_order, cols[i].name) == 0)
			used = true;
		if (used && !column_sortable(&cols[i]))
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_FUNCTION),
					 errmsg("dedupe cannot compare values of column \"%s\" of type %s",
							cols[i].name, format_type_be(cols[i].typid)),
					 errhint("Dedupe by keys that leave this column out, or cast it in the source query.")));
	}
}

/* Adds a counter to the result row of the write statement. */
static void
add_counter(StringInfo s, int *n, CleanColumn *c, int which, const char *condition)
{
	appendStringInfo(s, ", pg_catalog.count(*) FILTER (WHERE %s)", condition);
	c->counters[which] = ++(*n);
}

/*
 * The write statement: fills the new table and returns rows in, rows
 * dropped by drop_row, by outliers, rows kept before dedupe, rows out,
 * then every column's counters (over the rows written).
 */
static char *
sql_write(CleanColumn *cols, int ncols, const CleanOptions *opts, TupleDesc desc,
		  const NewTable *into, const char *value_stages)
{
	StringInfoData names;
	StringInfoData values;
	StringInfoData counts;
	int			n = RESULT_FIXED;

	initStringInfo(&names);
	initStringInfo(&values);
	initStringInfo(&counts);
	for (int i = 0; i < ncols; i++)
	{
		CleanColumn *c = &cols[i];

		if (c->dropped)
			continue;
		appendStringInfo(&names, "%s%s", names.len ? ", " : "", c->ident);
		appendStringInfo(&values, "%s%s", values.len ? ", " : "", c->final);
		if (c->filled)
			add_counter(&counts, &n, c, COUNT_IMPUTED, missing_sql(c, c->before_impute));
		if (c->bounded && c->out.action != OUTLIER_DROP)
			add_counter(&counts, &n, c, c->out.action == OUTLIER_CLIP ? COUNT_CLIPPED : COUNT_NULLED,
						outside_sql(c, c->before_outliers));
		if (c->text && (c->trim || c->lower || c->collapse))
			add_counter(&counts, &n, c, COUNT_NORMALISED,
						psprintf("%s IS DISTINCT FROM %s::pg_catalog.text", c->text, c->base));
		if (c->mapped)
			add_counter(&counts, &n, c, COUNT_MAPPED,
						psprintf("%s IS DISTINCT FROM %s", c->mapped, c->text));
	}
	return psprintf("WITH r AS MATERIALIZED (%s), "
					"k AS MATERIALIZED (SELECT r.*, %s AS rn FROM r WHERE NOT r.dr AND NOT r.od), "
					"w AS (INSERT INTO %s (%s) SELECT %s FROM k WHERE k.rn = 1%s) "
					"SELECT a.*, b.* FROM "
					"(SELECT pg_catalog.count(*), pg_catalog.count(*) FILTER (WHERE dr), "
					"pg_catalog.count(*) FILTER (WHERE od AND NOT dr), "
					"pg_catalog.count(*) FILTER (WHERE NOT dr AND NOT od) FROM r) a, "
					"(SELECT pg_catalog.count(*)%s FROM k WHERE k.rn = 1) b",
					value_stages, sql_dedupe(cols, ncols, opts, desc),
					into->qualified, names.data, values.data,
					opts->dedupe ? " ORDER BY k.o" : "", counts.data);
}

/* ----------------------------------------------------------------------
 * ml.clean
 * ----------------------------------------------------------------------
 */

/* Pushes a number given as text: a JSON number when finite, else a string. */
static void
jb_number_text(JsonbParseState **st, const char *text)
{
	double		d = strtod(text, NULL);
	JsonbValue	v;

	if (isnan(d) || isinf(d))
	{
		JbString(st, text);
		return;
	}
	v.type = jbvNumeric;
	v.val.numeric = DatumGetNumeric(DirectFunctionCall3(numeric_in, CStringGetDatum(text),
														ObjectIdGetDatum(InvalidOid),
														Int32GetDatum(-1)));
	pushJsonbValue(st, WJB_VALUE, &v);
}

/* Reads a count of the write statement's result row. */
static int64
result_int64(HeapTuple tup, TupleDesc desc, int pos)
{
	bool		isnull;
	Datum		d = SPI_getbinval(tup, desc, pos, &isnull);

	return isnull ? 0 : DatumGetInt64(d);
}

/*
 * The report: rows in and out, dropped columns, rows dropped by each step,
 * and each kept column's counters, fill value and outlier bounds.
 */
static Jsonb *
clean_report(CleanColumn *cols, int ncols, List *dropped, HeapTuple tup, TupleDesc desc)
{
	JsonbParseState *st = NULL;
	int64		rows_out = result_int64(tup, desc, RESULT_ROWS_OUT);
	ListCell   *lc;

	JbBeginObject(&st);
	JbKey(&st, "rows_in");
	JbInt(&st, result_int64(tup, desc, RESULT_ROWS_IN));
	JbKey(&st, "rows_out");
	JbInt(&st, rows_out);
	JbKey(&st, "dropped_columns");
	JbBeginArray(&st);
	foreach(lc, dropped)
		JbString(&st, lfirst(lc));
	JbEndArray(&st);
	JbKey(&st, "rows_dropped");
	JbBeginObject(&st);
	JbKey(&st, "drop_row");
	JbInt(&st, result_int64(tup, desc, RESULT_DROP_ROW));
	JbKey(&st, "outliers");
	JbInt(&st, result_int64(tup, desc, RESULT_OUTLIERS));
	JbKey(&st, "duplicates");
	JbInt(&st, result_int64(tup, desc, RESULT_KEPT) - rows_out);
	JbEndObject(&st);
	JbKey(&st, "columns");
	JbBeginObject(&st);
	for (int i = 0; i < ncols; i++)
	{
		CleanColumn *c = &cols[i];

		if (c->dropped || (c->impute == IMPUTE_NONE && !c->outliers && !c->trim &&
						   !c->lower && !c->collapse && c->map_keys == NIL))
			continue;
		JbKey(&st, c->name);
		JbBeginObject(&st);
		for (int j = 0; j < COUNT_KINDS; j++)
		{
			JbKey(&st, counter_names[j]);
			JbInt(&st, c->counters[j] ? result_int64(tup, desc, c->counters[j]) : 0);
		}
		if (c->impute != IMPUTE_NONE && c->impute != IMPUTE_DROP_ROW)
		{
			JbKey(&st, "fill");
			if (!c->filled)
				JbNull(&st);
			else if (c->kind == KIND_NUMERIC)
				jb_number_text(&st, c->fill_text);
			else
				JbString(&st, c->fill_text);
		}
		if (c->outliers)
		{
			JbKey(&st, "bounds");
			if (c->bounded)
			{
				JbBeginArray(&st);
				JbFloat(&st, c->lo);
				JbFloat(&st, c->hi);
				JbEndArray(&st);
			}
			else
				JbNull(&st);
		}
		JbEndObject(&st);
	}
	JbEndObject(&st);
	return JbFinishObject(&st);
}

/*
 * ml_clean writes a cleaned copy of a source into a new table and returns
 * a report of what changed.  See the file's note for the order of steps.
 */
Datum
ml_clean(PG_FUNCTION_ARGS)
{
	char	   *source = DataTextArg(fcinfo, 0, "source");
	char	   *into_arg = DataTextArg(fcinfo, 1, "into");
	Jsonb	   *options = PG_ARGISNULL(2) ? NULL : PG_GETARG_JSONB_P(2);
	CleanOptions *opts;
	NewTable	into;
	char	   *query;
	SPIPlanPtr	plan;
	CachedPlanSource *ps;
	TupleDesc	desc;
	CleanColumn *cols;
	int			ncols;
	char	   *text_stages;
	StringInfoData kept;
	List	   *dropped = NIL;
	Jsonb	   *report;
	Jsonb	   *result_copy;
	ListCell   *lc;

	opts = clean_parse_options(options);
	NewTableResolve(into_arg, "into", &into);
	query = ReaderSourceQuery(source);

	/* from here on, work memory is SPI's; the report is copied out at the end */
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");

	ps = SourcePrepare(query, &plan);
	desc = CreateTupleDescCopy(ps->resultDesc);
	ncols = desc->natts;
	if (OidIsValid(into.existing))
	{
		if (list_member_oid(ps->relationOids, into.existing))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("cannot write the cleaned rows into \"%s\", which the source reads", into_arg),
					 errhint("ml.clean never changes its source; write into a new table.")));
		if (!opts->replace)
			NewTableExistsError(&into, true);
	}

	cols = clean_resolve_columns(opts, desc);
	foreach(lc, opts->dedupe_keys)
		(void) SourceFindColumn(desc, lfirst(lc), "dedupe");
	if (opts->dedupe_order)
		(void) SourceFindColumn(desc, opts->dedupe_order, "dedupe");

	/* statistics */
	text_stages = sql_text_stages(cols, ncols, query);
	DataRunStatement(sql_statistics(cols, ncols, text_stages, opts->null_fraction >= 0),
					 SPI_OK_SELECT);
	clean_apply_statistics(cols, ncols, opts);

	initStringInfo(&kept);
	for (int i = 0; i < ncols; i++)
	{
		if (cols[i].dropped)
			dropped = lappend(dropped, cols[i].name);
		else
			appendStringInfo(&kept, "%ss.%s", kept.len ? ", " : "", cols[i].ident);
	}
	if (kept.len == 0)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_EXCEPTION),
				 errmsg("the cleaned table would have no columns"),
				 errhint("Raise drop_columns_null_fraction, or clean a source with columns.")));
	check_dedupe_columns(cols, ncols, opts, desc);

	/* write */
	if (OidIsValid(into.existing))
		DataRunStatement(psprintf("DROP TABLE %s", into.qualified), SPI_OK_UTILITY);
	NewTableCreate(&into, kept.data, query);
	DataRunStatement(sql_write(cols, ncols, opts, desc, &into,
							   sql_value_stages(cols, ncols, text_stages)),
					 SPI_OK_SELECT);

	report = clean_report(cols, ncols, dropped, SPI_tuptable->vals[0], SPI_tuptable->tupdesc);
	result_copy = SPI_palloc(VARSIZE(report));
	memcpy(result_copy, report, VARSIZE(report));
	SPI_finish();
	PG_RETURN_JSONB_P(result_copy);
}
