/*-------------------------------------------------------------------------
 * src/http/s3.h
 *		s3:// URLs: where the request goes and how it is signed.
 *-------------------------------------------------------------------------
 */
#ifndef PGMAKER_S3_H
#define PGMAKER_S3_H

#include "postgres.h"

#include "utils/jsonb.h"

#include "http/http.h"

/* The options of a call that reads s3:// URLs. */
typedef struct S3Options
{
	char	   *credentials;	/* name in ml.credentials, or NULL: unsigned */
	char	   *endpoint;		/* S3-compatible store, path-style; NULL: AWS */
	char	   *region;			/* NULL: the credential's, else us-east-1 */
} S3Options;

extern void S3OptionsInit(S3Options *o);

/* S3Option takes key when it is an S3 option; false otherwise. */
extern bool S3Option(S3Options *o, const char *key, JsonbValue *v);

/*
 * S3PrepareRequest fills req for a GET of url: an s3:// URL becomes the
 * HTTPS URL of the object, signed with AWS Signature Version 4 when a
 * credential is named; any other URL is passed on as it is.
 */
extern void S3PrepareRequest(const char *url, const S3Options *o, HttpRequest *req);

#endif							/* PGMAKER_S3_H */
