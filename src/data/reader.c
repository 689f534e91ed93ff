/*-------------------------------------------------------------------------
 * src/data/reader.c
 *		Reads a source (a relation name or a query) into column-major
 *		arrays through an SPI cursor, ten thousand rows at a time.
 *
 * Design: every attribute of the source becomes one or more DataColumns:
 * numeric types become float8 values with NaN marking NULL (real NaN and
 * Infinity are rejected, so NaN is free to mean "missing"); text-like
 * types and enums become int32 codes into a dictionary of distinct
 * values; a numeric array of fixed length becomes one column per element.
 * Columns grow by doubling; the bytes actually held are checked against
 * ml.max_train_memory after every batch.  Rows whose target is NULL are
 * skipped and counted.  The source runs with the caller's rights.
 *-------------------------------------------------------------------------
 */
#include "data/data.h"

#include <math.h>

#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/date.h"
#include "utils/hsearch.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"
#include "nodes/plannodes.h"
#include "tcop/pquery.h"
#include "utils/portal.h"
#include "utils/plancache.h"
#include "utils/varlena.h"
#include "common/hashfn.h"

#define READER_BATCH_ROWS 10000
#define READER_INITIAL_ROWS 1024
#define UNIX_EPOCH_DAYS_FROM_PG_EPOCH ((double) (POSTGRES_EPOCH_JDATE - UNIX_EPOCH_JDATE))

/* One attribute of the source and the DataColumns it feeds. */
typedef struct ReaderField
{
	int			attnum;
	char	   *name;
	ValueConverter conv;
	int			first;			/* index of its first DataColumn, -1 if none yet */
	int			width;			/* DataColumns it feeds; arrays: set at first value */
	bool		is_float8;		/* a float8 column: stored without conversion */
	HTAB	   *dict_hash;		/* categorical: value -> code */
	int			dict_cap;
} ReaderField;

typedef struct DictEntry
{
	char	   *key;			/* must be first */
	int32		code;
} DictEntry;

typedef struct Reader
{
	MemoryContext cxt;			/* owns the DataSet */
	DataSet    *ds;
	ReaderField *fields;
	int			nfields;
	ReaderField *target;
	DataColumn *cols;			/* in order of creation */
	int			ncols;
	int			cols_cap;
	int64		cap;			/* rows allocated in every column */
	Size		dict_bytes;
} Reader;

static uint32
dict_hash_fn(const void *key, Size keysize)
{
	const char *s = *(const char *const *) key;

	return hash_bytes((const unsigned char *) s, strlen(s));
}

static int
dict_match_fn(const void *key1, const void *key2, Size keysize)
{
	return strcmp(*(const char *const *) key1, *(const char *const *) key2);
}

/*
 * ValueConverterInit resolves how values of a type become features.
 */
void
ValueConverterInit(ValueConverter *conv, Oid typid)
{
	Oid			elem;

	memset(conv, 0, sizeof(*conv));
	conv->typid = typid;
	conv->basetype = getBaseType(typid);
	conv->kind = VALUE_UNSUPPORTED;

	switch (conv->basetype)
	{
		case TEXTOID:
		case VARCHAROID:
		case BPCHAROID:
		case NAMEOID:
			conv->kind = VALUE_CATEGORICAL;
			break;
		default:
			if (ValueTypeKind(conv->basetype) == VALUE_NUMERIC)
				conv->kind = VALUE_NUMERIC;
			else if (type_is_enum(conv->basetype))
				conv->kind = VALUE_CATEGORICAL;
			else if ((elem = get_element_type(conv->basetype)) != InvalidOid &&
					 (elem == INT2OID || elem == INT4OID || elem == INT8OID ||
					  elem == FLOAT4OID || elem == FLOAT8OID || elem == NUMERICOID))
			{
				conv->kind = VALUE_ARRAY;
				conv->elemtype = elem;
				get_typlenbyvalalign(elem, &conv->elemlen, &conv->elembyval,
									 &conv->elemalign);
			}
			break;
	}

	if (conv->kind != VALUE_UNSUPPORTED && conv->kind != VALUE_ARRAY)
	{
		bool		isvarlena;

		getTypeOutputInfo(conv->basetype, &conv->outfunc, &isvarlena);
	}
}

/* Converts one scalar of a numeric type to double. */
static inline double
scalar_to_double(Oid type, Datum value)
{
	switch (type)
	{
		case INT2OID:
			return (double) DatumGetInt16(value);
		case INT4OID:
			return (double) DatumGetInt32(value);
		case INT8OID:
			return (double) DatumGetInt64(value);
		case FLOAT4OID:
			return (double) DatumGetFloat4(value);
		case FLOAT8OID:
			return DatumGetFloat8(value);
		case NUMERICOID:
			return DatumGetFloat8(DirectFunctionCall1(numeric_float8, value));
		case BOOLOID:
			return DatumGetBool(value) ? 1.0 : 0.0;
		case DATEOID:
			{
				DateADT		d = DatumGetDateADT(value);

				if (DATE_NOT_FINITE(d))
					return DATE_IS_NOBEGIN(d) ? -INFINITY : INFINITY;
				return (double) d + UNIX_EPOCH_DAYS_FROM_PG_EPOCH;
			}
		case TIMESTAMPOID:
		case TIMESTAMPTZOID:
			{
				Timestamp	ts = DatumGetTimestamp(value);

				if (TIMESTAMP_NOT_FINITE(ts))
					return TIMESTAMP_IS_NOBEGIN(ts) ? -INFINITY : INFINITY;
				return (double) ts / (double) USECS_PER_DAY + UNIX_EPOCH_DAYS_FROM_PG_EPOCH;
			}
		default:
			elog(ERROR, "type %u is not numeric", type);
	}
	return 0.0;					/* keep compiler quiet */
}

/*
 * ValueTypeKind classifies a built-in base type without catalog access.
 */
ValueKind
ValueTypeKind(Oid basetype)
{
	switch (basetype)
	{
		case INT2OID:
		case INT4OID:
		case INT8OID:
		case FLOAT4OID:
		case FLOAT8OID:
		case NUMERICOID:
		case BOOLOID:
		case DATEOID:
		case TIMESTAMPOID:
		case TIMESTAMPTZOID:
			return VALUE_NUMERIC;
		default:
			return VALUE_UNSUPPORTED;
	}
}

/*
 * ValueFromText parses text as a value of a numeric base type (a number,
 * a boolean, a date or a timestamp, as the column was in training) and
 * returns it as a feature value.  Bad input raises the type's own error.
 */
double
ValueFromText(Oid basetype, const char *text)
{
	Oid			infunc;
	Oid			ioparam;

	getTypeInputInfo(basetype, &infunc, &ioparam);
	return scalar_to_double(basetype,
							OidInputFunctionCall(infunc, (char *) text, ioparam, -1));
}

/*
 * ValueToDouble converts a non-NULL numeric value; dates and timestamps
 * become days since 1970-01-01.  NaN and Infinity pass through: callers
 * check them with ValueCheckFinite.
 */
double
ValueToDouble(const ValueConverter *conv, Datum value)
{
	Assert(conv->kind == VALUE_NUMERIC);
	return scalar_to_double(conv->basetype, value);
}

/*
 * ValueToCString renders a non-NULL value as text: the category of a
 * categorical feature.
 */
char *
ValueToCString(const ValueConverter *conv, Datum value)
{
	switch (conv->basetype)
	{
		case TEXTOID:
		case VARCHAROID:
		case BPCHAROID:
			return TextDatumGetCString(value);
		case NAMEOID:
			return pstrdup(NameStr(*DatumGetName(value)));
		default:
			return OidOutputFunctionCall(conv->outfunc, value);
	}
}

/*
 * ValueArrayToDoubles converts a one-dimensional numeric array of expected
 * elements into out[]: NULL elements become NaN (missing); a NaN or
 * infinite element is an error.  Returns the array's length; when it
 * differs from expected nothing is written (pass -1 to learn the length).
 */
int
ValueArrayToDoubles(const ValueConverter *conv, Datum value, double *out,
					int expected, const char *colname)
{
	ArrayType  *arr = DatumGetArrayTypeP(value);
	Datum	   *elems;
	bool	   *nulls;
	int			n;

	if (ARR_NDIM(arr) > 1)
		ereport(ERROR,
				(errcode(ERRCODE_ARRAY_SUBSCRIPT_ERROR),
				 errmsg("array column \"%s\" has %d dimensions", colname, ARR_NDIM(arr)),
				 errhint("Only one-dimensional arrays can be features.")));

	deconstruct_array(arr, conv->elemtype, conv->elemlen, conv->elembyval,
					  conv->elemalign, &elems, &nulls, &n);
	if (n == expected)
	{
		for (int i = 0; i < n; i++)
		{
			if (nulls[i])
			{
				out[i] = NAN;	/* NULL: missing */
				continue;
			}
			out[i] = scalar_to_double(conv->elemtype, elems[i]);
			if (unlikely(isnan(out[i]) || isinf(out[i])))
				ValueCheckFinite(out[i], psprintf("%s[%d]", colname, i + 1));
		}
	}
	pfree(elems);
	pfree(nulls);
	return n;
}

/*
 * ValueCheckFinite rejects NaN and Infinity: pgmaker keeps NaN to mean
 * "missing", so real ones must be turned into NULL by the user.
 */
void
ValueCheckFinite(double v, const char *colname)
{
	if (unlikely(isnan(v) || isinf(v)))
		ereport(ERROR,
				(errcode(ERRCODE_DATA_EXCEPTION),
				 errmsg("column \"%s\" contains %s", colname,
						isnan(v) ? "NaN" : "Infinity"),
				 errdetail("NaN and Infinity are not valid feature values; only NULL means a missing value."),
				 errhint("Turn them into NULL, for example with NULLIF(%s, 'NaN'), to have them imputed.",
						 quote_identifier(colname))));
}

/* Is this source text a query rather than a relation name? */
static bool
source_is_query(const char *source)
{
	static const char *const keywords[] = {"select", "with", "values", "table"};
	const char *p = source;

	while (*p && (isspace((unsigned char) *p) || *p == '('))
		p++;
	for (int i = 0; i < lengthof(keywords); i++)
	{
		size_t		len = strlen(keywords[i]);

		if (pg_strncasecmp(p, keywords[i], len) == 0 &&
			(p[len] == '\0' || !(isalnum((unsigned char) p[len]) || p[len] == '_')))
			return true;
	}
	return false;
}

/*
 * ReaderSourceQuery turns a source argument into the query to run: a query
 * is used as it is; a relation name (schema-qualified or not) must exist
 * and becomes SELECT * FROM it, properly quoted.
 */
char *
ReaderSourceQuery(const char *source)
{
	List	   *names;
	RangeVar   *rv;
	Oid			relid;

	if (source == NULL || *source == '\0')
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("source must not be empty"),
				 errhint("Pass a table or view name, or a query starting with SELECT, WITH, VALUES or TABLE.")));

	if (source_is_query(source))
		return pstrdup(source);

	names = textToQualifiedNameList(cstring_to_text(source));
	rv = makeRangeVarFromNameList(names);
	relid = RangeVarGetRelid(rv, NoLock, true);
	if (!OidIsValid(relid))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("relation \"%s\" does not exist", source),
				 errhint("The source must be a table or view name, or a query starting with SELECT, WITH, VALUES or TABLE.")));

	return psprintf("SELECT * FROM %s",
					quote_qualified_identifier(get_namespace_name(get_rel_namespace(relid)),
											   get_rel_name(relid)));
}

/* Opens the source as a read-only cursor (see SourcePrepare). */
static Portal
reader_open_cursor(const char *query)
{
	SPIPlanPtr	plan;

	SourcePrepare(query, &plan);
	return SPI_cursor_open(NULL, plan, NULL, NULL, true);
}

/*
 * The row capacity to start with: the planner's estimate of the source's
 * rows, with a margin, so that a source the planner knows is read without
 * a copy of its columns as they grow.  Bounded by what the memory limit
 * allows; an underestimate just means the columns grow later.
 */
static int64
reader_initial_capacity(Portal portal)
{
	PlannedStmt *stmt = linitial_node(PlannedStmt, portal->stmts);
	double		est = stmt->planTree ? stmt->planTree->plan_rows : 0.0;
	double		max_rows = (double) ml_max_train_memory * 1024.0 /
		(sizeof(double) * Max(portal->tupDesc->natts, 1));

	est = Min(est * 1.05 + READER_INITIAL_ROWS, max_rows);
	return (int64) Max(est, (double) READER_INITIAL_ROWS);
}

/* Adds a DataColumn for a field, allocated for the current capacity. */
static DataColumn *
reader_add_column(Reader *rd, ReaderField *f, int element)
{
	DataColumn *col;
	MemoryContext old = MemoryContextSwitchTo(rd->cxt);

	if (rd->ncols == rd->cols_cap)
	{
		rd->cols_cap *= 2;
		rd->cols = repalloc(rd->cols, sizeof(DataColumn) * rd->cols_cap);
	}
	col = &rd->cols[rd->ncols++];
	memset(col, 0, sizeof(*col));
	col->source = f->name;
	col->element = element;
	col->name = element > 0 ? psprintf("%s[%d]", f->name, element) : f->name;
	col->typid = element > 0 ? f->conv.elemtype : f->conv.typid;
	col->categorical = (f->conv.kind == VALUE_CATEGORICAL);
	if (col->categorical)
	{
		col->codes = MemoryContextAllocHuge(rd->cxt, sizeof(int32) * rd->cap);
		f->dict_cap = 16;
		col->dict = palloc(sizeof(char *) * f->dict_cap);
	}
	else
	{
		col->values = MemoryContextAllocHuge(rd->cxt, sizeof(double) * rd->cap);
		/* rows before an array's first value are missing */
		for (int64 i = 0; i < rd->ds->nrows; i++)
			col->values[i] = NAN;
	}
	MemoryContextSwitchTo(old);
	return col;
}

/* Doubles the row capacity of every column. */
static void
reader_grow(Reader *rd)
{
	int64		newcap = rd->cap * 2;

	for (int i = 0; i < rd->ncols; i++)
	{
		DataColumn *col = &rd->cols[i];

		if (col->categorical)
			col->codes = repalloc_huge(col->codes, sizeof(int32) * newcap);
		else
			col->values = repalloc_huge(col->values, sizeof(double) * newcap);
	}
	rd->cap = newcap;
}

/*
 * Before extra_cols new columns are added (an array's elements), shrinks
 * the row capacity if reserving it for every column would pass the memory
 * limit: the planner's estimate that sized it did not know the array's
 * width.  Rows up to row are kept.
 */
static void
reader_fit_capacity(Reader *rd, int extra_cols, int64 row)
{
	Size		limit = (Size) ml_max_train_memory * 1024;
	Size		width = sizeof(double) * (Size) extra_cols;
	int64		fit;

	for (int i = 0; i < rd->ncols; i++)
		width += rd->cols[i].categorical ? sizeof(int32) : sizeof(double);
	fit = Max((int64) (limit / width), row + 1);
	if (fit >= rd->cap)
		return;
	for (int i = 0; i < rd->ncols; i++)
	{
		DataColumn *col = &rd->cols[i];

		if (col->categorical)
			col->codes = repalloc_huge(col->codes, sizeof(int32) * fit);
		else
			col->values = repalloc_huge(col->values, sizeof(double) * fit);
	}
	rd->cap = fit;
}

/* Returns the dictionary code of a category, adding it when new. */
static int32
reader_category_code(Reader *rd, ReaderField *f, DataColumn *col, char *value)
{
	DictEntry  *entry;
	bool		found;

	entry = hash_search(f->dict_hash, &value, HASH_ENTER, &found);
	if (!found)
	{
		MemoryContext old = MemoryContextSwitchTo(rd->cxt);

		entry->key = pstrdup(value);
		entry->code = col->ndict;
		if (col->ndict == f->dict_cap)
		{
			f->dict_cap *= 2;
			col->dict = repalloc_huge(col->dict, sizeof(char *) * f->dict_cap);
		}
		col->dict[col->ndict++] = entry->key;
		rd->dict_bytes += strlen(value) + 1 + sizeof(DictEntry) + 2 * sizeof(char *);
		MemoryContextSwitchTo(old);
	}
	return entry->code;
}

/* Stores one attribute value of the current row. */
static void
reader_store(Reader *rd, ReaderField *f, Datum value, bool isnull, int64 row)
{
	switch (f->conv.kind)
	{
		case VALUE_NUMERIC:
			{
				DataColumn *col = &rd->cols[f->first];
				double		v = NAN;

				if (!isnull)
				{
					v = f->conv.basetype == FLOAT8OID ? DatumGetFloat8(value) :
						scalar_to_double(f->conv.basetype, value);
					if (unlikely(isnan(v) || isinf(v)))
						ValueCheckFinite(v, f->name);
				}
				col->values[row] = v;
				break;
			}
		case VALUE_CATEGORICAL:
			{
				DataColumn *col = &rd->cols[f->first];

				col->codes[row] = isnull ? -1 :
					reader_category_code(rd, f, col, ValueToCString(&f->conv, value));
				break;
			}
		case VALUE_ARRAY:
			{
				double		buf[64];
				double	   *vals = buf;
				int			n;

				if (isnull)
				{
					for (int i = 0; i < f->width; i++)
						rd->cols[f->first + i].values[row] = NAN;
					break;
				}
				if (f->width > lengthof(buf))
					vals = palloc(sizeof(double) * f->width);
				n = ValueArrayToDoubles(&f->conv, value, vals,
										f->first < 0 ? -1 : f->width, f->name);
				if (f->first < 0)
				{
					/* first non-NULL value: the array's length fixes the width */
					if (n == 0)
						ereport(ERROR,
								(errcode(ERRCODE_DATA_EXCEPTION),
								 errmsg("array column \"%s\" has an empty array", f->name)));
					if (n > lengthof(buf))
						vals = palloc(sizeof(double) * n);
					ValueArrayToDoubles(&f->conv, value, vals, n, f->name);
					f->width = n;
					f->first = rd->ncols;
					reader_fit_capacity(rd, n, row);
					for (int i = 0; i < n; i++)
						reader_add_column(rd, f, i + 1);
				}
				else if (n != f->width)
					ereport(ERROR,
							(errcode(ERRCODE_DATA_EXCEPTION),
							 errmsg("array column \"%s\" has %d elements in row %lld but %d in earlier rows",
									f->name, n, (long long) row + 1, f->width),
							 errhint("Every array feature must have the same length.")));
				for (int i = 0; i < f->width; i++)
					rd->cols[f->first + i].values[row] = vals[i];
				break;
			}
		case VALUE_UNSUPPORTED:
			elog(ERROR, "unsupported column reached the reader");
	}
}

/* Bytes held by the rows read so far. */
static Size
reader_bytes(Reader *rd)
{
	Size		row_width = 0;

	for (int i = 0; i < rd->ncols; i++)
		row_width += rd->cols[i].categorical ? sizeof(int32) : sizeof(double);
	return (Size) rd->ds->nrows * row_width + rd->dict_bytes;
}

static void
reader_check_memory(Reader *rd)
{
	Size		limit = (Size) ml_max_train_memory * 1024;
	Size		bytes = reader_bytes(rd);

	if (bytes > limit)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("training data exceeds ml.max_train_memory (%d kB)", ml_max_train_memory),
				 errdetail("After %lld rows the data held %zu kB.",
						   (long long) rd->ds->nrows, bytes / 1024),
				 errhint("Raise ml.max_train_memory, or train on a sample, for example FROM t TABLESAMPLE SYSTEM (10).")));
}

/* Lists the source's columns, for a hint. */
static char *
describe_columns(TupleDesc tupdesc)
{
	StringInfoData buf;
	int			shown = 0;

	initStringInfo(&buf);
	for (int i = 0; i < tupdesc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(tupdesc, i);

		if (att->attisdropped)
			continue;
		if (shown == 20)
		{
			appendStringInfoString(&buf, ", ...");
			break;
		}
		appendStringInfo(&buf, "%s%s", shown++ ? ", " : "", NameStr(att->attname));
	}
	return buf.data;
}

/* Resolves the source's columns into fields on the first batch. */
static void
reader_setup_fields(Reader *rd, TupleDesc tupdesc, const char *target, List *exclude)
{
	ListCell   *lc;

	rd->fields = palloc0(sizeof(ReaderField) * tupdesc->natts);
	foreach(lc, exclude)
	{
		const char *name = strVal(lfirst(lc));
		bool		found = false;

		for (int i = 0; i < tupdesc->natts && !found; i++)
			found = strcmp(NameStr(TupleDescAttr(tupdesc, i)->attname), name) == 0;
		if (!found)
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_COLUMN),
					 errmsg("preprocess names column \"%s\", which is not in the source", name),
					 errhint("The source has columns: %s.", describe_columns(tupdesc))));
	}

	for (int i = 0; i < tupdesc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(tupdesc, i);
		char	   *name = NameStr(att->attname);
		bool		is_target = target && strcmp(name, target) == 0;
		ReaderField *f;

		if (att->attisdropped)
			continue;
		if (!is_target && list_member(exclude, makeString(name)))
			continue;
		for (int j = 0; j < rd->nfields; j++)
			if (strcmp(rd->fields[j].name, name) == 0)
				ereport(ERROR,
						(errcode(ERRCODE_DUPLICATE_COLUMN),
						 errmsg("the source has more than one column named \"%s\"", name),
						 errhint("Give every column of the source query a distinct name.")));

		f = is_target ? palloc0(sizeof(ReaderField)) : &rd->fields[rd->nfields++];
		f->attnum = i + 1;
		f->name = MemoryContextStrdup(rd->cxt, name);
		f->first = -1;
		ValueConverterInit(&f->conv, att->atttypid);
		f->is_float8 = f->conv.basetype == FLOAT8OID;
		if (f->conv.kind == VALUE_UNSUPPORTED ||
			(is_target && f->conv.kind == VALUE_ARRAY))
			ereport(ERROR,
					(errcode(ERRCODE_DATATYPE_MISMATCH),
					 errmsg("column \"%s\" has unsupported type %s", name,
							format_type_be(att->atttypid)),
					 is_target ?
					 errhint("The target must be a number, boolean, text or enum; cast it in the source query.") :
					 errhint("Cast it to a number, text, date or float8[] in the source query, or exclude it with preprocess => '{\"%s\": {\"exclude\": true}}'.", name)));
		if (f->conv.kind == VALUE_CATEGORICAL)
		{
			HASHCTL		ctl;

			ctl.keysize = sizeof(char *);
			ctl.entrysize = sizeof(DictEntry);
			ctl.hash = dict_hash_fn;
			ctl.match = dict_match_fn;
			ctl.hcxt = rd->cxt;
			f->dict_hash = hash_create("pgmaker category dictionary", 64, &ctl,
									   HASH_ELEM | HASH_FUNCTION | HASH_COMPARE | HASH_CONTEXT);
		}
		if (is_target)
			rd->target = f;
		if (f->conv.kind != VALUE_ARRAY)
		{
			f->first = rd->ncols;
			f->width = 1;
			reader_add_column(rd, f, 0);
		}
	}

	if (target && rd->target == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_COLUMN),
				 errmsg("target column \"%s\" does not exist in the source", target),
				 errhint("The source has columns: %s.", describe_columns(tupdesc))));
}

/* Builds the DataSet's column list: source order, target apart. */
static void
reader_finish(Reader *rd)
{
	DataSet    *ds = rd->ds;
	int			n = 0;

	ds->cols = MemoryContextAlloc(rd->cxt, sizeof(DataColumn) * Max(rd->ncols, 1));
	for (int i = 0; i < rd->nfields; i++)
	{
		ReaderField *f = &rd->fields[i];

		for (int j = 0; f->first >= 0 && j < f->width; j++)
			ds->cols[n++] = rd->cols[f->first + j];
	}
	ds->ncols = n;
	if (rd->target)
	{
		ds->target = MemoryContextAlloc(rd->cxt, sizeof(DataColumn));
		*ds->target = rd->cols[rd->target->first];
	}
	ds->bytes = reader_bytes(rd);
}

/* Receives the source's rows straight from the executor. */
typedef struct ReaderReceiver
{
	DestReceiver pub;
	Reader	   *rd;
	MemoryContext batch_cxt;
	const char *target;
	List	   *exclude;
	bool		ready;			/* fields resolved */
} ReaderReceiver;

static void
reader_startup(DestReceiver *self, int operation, TupleDesc typeinfo)
{
	ReaderReceiver *rr = (ReaderReceiver *) self;

	if (!rr->ready)
	{
		MemoryContext old = MemoryContextSwitchTo(rr->rd->cxt);

		reader_setup_fields(rr->rd, typeinfo, rr->target, rr->exclude);
		MemoryContextSwitchTo(old);
		rr->ready = true;
	}
}

/* Stores one row; rows with a NULL target are counted and skipped. */
static bool
reader_receive(TupleTableSlot *slot, DestReceiver *self)
{
	ReaderReceiver *rr = (ReaderReceiver *) self;
	Reader	   *rd = rr->rd;
	int64		row = rd->ds->nrows;
	MemoryContext old;

	slot_getallattrs(slot);
	if (rd->target && slot->tts_isnull[rd->target->attnum - 1])
	{
		rd->ds->null_targets++;
		return true;
	}
	if (row == rd->cap)
		reader_grow(rd);

	old = MemoryContextSwitchTo(rr->batch_cxt);
	if (rd->target)
		reader_store(rd, rd->target, slot->tts_values[rd->target->attnum - 1], false, row);
	for (int i = 0; i < rd->nfields; i++)
	{
		ReaderField *f = &rd->fields[i];

		if (f->is_float8)
		{
			double		v = slot->tts_isnull[f->attnum - 1] ? NAN :
				DatumGetFloat8(slot->tts_values[f->attnum - 1]);

			if (unlikely(isinf(v)) ||
				unlikely(isnan(v) && !slot->tts_isnull[f->attnum - 1]))
				ValueCheckFinite(v, f->name);
			rd->cols[f->first].values[row] = v;
		}
		else
			reader_store(rd, f, slot->tts_values[f->attnum - 1],
						 slot->tts_isnull[f->attnum - 1], row);
	}
	MemoryContextSwitchTo(old);
	rd->ds->nrows++;
	return true;
}

static void
reader_shutdown(DestReceiver *self)
{
}

static void
reader_destroy(DestReceiver *self)
{
}

/*
 * ReaderLoad runs the source with the caller's rights and returns its rows.
 * target (may be NULL) is read apart; rows with a NULL target are skipped.
 * Columns named in exclude are not read.  The result lives in the current
 * memory context.
 *
 * The source is opened as an SPI cursor and fetched ten thousand rows at a
 * time into a receiver of our own, which converts each row as the executor
 * produces it: no tuple is copied.  Between batches the conversion memory
 * is reset, the memory limit checked and interrupts serviced.
 */
DataSet *
ReaderLoad(const char *source, const char *target, List *exclude)
{
	char	   *query = ReaderSourceQuery(source);
	Reader		rd;
	ReaderReceiver rr;
	Portal		portal;

	memset(&rd, 0, sizeof(rd));
	rd.cxt = CurrentMemoryContext;
	rd.ds = palloc0(sizeof(DataSet));
	rd.cap = READER_INITIAL_ROWS;
	rd.cols_cap = 16;
	rd.cols = palloc(sizeof(DataColumn) * rd.cols_cap);

	memset(&rr, 0, sizeof(rr));
	rr.pub.receiveSlot = reader_receive;
	rr.pub.rStartup = reader_startup;
	rr.pub.rShutdown = reader_shutdown;
	rr.pub.rDestroy = reader_destroy;
	rr.pub.mydest = DestNone;
	rr.rd = &rd;
	rr.target = target;
	rr.exclude = exclude;
	rr.batch_cxt = AllocSetContextCreate(rd.cxt, "pgmaker reader batch",
										 ALLOCSET_DEFAULT_SIZES);

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	portal = reader_open_cursor(query);
	rd.cap = reader_initial_capacity(portal);
	for (;;)
	{
		uint64		fetched = PortalRunFetch(portal, FETCH_FORWARD,
											 READER_BATCH_ROWS, (DestReceiver *) &rr);

		MemoryContextReset(rr.batch_cxt);
		reader_check_memory(&rd);
		CHECK_FOR_INTERRUPTS();
		if (fetched < READER_BATCH_ROWS)
			break;
	}
	SPI_cursor_close(portal);
	SPI_finish();
	MemoryContextDelete(rr.batch_cxt);

	reader_finish(&rd);
	return rd.ds;
}

/*
 * DataSetFindColumn returns the index of the column with this feature
 * name, or -1.
 */
int
DataSetFindColumn(const DataSet *ds, const char *name)
{
	for (int i = 0; i < ds->ncols; i++)
		if (strcmp(ds->cols[i].name, name) == 0)
			return i;
	return -1;
}
