/*-------------------------------------------------------------------------
 * src/pgmaker.c
 *		Entry point of the pgmaker shared library: _PG_init only calls
 *		each module's initialisation.
 *-------------------------------------------------------------------------
 */
#include "pgmaker.h"

#include <math.h>

#include "common/jsonapi.h"
#include "fmgr.h"
#include "mb/pg_wchar.h"
#include "utils/builtins.h"
#include "utils/float.h"
#include "utils/jsonb.h"
#include "utils/numeric.h"
#include "utils/timestamp.h"

PG_MODULE_MAGIC;

void		_PG_init(void);

static const char *const task_names[] = {
	[ML_TASK_REGRESSION] = "regression",
	[ML_TASK_CLASSIFICATION] = "classification",
	[ML_TASK_CLUSTERING] = "clustering",
	[ML_TASK_DECOMPOSITION] = "decomposition",
};

/*
 * _PG_init registers the settings and the prediction cache callbacks, and
 * when preloaded, the launcher of the background workers.
 */
void
_PG_init(void)
{
	GucInit();
	PredictInit();
	CaptureInit();
	BgwInit();
}

/*
 * MLTaskName returns the SQL name of a task.
 */
const char *
MLTaskName(MLTask task)
{
	if ((int) task < 0 || task > ML_TASK_DECOMPOSITION)
		elog(ERROR, "invalid task %d", (int) task);
	return task_names[task];
}

/*
 * MLTaskFromName parses a task name; returns false when it is unknown.
 */
bool
MLTaskFromName(const char *name, MLTask *task)
{
	for (int i = 0; i < lengthof(task_names); i++)
	{
		if (strcmp(name, task_names[i]) == 0)
		{
			*task = (MLTask) i;
			return true;
		}
	}
	return false;
}

/*
 * JsonbForEachKey calls visit for every key of a jsonb object, with nested
 * containers passed as jbvBinary.  NULL or an empty object visits nothing;
 * anything but an object is an error naming what it is ("hyperparams").
 */
void
JsonbForEachKey(Jsonb *object, const char *what, JsonbKeyVisitor visit, void *arg)
{
	JsonbIterator *it;
	JsonbValue	v;
	JsonbIteratorToken tok;
	char	   *key = NULL;

	if (object == NULL)
		return;
	if (!JB_ROOT_IS_OBJECT(object))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s must be a JSON object", what)));

	it = JsonbIteratorInit(&object->root);
	while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
	{
		if (tok == WJB_KEY)
			key = pnstrdup(v.val.string.val, v.val.string.len);
		else if (tok == WJB_VALUE)
			visit(key, &v, arg);
	}
}

/*
 * JsonbValueTypeName names a jsonb value's type for error messages.
 */
const char *
JsonbValueTypeName(const JsonbValue *v)
{
	switch (v->type)
	{
		case jbvNull:
			return "null";
		case jbvString:
			return "string";
		case jbvNumeric:
			return "number";
		case jbvBool:
			return "boolean";
		case jbvBinary:
			return JsonContainerIsArray(v->val.binary.data) ? "array" : "object";
		default:
			return "value";
	}
}

/*
 * JsonbValueToDouble reads a jsonb number; false when it is not one.
 */
bool
JsonbValueToDouble(const JsonbValue *v, double *out)
{
	if (v->type != jbvNumeric)
		return false;
	*out = DatumGetFloat8(DirectFunctionCall1(numeric_float8,
											  NumericGetDatum(v->val.numeric)));
	return true;
}

/*
 * JsonbValueToCString renders a scalar jsonb value as text (strings
 * unquoted); NULL for json null and containers.
 */
char *
JsonbValueToCString(const JsonbValue *v)
{
	switch (v->type)
	{
		case jbvString:
			return pnstrdup(v->val.string.val, v->val.string.len);
		case jbvNumeric:
			return DatumGetCString(DirectFunctionCall1(numeric_out,
													   NumericGetDatum(v->val.numeric)));
		case jbvBool:
			return pstrdup(v->val.boolean ? "true" : "false");
		default:
			return NULL;
	}
}

void
JbKey(JsonbParseState **st, const char *key)
{
	JsonbValue	v;

	v.type = jbvString;
	v.val.string.val = (char *) key;
	v.val.string.len = strlen(key);
	pushJsonbValue(st, WJB_KEY, &v);
}

/* Pushes a scalar as an object value or an array element. */
static void
jb_push_scalar(JsonbParseState **st, JsonbValue *v)
{
	pushJsonbValue(st, (*st)->contVal.type == jbvArray ? WJB_ELEM : WJB_VALUE, v);
}

/* Pushes a whole jsonb document as an object value or an array element. */
void
JbJsonb(JsonbParseState **st, Jsonb *value)
{
	JsonbValue	v;

	v.type = jbvBinary;
	v.val.binary.data = &value->root;
	v.val.binary.len = VARSIZE(value) - VARHDRSZ;
	jb_push_scalar(st, &v);
}

void
JbString(JsonbParseState **st, const char *value)
{
	JsonbValue	v;

	if (value == NULL)
	{
		JbNull(st);
		return;
	}
	v.type = jbvString;
	v.val.string.val = (char *) value;
	v.val.string.len = strlen(value);
	jb_push_scalar(st, &v);
}

/*
 * JbFloat pushes a float8 with its shortest exact decimal form; NaN and
 * Infinity, which JSON cannot hold, become null.
 */
void
JbFloat(JsonbParseState **st, double value)
{
	JsonbValue	v;

	if (isnan(value) || isinf(value))
	{
		JbNull(st);
		return;
	}
	v.type = jbvNumeric;
	v.val.numeric = DatumGetNumeric(DirectFunctionCall3(numeric_in,
														CStringGetDatum(float8out_internal(value)),
														ObjectIdGetDatum(InvalidOid),
														Int32GetDatum(-1)));
	jb_push_scalar(st, &v);
}

void
JbInt(JsonbParseState **st, int64 value)
{
	JsonbValue	v;

	v.type = jbvNumeric;
	v.val.numeric = DatumGetNumeric(DirectFunctionCall1(int8_numeric, Int64GetDatum(value)));
	jb_push_scalar(st, &v);
}

void
JbBool(JsonbParseState **st, bool value)
{
	JsonbValue	v;

	v.type = jbvBool;
	v.val.boolean = value;
	jb_push_scalar(st, &v);
}

void
JbNull(JsonbParseState **st)
{
	JsonbValue	v;

	v.type = jbvNull;
	jb_push_scalar(st, &v);
}

void
JbBeginObject(JsonbParseState **st)
{
	pushJsonbValue(st, WJB_BEGIN_OBJECT, NULL);
}

void
JbEndObject(JsonbParseState **st)
{
	pushJsonbValue(st, WJB_END_OBJECT, NULL);
}

void
JbBeginArray(JsonbParseState **st)
{
	pushJsonbValue(st, WJB_BEGIN_ARRAY, NULL);
}

void
JbEndArray(JsonbParseState **st)
{
	pushJsonbValue(st, WJB_END_ARRAY, NULL);
}

/*
 * JbFinishObject closes the outermost object and returns it as Jsonb.
 */
Jsonb *
JbFinishObject(JsonbParseState **st)
{
	return JsonbValueToJsonb(pushJsonbValue(st, WJB_END_OBJECT, NULL));
}

/*
 * JbFinishArray closes the outermost array and returns it as Jsonb.
 */
Jsonb *
JbFinishArray(JsonbParseState **st)
{
	return JsonbValueToJsonb(pushJsonbValue(st, WJB_END_ARRAY, NULL));
}

/*
 * JbParse parses jsonb text (a constant of the code; bad text is an error
 * as for any jsonb input).
 */
Jsonb *
JbParse(const char *text)
{
	return DatumGetJsonbP(DirectFunctionCall1(jsonb_in, CStringGetDatum(text)));
}

/*
 * JbConcat is a || b: b's keys replace a's.  A NULL a gives b.
 */
Jsonb *
JbConcat(Jsonb *a, Jsonb *b)
{
	if (a == NULL)
		return b;
	return DatumGetJsonbP(DirectFunctionCall2(jsonb_concat, JsonbPGetDatum(a),
											  JsonbPGetDatum(b)));
}

/*
 * JsonParseText parses text as JSON in the database's encoding, with the
 * semantic actions of sem (NULL: none); false when it is not valid.
 */
bool
JsonParseText(char *text, int len, JsonSemAction *sem)
{
	JsonParseErrorType rc;

	if (sem == NULL)
		sem = &nullSemAction;
#if PG_VERSION_NUM >= 170000
	{
		JsonLexContext lex;

		makeJsonLexContextCstringLen(&lex, text, len, GetDatabaseEncoding(), true);
		rc = pg_parse_json(&lex, sem);
		freeJsonLexContext(&lex);
	}
#else
	rc = pg_parse_json(makeJsonLexContextCstringLen(text, len, GetDatabaseEncoding(), true), sem);
#endif
	return rc == JSON_SUCCESS;
}

/*
 * SecondsSince is the time from start (a TimestampTz) to now, in seconds.
 */
double
SecondsSince(int64 start)
{
	long		secs;
	int			usecs;

	TimestampDifference((TimestampTz) start, GetCurrentTimestamp(), &secs, &usecs);
	return (double) secs + (double) usecs / 1e6;
}

/* MLAlignedBytea: see pgmaker.h. */
bytea *
MLAlignedBytea(bytea *b)
{
	b = (bytea *) PG_DETOAST_DATUM(PointerGetDatum(b));
	if ((uintptr_t) b % MAXIMUM_ALIGNOF != 0)
	{
		bytea	   *copy = palloc_extended(VARSIZE(b), MCXT_ALLOC_HUGE);

		memcpy(copy, b, VARSIZE(b));
		b = copy;
	}
	return b;
}

/* MLNotInAggregate: see pgmaker.h. */
void
MLNotInAggregate(const char *fn)
{
	ereport(ERROR,
			(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
			 errmsg("%s can only be called by an aggregate", fn)));
}
