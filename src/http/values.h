/*-------------------------------------------------------------------------
 * src/http/values.h
 *		Checks of field texts against column types, and the types that a
 *		sample of texts suggests, for ml.load.
 *-------------------------------------------------------------------------
 */
#ifndef PGMAKER_VALUES_H
#define PGMAKER_VALUES_H

#include "postgres.h"

/* What a field's text is checked against before COPY sees it. */
typedef enum FieldCheck
{
	CHECK_NONE,
	CHECK_INT2,
	CHECK_INT4,
	CHECK_INT8,
	CHECK_FLOAT,
	CHECK_NUMERIC,
	CHECK_BOOL,
	CHECK_DATE,
	CHECK_TIMESTAMP
} FieldCheck;

/* Inferred types, in order of preference: bits of ValueInferMask. */
enum
{
	INFER_BIGINT = 1 << 0,
	INFER_FLOAT8 = 1 << 1,
	INFER_BOOLEAN = 1 << 2,
	INFER_DATE = 1 << 3,
	INFER_TIMESTAMPTZ = 1 << 4,
	INFER_ALL = (1 << 5) - 1
};

/* ValueCheckForType is the check for a column of type typid. */
extern FieldCheck ValueCheckForType(Oid typid);

/* ValueCheckName names a check's type for messages. */
extern const char *ValueCheckName(FieldCheck check);

/* ValueTextPasses: text is valid input for the check's type. */
extern bool ValueTextPasses(FieldCheck check, const char *text);

/* ValueInferMask is the set of inferable types text is valid for. */
extern int	ValueInferMask(const char *text);

/* ValueInferredType names the preferred type of a mask (text when none). */
extern const char *ValueInferredType(int mask, bool any_value);

#endif							/* PGMAKER_VALUES_H */
