/*-------------------------------------------------------------------------
 * src/http/values.c
 *		Field texts against column types, without raising: integers with
 *		their range, floats, numerics, booleans, ISO dates and timestamps.
 *		ml.load uses them to reject a malformed record before COPY sees
 *		it, and to infer the column types of a table it creates.
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <ctype.h>
#include <math.h>

#include "catalog/pg_type.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"

#include "http/values.h"


/* is_integer_text: an integer between lo and hi, blanks around allowed. */
static bool
is_integer_text(const char *s, int64 lo, int64 hi)
{
	char	   *end;
	long long	v;

	while (isspace((unsigned char) *s))
		s++;
	if (*s == '\0')
		return false;
	errno = 0;
	v = strtoll(s, &end, 10);
	if (end == s || errno == ERANGE)
		return false;
	while (isspace((unsigned char) *end))
		end++;
	return *end == '\0' && v >= lo && v <= hi;
}

/*
 * is_float_text: a decimal number within double precision's range (the
 * words NaN and Infinity too with allow_special).
 */
static bool
is_float_text(const char *s, bool allow_special)
{
	char	   *end;
	double		v;

	while (isspace((unsigned char) *s))
		s++;
	if (*s == '\0')
		return false;
	/* strtod reads hexadecimal, which float8in does not */
	if (strchr(s, 'x') || strchr(s, 'X'))
		return false;
	errno = 0;
	v = strtod(s, &end);
	if (end == s)
		return false;
	while (isspace((unsigned char) *end))
		end++;
	if (*end != '\0')
		return false;
	/* out of range either way, as float8in says: 1e400, 1e-400 */
	if (errno == ERANGE)
		return false;
	return allow_special || !(isnan(v) || isinf(v));
}

/* digits reads n digits into *out and moves *p past them; false if they are not all digits. */
static bool
digits(const char **p, int n, int *out)
{
	int			v = 0;

	for (int i = 0; i < n; i++)
	{
		if (!isdigit((unsigned char) (*p)[i]))
			return false;
		v = v * 10 + ((*p)[i] - '0');
	}
	*p += n;
	*out = v;
	return true;
}

/* parse_iso_date reads YYYY-MM-DD (or YYYY/MM/DD) with a real day of month and moves *p past it. */
static bool
parse_iso_date(const char **p)
{
	static const int mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	int			y,
				m,
				d;
	char		sep;

	if (!digits(p, 4, &y) || (**p != '-' && **p != '/'))
		return false;
	sep = *(*p)++;
	if (!digits(p, 2, &m) || **p != sep)
		return false;
	(*p)++;
	if (!digits(p, 2, &d))
		return false;
	if (m < 1 || m > 12 || d < 1 || d > mdays[m - 1])
		return false;
	if (m == 2 && d == 29 && !((y % 4 == 0 && y % 100 != 0) || y % 400 == 0))
		return false;
	return true;
}

/* is_date_text: YYYY-MM-DD or YYYY/MM/DD. */
static bool
is_date_text(const char *s)
{
	if (!parse_iso_date(&s))
		return false;
	return *s == '\0';
}

/* is_timestamp_text: YYYY-MM-DD[ T]HH:MM[:SS[.frac]][Z|+HH[:MM]|-HH[:MM]] */
static bool
is_timestamp_text(const char *s)
{
	int			h,
				mi,
				sec;

	if (!parse_iso_date(&s))
		return false;
	if (*s != ' ' && *s != 'T')
		return false;
	s++;
	if (!digits(&s, 2, &h) || *s != ':' || h > 24)
		return false;
	s++;
	if (!digits(&s, 2, &mi) || mi > 59)
		return false;
	sec = 0;
	if (*s == ':')
	{
		s++;
		if (!digits(&s, 2, &sec) || sec > 60)
			return false;
		if (*s == '.')
		{
			s++;
			if (!isdigit((unsigned char) *s))
				return false;
			while (isdigit((unsigned char) *s))
				s++;
		}
	}
	/* 24:00:00 is the end of the day; nothing later */
	if (h == 24 && (mi > 0 || sec > 0 || *s == '.'))
		return false;
	if (*s == 'Z' || *s == 'z')
		s++;
	else if (*s == '+' || *s == '-')
	{
		int			tzh,
					tzm;

		s++;
		if (!digits(&s, 2, &tzh) || tzh > 15)
			return false;
		if (*s == ':')
			s++;
		if (isdigit((unsigned char) *s) && (!digits(&s, 2, &tzm) || tzm > 59))
			return false;
	}
	return *s == '\0';
}

/* is_bool_text: true/false/t/f (strict), or any boolean input PostgreSQL takes. */
static bool
is_bool_text(const char *s, bool strict)
{
	bool		b;

	if (strict)
		return pg_strcasecmp(s, "true") == 0 || pg_strcasecmp(s, "false") == 0 ||
			pg_strcasecmp(s, "t") == 0 || pg_strcasecmp(s, "f") == 0;
	return parse_bool(s, &b);
}

/* ValueTextPasses: text is valid input for the check's type. */
bool
ValueTextPasses(FieldCheck check, const char *s)
{
	switch (check)
	{
		case CHECK_NONE:
			return true;
		case CHECK_INT2:
			return is_integer_text(s, PG_INT16_MIN, PG_INT16_MAX);
		case CHECK_INT4:
			return is_integer_text(s, PG_INT32_MIN, PG_INT32_MAX);
		case CHECK_INT8:
			return is_integer_text(s, PG_INT64_MIN, PG_INT64_MAX);
		case CHECK_FLOAT:
			return is_float_text(s, true);
		case CHECK_NUMERIC:
			/* numeric takes NaN and, since PostgreSQL 14, the infinities */
			return is_float_text(s, PG_VERSION_NUM >= 140000) || pg_strcasecmp(s, "nan") == 0;
		case CHECK_BOOL:
			return is_bool_text(s, false);
		case CHECK_DATE:
			return is_date_text(s);
		case CHECK_TIMESTAMP:
			return is_timestamp_text(s) || is_date_text(s);
	}
	return true;
}

/* ValueCheckForType is the check for a column of type typid (of its base type). */
FieldCheck
ValueCheckForType(Oid typid)
{
	switch (getBaseType(typid))
	{
		case INT2OID:
			return CHECK_INT2;
		case INT4OID:
			return CHECK_INT4;
		case INT8OID:
			return CHECK_INT8;
		case FLOAT4OID:
		case FLOAT8OID:
			return CHECK_FLOAT;
		case NUMERICOID:
			return CHECK_NUMERIC;
		case BOOLOID:
			return CHECK_BOOL;
		case DATEOID:
			return CHECK_DATE;
		case TIMESTAMPOID:
		case TIMESTAMPTZOID:
			return CHECK_TIMESTAMP;
		default:
			return CHECK_NONE;
	}
}

/* ValueCheckName names a check's type for messages. */
const char *
ValueCheckName(FieldCheck check)
{
	switch (check)
	{
		case CHECK_INT2:
			return "smallint";
		case CHECK_INT4:
			return "integer";
		case CHECK_INT8:
			return "bigint";
		case CHECK_FLOAT:
			return "double precision";
		case CHECK_NUMERIC:
			return "numeric";
		case CHECK_BOOL:
			return "boolean";
		case CHECK_DATE:
			return "date";
		case CHECK_TIMESTAMP:
			return "timestamp";
		default:
			return "text";
	}
}

/* ValueInferMask is the set of inferable types (INFER_*) that text is valid for. */
int
ValueInferMask(const char *s)
{
	int			mask = 0;

	if (is_integer_text(s, PG_INT64_MIN, PG_INT64_MAX))
		mask |= INFER_BIGINT;
	if (is_float_text(s, false))
		mask |= INFER_FLOAT8;
	if (is_bool_text(s, true))
		mask |= INFER_BOOLEAN;
	if (is_date_text(s))
		mask |= INFER_DATE;
	if (is_timestamp_text(s) || is_date_text(s))
		mask |= INFER_TIMESTAMPTZ;
	return mask;
}

/* ValueInferredType is the preferred type of a mask; text when none, or no value was seen. */
const char *
ValueInferredType(int mask, bool any_value)
{
	if (!any_value)
		return "text";
	if (mask & INFER_BIGINT)
		return "bigint";
	if (mask & INFER_FLOAT8)
		return "double precision";
	if (mask & INFER_BOOLEAN)
		return "boolean";
	if (mask & INFER_DATE)
		return "date";
	if (mask & INFER_TIMESTAMPTZ)
		return "timestamp with time zone";
	return "text";
}

